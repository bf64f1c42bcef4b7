// An Express app protected by express-openid-connect (Auth0's middleware) against a running
// OrthID, on the middleware's defaults: response_type=id_token with response_mode=form_post, an
// RS256 ID token, `req.oidc.user` from the ID token, and logout at OrthID back to the base URL.
// The app is served over https, as the implicit-flow rules require of its URLs, and used in
// Chromium, so the form post, its cross-site cookie and the redirects are a browser's own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import express from 'express';
import { auth } from 'express-openid-connect';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = {
  email: 'erin@acme.test',
  name: 'Erin Express',
  password: 'express yourself, openly and connected',
};

/** A self-signed certificate for 127.0.0.1, made by the openssl command. */
async function loopbackCertificate(dir: string): Promise<{ key: Buffer; cert: Buffer }> {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { key: await readFile(key), cert: await readFile(cert) };
}

describe('express-openid-connect on its defaults against a running OrthID', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let server: Server;
  let browser: Browser;
  let baseURL: string;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-express-'));
    orthid = await startRunningOrthId(USER);
    const port = await freePort();
    baseURL = `https://127.0.0.1:${port}`;
    const registered = await orthid.createClient([
      '--name',
      'Erin Notes',
      '--grant',
      'authorization_code',
      '--response-type',
      'id_token',
      '--redirect-uri',
      `${baseURL}/callback`,
      // Registered with the slash a URL's origin gets; the middleware sends its base URL without one.
      '--post-logout-redirect-uri',
      `${baseURL}/`,
    ]);
    const app = express();
    // The middleware's documented configuration; idpLogout so that logging out of the app also
    // ends the session at OrthID.
    app.use(
      auth({
        issuerBaseURL: orthid.issuer,
        baseURL,
        clientID: registered.client_id,
        secret: 'a long, randomly generated string for the session cookie',
        idpLogout: true,
      }),
    );
    app.get('/', (req, res) => {
      const user = req.oidc.user!;
      res.send(`<p id="user">Signed in as ${user.name} &lt;${user.email}&gt;</p>`);
    });
    server = createServer(await loopbackCertificate(dir), app);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await orthid?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A visitor of their own; the app's certificate is self-signed (OrthID is plain http on the loopback). */
  async function visitor(): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    // Two cores shared with other work can take longer than Playwright's 30 s for one page.
    context.setDefaultTimeout(120_000);
    return context.newPage();
  }

  /** Opens the app, which sends the visitor to OrthID; signs in there; returns on the app's page. */
  async function signIn(page: Page): Promise<void> {
    await page.goto(`${baseURL}/`);
    await page.waitForURL((url) => url.href.startsWith(orthid.issuer));
    assert.equal(await page.textContent('h1'), 'Sign in', (await page.textContent('main')) ?? '');
    await page.fill('#email', USER.email);
    await page.fill('#password', USER.password);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === baseURL || /\/interaction\//.test(url.pathname));
    if (new URL(page.url()).origin !== baseURL) {
      assert.match((await page.textContent('h1')) ?? '', /Allow Erin Notes\?/);
      await page.click('button:has-text("Allow")');
    }
    await page.waitForURL(`${baseURL}/`);
  }

  test('a visitor is sent to sign in and comes back signed in, with their name and e-mail', async () => {
    const page = await visitor();
    await signIn(page);
    assert.equal(await page.textContent('#user'), `Signed in as ${USER.name} <${USER.email}>`);
    await page.context().close();
  });

  test('logging out ends the session at OrthID and returns to the base URL', async () => {
    const page = await visitor();
    await signIn(page);
    await page.goto(`${baseURL}/logout`);
    await page.waitForURL((url) => url.href.startsWith(orthid.issuer));
    assert.equal(await page.textContent('h1'), 'Sign out?', (await page.textContent('main')) ?? '');
    const visited: string[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest()) visited.push(request.url());
    });
    await page.click('button[value=yes]');
    // Signed out of both: back on the app, which sends the visitor to OrthID's sign-in form again.
    await page.waitForURL((url) => url.href.startsWith(`${orthid.issuer}/interaction/`));
    assert.equal(await page.textContent('h1'), 'Sign in');
    assert.ok(visited.includes(`${baseURL}/`), `returned to the base URL: ${visited.join(' → ')}`);
    await page.context().close();
  });
});
