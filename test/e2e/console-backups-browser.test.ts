// The console's backups screen against a real set in Debian's Chromium: `orthid start` on
// PostgreSQL as the least-privilege server login, a set taken with `orthid backup dump --encrypt`,
// then the operator starts a verify and a restore drill from the screen, watches their steps
// appear and sees every check passed, and the set's outcomes in the listing. Each screen is
// checked by axe-core and photographed.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { seriousViolations } from '../helpers/axe.js';
import { launchChromium } from '../helpers/chromium.js';
import { runCli } from '../helpers/cli.js';
import { signInToConsole } from '../helpers/console-sign-in.js';
import { createTestDatabase, query } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const OPERATOR = {
  email: 'bea@operators.test',
  name: 'Bea Backups',
  password: 'the operator who checks the backups',
};
const MASTER = 'console-backups-master-secret-0123456789-abcdef';
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;
const OUTPUT = join(
  process.env.ORTHID_TEST_OUTPUT_DIR ?? join(tmpdir(), 'orthid-test-output'),
  'console-backups-browser',
);
/** A loaded machine can take a minute to start a server, and a drill restores a whole deployment. */
const START_TIMEOUT_MS = 180_000;
const JOB_TIMEOUT_MS = 300_000;

/** `url` with another login: the cluster trusts local connections, so no password is needed. */
function as(url: string, login: string): string {
  const u = new URL(url);
  u.username = login;
  return u.href;
}

