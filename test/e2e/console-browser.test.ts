// The admin console in Debian's Chromium against a real `orthid start`: the operator made by
// `orthid user create --tenant system --admin` signs in through the hosted page (code + PKCE),
// manages tenants, a tenant's users (found by e-mail), organisations, roles (a concurrent change
// refused) and clients (redirect URIs edited, a concurrent edit refused, the secret rotated), sorts
// lists on the server, reads the audit log and its chain; every screen passes axe-core and is
// photographed at desktop and phone width.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { seriousViolations } from '../helpers/axe.js';
import { launchChromium } from '../helpers/chromium.js';
import { signInToConsole } from '../helpers/console-sign-in.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const OPERATOR = {
  email: 'olive@operators.test',
  name: 'Olive Operator',
  password: 'the first operator gets in',
};
const MEMBER = { email: 'pat@acme.test', name: 'Pat Member', password: 'an ordinary member of acme' };
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;
const OUTPUT = join(
  process.env.ORTHID_TEST_OUTPUT_DIR ?? join(tmpdir(), 'orthid-test-output'),
  'console-browser',
);

describe('the admin console in Chromium', () => {
  let orthid: RunningOrthId;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  /** Checks the screen with axe at both sizes and photographs it. */
  async function inspect(name: string): Promise<void> {
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      assert.deepEqual(await seriousViolations(page), [], `${name} at ${size} width`);
      await page.screenshot({ path: join(OUTPUT, `${name}-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);
  }

  async function go(path: string, heading: string): Promise<void> {
    await page.goto(`${orthid.server.url}/console/t/acme${path}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  before(async () => {
    await mkdir(OUTPUT, { recursive: true });
    orthid = await startRunningOrthId(MEMBER, 'acme');
    const made = await orthid.cli(
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
      OPERATOR.password,
    );
    assert.equal(made.code, 0, made.stderr);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: SIZES.desktop });
    page = await context.newPage();
    console.log(`console screenshots: ${OUTPUT}`);
  });

  after(async () => {
    await browser?.close();
    await orthid?.stop();
  });

  test('the operator signs in through the system tenant’s hosted page and lands on the users screen', async () => {
    const response = await page.goto(`${orthid.server.url}/console/`);
    assert.equal(response?.status(), 200, 'the console is built (npm run build) and served at /console');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await inspect('sign-in');
    await signInToConsole(page, OPERATOR);
    assert.match(String(await page.locator('table').textContent()), new RegExp(OPERATOR.email));
  });

  test('the operator switches to a tenant and creates a user, whose decrypted name and e-mail the detail shows, and exports their data', async () => {
    await page.goto(`${orthid.server.url}/console/t/system/tenants`);
    await page.getByLabel('Tenant slug').fill('acme');
    await page.getByRole('button', { name: 'Manage this tenant' }).click();
    await page.waitForURL((u) => u.pathname === '/console/t/acme/users');
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor();
    await inspect('users');

    await page.getByLabel('Email').fill('dana@acme.test');
    await page.getByLabel('Name', { exact: true }).fill('Dana Example');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { level: 1, name: 'Dana Example' }).waitFor();
    assert.equal(String(await page.locator('[data-field=name]').textContent()), 'Dana Example');
    assert.match(String(await page.locator('[data-field=email]').textContent()), /dana@acme\.test/);
    await page.getByRole('button', { name: "Export the user's data" }).click();
    await page.getByRole('link', { name: /^Download .*\.bundle/ }).waitFor();
    await inspect('user');

    await page.getByRole('button', { name: 'Disable user' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await page.locator('[data-field=status]').getByText('disabled').waitFor();
  });

  test('an API error shows its message and code, and a duplicate changes nothing', async () => {
    await go('/users', 'Users');
    await page.getByLabel('Email').fill('dana@acme.test');
    await page.getByRole('button', { name: 'Create user' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(String(await alert.textContent()), /user\.email_taken/);
  });

  test('the operator finds a user by e-mail through the blind index and by status, and sees the decrypted name', async () => {
    await go('/users', 'Users');
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor();
    await page.getByLabel('Find by e-mail').fill('DANA@acme.test');
    await page.getByRole('button', { name: 'Search' }).click();
    // The search is the server's: the list narrows to the one user the blind index finds.
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor({ state: 'detached' });
    const rows = page.locator('table tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match(String(await rows.first().textContent()), /dana@acme\.test/);
    assert.match(String(await rows.first().textContent()), /Dana Example/);

    await page.getByLabel('Find by e-mail').fill('nobody@acme.test');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('No user matches.').waitFor();

    await page.getByLabel('Find by e-mail').fill('');
    await page.getByLabel('Status').selectOption('active');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('table').getByText('Dana Example').waitFor({ state: 'detached' });
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor();
    const listed = await page.locator('table tbody tr').allTextContents();
    assert.ok(
      listed.every((row) => !row.includes('Dana Example') && row.includes('active')),
      listed.join(' | '),
    );
    await inspect('users-search');
  });

  test('the operator creates an organisation and adds a member, and creates a role and an API resource', async () => {
    await go('/organisations', 'Organisations');
    await page.getByLabel('Name').fill('Acme Retail');
    await page.getByRole('button', { name: 'Create organisation' }).click();
    await page.getByRole('heading', { level: 1, name: 'Acme Retail' }).waitFor();
    await page.getByLabel('User (email or id)').fill(MEMBER.email);
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor();
    await inspect('organisation');
    await go('/organisations', 'Organisations');
    await page.locator('table').getByRole('link', { name: 'Acme Retail' }).waitFor();
    await inspect('organisations');

    await go('/roles', 'Roles');
    await page.getByLabel('Name').fill('clerk');
    await page.getByLabel('Description').fill('Reads orders');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('heading', { level: 1, name: 'clerk' }).waitFor();
    await inspect('role');

    // Another operator changes the role between this screen's load and its save.
    const roleUrl = `${orthid.server.url}/api/v1/tenants/acme/roles/${new URL(page.url()).pathname.split('/').pop()}`;
    const token = String(
      await page.evaluate(`JSON.parse(sessionStorage.getItem('orthid.console.token')).accessToken`),
    );
    const read = await fetch(roleUrl, { headers: { authorization: `Bearer ${token}` } });
    const elsewhere = await fetch(roleUrl, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'if-match': String(read.headers.get('etag')),
      },
      body: JSON.stringify({ description: 'Changed elsewhere' }),
    });
    assert.equal(elsewhere.status, 200);
    await page.getByLabel('New description').fill('Reads and ships orders');
    await page.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByRole('alert');
    await conflict.waitFor();
    assert.match(String(await conflict.textContent()), /request\.precondition_failed.*412/s);
    // The role is read again: the other change shows, and was not overwritten.
    await page.locator('[data-field=role-description]').getByText('Changed elsewhere').waitFor();
    await inspect('role-conflict');
    await page.getByLabel('New description').fill('Reads and ships orders');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-field=role-description]').getByText('Reads and ships orders').waitFor();
    await go('/roles', 'Roles');
    await inspect('roles');

    await go('/resources', 'API resources');
    await page.getByLabel('Name').fill('Orders API');
    await page.getByLabel('Indicator').fill('https://orders.acme.test');
    await page.getByRole('button', { name: 'Create resource' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orders API' }).waitFor();
    await page.getByLabel('Name').fill('orders:read');
    await page.getByRole('button', { name: 'Create permission' }).click();
    await page.locator('table').getByText('orders:read', { exact: true }).waitFor();
    await inspect('resource');
    await go('/resources', 'API resources');
    await inspect('resources');
  });

  /** The secret Acme Portal was registered with, shown once. */
  let portalSecret = '';

  /** The console's own admin token, to act as a second operator or check what the server holds. */
  const consoleToken = async () =>
    String(await page.evaluate(`JSON.parse(sessionStorage.getItem('orthid.console.token')).accessToken`));

  // The page's DOM as the function run in the browser reads it (the tests compile without DOM types).
  type QueryRoot = {
    querySelectorAll(selector: string): ArrayLike<QueryRoot> & Iterable<QueryRoot>;
    textContent: string | null;
  };
  /** Waits until the table's <code> cells in column `column` read `expected`, in that order. */
  const rowsRead = (column: number, expected: string[]) =>
    page.waitForFunction(
      ({ column, expected }) =>
        JSON.stringify(
          [
            ...(globalThis as unknown as { document: QueryRoot }).document.querySelectorAll('table tbody tr'),
          ].map((tr) => tr.querySelectorAll('td')[column]?.textContent?.trim() ?? ''),
        ) === JSON.stringify(expected),
      { column, expected },
    );

  test('the operator registers a client and sees its secret once, and the list is sorted by the server', async () => {
    await go('/clients', 'Clients');
    await page.getByLabel('Name').fill('Acme Portal');
    await page.getByLabel('Redirect URIs (one a line)').fill('https://portal.acme.test/callback');
    await page.getByRole('button', { name: 'Register client' }).click();
    const secret = page.locator('[data-field=client-secret]');
    await secret.waitFor();
    portalSecret = String(await secret.textContent());
    assert.ok(portalSecret.length >= 32);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    assert.equal(await secret.count(), 0);
    await inspect('clients');

    // Sorting asks the server: by creation, then the other way round.
    const api = `${orthid.server.url}/api/v1/tenants/acme/clients`;
    const headers = { authorization: `Bearer ${await consoleToken()}` };
    const created = (
      (await (await fetch(`${api}?sort=created`, { headers })).json()) as {
        items: { clientId: string }[];
      }
    ).items.map((c) => c.clientId);
    assert.ok(created.length >= 2, 'the tenant has its built-in clients and the new one');
    const byCreation = page.getByRole('columnheader', { name: /Created/ });
    assert.equal(await byCreation.getAttribute('aria-sort'), 'none');
    await byCreation.getByRole('button').click();
    await rowsRead(1, created);
    assert.equal(await byCreation.getAttribute('aria-sort'), 'ascending');
    await byCreation.getByRole('button').click();
    await rowsRead(1, [...created].reverse());
    assert.equal(await byCreation.getAttribute('aria-sort'), 'descending');
    await inspect('clients-sorted');

    await page.locator('table').getByRole('link', { name: 'Acme Portal' }).click();
    await page.getByRole('heading', { level: 1, name: 'Acme Portal' }).waitFor();
    const uris = page.locator('ul.uris');
    assert.match(String(await uris.textContent()), /https:\/\/portal\.acme\.test\/callback/);
    await inspect('client');
  });

  test('the operator edits a client’s redirect URIs, sees a concurrent change refused, and rotates its secret', async () => {
    await go('/clients', 'Clients');
    await page.locator('table').getByRole('link', { name: 'Acme Portal' }).click();
    await page.getByRole('heading', { level: 1, name: 'Acme Portal' }).waitFor();
    const clientId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    const clientUrl = `${orthid.server.url}/api/v1/tenants/acme/clients/${encodeURIComponent(clientId)}`;
    const headers = { authorization: `Bearer ${await consoleToken()}` };
    const uris = page.locator('ul.uris');

    await page.getByLabel('Redirect URI to add').fill('https://portal.acme.test/callback2');
    await page.getByRole('button', { name: 'Add to the list' }).click();
    await page.getByRole('button', { name: 'Remove https://portal.acme.test/callback', exact: true }).click();
    await page.getByRole('button', { name: 'Save redirect URIs' }).click();
    await page.getByRole('button', { name: 'Discard changes' }).waitFor({ state: 'detached' });
    const saved = (await (await fetch(clientUrl, { headers })).json()) as { redirectUris: string[] };
    assert.deepEqual(saved.redirectUris, ['https://portal.acme.test/callback2']);
    assert.doesNotMatch(String(await uris.textContent()), /callback(?!2)/);

    // Another operator changes the client between this screen's load and its save.
    const read = await fetch(clientUrl, { headers });
    const elsewhere = await fetch(clientUrl, {
      method: 'PATCH',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'if-match': String(read.headers.get('etag')),
      },
      body: JSON.stringify({ postLogoutRedirectUris: ['https://portal.acme.test/bye'] }),
    });
    assert.equal(elsewhere.status, 200);
    await page.getByLabel('Redirect URI to add').fill('https://portal.acme.test/callback3');
    await page.getByRole('button', { name: 'Add to the list' }).click();
    await page.getByRole('button', { name: 'Save redirect URIs' }).click();
    const conflict = page.getByRole('alert');
    await conflict.waitFor();
    assert.match(String(await conflict.textContent()), /request\.precondition_failed.*412/s);
    // Read again: the other change shows, and this one was not applied.
    await page.locator('.facts').getByText('https://portal.acme.test/bye').waitFor();
    assert.doesNotMatch(String(await uris.textContent()), /callback3/);
    await inspect('client-conflict');

    // The secret is rotated after a confirmation; the new one is shown once, the old one refused.
    const token = async (secret: string) =>
      (
        await fetch(`${orthid.server.url}/t/acme/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'grant_type=client_credentials',
        })
      ).status;
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('The old secret stops working').waitFor();
    await inspect('client-rotate-confirm');
    await dialog.getByRole('button', { name: 'Rotate' }).click();
    const secret = page.locator('[data-field=client-secret]');
    await secret.waitFor();
    const rotated = String(await secret.textContent());
    assert.ok(rotated.length >= 40);
    await page.getByRole('button', { name: 'Copy secret' }).waitFor();
    await page.getByText('The old secret no longer works.').waitFor();
    // The new secret authenticates (the client may not use this grant: 400), the old one no more (401).
    assert.equal(await token(rotated), 400);
    assert.equal(await token(portalSecret), 401);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    assert.equal(await secret.count(), 0);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Acme Portal' }).waitFor();
    assert.doesNotMatch(String(await page.locator('main, body').first().textContent()), new RegExp(rotated));
  });

  test('the audit log shows what the operator did, attributed to them, filtered by the server, with the chain intact', async () => {
    await go('/audit', 'Audit log');
    await page
      .locator('[data-field=chain]')
      .getByText(/^Intact/)
      .waitFor();
    await page.getByLabel('Action', { exact: true }).fill('client.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    // Filtered by the server: every event the page shows is a client's.
    await page
      .locator('table [data-field=action]')
      .filter({ hasNotText: /^client\./ })
      .first()
      .waitFor({ state: 'detached' });
    assert.match(String(await page.locator('table').textContent()), /client\.created/);
    // The operator's changes are theirs; the old secret tried after the rotation is the anonymous failure.
    const rotation = page.locator('table tbody tr', { hasText: 'client.secret_rotated' });
    assert.match(String(await rotation.first().textContent()), /@system/);
    assert.match(
      String(await page.locator('table tbody tr', { hasText: 'client.authenticate' }).first().textContent()),
      /anonymous.*failure/,
    );
    await inspect('audit');
  });

  test('the tenants screen lists the tenants and creates one, whose settings and custody it shows, and shreds it once its slug is typed', async () => {
    await go('/tenants', 'Tenants');
    await page.locator('table').getByRole('link', { name: 'acme', exact: true }).waitFor();
    await page.locator('table').getByRole('link', { name: 'system', exact: true }).waitFor();
    await inspect('tenants');
    await page.getByLabel('Slug', { exact: true }).fill('globex');
    await page.getByLabel('Display name', { exact: true }).fill('Globex');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('heading', { level: 1, name: 'Globex' }).waitFor();
    await page.locator('[data-field=custody]').waitFor();
    assert.ok((await page.locator('table').getByText('active', { exact: true }).count()) > 0, 'a root key');
    await page.getByLabel('Support contact').fill('help@globex.test');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    assert.equal(await page.getByLabel('Support contact').inputValue(), 'help@globex.test');
    await inspect('tenant');

    const shred = page.getByRole('button', { name: 'Shred this tenant for good' });
    assert.equal(await shred.isDisabled(), true);
    await page.getByLabel('Tenant slug, to confirm').fill('globex');
    await shred.click();
    await page.locator('[data-field=tenant-status]').getByText('shredded').waitFor();
    await go('/tenants', 'Tenants');
    const row = page.locator('table tbody tr', { hasText: 'globex' });
    await row.getByText('shredded').waitFor();
  });

  test('the keys screen shows custody, key versions and signing keys with their ages; the backups screen lists the sets', async () => {
    await go('/keys', 'Keys');
    await page.locator('[data-field=custody]').waitFor();
    assert.match(
      String(await page.locator('[data-field=signing-age]').first().textContent()),
      /^\d+ (s|min|h|d)$/,
    );
    await inspect('keys');
    await go('/backups', 'Backups');
    await page
      .locator('table caption', { hasText: 'Backup sets' })
      .or(page.getByRole('alert'))
      .first()
      .waitFor();
    await inspect('backups');
  });

  test('an expired token sends the operator through sign-in and back to the same screen', async () => {
    await go('/roles', 'Roles');
    // The token no longer verifies, as when it has expired: the API answers 401.
    await page.evaluate(`(() => {
      const key = 'orthid.console.token';
      const session = JSON.parse(sessionStorage.getItem(key));
      sessionStorage.setItem(key, JSON.stringify({ ...session, accessToken: session.accessToken + 'x' }));
    })()`);
    await page.reload();
    // The hosted session is still open: the sign-in round trip needs no password.
    await page.waitForURL((u) => u.pathname === '/console/t/acme/roles' && !u.search.includes('code='));
    await page.locator('table').getByRole('link', { name: 'clerk' }).waitFor();

    // A token past its expiry is not even sent: the console signs in again before calling the API.
    await page.evaluate(`(() => {
      const key = 'orthid.console.token';
      const session = JSON.parse(sessionStorage.getItem(key));
      sessionStorage.setItem(key, JSON.stringify({ ...session, expiresAt: 0 }));
    })()`);
    await page.goto(`${orthid.server.url}/console/t/acme/organisations`);
    await page.waitForURL(
      (u) => u.pathname === '/console/t/acme/organisations' && !u.search.includes('code='),
    );
    await page.locator('table').getByRole('link', { name: 'Acme Retail' }).waitFor();
  });

  test('a tenant member without the admin permission sees which permission is missing', async () => {
    const member = await browser.newContext({ viewport: SIZES.phone });
    try {
      const tab = await member.newPage();
      await tab.goto(`${orthid.server.url}/console/`);
      await tab.getByLabel('Tenant to sign in at').fill('acme');
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.waitForURL((u) => u.pathname.startsWith('/t/acme/'));
      await tab.fill('#email', MEMBER.email);
      await tab.fill('#password', MEMBER.password);
      await tab.click('button[type=submit]');
      const alert = tab.getByRole('alert');
      await alert.waitFor();
      const text = String(await alert.textContent());
      assert.match(text, /auth\.forbidden/);
      assert.match(text, /orthid:admin/);
    } finally {
      await member.close();
    }
  });
});
