import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { writeFileAtomically } from './atomic-file.js';

/** A process writing `path` through a stream that stalls after its first chunk. */
async function stalledWriter(path: string): Promise<ChildProcess> {
  const module = new URL('./atomic-file.ts', import.meta.url).href;
  const script = `
    import { PassThrough } from 'node:stream';
    import { writeFileAtomically } from ${JSON.stringify(module)};
    const body = new PassThrough();
    body.write(Buffer.alloc(4096, 1));
    globalThis.stalled = { body, write: writeFileAtomically(${JSON.stringify(path)}, body) };
    setTimeout(() => process.stdout.write('writing\\n'), 300);
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', () => reject(new Error('the writer exited')));
    const poll = setInterval(() => {
      if (out.includes('writing')) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
  return child;
}

const partials = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.partial'));

function ageAll(dir: string): void {
  const then = new Date(Date.now() - 60 * 60_000);
  for (const f of partials(dir)) utimesSync(join(dir, f), then, then);
}

describe('writing a file atomically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-atomic-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the next write removes a killed writer's partial file, never a live writer's", async () => {
    const path = join(dir, 'export.age');
    const killed = await stalledWriter(path);
    killed.kill('SIGKILL');
    await once(killed, 'exit');
    const [killedPartial] = partials(dir);
    const live = await stalledWriter(path);
    try {
      const livePartial = partials(dir).find((f) => f !== killedPartial);
      assert.ok(killedPartial && livePartial);
      ageAll(dir);
      await writeFileAtomically(path, 'done');
      assert.equal(readFileSync(path, 'utf8'), 'done');
      assert.deepEqual(partials(dir), [livePartial], 'only the live writer keeps its partial file');
    } finally {
      live.kill('SIGKILL');
      await once(live, 'exit');
    }
  });
});
