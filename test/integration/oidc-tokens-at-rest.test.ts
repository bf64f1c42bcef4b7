import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { migrate } from '../../src/storage/db/migrate.js';
import { readForm } from '../helpers/cookie-browser.js';
import { submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';

for (const driver of DRIVERS) {
  describe(`tokens at rest are useless without the tenant's key (${driver})`, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let issuer: string;
    let web: { client_id: string; client_secret: string };
    let machine: { client_id: string; client_secret: string };
    const redirectUri = 'http://127.0.0.1/callback';

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: base } });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      issuer = `${base}/t/acme`;
      await withTenant(app.db, tenant.id, async (tx) => {
        await app.users.create(tx, tenant.id, { email: 'ann@acme.test', password: PASSWORD }, 'test');
        const w = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Web', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [redirectUri] },
          'test',
        );
        web = { client_id: w.clientId, client_secret: w.clientSecret! };
        // No API: its client-credentials token is an opaque one, stored like the user's.
        const m = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Worker', grantTypes: ['client_credentials'] },
          'test',
        );
        machine = { client_id: m.clientId, client_secret: m.clientSecret! };
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    /** Every row of every table, as the database superuser reads it (what a dump holds). */
    async function everyRow(): Promise<string[]> {
      const { rows: tables } = await app.db.ownerQuery<{ name: string }>(
        `SELECT quote_ident(table_name) AS name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      );
      const all: string[] = [];
      for (const { name } of tables) {
        const { rows } = await app.db.ownerQuery<{ row: string }>(
          `SELECT row_to_json(t)::text AS row FROM ${name} t`,
        );
        all.push(...rows.map((r) => `${name} ${r.row}`));
      }
      return all;
    }

    test('a superuser reading every row finds no issued token, code or cookie, and none of its ids is presentable', async () => {
      const signIn = await submitHostedSignIn({
        issuer,
        client: web,
        redirectUri,
        email: 'ann@acme.test',
        password: PASSWORD,
        scope: 'openid email offline_access',
      });
      assert.equal(signIn.posted.status, 303);
      // Mid-flow, on the consent page: the interaction's row names the session it belongs to.
      const consent = await signIn.browser.follow(signIn.posted, base, redirectUri);
      const consentPage = await consent.response.text();
      const midFlow = await everyRow();
      const midFlowCookies = [...signIn.browser.cookieValues()];
      assert.ok(
        midFlow.some((r) => r.includes('"Interaction"')),
        'an interaction is stored',
      );
      const form = readForm(consentPage);
      const done = await signIn.browser.follow(
        await signIn.browser.post(new URL(form.action, base).href, form.fields),
        base,
        redirectUri,
      );
      const callback = new URL(done.url);
      const code = callback.searchParams.get('code')!;
      const first = await oidc.authorizationCodeGrant(signIn.config, callback, {
        pkceCodeVerifier: signIn.verifier,
        expectedState: signIn.state,
      });
      const refreshed = await oidc.refreshTokenGrant(signIn.config, first.refresh_token!);
      const m2mConfig = await oidc.discovery(
        new URL(issuer),
        machine.client_id,
        machine.client_secret,
        undefined,
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const m2m = await oidc.clientCredentialsGrant(m2mConfig, {});

      const cookies = [...midFlowCookies, ...signIn.browser.cookieValues()].filter(
        ([name]) => !name.endsWith('.sig'),
      );
      assert.ok(
        cookies.some(([name]) => name.includes('interaction')),
        'the browser held an interaction cookie',
      );
      assert.ok(
        cookies.some(([name]) => name.includes('session')),
        'the browser holds a session cookie',
      );
      const secrets: [string, string][] = [
        ['authorization code', code],
        ['first access token', first.access_token],
        ['first refresh token', first.refresh_token!],
        ['access token', refreshed.access_token],
        ['refresh token', refreshed.refresh_token!],
        ['client credentials token', m2m.access_token],
        ...cookies.map(([name, value]): [string, string] => [`cookie ${name}`, value]),
      ];
      const rows = [...midFlow, ...(await everyRow())];
      const stored = rows.filter((r) => r.startsWith('oidc_payloads '));
      assert.ok(stored.length >= 6, `the flows stored their rows (${stored.length})`);
      for (const [what, value] of secrets) {
        assert.ok(value.length >= 20, `${what} is a real secret`);
        const found = rows.find((r) => r.includes(value));
        assert.equal(found?.split(' ')[0], undefined, `the ${what} is stored in plain text`);
      }

      // What the database holds cannot be presented in place of a token.
      const { rows: ids } = await app.db.ownerQuery<{ model: string; id: string }>(
        `SELECT model, id FROM oidc_payloads WHERE model IN ('AccessToken', 'RefreshToken', 'ClientCredentials')`,
      );
      assert.ok(ids.some((r) => r.model === 'RefreshToken'));
      for (const { model, id } of ids) {
        if (model === 'RefreshToken') {
          await assert.rejects(oidc.refreshTokenGrant(signIn.config, id), (error: oidc.ResponseBodyError) => {
            assert.equal(error.error, 'invalid_grant');
            return true;
          });
        } else {
          const introspected = await oidc.tokenIntrospection(signIn.config, id);
          assert.equal(introspected.active, false, `a ${model} row id introspects as inactive`);
          const userinfo = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${id}` } });
          assert.equal(userinfo.status, 401, `a ${model} row id is refused at userinfo`);
        }
      }

      // The tokens themselves still work.
      const me = await fetch(`${issuer}/me`, {
        headers: { authorization: `Bearer ${refreshed.access_token}` },
      });
      assert.equal(me.status, 200);
      assert.equal(((await me.json()) as { email: string }).email, 'ann@acme.test');
      assert.equal((await oidc.tokenIntrospection(signIn.config, refreshed.refresh_token!)).active, true);
      assert.equal((await oidc.tokenIntrospection(m2mConfig, m2m.access_token)).active, true);
      const again = await oidc.refreshTokenGrant(signIn.config, refreshed.refresh_token!);
      assert.ok(again.access_token);
      // And the rotated one, presented again, is still caught as a replay.
      await assert.rejects(
        oidc.refreshTokenGrant(signIn.config, refreshed.refresh_token!),
        (error: oidc.ResponseBodyError) => {
          assert.equal(error.error, 'invalid_grant');
          return true;
        },
      );
      await assert.rejects(
        oidc.refreshTokenGrant(signIn.config, again.refresh_token!),
        (error: oidc.ResponseBodyError) => {
          assert.equal(error.error, 'invalid_grant', 'the replay revoked the grant');
          return true;
        },
      );
    });

    test('upgrading removes the rows stored before by their plain value, and their tokens are refused', async () => {
      const { rows: tenants } = await app.db.ownerQuery<{ id: string }>(
        "SELECT id FROM tenants WHERE slug = 'acme'",
      );
      const oldRefresh = 'pre-upgrade-refresh-token-0123456789abcdef';
      // As the adapter stored a refresh token before: its value as the row id and in the payload.
      await app.db.ownerQuery(
        `INSERT INTO oidc_payloads (tenant_id, model, id, payload, grant_id, account_id, expires_at)
         VALUES ($1, 'RefreshToken', $2, $3, 'pre-upgrade-grant', 'u1', now() + interval '14 days')`,
        [
          tenants[0]!.id,
          oldRefresh,
          JSON.stringify({ jti: oldRefresh, kind: 'RefreshToken', grantId: 'pre-upgrade-grant' }),
        ],
      );
      await app.db.ownerQuery('DELETE FROM orthid_migrations WHERE version = 7');
      assert.deepEqual(await migrate(app.db), [7]);
      assert.ok(!(await everyRow()).some((r) => r.includes(oldRefresh)), 'the pre-upgrade token is gone');
      const config = await oidc.discovery(new URL(issuer), web.client_id, web.client_secret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      await assert.rejects(oidc.refreshTokenGrant(config, oldRefresh), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant');
        return true;
      });
    });
  });
}
