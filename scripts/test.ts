// The test command: starts one throwaway PostgreSQL cluster for the whole run, then runs every
// *.test.ts under src/ and test/ with node's test runner. Test files create their own databases.
// The `orthid` children the tests start run a copy of src/ compiled once for the run
// (test/helpers/cli-build.ts).
//
//   tsx scripts/test.ts [PATH-SUBSTRING...] [--shuffle[=SEED]] [--write-durations]
//
// In order, each file runs in a runner of its own, two at a time (ORTHID_TEST_CONCURRENCY), the
// longest first by test/durations.json; each file's report is printed when it ends.
// --write-durations records this run's durations there (after a whole run, to keep it current).
// --shuffle runs the files one at a time, each in a process of its own, in an order drawn from
// SEED (printed; a random one when none is given), so that no file can lean on another having
// run before it or beside it.
//
// Deadlines, so that a hang fails the run instead of hanging it:
// - each file: node's --test-timeout, ORTHID_TEST_FILE_TIMEOUT_MS (default 10 min). Every file
//   runs in a process of its own, which node's runner times as one test; node does not pass the
//   limit on to the tests inside (a test that needs one sets `{ timeout }`), so a file that
//   outlives it is cancelled and its process killed;
// - each child process a test runs synchronously: ORTHID_TEST_CHILD_TIMEOUT_MS (default 3 min)
//   unless it sets its own (test/helpers/child-deadline.ts, loaded into every test process);
// - the whole run: ORTHID_TEST_RUN_TIMEOUT_MS (default 60 min).
// The runner works in a process group of its own; whatever the tests leave running (a server, a
// cluster) is killed when it ends. A cancelled test fails the run and counts as failed below.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildCliForTests } from '../test/helpers/cli-build.js';
import { writePgdataTemplate } from '../test/helpers/embedded-data-dir.js';
import { writePgliteTemplate } from '../test/helpers/pglite-template.js';
import { startCluster } from '../test/helpers/postgres.js';

const MINUTE = 60_000;
const intFromEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const FILE_TIMEOUT_MS = intFromEnv('ORTHID_TEST_FILE_TIMEOUT_MS', 10 * MINUTE);
const RUN_TIMEOUT_MS = intFromEnv('ORTHID_TEST_RUN_TIMEOUT_MS', 60 * MINUTE);

/** Runners at once in order: ORTHID_TEST_CONCURRENCY, default 2 (CI has 2 cores). */
const CONCURRENCY = intFromEnv('ORTHID_TEST_CONCURRENCY', 2);

/**
 * Seconds each file took on a whole run (`--write-durations` rewrites it). Only the order of the
 * files comes from it; a file not in it is guessed from where it lives.
 */
const DURATIONS_FILE = join(import.meta.dirname, '../test/durations.json');

function knownDurations(): Record<string, number> {
  return existsSync(DURATIONS_FILE)
    ? (JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>)
    : {};
}

/** Longest-processing-time-first: the files by their last duration, longest first. */
function longestFirst(files: readonly string[]): string[] {
  const known = knownDurations();
  const guess = (file: string) =>
    known[file] ?? (file.startsWith('test/e2e/') ? 30 : file.startsWith('test/integration/') ? 10 : 2);
  return [...files].sort((a, b) => guess(b) - guess(a) || a.localeCompare(b));
}

const duration = (ms: number) => (ms >= MINUTE ? `${Math.round(ms / MINUTE)} min` : `${ms / 1000} s`);

function find(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) find(path, out);
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** mulberry32: a small PRNG, so that a seed names one order on every machine. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function usage(message: string): never {
  console.error(
    `${message}\nUsage: tsx scripts/test.ts [PATH-SUBSTRING...] [--shuffle[=SEED]] [--write-durations]`,
  );
  process.exit(2);
}

let seed: number | undefined;
let writeDurations = false;
const filter: string[] = [];
for (const arg of process.argv.slice(2)) {
  if (arg === '--write-durations') {
    writeDurations = true;
    continue;
  }
  const shuffle = /^--shuffle(?:=(.*))?$/.exec(arg);
  if (shuffle) {
    seed = shuffle[1] === undefined ? randomInt(1, 2 ** 31) : Number(shuffle[1]);
    if (!Number.isSafeInteger(seed) || seed < 0) usage(`--shuffle takes a whole number, not ${shuffle[1]}`);
  } else if (arg.startsWith('-')) {
    usage(`Unknown option ${arg}`);
  } else {
    filter.push(arg);
  }
}

