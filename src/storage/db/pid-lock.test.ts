import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { OrthIdError } from '../../core/errors.js';
import { acquirePidLock } from './pid-lock.js';

const locked = (pid: number) => new OrthIdError('db.locked', `held by ${pid}`, { details: { pid } });

describe('the lock file of an embedded data directory, within one process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-pid-lock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('re-entrant: every open shares it, and the file goes with the last release', async () => {
    const path = join(dir, 'reentrant.lock');
    const [a, b] = await Promise.all([
      acquirePidLock(path, { reentrant: true, locked }),
      acquirePidLock(path, { reentrant: true, locked }),
    ]);
    assert.equal(Number(readFileSync(path, 'utf8')), process.pid);
    await a.release();
    await a.release(); // twice is once
    assert.equal(existsSync(path), true, 'still held by the second open');
    await b.release();
    assert.equal(existsSync(path), false);
  });

  test('not re-entrant: a second acquire is refused, naming this process, until the first is released', async () => {
    const path = join(dir, 'exclusive.lock');
    const first = await acquirePidLock(path, { reentrant: false, locked });
    await assert.rejects(
      acquirePidLock(path, { reentrant: false, locked }),
      (e: unknown) => e instanceof OrthIdError && e.details?.pid === process.pid,
    );
    await first.release();
    const again = await acquirePidLock(path, { reentrant: false, locked });
    await again.release();
  });
});
