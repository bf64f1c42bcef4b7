// Row 8, embedded start: `orthid start` on an existing embedded data directory, from spawn until
// GET /readyz answers 200. Target: median under 1.5 s. The baseline column is, for scale, a bare
// `node -e` process that starts a node:http server answering 200, polled the same way: the floor
// any Node server pays (process start, module loading of node itself, listen).
//
// Run: npm run build && npm run bench -- start [runs=5]
//      (measures the built CLI, dist/cli/main.js, as deployed; `--from-source` as third
//      argument runs `node --import tsx src/cli/main.ts start` instead)
//
// Data: a fresh data directory made by one untimed `orthid start` (keystore, generated master
// secret, PGlite schema, system tenant and admin client), stopped with SIGTERM. Every timed run
// then starts on it as an operator restarting the service would. /readyz is polled every 5 ms.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEnv } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/postgres.js';
import { exitOnVerdicts, printHeader, printRow } from './lib/report.js';

const RUNS = Number(process.argv[2] ?? 5);
const FROM_SOURCE = process.argv.includes('--from-source');
const TARGET_SECONDS = 1.5;
// ORTHID_BENCH_CLI: another build of the CLI (e.g. one made beside dist/ while others use it).
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SOURCE_CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

if (!FROM_SOURCE && !existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}

const BARE_SERVER = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')`;

/** Spawns argv, polls url until 200, returns seconds from spawn to that answer, then stops it. */
async function timeToReady(
  argv: string[],
  env: NodeJS.ProcessEnv,
  url: string,
  timeoutMs = 30_000,
): Promise<number> {
  const start = performance.now();
  const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`${argv.join(' ')} exited with ${child.exitCode}:\n${stderr}`);
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        if (response.status === 200) return (performance.now() - start) / 1000;
      } catch {
        // not listening yet
      }
      if (performance.now() - start > timeoutMs)
        throw new Error(`${url} not ready within ${timeoutMs} ms:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'orthid-bench-start-'));
try {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = cliEnv({
    ORTHID_DATA_DIR: dataDir,
    ORTHID_PORT: String(port),
    ORTHID_PUBLIC_URL: url,
    ORTHID_LOG_LEVEL: 'warn',
  });
  const orthidArgv = FROM_SOURCE ? ['--import', 'tsx', SOURCE_CLI, 'start'] : [BUILT_CLI, 'start'];
  const bareArgv = ['-e', BARE_SERVER];
  const bareEnv = { PATH: process.env.PATH, PORT: String(port) };

  const first = await timeToReady(orthidArgv, env, `${url}/readyz`, 120_000);
  console.log(`first start (creates the data directory, untimed in the row): ${first.toFixed(2)} s`);
  // One untimed start of each warms the page cache.
  await timeToReady(bareArgv, bareEnv, url);
  await timeToReady(orthidArgv, env, `${url}/readyz`);

  const bare: number[] = [];
  const ours: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    bare.push(await timeToReady(bareArgv, bareEnv, url));
    ours.push(await timeToReady(orthidArgv, env, `${url}/readyz`));
  }
  printHeader(
    `Embedded start (${FROM_SOURCE ? 'from source via tsx' : 'built CLI'}), spawn → /readyz 200`,
    RUNS,
  );
  const verdict = printRow({
    name: 'embedded start',
    baseline: bare,
    orthid: ours,
    unit: 's',
    digits: 2,
    target: { kind: 'absolute-below', value: TARGET_SECONDS },
    notes: '(baseline: bare `node -e` http server, for scale)',
  });
  exitOnVerdicts([verdict]);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
