// Test support for the age interop tests: runs the stock `age` and `age-keygen` CLIs (failing,
// never skipping, when they are missing) and pushes bytes through our streams. Not shipped code.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

let checked = false;

/** Throws with the install command when the stock CLIs are absent, so the suite fails loudly. */
export function requireAgeCli(): void {
  if (checked) return;
  for (const binary of ['age', 'age-keygen']) {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `The stock \`${binary}\` CLI is required for the age interop tests but is not installed (or does not run). Install it: apt-get install -y age`,
      );
    }
  }
  checked = true;
}

/** Runs `age` with these arguments and returns stdout; throws with its stderr on failure. */
export function age(args: readonly string[], input?: Buffer): Buffer {
  requireAgeCli();
  return execFileSync('age', args, { input, maxBuffer: 64 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A fresh identity file from `age-keygen`: its path, the identity line and the recipient. */
export function ageKeygen(
  dir: string,
  name = 'key.txt',
): { file: string; identity: string; recipient: string } {
  requireAgeCli();
  const file = join(dir, name);
  execFileSync('age-keygen', ['-o', file], { stdio: 'pipe' });
  const identity = readFileSync(file, 'utf8')
    .split('\n')
    .find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
  const recipient = execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
  return { file, identity, recipient };
}

/** A temporary directory under os.tmpdir() that the caller removes with `cleanup`. */
export function tempDir(): {
  dir: string;
  cleanup: () => void;
  write: (name: string, data: string | Buffer) => string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-age-'));
  return {
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
    write: (name, data) => {
      const path = join(dir, name);
      writeFileSync(path, data, { mode: 0o600 });
      return path;
    },
  };
}

/**
 * Pipes `data` through `transform` in pieces of the given sizes (cycled), so chunk boundaries
 * of the input never line up with the 64 KiB chunks of the format.
 */
export async function runThrough(
  transform: Transform,
  data: Buffer,
  pieceSizes: readonly number[] = [65536],
): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = pieceSizes[i % pieceSizes.length]!;
    pieces.push(data.subarray(offset, offset + size));
    offset += size;
  }
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}
