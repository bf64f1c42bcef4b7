// A single-page app using oidc-client-ts in real Chromium against a running OrthID: a public
// client with PKCE, every call to OrthID a cross-origin fetch from the browser, the profile read
// from the ID token (the library's default), a refresh token for offline_access without
// prompt=consent, silent renewal with it, and logout back to the app.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = { email: 'sam@acme.test', name: 'Sam Spa', password: 'a single page, signed in for a while' };

/** The app's script: the library's documented settings, and a status line a person reads. */
function appScript(settings: Record<string, string>): string {
  return `
const manager = new oidc.UserManager(${JSON.stringify(settings)});
const status = document.getElementById('status');
const show = (user) => {
  status.textContent = user
    ? 'Signed in as ' + user.profile.name + ' <' + user.profile.email + '>; refresh token: ' + (user.refresh_token ? 'yes' : 'no')
    : 'Signed out';
};
const fail = (error) => { status.textContent = 'Error: ' + error.message; };
document.getElementById('sign-in').onclick = () => manager.signinRedirect().catch(fail);
document.getElementById('sign-out').onclick = () => manager.signoutRedirect().catch(fail);
document.getElementById('renew').onclick = () =>
  manager.signinSilent().then((user) => { status.dataset.renewed = 'yes'; show(user); }, fail);
if (location.pathname === '/callback') {
  manager.signinRedirectCallback().then(() => location.replace('/'), fail);
} else {
  manager.getUser().then(show, fail);
}
`;
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Sam's notes</title></head><body>
<p id="status">Loading</p>
<button id="sign-in">Sign in</button> <button id="renew">Renew</button> <button id="sign-out">Sign out</button>
<script src="/oidc-client-ts.js"></script><script src="/app.js"></script>
</body></html>`;

describe('oidc-client-ts in Chromium against a running OrthID', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let spa: Server;
  let browser: Browser;
  let appUrl: string;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    const registered = await orthid.createClient([
      '--name',
      "Sam's notes",
      '--public',
      '--grant',
      'authorization_code',
      '--grant',
      'refresh_token',
      '--redirect-uri',
      `${appUrl}/callback`,
      // Registered as the bare origin; the app names it with the slash a URL's origin gets.
      '--post-logout-redirect-uri',
      appUrl,
    ]);
    // The package's browser build (a global `oidc`), as a page without a bundler loads it.
    const library = await readFile(
      new URL('../../node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js', import.meta.url),
    );
    const script = appScript({
      authority: orthid.issuer,
      client_id: registered.client_id,
      redirect_uri: `${appUrl}/callback`,
      post_logout_redirect_uri: `${appUrl}/`,
      scope: 'openid profile email offline_access',
    });
    spa = createServer((request, response) => {
      const path = new URL(request.url!, appUrl).pathname;
      if (path === '/oidc-client-ts.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(library);
      } else if (path === '/app.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      } else {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      }
    });
    await new Promise<void>((resolve) => spa.listen(port, '127.0.0.1', resolve));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (spa ? spa.close(resolve) : resolve(undefined)));
    await orthid?.stop();
  });

  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    // Two cores shared with other work can take longer than Playwright's 30 s for one page.
    page.setDefaultTimeout(120_000);
    return page;
  }

  /** The status line once the app has settled on one. */
  async function status(page: Page): Promise<string> {
    // A string: it runs in the page, whose DOM the test's TypeScript does not type.
    await page.waitForFunction("document.getElementById('status').textContent !== 'Loading'");
    return (await page.textContent('#status')) ?? '';
  }

  /** Clicks "Sign in", signs in on OrthID's page, allows the consent page if shown; returns whether it was. */
  async function signIn(page: Page): Promise<boolean> {
    await page.goto(`${appUrl}/`);
    assert.equal(await status(page), 'Signed out');
    await page.click('#sign-in');
    await page.waitForURL((url) => url.href.startsWith(orthid.issuer));
    assert.equal(await page.textContent('h1'), 'Sign in');
    await page.fill('#email', USER.email);
    await page.fill('#password', USER.password);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === appUrl || /\/interaction\//.test(url.pathname));
    let consented = false;
    if (new URL(page.url()).origin !== appUrl) {
      assert.match((await page.textContent('h1')) ?? '', /Allow Sam's notes\?/);
      consented = true;
      await page.click('button:has-text("Allow")');
    }
    await page.waitForURL(`${appUrl}/`);
    return consented;
  }

  test('a person signs in and the app shows their name, e-mail and a refresh token; renewing uses it', async () => {
    const page = await newPage();
    assert.equal(await signIn(page), true, 'a third-party app asks for consent the first time');
    assert.equal(await status(page), `Signed in as ${USER.name} <${USER.email}>; refresh token: yes`);
    await page.click('#renew');
    await page.waitForFunction("document.getElementById('status').dataset.renewed === 'yes'");
    assert.equal(await status(page), `Signed in as ${USER.name} <${USER.email}>; refresh token: yes`);
    await page.close();
  });

  test('signing out at OrthID returns to the app, signed out; signing in again brings offline access again', async () => {
    const page = await newPage();
    await signIn(page);
    await page.click('#sign-out');
    await page.waitForURL((url) => url.href.startsWith(orthid.issuer));
    assert.equal(await page.textContent('h1'), 'Sign out?', (await page.textContent('main')) ?? '');
    await page.click('button[value=yes]');
    await page.waitForURL(`${appUrl}/`);
    assert.equal(await status(page), 'Signed out');
    // The OrthID session is gone: the form asks for the password again.
    await signIn(page);
    assert.equal(await status(page), `Signed in as ${USER.name} <${USER.email}>; refresh token: yes`);
    await page.close();
  });
});
