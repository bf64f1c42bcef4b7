import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { acquireEmbeddedLock } from '../../src/storage/db/embedded-lock.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

/** A kill -9 at an arbitrary point of the server's life: idle, or while it serves a CLI call. */
async function killHard(server: ServerProcess, dir: string, round: number): Promise<string | undefined> {
  let created: string | undefined;
  if (round % 2 === 1) {
    // A tenant create through the control socket, killed before, during or after it (a CLI
    // that finds the server gone runs the command itself).
    const slug = `t${round}`;
    const call = runCli(['tenant', 'create', slug, '--json'], { ORTHID_DATA_DIR: dir });
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 2500)));
    server.child.kill('SIGKILL');
    created = (await call).code === 0 ? slug : undefined;
  } else {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 300)));
    server.child.kill('SIGKILL');
  }
  if (server.child.exitCode === null && server.child.signalCode === null) await once(server.child, 'exit');
  return created;
}

describe('the embedded server after kill -9', () => {
  let dir: string;
  let server: ServerProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-crash-'));
  });
  after(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('starts again every time, keeping what it had written', { timeout: 600_000 }, async () => {
    const created: string[] = [];
    server = await startServer({ ORTHID_DATA_DIR: dir });
    for (let round = 1; round <= 6; round++) {
      const deadPid: number = server.child.pid ?? 0;
      const slug = await killHard(server, dir, round);
      if (slug) created.push(slug);
      // The dead server's lock file is still there, naming it.
      if (slug === undefined && round % 2 === 0) {
        assert.equal(Number(await readFile(join(dir, 'pgdata.lock'), 'utf8')), deadPid);
      }
      if (round % 3 === 0) {
        // As when the pid is reused (a container's next start is often pid 1 again): the file
        // names a live process, which holds no lock on it.
        await writeFile(join(dir, 'pgdata.lock'), String(process.pid));
      }
      server = await startServer({ ORTHID_DATA_DIR: dir });
    }
    const list = await runCli(['tenant', 'list', '--json'], { ORTHID_DATA_DIR: dir });
    assert.equal(list.code, 0, list.stderr);
    const slugs = JSON.parse(list.stdout).map((t: { slug: string }) => t.slug);
    for (const slug of created) assert.ok(slugs.includes(slug), `${slug} missing from ${slugs}`);
  });

  test('a live holder is still detected: a second start is refused, CLI commands go through the server', async () => {
    assert.ok(server, 'the first test leaves a server running');
    const running = server;
    await assert.rejects(acquireEmbeddedLock(join(dir, 'pgdata.lock')), (error: unknown) => {
      return isOrthIdError(error, 'db.locked') && error.details?.pid === running.child.pid;
    });
    const second = await runCli(['start'], { ORTHID_DATA_DIR: dir, ORTHID_PORT: String(await freePort()) });
    assert.match(second.stderr, /error\[db\.locked\]: The embedded database is in use by OrthID process \d+/);
    assert.equal(second.code, exitCodes.conflict);
    const created = await runCli(['tenant', 'create', 'through-socket', '--json'], { ORTHID_DATA_DIR: dir });
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await fetch(`${running.url}/readyz`)).status, 200);
    assert.equal(await running.stop(), 0);
    assert.equal(existsSync(join(dir, 'pgdata.lock')), false);
  });
});
