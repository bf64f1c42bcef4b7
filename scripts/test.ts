// The test command: starts one throwaway PostgreSQL cluster for the whole run, then runs every
// *.test.ts under src/ and test/ with node's test runner. Test files create their own databases.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePgliteTemplate } from '../test/helpers/pglite-template.js';
import { startCluster } from '../test/helpers/postgres.js';

function find(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) find(path, out);
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = [...find('src'), ...find('test')]
  .filter((f) => filter.length === 0 || filter.some((pattern) => f.includes(pattern)))
  .sort();
if (files.length === 0) {
  console.error(`No test files match ${filter.join(' ')}`);
  process.exit(1);
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-run-'));
const template = join(scratch, 'pglite-template.tar');
const [cluster] = await Promise.all([startCluster(), writePgliteTemplate(template)]);
let status = 1;
try {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
    {
      stdio: 'inherit',
      env: { ...process.env, ORTHID_TEST_PG_URL: cluster.url, ORTHID_TEST_PGLITE_TEMPLATE: template },
    },
  );
  status = result.status ?? 1;
} finally {
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);
