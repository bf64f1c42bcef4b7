// Benchmarks OrthID's streaming age encryption and decryption against the stock `age` CLI in
// the same run, and prints each ratio against the target: median(ours) ≥ 0.9 × median(CLI).
//
// Run: npm run bench -- age-stream [MiB=256] [runs=3]   (needs `age`: apt-get install -y age)
//
// Input: a 1 MiB block of ChaCha20 keystream under a fixed key, repeated. Repetition flatters no
// one: ChaCha20-Poly1305 costs the same for every byte and nothing on either side compresses.
// Baseline: `age` reads the file (page cache) and writes to /dev/null, timed from spawn to exit;
// it is spawned from a helper process (bench/lib/spawner.ts), since forking from this process
// would make our next run fault on every page it writes.
// Ours: the same bytes streamed from memory through the Transform into a null Writable, which
// is how a backup runs (pg_dump's pipe in, an upload out). A second, informational row streams
// the file through fs.createReadStream, so the cost of Node's file reads stays visible.
// Runs alternate CLI / ours so background load hits both sides alike.
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream, encryptStream, parseIdentityFile } from '../src/crypto/age/index.js';
import { startSpawner } from './lib/processes.js';
import { exitOnVerdicts, formatSpread, median, printHeader, printRow } from './lib/report.js';

const MIB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 256);
const RUNS = Number(process.argv[3] ?? 3);
const TARGET = 0.9;

function requireCli(): void {
  for (const binary of ['age', 'age-keygen']) {
    try {
      execFileSync(binary, ['--version'], { stdio: 'pipe' });
    } catch {
      console.error(
        `The stock \`${binary}\` CLI is the baseline and is not installed. Install it: apt-get install -y age`,
      );
      process.exit(2);
    }
  }
}

function inputBlock(): Buffer {
  const key = createHash('sha256').update('orthid age bench').digest();
  return createCipheriv('chacha20', key, Buffer.alloc(16)).update(Buffer.alloc(MIB));
}

function writeRepeated(path: string, block: Buffer): void {
  const fd = openSync(path, 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, block);
  closeSync(fd);
}

/** Yields `data` (or `block` repeated) in 1 MiB views without copying, so the source costs nothing. */
function memorySource(pieces: () => Iterable<Buffer>): Readable {
  return Readable.from(pieces(), { objectMode: false });
}

function* repeated(block: Buffer): Iterable<Buffer> {
  for (let i = 0; i < sizeMiB; i++) yield block;
}

function* slices(data: Buffer): Iterable<Buffer> {
  for (let offset = 0; offset < data.length; offset += MIB) yield data.subarray(offset, offset + MIB);
}

/** One run of ours: wall time, and the page faults and CPU time of this process meanwhile. */
interface OurRun {
  ms: number;
  faults: number;
  userMs: number;
  systemMs: number;
}

/** Times one pipeline; `expected` guards against timing a transform that dropped or invented data. */
async function timeOurs(
  source: () => Readable,
  transform: () => Transform,
  expected: number,
): Promise<OurRun> {
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: 4 * MIB,
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback();
    },
  });
  const before = process.resourceUsage();
  const start = performance.now();
  await pipeline(source(), transform(), sink);
  const ms = performance.now() - start;
  const after = process.resourceUsage();
  if (bytes !== expected) throw new Error(`expected ${expected} output bytes, got ${bytes}`);
  return {
    ms,
    faults: after.minorPageFault - before.minorPageFault,
    userMs: (after.userCPUTime - before.userCPUTime) / 1000,
    systemMs: (after.systemCPUTime - before.systemCPUTime) / 1000,
  };
}

interface Case {
  operation: string;
  cli: () => Promise<number>;
  ours: () => Promise<OurRun>;
  oursFromFile: () => Promise<OurRun>;
}

interface Row {
  operation: string;
  cli: number[];
  ours: OurRun[];
  oursFromFile: OurRun[];
}

const mibPerSecond = (ms: number) => sizeMiB / (ms / 1000);
const rates = (runs: OurRun[]) => runs.map((r) => mibPerSecond(r.ms));

