// PKCS#11 key custody against a real SoftHSM2 token initialised in a temporary directory: keys
// generated in the token and never extractable, wrapping inside it, shredding, token removal.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PKCS11 } from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import { loadConfig } from '../../src/config/config.js';
import { parsePkcs11Uri } from '../../src/config/pkcs11-uri.js';
import { openCustody } from '../../src/crypto/custody/open-custody.js';
import { openPkcs11Custody, type Pkcs11Custody } from '../../src/crypto/custody/pkcs11.js';
import { rejectsWith } from '../helpers/errors.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const TENANT_A = '0193a5f0-0000-7000-8000-00000000000a';
const TENANT_B = '0193a5f0-0000-7000-8000-00000000000b';
const TENANT_C = '0193a5f0-0000-7000-8000-00000000000c';

/** Each token gets its own SOFTHSM2_CONF, which SoftHSM2 reads when the module initialises. */
function useToken(options?: { label?: string; object?: string }): SoftHsmToken {
  const token = createSoftHsmToken(options);
  process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
  return token;
}

async function open(token: SoftHsmToken, pin = token.pin): Promise<Pkcs11Custody> {
  const parsed = parsePkcs11Uri(token.uri);
  assert.ok(parsed.ok);
  return openPkcs11Custody({ uri: parsed.value, pin });
}