const matching = [...find('src'), ...find('test')]
  .filter((f) => filter.length === 0 || filter.some((pattern) => f.includes(pattern)))
  .sort();
if (matching.length === 0) {
  console.error(`No test files match ${filter.join(' ')}`);
  process.exit(1);
}

interface Totals {
  tests: number;
  pass: number;
  fail: number;
  cancelled: number;
  skipped: number;
  todo: number;
}

/** The closing counts of a TAP report written by node's runner; undefined when it never finished one. */
function readTotals(tapFile: string): Totals | undefined {
  if (!existsSync(tapFile)) return undefined;
  const text = readFileSync(tapFile, 'utf8');
  const count = (name: string) => {
    const all = [...text.matchAll(new RegExp(`^# ${name} (\\d+)$`, 'gm'))];
    return all.length === 0 ? undefined : Number(all[all.length - 1]![1]);
  };
  const [tests, pass, fail, cancelled, skipped, todo] = [
    'tests',
    'pass',
    'fail',
    'cancelled',
    'skipped',
    'todo',
  ].map(count);
  if ([tests, pass, fail, cancelled, skipped, todo].some((n) => n === undefined)) return undefined;
  return { tests: tests!, pass: pass!, fail: fail!, cancelled: cancelled!, skipped: skipped!, todo: todo! };
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-run-'));
const template = join(scratch, 'pglite-template.tar');
const childDeadline = pathToFileURL(join(import.meta.dirname, '../test/helpers/child-deadline.ts')).href;
const running = new Set<ChildProcess>();
let interrupted = false;

/** The live processes (not zombies) in process group `pgid`, as `pid name`; Linux's /proc only. */
function groupMembers(pgid: number): string[] {
  if (!existsSync('/proc')) return [];
  const members: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // it ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') members.push(`${pid} ${name}`);
  }
  return members;
}

/** Kills a runner's process group: the runner and everything the tests left running in it. */
function killGroup(child: ChildProcess | undefined): boolean {
  if (child?.pid === undefined) return false;
  try {
    process.kill(-child.pid, 'SIGKILL');
    return true;
  } catch {
    return false; // the group is empty: nothing was left running
  }
}

// The runner's group does not get the terminal's Ctrl-C: pass it on, then stop the cluster.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    for (const child of running) killGroup(child);
  });
}

