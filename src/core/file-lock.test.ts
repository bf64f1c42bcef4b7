import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { withFileLock } from './file-lock.js';

const timeout = (lockPath: string) => new Error(`timed out on ${lockPath}`);

describe('the file lock shared by processes and hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-lock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('holders run one at a time, and the lock file is gone afterwards', async () => {
    const lockPath = join(dir, 'serial.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withFileLock(
          lockPath,
          async () => {
            inside++;
            most = Math.max(most, inside);
            await new Promise((resolve) => setTimeout(resolve, 10));
            inside--;
          },
          { onTimeout: timeout },
        ),
      ),
    );
    assert.equal(most, 1);
    assert.throws(() => readFileSync(lockPath), /ENOENT/);
  });

  test('a lock left by a dead process of this host is taken over at once', async () => {
    const lockPath = join(dir, 'dead.lock');
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((resolve) => child.once('exit', resolve));
    writeFileSync(
      lockPath,
      JSON.stringify({ host: (await import('node:os')).hostname(), pid, token: 'gone' }),
    );
    const ran = await withFileLock(lockPath, async () => 'ran', {
      waitMs: 500,
      staleMs: 60_000,
      onTimeout: timeout,
    });
    assert.equal(ran, 'ran');
  });

  test('a holder killed with -9 is seen dead even when its pid runs again', async () => {
    const lockPath = join(dir, 'killed.lock');
    const module = new URL('./file-lock.ts', import.meta.url).href;
    const script = `
      import { withFileLock } from ${JSON.stringify(module)};
      await withFileLock(${JSON.stringify(lockPath)}, async () => {
        process.stdout.write('holding\\n');
        await new Promise(() => setInterval(() => {}, 60_000));
      }, { onTimeout: () => new Error('timeout') });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    await new Promise<void>((resolve) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('holding')) resolve();
      });
    });
    // Alive, it is waited for.
    await assert.rejects(
      withFileLock(lockPath, async () => 'early', { waitMs: 300, staleMs: 60_000, onTimeout: timeout }),
      /timed out/,
    );
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // Its pid given to a live process (this one), as a container restart does.
    const owner = JSON.parse(readFileSync(lockPath, 'utf8'));
    assert.equal(owner.kernelLock, true);
    writeFileSync(lockPath, JSON.stringify({ ...owner, pid: process.pid }));
    const ran = await withFileLock(lockPath, async () => 'ran', {
      waitMs: 500,
      staleMs: 60_000,
      onTimeout: timeout,
    });
    assert.equal(ran, 'ran');
  });

  test("another host's lock is waited for while it is touched, and taken over once it stays unchanged", async () => {
    const lockPath = join(dir, 'remote.lock');
    writeFileSync(lockPath, JSON.stringify({ host: 'replica-elsewhere', pid: 1, token: 'remote' }));
    // Untouched: taken over after the stale period, not before.
    await assert.rejects(
      withFileLock(lockPath, async () => 'early', { waitMs: 300, staleMs: 5_000, onTimeout: timeout }),
      /timed out/,
    );
    const started = Date.now();
    await withFileLock(lockPath, async () => undefined, { waitMs: 5_000, staleMs: 600, onTimeout: timeout });
    assert.ok(Date.now() - started >= 600);
  });

  test('a holder that outlasts the stale period keeps its lock, because it touches the file', async () => {
    const lockPath = join(dir, 'long.lock');
    const order: string[] = [];
    const options = { waitMs: 10_000, staleMs: 1_000, onTimeout: timeout };
    let entered!: () => void;
    const holding = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const first = withFileLock(
      lockPath,
      async () => {
        order.push('first in');
        entered();
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        order.push('first out');
      },
      options,
    );
    await holding;
    await withFileLock(lockPath, async () => void order.push('second'), options);
    await first;
    assert.deepEqual(order, ['first in', 'first out', 'second']);
  });
});
