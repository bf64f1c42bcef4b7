// The console's users and invitations screens in Debian's Chromium against a real `orthid start`
// with a real SMTP relay: an invitation created, listed and revoked after a confirmation, its
// mailed link then refused; a self-signed-up account awaiting verification found by the filter
// with its badge; the users list sorted by creation from its header; a user's avatar uploaded and
// shown. Every screen passes axe-core and is photographed.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { seriousViolations } from '../helpers/axe.js';
import { launchChromium } from '../helpers/chromium.js';
import { signInToConsole } from '../helpers/console-sign-in.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const OPERATOR = {
  email: 'otto@operators.test',
  name: 'Otto Operator',
  password: 'the operator manages users',
};
const MEMBER = { email: 'mia@acme.test', name: 'Mia Member', password: 'an ordinary member of acme' };
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;
const OUTPUT = join(
  process.env.ORTHID_TEST_OUTPUT_DIR ?? join(tmpdir(), 'orthid-test-output'),
  'console-users-browser',
);

/** A small opaque PNG (an orange square), encoded here so the test needs no image file. */
function png(size = 32): Buffer {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = table[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3, Buffer.from([0xe0, 0x70, 0x10]))]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: size }, () => row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('the console’s users and invitations screens in Chromium', { timeout: 480_000 }, () => {
  let smtp: TestSmtpServer;
  let orthid: RunningOrthId;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let client: { client_id: string; client_secret?: string };
  let redirectUri: string;

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

  /** The newest mail to `email`, once the server's delivery worker has handed it to the relay. */
  async function mailTo(email: string, from: number): Promise<string> {
    for (;;) {
      const mail = smtp.received
        .slice(from)
        .filter((m) => m.rcptTo.includes(email))
        .at(-1);
      if (mail) return mail.parsed.text ?? '';
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    await mkdir(OUTPUT, { recursive: true });
    smtp = await startTestSmtpServer();
    orthid = await startRunningOrthId(MEMBER, 'acme', undefined, {
      ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
      ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
      ORTHID_SMTP_CA_FILE: smtp.caFile,
      ORTHID_MAIL_FROM: 'Acme <no-reply@acme.test>',
    });
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
    const signUp = await orthid.cli(['tenant', 'configure', 'acme', '--sign-up', 'on']);
    assert.equal(signUp.code, 0, signUp.stderr);
    redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    client = await orthid.createClient([
      '--name',
      'Acme Portal',
      '--grant',
      'authorization_code',
      '--redirect-uri',
      redirectUri,
      '--first-party',
    ]);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: SIZES.desktop });
    page = await context.newPage();
    console.log(`console screenshots: ${OUTPUT}`);
  });

  after(async () => {
    await browser?.close();
    await orthid?.stop();
    await smtp?.close();
  });

  test('a person signs up on the hosted page and does not verify: their account waits', async () => {
    const config = await oidc.discovery(
      new URL(orthid.issuer),
      client.client_id,
      client.client_secret,
      undefined,
      { execute: [oidc.allowInsecureRequests] },
    );
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const person = await browser.newContext();
    const hosted = await person.newPage();
    await hosted.goto(url.href);
    await hosted.click('a:has-text("Create an account")');
    await hosted.fill('#name', 'Una Unverified');
    await hosted.fill('#email', 'una@acme.test');
    await hosted.fill('#password', 'a long enough passphrase for sign-up');
    const from = smtp.received.length;
    await hosted.click('button[type=submit]');
    assert.match(await mailTo('una@acme.test', from), /sign-up\/verify\?token=/);
    await person.close();
  });

  test('the operator finds the account awaiting verification by the filter, with its badge, and resends its mail', async () => {
    await page.goto(`${orthid.server.url}/console/`);
    await signInToConsole(page, OPERATOR);
    await go('/users', 'Users');
    const row = page.locator('table tbody tr', { hasText: 'una@acme.test' });
    await row.getByText('Awaiting verification').waitFor();
    assert.doesNotMatch(
      String(await page.locator('table tbody tr', { hasText: MEMBER.email }).textContent()),
      /Awaiting verification/,
    );

    await page.getByLabel('Verification').selectOption('pending');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('table').getByRole('link', { name: MEMBER.email }).waitFor({ state: 'detached' });
    const rows = await page.locator('table tbody tr').allTextContents();
    assert.equal(rows.length, 1, rows.join(' | '));
    assert.match(rows[0]!, /una@acme\.test.*Awaiting verification/);
    await inspect('users-awaiting-verification');

    await page.locator('table').getByRole('link', { name: 'una@acme.test' }).click();
    await page.getByRole('heading', { level: 1, name: 'Una Unverified' }).waitFor();
    const from = smtp.received.length;
    await page.getByRole('button', { name: 'Resend verification mail' }).click();
    await page
      .getByRole('status')
      .getByText(/^Sent\./)
      .waitFor();
    assert.match(await mailTo('una@acme.test', from), /sign-up\/verify\?token=/);
  });

  test('the users list sorts by creation from its header, which says the order', async () => {
    await go('/users', 'Users');
    const header = page.locator('th[aria-sort]');
    await page.locator('table').getByRole('link', { name: 'una@acme.test' }).waitFor();
    assert.equal(await header.getAttribute('aria-sort'), 'ascending');
    const emails = async () =>
      (await page.locator('table tbody tr td:first-child a').allTextContents()).map((t) => t.trim());
    const ascending = await emails();
    await header.getByRole('button', { name: /Created/ }).click();
    await page.locator('th[aria-sort=descending]').waitFor();
    await page
      .locator('table tbody tr td:first-child a')
      .first()
      .filter({ hasNotText: ascending[0]! })
      .waitFor();
    assert.deepEqual(await emails(), [...ascending].reverse());
    await inspect('users-sorted');
  });

  test('the operator uploads an avatar, which the user screen shows from the API', async () => {
    await go('/users', 'Users');
    await page.locator('table').getByRole('link', { name: MEMBER.email }).click();
    await page.getByRole('heading', { level: 1, name: MEMBER.name }).waitFor();
    await page.getByText('No avatar.').waitFor();
    await page.getByLabel(/^Image/).setInputFiles({ name: 'mia.png', mimeType: 'image/png', buffer: png() });
    await page.getByRole('button', { name: 'Upload avatar' }).click();
    const image = page.getByRole('img', { name: `Avatar of ${MEMBER.name}` });
    await image.waitFor();
    // Decoded, not merely present: the CSP let the blob URL through.
    await image.evaluate((img: { decode(): Promise<void> }) => img.decode());
    assert.ok(Number(await image.evaluate((img: { naturalWidth: number }) => img.naturalWidth)) > 0);
    assert.match(String(await image.getAttribute('src')), /^blob:/);
    await inspect('user-avatar');
  });

  test('the operator invites an address, sees it pending, revokes it after confirming, and its link is refused', async () => {
    await go('/invitations', 'Invitations');
    await page.getByLabel('Email').fill('ivy@acme.test');
    const from = smtp.received.length;
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page
      .getByRole('status')
      .getByText(/Invitation mailed to ivy@acme\.test/)
      .waitFor();
    const link = /(http\S+\/invitation\?token=[A-Za-z0-9_-]+)/.exec(await mailTo('ivy@acme.test', from))?.[1];
    assert.ok(link, 'the invitation mail carries its link');
    const row = page.locator('table tbody tr', { hasText: 'ivy@acme.test' });
    await row.locator('[data-field=status]').getByText('Pending').waitFor();
    assert.match(String(await row.textContent()), /user:/);
    await inspect('invitations');

    // A bad address is the API's error, shown with its code.
    await page.getByLabel('Email').fill(MEMBER.email);
    await page.getByRole('button', { name: 'Send invitation' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(String(await alert.textContent()), /user\.email_taken/);

    await row.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(/ivy@acme\.test stops working at once/).waitFor();
    await inspect('invitation-revoke-dialog');
    await dialog.getByRole('button', { name: 'Revoke invitation' }).click();
    await row.locator('[data-field=status]').getByText('Revoked').waitFor();
    assert.equal(await row.getByRole('button', { name: 'Revoke' }).count(), 0);

    const invitee = await browser.newContext();
    const hosted = await invitee.newPage();
    const response = await hosted.goto(link);
    assert.equal(response?.status(), 400);
    const refusal = hosted.getByRole('alert');
    assert.equal(await refusal.getAttribute('data-code'), 'account.link_revoked');
    assert.match(String(await refusal.textContent()), /withdrawn/);
    assert.equal(await hosted.locator('#password').count(), 0, 'no form to accept it');
    await invitee.close();
  });
});
