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