describe('the console’s backups screen verifies and drills a real set in Chromium', () => {
  let dir: string;
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let setId: string;

  /** Checks the screen with axe at both sizes and photographs it. */
  async function inspect(name: string): Promise<void> {
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      assert.deepEqual(await seriousViolations(page), [], `${name} at ${size} width`);
      await page.screenshot({ path: join(OUTPUT, `${name}-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);
  }

  before(async () => {
    requireAgeCli();
    await mkdir(OUTPUT, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'orthid-console-backups-'));
    const key = ageKeygen(dir, 'backup-key.txt');
    const database = await createTestDatabase('orthid_console_backups');
    // The server login of the README's Production section: a member of orthid_app, nothing more.
    // Roles are global to the cluster, so its name is this test's own.
    const serverLogin = `console_backups_${database.slice(-8).replace(/[^a-z0-9]/g, '')}`;
    // What a drill on PostgreSQL needs besides the server: a login that may create (and drop) the
    // throwaway database, the backup login that reads every tenant, and the age identity.
    const env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_DATABASE_URL: as(database, serverLogin),
      ORTHID_MIGRATION_DATABASE_URL: database,
      ORTHID_BACKUP_DATABASE_URL: database,
      ORTHID_DRILL_DATABASE_URL: database,
      ORTHID_BACKUP_DEST: `file://${join(dir, 'sets')}`,
      ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys')}`,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
      ORTHID_BACKUP_AGE_IDENTITY_FILE: key.file,
    };
    const init = await runCli(['keystore', 'init'], env);
    assert.equal(init.code, 0, init.stderr);
    // migrate creates orthid_app; the server login joins it afterwards.
    const migrated = await runCli(['migrate'], { ...env, ORTHID_DATABASE_URL: database });
    assert.equal(migrated.code, 0, migrated.stderr);
    await query(database, `CREATE ROLE ${serverLogin} LOGIN IN ROLE orthid_app`);

    server = await startServer(env, START_TIMEOUT_MS);
    const liveEnv = { ...env, ORTHID_PUBLIC_URL: server.url };
    const admin = await runCli(
      [
        'user',
        'create',
        '--tenant',
        'system',
        '--admin',
        '--email',
        OPERATOR.email,
        '--name',
        OPERATOR.name,
        '--password-stdin',
      ],
      liveEnv,
      OPERATOR.password,
    );
    assert.equal(admin.code, 0, admin.stderr);
    const tenant = await runCli(['tenant', 'create', 'acme', '--json'], liveEnv);
    assert.equal(tenant.code, 0, tenant.stderr);
    const member = await runCli(
      [
        'user',
        'create',
        '--tenant',
        'acme',
        '--email',
        'rey@acme.test',
        '--name',
        'Rey Member',
        '--password-stdin',
      ],
      liveEnv,
      'a member whose profile is sealed',
    );
    assert.equal(member.code, 0, member.stderr);
    const dump = await runCli(['backup', 'dump', '--encrypt', '--json'], liveEnv);
    assert.equal(dump.code, 0, dump.stderr);
    setId = (JSON.parse(dump.stdout) as { setId: string }).setId;
    assert.ok(setId, dump.stdout);

    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: SIZES.desktop })).newPage();
    await page.goto(`${server.url}/console/`);
    await signInToConsole(page, OPERATOR);
    console.log(`console backups screenshots: ${OUTPUT}`);
  });

  after(async () => {
    await browser?.close();
    if (server?.child.exitCode === null) await server.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Starts a job of the set from its row and follows it on the screen to its end. */
  async function runJob(kind: 'Verify' | 'Drill'): Promise<{ steps: string[]; checks: string[] }> {
    await page.getByRole('button', { name: `${kind} ${setId}` }).click();
    const status = page.locator('[data-field=job-status]');
    await status.getByText(`${kind} of ${setId}`).waitFor();
    // The steps are shown as the server announces them, before the job has ended.
    await page.locator('[data-field=job-steps] li').first().waitFor({ timeout: JOB_TIMEOUT_MS });
    await page.locator('[data-field=job-checks]').waitFor({ timeout: JOB_TIMEOUT_MS });
    assert.match(String(await status.textContent()), /succeeded \(passed\)/);
    return {
      steps: await page.locator('[data-field=job-steps] li').allTextContents(),
      checks: await page.locator('[data-field=job-checks] li').allTextContents(),
    };
  }

  test('the screen lists the set, and warns that no drill has passed yet', async () => {
    await page.goto(`${server!.url}/console/t/system/backups`);
    await page.getByRole('heading', { level: 1, name: 'Backups' }).waitFor();
    const row = page.locator('table tbody tr', { hasText: setId });
    await row.waitFor();
    assert.match(String(await row.textContent()), /complete/);
    assert.match(
      String(await page.locator('[data-field=backup-warnings]').textContent()),
      /No restore drill has passed/,
    );
    await inspect('backups-listed');
  });

  test('a verify started from the screen checks every part, and every check passed', async () => {
    const { steps, checks } = await runJob('Verify');
    assert.ok(steps.length >= 2, `the verify announced its parts: ${steps.join(' | ')}`);
    assert.ok(checks.length >= 4, `every part's checks are shown: ${checks.join(' | ')}`);
    for (const check of checks) assert.match(check, /^passed /, check);
    for (const name of ['present', 'checksum', 'decrypts', 'readable']) {
      assert.ok(
        checks.some((c) => c.includes(`: ${name}`)),
        `a part was checked for ${name}: ${checks.join(' | ')}`,
      );
    }
    await inspect('backups-verified');
  });

  test('a drill started from the screen restores the set, shows its steps, and every check passed', async () => {
    const { steps, checks } = await runJob('Drill');
    assert.ok(steps.length >= 5, `the drill announced its restore steps: ${steps.join(' | ')}`);
    for (const check of checks) assert.match(check, /^passed /, check);
    for (const name of ['sign-in', 'token', 'audit-log', 'decrypted-fields']) {
      assert.ok(
        checks.some((c) => c.includes(name)),
        `the drill ran the ${name} check: ${checks.join(' | ')}`,
      );
    }
    await inspect('backups-drilled');
    // The listing is read again once the job ends: both outcomes recorded beside the set.
    const row = page.locator('table tbody tr', { hasText: setId });
    await row
      .getByText(/passed/)
      .nth(1)
      .waitFor();
    assert.equal(await page.locator('[data-field=backup-warnings]').count(), 0);
  });

  test('the jobs are recorded in the database: the API lists both, newest first, after the screen', async () => {
    // The console's token, from the tab's sessionStorage where it keeps it.
    const stored = (await page.evaluate(
      '(() => Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)).join("\\n"))()',
    )) as string;
    const token = /"(ey[\w-]+\.[\w-]+\.[\w-]+)"/.exec(stored)?.[1];
    assert.ok(token, 'the console holds its token in sessionStorage');
    const response = await fetch(`${server!.url}/api/v1/backups/jobs`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200);
    const jobs = (await response.json()) as { items: { kind: string; status: string; startedBy: string }[] };
    assert.deepEqual(
      jobs.items.map((j) => [j.kind, j.status]),
      [
        ['drill', 'succeeded'],
        ['verify', 'succeeded'],
      ],
    );
  });
});
