// An Express app signing people in with passport and openid-client's own strategy
// (`openid-client/passport`) against a running OrthID: what the person sees in the app after
// signing in, a refresh token for offline_access, and RP-initiated logout back to the app.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import * as client from 'openid-client';
import { Strategy } from 'openid-client/passport';
import passport from 'passport';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { throughHostedPages } from '../helpers/hosted-sign-in.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = {
  email: 'paul@acme.test',
  name: 'Paul Passport',
  password: 'a passport is a strategy, not a plan',
};

interface SignedInUser {
  claims: client.IDToken;
  idToken: string;
  refreshToken?: string;
}

describe('passport with the openid-client strategy against a running OrthID', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let server: Server;
  let appUrl: string;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    const registered = await orthid.createClient([
      '--name',
      'Paul Shop',
      '--grant',
      'authorization_code',
      '--grant',
      'refresh_token',
      '--redirect-uri',
      `${appUrl}/callback`,
      '--post-logout-redirect-uri',
      `${appUrl}/signed-out`,
    ]);
    // What the app is told about OrthID: the issuer and its client's credentials; the http
    // issuer of the test is allowed explicitly.
    const config = await client.discovery(
      new URL(orthid.issuer),
      registered.client_id,
      registered.client_secret,
      undefined,
      { execute: [client.allowInsecureRequests] },
    );
    passport.use(
      'orthid',
      new Strategy(
        { config, scope: 'openid profile email offline_access', callbackURL: `${appUrl}/callback` },
        (tokens, verified) => {
          const user: SignedInUser = {
            claims: tokens.claims()!,
            idToken: tokens.id_token!,
            ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
          };
          verified(null, user);
        },
      ),
    );
    passport.serializeUser((user, done) => done(null, user));
    passport.deserializeUser((user: SignedInUser, done) => done(null, user));
    const app = express();
    app.use(
      session({ secret: 'the shop keeps its sessions signed', resave: false, saveUninitialized: false }),
    );
    app.use(passport.authenticate('session'));
    app.get('/login', passport.authenticate('orthid'));
    app.get(
      '/callback',
      passport.authenticate('orthid', { successRedirect: '/', failureRedirect: '/failed' }),
    );
    app.get('/', (req, res) => {
      const user = req.user as SignedInUser | undefined;
      if (!user) return void res.send('Signed out');
      res.send(
        `Signed in as ${user.claims.name} <${user.claims.email}>${user.refreshToken ? ', offline access' : ''}`,
      );
    });
    app.get('/logout', (req, res, next) => {
      const user = req.user as SignedInUser;
      req.logout((error) => {
        if (error) return next(error);
        res.redirect(
          client.buildEndSessionUrl(config, {
            id_token_hint: user.idToken,
            post_logout_redirect_uri: `${appUrl}/signed-out`,
          }).href,
        );
      });
    });
    app.get('/signed-out', (_req, res) => void res.send('You have left the shop'));
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(port, '127.0.0.1', () => resolve(listening));
    });
  });

  after(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await orthid?.stop();
  });

  async function signIn(browser: CookieBrowser) {
    const start = `${appUrl}/login`;
    return throughHostedPages(browser, { response: await browser.get(start), url: start }, USER, appUrl);
  }

  test('a person signs in through the app and sees their name and e-mail, with offline access granted', async () => {
    const landed = await signIn(new CookieBrowser());
    assert.equal(landed.url, `${appUrl}/`);
    assert.equal(landed.consented, true, 'a third-party app asks for consent the first time');
    assert.equal(await landed.response.text(), `Signed in as ${USER.name} <${USER.email}>, offline access`);
  });

  test('logging out signs the person out at OrthID and returns them to the app', async () => {
    const browser = new CookieBrowser();
    await signIn(browser);
    const logout = await browser.follow(await browser.get(`${appUrl}/logout`), `${appUrl}/logout`);
    const confirm = await logout.response.text();
    assert.match(confirm, /Sign out\?/);
    const form = readForm(confirm, 'op.logoutForm');
    const action = new URL(form.action, logout.url).href;
    const back = await browser.follow(await browser.post(action, { ...form.fields, logout: 'yes' }), action);
    assert.equal(back.url, `${appUrl}/signed-out`);
    assert.equal(await back.response.text(), 'You have left the shop');
    const home = await browser.get(`${appUrl}/`);
    assert.equal(await home.text(), 'Signed out');
    // OrthID's session is gone too: signing in again asks for the password.
    const again = await browser.follow(await browser.get(`${appUrl}/login`), `${appUrl}/login`);
    assert.match(await again.response.text(), /name="password"/);
  });
});