/** Runs node's test runner on `files` in a process group of its own, until `deadline`. */
async function runFiles(
  files: readonly string[],
  concurrency: number,
  tapFile: string,
  env: NodeJS.ProcessEnv,
  deadline: number,
  /** Where its report goes: this terminal, or chunks the caller prints when the runner ends. */
  output: 'inherit' | Buffer[],
): Promise<{ status: number | null; timedOut: boolean }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      childDeadline,
      '--test',
      `--test-concurrency=${concurrency}`,
      `--test-timeout=${FILE_TIMEOUT_MS}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
      ...files,
    ],
    { stdio: output === 'inherit' ? 'inherit' : ['inherit', 'pipe', 'pipe'], env, detached: true },
  );
  running.add(child);
  if (output !== 'inherit') {
    child.stdout!.on('data', (d: Buffer) => output.push(d));
    child.stderr!.on('data', (d: Buffer) => output.push(d));
  }
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      console.error(
        `\nThe test run did not finish within ${duration(RUN_TIMEOUT_MS)} (ORTHID_TEST_RUN_TIMEOUT_MS); killing it.`,
      );
      killGroup(child);
    },
    Math.max(0, deadline - Date.now()),
  );
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);
  const left = groupMembers(child.pid!);
  killGroup(child);
  if (left.length > 0) console.error(`Killed what the tests left running: ${left.join(', ')}`);
  running.delete(child);
  return { status, timedOut };
}

let failed = false;
// Failures the runners' counts cannot show: a file not run, a runner that wrote no summary or
// exited non-zero without counting a failure. Each counts once, so the closing line agrees
// with the exit status.
let uncounted = 0;
const sum: Totals = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const failedFiles: string[] = [];
const cliBuild = join(scratch, 'cli');
const pgdataTemplate = join(scratch, 'pgdata-template');
const preparing = Promise.all([
  startCluster(),
  writePgliteTemplate(template),
  writePgdataTemplate(pgdataTemplate),
]);
// Synchronous and CPU-bound: it runs while the cluster's processes start.
buildCliForTests(cliBuild);
const [cluster] = await preparing;
try {
  const env = {
    ...process.env,
    ORTHID_TEST_PG_URL: cluster.url,
    ORTHID_TEST_PGLITE_TEMPLATE: template,
    ORTHID_TEST_PGDATA_TEMPLATE: pgdataTemplate,
    ORTHID_TEST_CLI_BUILD: cliBuild,
  };
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  // Every file runs in a runner of its own (node's runner sorts the files it is given by name).
  // In order: CONCURRENCY runners at once, the longest files first, so that the run does not end
  // waiting on one long file started last. Shuffled: one at a time, in the seed's order.
  const queue = seed === undefined ? longestFirst(matching) : shuffled(matching, seed);
  const concurrency = seed === undefined ? CONCURRENCY : 1;
  if (seed !== undefined) {
    console.log(
      `Running ${matching.length} test files one at a time in shuffled order, seed ${seed} (repeat it: --shuffle=${seed})`,
    );
  }
  const measured: Record<string, number> = {};
  let started = 0;
  const runNext = async (): Promise<void> => {
    while (!interrupted && started < queue.length) {
      const index = started++;
      const file = queue[index]!;
      if (Date.now() >= deadline) {
        console.error(`Not run (the run's deadline passed): ${file}`);
        failed = true;
        uncounted += 1;
        failedFiles.push(file);
        continue;
      }
      if (seed !== undefined) console.log(`\n[${index + 1}/${queue.length}] ${file}`);
      const tapFile = join(scratch, `results-${index}.tap`);
      const output: Buffer[] | 'inherit' = concurrency === 1 ? 'inherit' : [];
      const began = Date.now();
      const { status, timedOut } = await runFiles([file], 1, tapFile, env, deadline, output);
      measured[file] = Math.round((Date.now() - began) / 1000);
      if (output !== 'inherit') {
        process.stdout.write(`\n[${index + 1}/${queue.length}] ${file} (${duration(Date.now() - began)})\n`);
        process.stdout.write(Buffer.concat(output));
      }
      const totals = readTotals(tapFile);
      if (totals === undefined) console.error(`The test runner for ${file} wrote no summary.`);
      else for (const key of Object.keys(sum) as (keyof Totals)[]) sum[key] += totals[key];
      const bad =
        status !== 0 ||
        timedOut ||
        totals === undefined ||
        totals.fail + totals.cancelled > 0 ||
        totals.tests === 0;
      if (bad) {
        failed = true;
        if (totals === undefined || totals.fail + totals.cancelled === 0) uncounted += 1;
        failedFiles.push(file);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runNext));
  if (writeDurations) {
    const all = { ...knownDurations(), ...measured };
    const sorted = Object.fromEntries(
      Object.keys(all)
        .sort()
        .map((file) => [file, all[file]]),
    );
    writeFileSync(DURATIONS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
    console.log(`Wrote the files' durations to ${DURATIONS_FILE}.`);
  }
} finally {
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}

if (interrupted) {
  console.error('Interrupted.');
  process.exit(130);
}
if (sum.tests === 0) {
  console.error('No test ran.');
  failed = true;
}
if (sum.cancelled > 0) {
  console.error(
    `${sum.cancelled} test(s) were cancelled (a timeout, or a file that ended early) and count as failed.`,
  );
}
if (seed !== undefined) console.log(`Shuffle seed ${seed}.`);
if (failedFiles.length > 0) console.error(`Files that failed:\n  ${failedFiles.join('\n  ')}`);
const skipped = sum.skipped + sum.todo;
console.log(
  `tests: ${sum.pass} passed, ${sum.fail + sum.cancelled + uncounted} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`,
);
process.exit(failed ? 1 : 0);
