// The restore page's last step in Debian's Chromium: a deployment backed up with `orthid backup
// dump --encrypt` and restored into a fresh data directory with `orthid backup restore`, then its
// admin console shows the same user with the decrypted name and e-mail, and the tenant's audit
// chain verifies.
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
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const OPERATOR = {
  email: 'rosa@operators.test',
  name: 'Rosa Operator',
  password: 'the operator comes back after the restore',
};
const MEMBER = { email: 'rhea@acme.test', name: 'Rhea Restored' };
const OUTPUT = join(
  process.env.ORTHID_TEST_OUTPUT_DIR ?? join(tmpdir(), 'orthid-test-output'),
  'console-restored-browser',
);
/** A loaded machine can take a minute to start a server; a healthy one takes seconds. */
const START_TIMEOUT_MS = 180_000;

/** What `orthid audit verify --json` reports (the parts this test reads). */
interface ChainReport {
  ok: boolean;
  events: number;
  checkpoints: number;
  written?: { seq: number };
}

describe('the admin console of a restored embedded deployment in Chromium', () => {
  let dir: string;
  let restoredEnv: Record<string, string>;
  let restored: ServerProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let liveAudit: ChainReport;

  before(async () => {
    requireAgeCli();
    await mkdir(OUTPUT, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'orthid-console-restored-'));
    const key = ageKeygen(dir, 'backup-key.txt');
    // As the README's "Backup & restore": the recipient is public, the identity only given to
    // the restore; the keystore export goes to its own destination.
    const env = {
      ORTHID_DATA_DIR: join(dir, 'live'),
      ORTHID_BACKUP_DEST: `file://${join(dir, 'sets')}`,
      ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys')}`,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    };

    const live = await startServer(env, START_TIMEOUT_MS);
    try {
      const liveEnv = { ...env, ORTHID_PUBLIC_URL: live.url };
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
          MEMBER.email,
          '--name',
          MEMBER.name,
          '--password-stdin',
        ],
        liveEnv,
        'a member whose profile is sealed',
      );
      assert.equal(member.code, 0, member.stderr);
      // Verified (and so checkpointed) before the dump: the restore must bring that checkpoint
      // back with the object store, and the chain must still hold against it.
      const verified = await runCli(['audit', 'verify', '--tenant', 'acme', '--json'], liveEnv);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      liveAudit = JSON.parse(verified.stdout) as ChainReport;
      const dump = await runCli(['backup', 'dump', '--encrypt', '--json'], liveEnv);
      assert.equal(dump.code, 0, dump.stderr);
    } finally {
      await live.stop();
    }

    // The page's steps 1–6 into a fresh data directory: keystore first, then database and
    // objects, then the checks; `--into-live-stores` because these are the stores to restore into.
    restoredEnv = { ...env, ORTHID_DATA_DIR: join(dir, 'restored') };
    const restore = await runCli(
      ['backup', 'restore', 'latest', '--identity', key.file, '--into-live-stores', '--json'],
      restoredEnv,
    );
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    assert.equal(JSON.parse(restore.stdout).ok, true, restore.stdout);

    restored = await startServer(restoredEnv, START_TIMEOUT_MS);
    restoredEnv = { ...restoredEnv, ORTHID_PUBLIC_URL: restored.url };
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  });

  after(async () => {
    await browser?.close();
    if (restored?.child.exitCode === null) await restored.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the restored tenant’s audit chain verifies against its checkpoints', async () => {
    const verified = await runCli(['audit', 'verify', '--tenant', 'acme', '--json'], restoredEnv);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const report = JSON.parse(verified.stdout) as ChainReport;
    assert.equal(report.ok, true);
    assert.ok(liveAudit.written, 'the live deployment checkpointed its chain before the dump');
    assert.ok(report.events >= liveAudit.events, 'every event of the backed-up chain is there');
    assert.ok(report.checkpoints >= 1, 'the restored object store holds the chain’s checkpoint');
  });

  test('the operator signs in to the restored console and sees the user with the decrypted name and e-mail', async () => {
    const response = await page.goto(`${restored!.url}/console/`);
    assert.equal(response?.status(), 200, 'the console is built (npm run build) and served at /console');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await signInToConsole(page, OPERATOR);

    await page.goto(`${restored!.url}/console/t/system/tenants`);
    await page.getByLabel('Tenant slug').fill('acme');
    await page.getByRole('button', { name: 'Manage this tenant' }).click();
    await page.waitForURL((u) => u.pathname === '/console/t/acme/users');
    const row = page.locator('table tbody tr', { hasText: MEMBER.email });
    await row.waitFor();
    assert.match(String(await row.textContent()), new RegExp(MEMBER.name));

    await row.getByRole('link', { name: MEMBER.email }).click();
    await page.getByRole('heading', { level: 1, name: MEMBER.name }).waitFor();
    assert.equal(String(await page.locator('[data-field=name]').textContent()), MEMBER.name);
    assert.match(String(await page.locator('[data-field=email]').textContent()), /rhea@acme\.test/);
    assert.deepEqual(await seriousViolations(page), [], 'the restored user screen');
    const shot = join(OUTPUT, 'restored-user-desktop.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`restored console screenshot: ${shot}`);
  });
});
