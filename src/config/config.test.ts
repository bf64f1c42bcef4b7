import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { ENVIRONMENT, loadConfig } from './config.js';

test('every environment variable OrthID reads is documented in the README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const missing = Object.keys(ENVIRONMENT).filter((name) => !readme.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
});

test('the embedded defaults need no configuration at all', () => {
  const config = loadConfig({}, '/srv/app');
  assert.equal(config.dataDir, '/srv/app/.orthid');
  assert.deepEqual(config.database, { kind: 'embedded', dir: '/srv/app/.orthid/pgdata' });
  assert.equal(config.masterKey.kind, 'generated');
  assert.equal(config.publicUrl, 'http://localhost:3000');
  assert.equal(config.trustProxy, false);
});

test('a production database without an operator-held master secret is refused with every other problem', () => {
  assert.throws(
    () =>
      loadConfig({
        ORTHID_DATABASE_URL: 'postgres://db/orthid',
        ORTHID_PORT: '99999',
        ORTHID_BACKUP_SCHEDULE: '',
      }),
    (error) => {
      assert.ok(isOrthIdError(error, 'config.invalid'));
      const problems = (error.details as { problems: string[] }).problems;
      assert.equal(problems.length, 2);
      assert.match(problems.join('\n'), /ORTHID_MASTER_KEY/);
      assert.match(problems.join('\n'), /ORTHID_PORT/);
      return true;
    },
  );
});

test('ORTHID_KEYSTORE selects the custody; with a pkcs11: token the keystore file moves to the data directory', () => {
  const defaults = loadConfig({}, '/srv/app');
  assert.deepEqual(defaults.custody, { kind: 'managed' });
  assert.equal(defaults.keystorePath, '/srv/app/.orthid/keystore');

  const hsm = loadConfig(
    {
      ORTHID_KEYSTORE:
        'pkcs11:token=orth%20id;object=orthid-root?module-path=/usr/lib/softhsm/libsofthsm2.so',
      ORTHID_PKCS11_PIN_FILE: 'secrets/pin',
    },
    '/srv/app',
  );
  assert.deepEqual(hsm.custody, {
    kind: 'pkcs11',
    uri: 'pkcs11:token=orth%20id;object=orthid-root?module-path=/usr/lib/softhsm/libsofthsm2.so',
    token: 'orth id',
    object: 'orthid-root',
    modulePath: '/usr/lib/softhsm/libsofthsm2.so',
    pin: { kind: 'file', path: '/srv/app/secrets/pin' },
  });
  assert.equal(hsm.keystorePath, '/srv/app/.orthid/keystore');

  const kms = loadConfig(
    { ORTHID_KEYSTORE: 'awskms:alias/orthid?region=eu-west-1', ORTHID_KEYSTORE_FILE: '/etc/orthid/keystore' },
    '/srv/app',
  );
  assert.deepEqual(kms.custody, {
    kind: 'awskms',
    uri: 'awskms:alias/orthid?region=eu-west-1',
    keyId: 'alias/orthid',
    region: 'eu-west-1',
    scopeAliasPrefix: 'orthid',
  });
  assert.equal(kms.keystorePath, '/etc/orthid/keystore');
});

test('a PIN in the PKCS#11 URI, or a token without a PIN, is refused without echoing the PIN', () => {
  assert.throws(
    () =>
      loadConfig({
        ORTHID_KEYSTORE: 'pkcs11:token=orthid;object=k?module-path=/usr/lib/m.so&pin-value=s3cret-pin',
      }),
    (error) => {
      assert.ok(isOrthIdError(error, 'config.invalid'));
      assert.match(error.message, /must not carry the PIN \(pin-value\).*ORTHID_PKCS11_PIN/);
      assert.match(error.message, /set ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE/);
      assert.doesNotMatch(error.message, /s3cret-pin/);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ ORTHID_KEYSTORE: 'vault:secret/orthid' }),
    /ORTHID_KEYSTORE must be a file:\/\/\/path URL, a pkcs11: URI or an awskms: URI/,
  );
  assert.throws(
    () => loadConfig({ ORTHID_PKCS11_PIN: '1234' }),
    /ORTHID_PKCS11_PIN\(_FILE\) is set but ORTHID_KEYSTORE is not a pkcs11: URI/,
  );
});

test('an invalid cron expression is reported by the config loader with every other problem, naming the variable', () => {
  assert.throws(
    () =>
      loadConfig({
        ORTHID_BACKUP_SCHEDULE: '0 2 * *',
        ORTHID_DRILL_SCHEDULE: 'every sunday',
        ORTHID_AUDIT_EXPORT_SCHEDULE: '61 3 1 * *',
        ORTHID_PORT: 'eighty',
      }),
    (error: unknown) => {
      assert.ok(isOrthIdError(error, 'config.invalid'));
      const problems = (error.details as { problems: string[] }).problems;
      assert.equal(problems.length, 4, problems.join('\n'));
      for (const name of [
        'ORTHID_BACKUP_SCHEDULE',
        'ORTHID_DRILL_SCHEDULE',
        'ORTHID_AUDIT_EXPORT_SCHEDULE',
      ]) {
        assert.ok(
          problems.some((p) => p.startsWith(`${name} `) && /is not a cron expression/.test(p)),
          name,
        );
      }
      return true;
    },
  );
  const config = loadConfig({ ORTHID_BACKUP_SCHEDULE: '0 2 * * *', ORTHID_DRILL_SCHEDULE: '0 3 1 * *' });
  assert.equal(config.backup.schedule, '0 2 * * *');
  assert.equal(config.backup.drillSchedule, '0 3 1 * *');
});

test('the shutdown drain and grace come from seconds in the environment, and bad values are reported with every other problem', () => {
  assert.deepEqual(loadConfig({}).shutdown, { drainMs: 0, graceMs: 20_000 });
  assert.deepEqual(
    loadConfig({ ORTHID_DATABASE_URL: 'postgres://db/orthid', ORTHID_MASTER_KEY: 'x'.repeat(32) }).shutdown,
    { drainMs: 5_000, graceMs: 20_000 },
  );
  assert.deepEqual(
    loadConfig({ ORTHID_SHUTDOWN_DRAIN_SECONDS: '0.5', ORTHID_SHUTDOWN_GRACE_SECONDS: '0' }).shutdown,
    { drainMs: 500, graceMs: 0 },
  );
  assert.throws(
    () =>
      loadConfig({
        ORTHID_SHUTDOWN_DRAIN_SECONDS: '-1',
        ORTHID_SHUTDOWN_GRACE_SECONDS: 'thirty',
        ORTHID_PORT: 'eighty',
      }),
    (error: unknown) => {
      assert.ok(isOrthIdError(error, 'config.invalid'));
      const problems = (error.details as { problems: string[] }).problems;
      assert.equal(problems.length, 3, problems.join('\n'));
      for (const name of ['ORTHID_SHUTDOWN_DRAIN_SECONDS', 'ORTHID_SHUTDOWN_GRACE_SECONDS']) {
        assert.ok(
          problems.some((p) => p.startsWith(`${name} must be a number of seconds`)),
          name,
        );
      }
      return true;
    },
  );
});