/** A second, independent PKCS#11 client on the same module, to look at the token as a tool would. */
function rawClient(token: SoftHsmToken): { lib: PKCS11; session: Buffer; close(): void } {
  const lib = new pkcs11js.PKCS11();
  lib.load(token.modulePath);
  let owned = true;
  try {
    lib.C_Initialize();
  } catch (error) {
    if ((error as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
    owned = false;
  }
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === token.label)!;
  const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, token.pin);
  } catch (error) {
    if ((error as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw error;
  }
  return {
    lib,
    session,
    close() {
      lib.C_CloseSession(session);
      if (owned) lib.C_Finalize();
      lib.close();
    },
  };
}

function findByLabel(lib: PKCS11, session: Buffer, label: string): Buffer[] {
  lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
  const handles = lib.C_FindObjects(session, 10);
  lib.C_FindObjectsFinal(session);
  return handles;
}

describe('PKCS#11 custody on a SoftHSM2 token', () => {
  let token: SoftHsmToken;
  let custody: Pkcs11Custody;

  before(async () => {
    token = useToken();
    custody = await open(token);
  });
  after(async () => {
    await custody?.close();
    token?.cleanup();
  });

  test('init generates the deployment root key in the token, and a second init adopts it', async () => {
    const first = await custody.init();
    assert.deepEqual({ id: first.rootKeyId, created: first.created }, { id: token.object, created: true });
    const second = await custody.init();
    assert.deepEqual({ id: second.rootKeyId, created: second.created }, { id: token.object, created: false });
    const keys = await custody.rootKeys();
    assert.deepEqual(
      keys.map((k) => ({ id: k.id, scope: k.scope, status: k.status })),
      [{ id: token.object, scope: 'deployment', status: 'active' }],
    );
    assert.ok(Date.parse(keys[0]!.createdAt) > Date.now() - 60_000);
  });

  test('a data key wrapped in the token unwraps to the same bytes, and the wrapped form is not the key', async () => {
    const dataKey = randomBytes(32);
    const wrapped = await custody.wrap(dataKey, 'tenant-key:one', 'deployment');
    assert.equal(wrapped.custody, 'pkcs11');
    assert.equal(wrapped.rootKeyId, token.object);
    assert.ok(!Buffer.from(wrapped.wrapped, 'base64url').includes(dataKey));
    assert.deepEqual(await custody.unwrap(wrapped, 'tenant-key:one'), dataKey);
  });

  test('the root key is sensitive and non-extractable: another PKCS#11 client cannot read its value', async () => {
    const raw = rawClient(token);
    try {
      const [handle] = findByLabel(raw.lib, raw.session, token.object);
      assert.ok(handle, 'the root key is in the token under its label');
      const attrs = raw.lib
        .C_GetAttributeValue(raw.session, handle, [
          { type: pkcs11js.CKA_TOKEN },
          { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_EXTRACTABLE },
          { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
          { type: pkcs11js.CKA_LOCAL },
          { type: pkcs11js.CKA_VALUE_LEN },
        ])
        .map((a) => a.value);
      assert.deepEqual(
        attrs.slice(0, 5).map((v) => v[0] === 1),
        [true, true, false, true, true],
      );
      assert.equal(attrs[5]!.readUInt32LE(0), 32);
      assert.throws(
        () => raw.lib.C_GetAttributeValue(raw.session, handle, [{ type: pkcs11js.CKA_VALUE }]),
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    } finally {
      raw.close();
    }
    assert.deepEqual(await custody.protection(token.object), {
      sensitive: true,
      extractable: false,
      alwaysSensitive: true,
      neverExtractable: true,
      local: true,
    });
  });

  test('a wrapped key opened with another context fails with crypto.decrypt_failed', async () => {
    const wrapped = await custody.wrap(randomBytes(32), 'tenant-key:a', 'deployment');
    await rejectsWith(custody.unwrap(wrapped, 'tenant-key:b'), 'crypto.decrypt_failed');
    const flipped = Buffer.from(wrapped.wrapped, 'base64url');
    flipped[flipped.length - 1]! ^= 1;
    await rejectsWith(
      custody.unwrap({ ...wrapped, wrapped: flipped.toString('base64url') }, 'tenant-key:a'),
      'crypto.decrypt_failed',
    );
    // The failures left the session usable.
    assert.equal((await custody.unwrap(wrapped, 'tenant-key:a')).length, 32);
  });

  test('each tenant scope gets its own root key; destroying one tenant’s keys shreds only that tenant', async () => {
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    const keyD = randomBytes(32);
    const wrappedA = await custody.wrap(keyA, 'a', TENANT_A);
    const wrappedB = await custody.wrap(keyB, 'b', TENANT_B);
    const wrappedD = await custody.wrap(keyD, 'd', 'deployment');
    assert.match(wrappedA.rootKeyId, new RegExp(`^${token.object}/${TENANT_A}/\\d{8}T\\d{9}Z$`));
    assert.notEqual(wrappedA.rootKeyId, wrappedB.rootKeyId);
    assert.equal((await custody.wrap(randomBytes(32), 'a2', TENANT_A)).rootKeyId, wrappedA.rootKeyId);

    for (const key of (await custody.rootKeys()).filter((k) => k.scope === TENANT_A))
      await custody.destroy(key.id);

    await rejectsWith(custody.unwrap(wrappedA, 'a'), 'keystore.key_not_found');
    assert.deepEqual(await custody.unwrap(wrappedB, 'b'), keyB);
    assert.deepEqual(await custody.unwrap(wrappedD, 'd'), keyD);
    await rejectsWith(custody.destroy(wrappedA.rootKeyId), 'keystore.key_not_found');
  });

  test('rotation makes a new active root key while data keys wrapped by the old one still open', async () => {
    const dataKey = randomBytes(32);
    const old = await custody.wrap(dataKey, 'b', TENANT_B);
    const next = await custody.rotate(TENANT_B);
    assert.notEqual(next, old.rootKeyId);
    assert.equal((await custody.wrap(randomBytes(32), 'b', TENANT_B)).rootKeyId, next);
    const scopeKeys = (await custody.rootKeys()).filter((k) => k.scope === TENANT_B);
    assert.deepEqual(
      scopeKeys.map((k) => [k.id, k.status]),
      [
        [old.rootKeyId, 'retired'],
        [next, 'active'],
      ],
    );
    assert.deepEqual(await custody.unwrap(old, 'b'), dataKey);

    const deploymentNext = await custody.rotate('deployment');
    assert.match(deploymentNext, new RegExp(`^${token.object}/deployment/`));
    assert.equal((await custody.wrap(randomBytes(32), 'd', 'deployment')).rootKeyId, deploymentNext);
    await custody.destroy(old.rootKeyId);
    await rejectsWith(custody.unwrap(old, 'b'), 'keystore.key_not_found');
  });

  test('a second custody on the same token adopts its keys and opens what the first wrapped', async () => {
    const dataKey = randomBytes(32);
    const wrapped = await custody.wrap(dataKey, 'shared', TENANT_B);
    const other = await open(token);
    try {
      assert.equal((await other.init()).created, false);
      assert.deepEqual(await other.unwrap(wrapped, 'shared'), dataKey);
    } finally {
      await other.close();
    }
    await custody.check();
  });

  test("a root key generated in the token is dated by the custody's clock", async () => {
    const at = new Date('2031-03-04T05:06:07.089Z');
    const parsed = parsePkcs11Uri(token.uri);
    assert.ok(parsed.ok);
    const dated = await openPkcs11Custody({ uri: parsed.value, pin: token.pin, clock: { now: () => at } });
    try {
      const id = await dated.rotate(TENANT_C);
      assert.equal(id, `${token.object}/${TENANT_C}/20310304T050607089Z`);
      const key = (await dated.rootKeys()).find((k) => k.id === id);
      assert.equal(key?.createdAt, at.toISOString());
    } finally {
      await dated.close();
    }
  });

  test('a scope that could be mistaken for a label path is refused', async () => {
    await rejectsWith(custody.wrap(randomBytes(32), 'x', 'a/b'), 'request.invalid');
  });
});

describe('PKCS#11 custody from configuration', () => {
  test('ORTHID_KEYSTORE and ORTHID_PKCS11_PIN_FILE (ending in a newline) open the token', async () => {
    const token = useToken();
    try {
      const pinFile = join(token.env.SOFTHSM2_CONF, '..', 'pin');
      writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
      const config = loadConfig({ ORTHID_KEYSTORE: token.uri, ORTHID_PKCS11_PIN_FILE: pinFile });
      assert.equal(config.custody.kind, 'pkcs11');
      if (config.custody.kind !== 'pkcs11') return;
      const custody = await openCustody(config.custody);
      try {
        assert.equal(custody.kind, 'pkcs11');
        assert.equal(custody.reference, token.uri);
        await rejectsWith(custody.check(), 'keystore.not_initialised');
        assert.equal((await custody.init()).created, true);
        await custody.check();
      } finally {
        await custody.close();
      }
      writeFileSync(pinFile, '');
      await rejectsWith(openCustody(config.custody), 'config.invalid');
    } finally {
      token.cleanup();
    }
  });
});

describe('PKCS#11 custody adopting a key the operator created', () => {
  test('init adopts an existing key labelled with the object, and reports its weaker protection', async () => {
    const token = useToken({ object: 'operator key' });
    const raw = rawClient(token);
    let custody: Pkcs11Custody | undefined;
    try {
      raw.lib.C_GenerateKey(raw.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_LABEL, value: 'operator key' },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
      ]);
      assert.match(token.uri, /object=operator%20key/);
      custody = await open(token);
      const result = await custody.init();
      assert.equal(result.rootKeyId, 'operator key');
      assert.equal(result.created, false);
      assert.equal(result.protection?.extractable, true);
      assert.equal(
        findByLabel(raw.lib, raw.session, 'operator key').length,
        1,
        'no second key was generated',
      );
      const dataKey = randomBytes(32);
      const wrapped = await custody.wrap(dataKey, 'c', 'deployment');
      assert.equal(wrapped.rootKeyId, 'operator key');
      assert.deepEqual(await custody.unwrap(wrapped, 'c'), dataKey);
      assert.equal((await custody.rootKeys())[0]!.createdAt, '', 'the token does not say when it was made');
    } finally {
      await custody?.close();
      raw.close();
      token.cleanup();
    }
  });
});

describe('PKCS#11 custody when the token is gone or the PIN is wrong', () => {
  test('with the token removed, check() and unwrap fail with keystore.custody_unavailable', async () => {
    const token = useToken();
    const custody = await open(token);
    try {
      await custody.init();
      const wrapped = await custody.wrap(randomBytes(32), 'ctx', TENANT_A);
      await custody.check();

      token.remove();

      const checked = await rejectsWith(custody.check(), 'keystore.custody_unavailable');
      assert.match(checked.message, /token/i);
      await rejectsWith(custody.unwrap(wrapped, 'ctx'), 'keystore.custody_unavailable');
      await rejectsWith(custody.wrap(randomBytes(32), 'ctx', TENANT_A), 'keystore.custody_unavailable');
      await rejectsWith(custody.rootKeys(), 'keystore.custody_unavailable');
    } finally {
      await custody.close();
      token.cleanup();
    }
  });

  test('a wrong PIN fails with keystore.custody_unavailable naming the fix, never the PIN', async () => {
    const token = useToken();
    try {
      const wrongPin = 'wrong-pin-4711';
      const error = await rejectsWith(open(token, wrongPin), 'keystore.custody_unavailable');
      assert.match(error.message, /rejected the PIN/);
      assert.match(error.message, /ORTHID_PKCS11_PIN/);
      assert.ok(!error.message.includes(wrongPin));
      assert.ok(!error.message.includes(token.pin));
      assert.ok(!JSON.stringify({ ...error, stack: error.stack }).includes(wrongPin));
    } finally {
      token.cleanup();
    }
  });

  test('a token label that is not present fails with keystore.custody_unavailable listing the tokens', async () => {
    const token = useToken();
    try {
      const parsed = parsePkcs11Uri(token.uri.replace('token=orthid', 'token=absent'));
      assert.ok(parsed.ok);
      const error = await rejectsWith(
        openPkcs11Custody({ uri: parsed.value, pin: token.pin }),
        'keystore.custody_unavailable',
      );
      assert.match(error.message, /No token labelled "absent".*"orthid"/);
    } finally {
      token.cleanup();
    }
  });

  test('a module that does not load fails with keystore.custody_unavailable', async () => {
    const parsed = parsePkcs11Uri('pkcs11:token=orthid;object=k?module-path=/nonexistent/libpkcs11.so');
    assert.ok(parsed.ok);
    const error = await rejectsWith(
      openPkcs11Custody({ uri: parsed.value, pin: '1234' }),
      'keystore.custody_unavailable',
    );
    assert.match(error.message, /\/nonexistent\/libpkcs11\.so/);
  });
});
