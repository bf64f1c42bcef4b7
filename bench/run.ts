// `npm run bench` runs every bench/*.bench.ts in turn, each in its own process (so one's heap,
// JIT and child processes do not colour the next); `npm run bench -- NAME [ARGS…]` runs one,
// passing ARGS on. NAME is the file name without `.bench.ts`, e.g. `verify` or `age-stream`.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MISSED_TARGET_EXIT } from './lib/report.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (name === '--list' || name === '--help' || name === '-h') {
  console.log(`Usage: npm run bench [-- NAME [ARGS…]]\nBenches: ${benches.join(', ')}`);
  process.exit(0);
}
if (name !== undefined && !benches.includes(name)) {
  console.error(`No bench named ${name}. Benches: ${benches.join(', ')}`);
  process.exit(2);
}
const selected = name === undefined ? benches : [name];

function runOne(bench: string, args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${dir}${bench}.bench.ts`, ...args], {
      stdio: 'inherit',
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

const outcomes: { bench: string; outcome: string }[] = [];
for (const bench of selected) {
  console.log(`\n=== ${bench} ===`);
  const started = performance.now();
  const code = await runOne(bench, name === undefined ? [] : rest);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const outcome =
    code === 0 ? 'targets met' : code === MISSED_TARGET_EXIT ? 'target missed' : `error (exit ${code})`;
  outcomes.push({ bench, outcome: `${outcome}, ${seconds} s` });
}
console.log('\n=== summary ===');
for (const { bench, outcome } of outcomes) console.log(`${bench.padEnd(14)} ${outcome}`);
if (outcomes.some((o) => !o.outcome.startsWith('targets met'))) process.exitCode = 1;
