import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

function json<T = Record<string, unknown>>(text: string): T {
  return JSON.parse(text) as T;
}

describe('orthid backup dump on the embedded default while `orthid start` runs', () => {
  let dir: string;
  let server: ServerProcess;
  let key: ReturnType<typeof ageKeygen>;

  before(async () => {
    requireAgeCli();
    dir = mkdtempSync(join(tmpdir(), 'orthid-backup-embedded-cli-'));
    key = ageKeygen(dir);
    server = await startServer({ ORTHID_DATA_DIR: join(dir, 'data') });
  });
  after(async () => {
    if (server.child.exitCode === null) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the running server takes the dump itself, and the set verifies', async () => {
    const env = { ORTHID_DATA_DIR: join(dir, 'data') };
    const result = await runCli(['backup', 'dump', '--encrypt', '--recipient', key.recipient, '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /running OrthID server holds the embedded database/);
    const manifest = json<{ database: { engine: string; format: string }; parts: { name: string }[] }>(
      result.stdout,
    );
    assert.deepEqual([manifest.database.engine, manifest.database.format], ['pglite', 'plain']);
    assert.deepEqual(
      manifest.parts.map((p) => p.name),
      ['db.sql.age', 'objects.tar.age', 'keystore.age'],
    );
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200, 'the server keeps serving');

    const verified = await runCli(['backup', 'verify', 'latest', '--identity', key.file, '--json'], env);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});
