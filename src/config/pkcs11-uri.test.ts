import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePkcs11Uri } from './pkcs11-uri.js';

const problems = (text: string): string => {
  const parsed = parsePkcs11Uri(text);
  assert.ok(!parsed.ok, `${text} should be refused`);
  return parsed.problems.join('\n');
};

test('a PKCS#11 URI yields its token, object and module, percent-decoded', () => {
  const parsed = parsePkcs11Uri(
    'pkcs11:token=Orth%20ID;manufacturer=SoftHSM%20project;object=root%2Fkey;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so',
  );
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value, {
    uri: 'pkcs11:token=Orth%20ID;manufacturer=SoftHSM%20project;object=root%2Fkey?module-path=/usr/lib/softhsm/libsofthsm2.so',
    token: 'Orth ID',
    object: 'root/key',
    modulePath: '/usr/lib/softhsm/libsofthsm2.so',
    manufacturer: 'SoftHSM project',
  });
  assert.deepEqual(parsePkcs11Uri(parsed.value.uri), parsed, 'the canonical form parses to the same');
});

test('a PIN in the URI is refused, pointing at ORTHID_PKCS11_PIN, and is never echoed', () => {
  for (const uri of [
    'pkcs11:token=t;object=o?module-path=/m.so&pin-value=123456',
    'pkcs11:token=t;object=o;pin-value=123456?module-path=/m.so',
    'pkcs11:token=t;object=o?module-path=/m.so&pin-source=file:/run/pin',
  ]) {
    const text = problems(uri);
    assert.match(text, /must not carry the PIN.*ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE/);
    assert.doesNotMatch(text, /123456|\/run\/pin/);
  }
});

test('a URI without token, object or an absolute module-path names each missing part', () => {
  const text = problems('pkcs11:slot-id=3?module-name=softhsm2');
  assert.match(text, /token=<label>/);
  assert.match(text, /object=<label>/);
  assert.match(text, /module-path=/);
  assert.match(text, /"slot-id" is not supported/);
  assert.match(problems('pkcs11:token=t;object=o?module-path=lib.so'), /absolute path/);
  assert.match(problems('pkcs11:token=t;object=o;type=private?module-path=/m.so'), /secret-key/);
  assert.match(problems('pkcs11:token=%ZZ;object=o?module-path=/m.so'), /malformed percent-encoding/);
  assert.match(problems('pkcs11:token=a;token=b;object=o?module-path=/m.so'), /"token" twice/);
});
