// An Express app protected by express-openid-connect (Auth0's middleware) against a running
// OrthID, on the middleware's defaults: response_type=id_token with response_mode=form_post, an
// RS256 ID token, `req.oidc.user` from the ID token, and logout at OrthID back to the base URL.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { auth } from 'express-openid-connect';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { throughHostedPages } from '../helpers/hosted-sign-in.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = {
  email: 'erin@acme.test',
  name: 'Erin Express',
  password: 'express yourself, openly and connected',
};

describe('express-openid-connect on its defaults against a running OrthID', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let server: Server;
  let baseURL: string;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    const port = await freePort();
    baseURL = `http://127.0.0.1:${port}`;
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
      res.send(`Signed in as ${user.name} <${user.email}>`);
    });
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(port, '127.0.0.1', () => resolve(listening));
    });
  });

  after(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await orthid?.stop();
  });

  async function signIn(browser: CookieBrowser) {
    const start = `${baseURL}/`;
    return throughHostedPages(browser, { response: await browser.get(start), url: start }, USER, baseURL);
  }

  test('a visitor is sent to sign in and comes back signed in, with their name and e-mail', async () => {
    const landed = await signIn(new CookieBrowser());
    assert.equal(landed.url, `${baseURL}/`);
    assert.equal(landed.response.status, 200);
    assert.equal(await landed.response.text(), `Signed in as ${USER.name} <${USER.email}>`);
  });

  test('logging out ends the session at OrthID and returns to the base URL', async () => {
    const browser = new CookieBrowser();
    await signIn(browser);
    const logout = await browser.follow(await browser.get(`${baseURL}/logout`), `${baseURL}/logout`);
    const confirm = await logout.response.text();
    assert.match(confirm, /Sign out\?/);
    const form = readForm(confirm, 'op.logoutForm');
    const action = new URL(form.action, logout.url).href;
    const back = await browser.follow(
      await browser.post(action, { ...form.fields, logout: 'yes' }),
      action,
      baseURL,
    );
    assert.equal(new URL(back.url).href, `${baseURL}/`);
    // Signed out of both: the app sends the visitor to OrthID, which asks for the password again.
    const again = await browser.follow(await browser.get(`${baseURL}/`), `${baseURL}/`);
    assert.match(await again.response.text(), /name="password"/);
  });
});