/** Where our time went: the transform's own CPU, and the kernel's for fresh pages it touched. */
function costLine(label: string, runs: OurRun[]): string {
  const of = (pick: (r: OurRun) => number) => median(runs.map(pick)).toFixed(0);
  return `  ${label}: ${of((r) => r.faults)} page faults, ${of((r) => r.userMs)} ms user and ${of((r) => r.systemMs)} ms system CPU per run (medians)`;
}

function report(rows: Row[]): void {
  printHeader(
    `Encryption stream: age v1, X25519, ${sizeMiB} MiB; stock age CLI (baseline) vs OrthID stream from memory`,
    RUNS,
  );
  const verdicts = rows.map((row) =>
    printRow({
      name: `age ${row.operation}`,
      baseline: row.cli.map(mibPerSecond),
      orthid: rates(row.ours),
      unit: 'MiB/s',
      target: { kind: 'ratio-at-least', value: TARGET },
    }),
  );
  for (const row of rows) console.log(costLine(`${row.operation}, from memory`, row.ours));
  console.log('\ninformational: OrthID fed by fs.createReadStream (1 MiB reads) from the same file');
  for (const row of rows) {
    const r = median(rates(row.oursFromFile)) / median(row.cli.map(mibPerSecond));
    console.log(
      `  ${row.operation.padEnd(9)} ${formatSpread(rates(row.oursFromFile), 'MiB/s')}  ratio ${r.toFixed(2)}`,
    );
    console.log(costLine(`${row.operation}, from the file`, row.oursFromFile));
  }
  exitOnVerdicts(verdicts);
}

async function main(): Promise<void> {
  requireCli();
  const spawner = startSpawner();
  const timeCli = (args: string[]) => spawner.time('age', args);
  const dir = mkdtempSync(join(tmpdir(), 'orthid-age-bench-'));
  try {
    const plainFile = join(dir, 'plain.bin');
    const encryptedFile = join(dir, 'plain.bin.age');
    const keyFile = join(dir, 'key.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'pipe' });
    const recipient = execFileSync('age-keygen', ['-y', keyFile], { encoding: 'utf8' }).trim();
    const identities = parseIdentityFile(readFileSync(keyFile, 'utf8'));
    const block = inputBlock();
    writeRepeated(plainFile, block);
    execFileSync('age', ['-r', recipient, '-o', encryptedFile, plainFile]);
    const encrypted = readFileSync(encryptedFile);
    const size = sizeMiB * MIB;
    // The same recipient gives the same header length, so the age file's size is what ours must produce.
    const fromFile = (path: string) => () => createReadStream(path, { highWaterMark: MIB });

    const cases: Case[] = [
      {
        operation: 'encrypt',
        cli: () => timeCli(['-r', recipient, '-o', '/dev/null', plainFile]),
        ours: () =>
          timeOurs(
            () => memorySource(() => repeated(block)),
            () => encryptStream([recipient]),
            encrypted.length,
          ),
        oursFromFile: () => timeOurs(fromFile(plainFile), () => encryptStream([recipient]), encrypted.length),
      },
      {
        operation: 'decrypt',
        cli: () => timeCli(['-d', '-i', keyFile, '-o', '/dev/null', encryptedFile]),
        ours: () =>
          timeOurs(
            () => memorySource(() => slices(encrypted)),
            () => decryptStream(identities),
            size,
          ),
        oursFromFile: () => timeOurs(fromFile(encryptedFile), () => decryptStream(identities), size),
      },
    ];
    const rows: Row[] = [];
    for (const c of cases) {
      // One untimed round of each warms the page cache and the JIT.
      await c.cli();
      await c.ours();
      await c.oursFromFile();
      const row: Row = { operation: c.operation, cli: [], ours: [], oursFromFile: [] };
      for (let run = 0; run < RUNS; run++) {
        row.cli.push(await c.cli());
        row.ours.push(await c.ours());
        row.oursFromFile.push(await c.oursFromFile());
      }
      rows.push(row);
    }
    report(rows);
  } finally {
    spawner.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
