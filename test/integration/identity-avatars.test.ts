import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { importJWK, type JSONWebKeySet, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import sharp from 'sharp';
import { readAudit } from '../../src/audit/audit-log.js';
import { verifyBundle } from '../../src/bundles/verify-bundle.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { avatarKey, DEFAULT_AVATAR_LIMITS, sniffImageFormat } from '../../src/identity/avatars.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { blackPng } from '../helpers/png.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';

/** A JPEG carrying the kind of metadata phones write: camera make, owner and a GPS position. */
async function jpegWithGps(): Promise<Buffer> {
  return sharp({ create: { width: 1024, height: 768, channels: 3, background: '#c33' } })
    .withExif({
      IFD0: { Make: 'OrthIDCam', Copyright: 'owner-name-in-exif' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '51/1 30/1 0/1',
        GPSLongitudeRef: 'W',
        GPSLongitude: '0/1 7/1 0/1',
      },
    })
    .jpeg()
    .toBuffer();
}

const MINIMAL_PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);

for (const driver of DRIVERS) {
  describe(`profile media (${driver})`, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let alpha: Tenant;
    let beta: Tenant;
    let annId: string;
    let bobId: string;

    /** What the tenant's token endpoint issues for the admin API (as in admin-api.test.ts). */
    async function adminToken(tenant: Tenant): Promise<string> {
      const key = await withTenant(app.db, tenant.id, async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
        if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
          await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
        }
        return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
      });
      await ensureAdminClient(app.db, tenant.id, 'admin-client', app.config.publicUrl);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: 'admin-client', scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerFor(app.config.publicUrl, tenant.slug))
        .setSubject('admin-client')
        .setAudience(adminResourceIndicator(app.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
    }

    async function admin(
      method: 'GET' | 'PUT' | 'POST' | 'DELETE',
      path: string,
      options: {
        as?: Tenant;
        on?: Tenant;
        body?: Buffer;
        contentType?: string;
        headers?: Record<string, string>;
      } = {},
    ) {
      const on = options.on ?? alpha;
      return server.inject({
        method,
        url: `/api/v1/tenants/${on.slug}${path}`,
        headers: {
          authorization: `Bearer ${await adminToken(options.as ?? on)}`,
          ...(options.body ? { 'content-type': options.contentType ?? 'image/jpeg' } : {}),
          ...options.headers,
        },
        ...(options.body ? { payload: options.body } : {}),
      });
    }

    /** The real authorization code flow through the hosted pages; answers the opaque userinfo token. */
    async function userAccessToken(tenant: Tenant, email: string, scope: string): Promise<string> {
      const client = await withTenant(app.db, tenant.id, async (tx) => {
        const created = await app.clients.create(
          tx,
          tenant.id,
          {
            name: `Web ${randomUUID()}`,
            grantTypes: ['authorization_code'],
            redirectUris: [`${base}/callback`],
          },
          'test',
        );
        return { clientId: created.clientId, clientSecret: created.clientSecret! };
      });
      const config = await oidc.discovery(
        new URL(`${base}/t/${tenant.slug}`),
        client.clientId,
        client.clientSecret,
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      const browser = new CookieBrowser();
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${base}/callback`,
        scope,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const login = await browser.follow(await browser.get(url.href), url.href);
      const form = readForm(await login.response.text());
      const posted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        email,
        password: PASSWORD,
      });
      const consent = await browser.follow(posted, base);
      const cform = readForm(await consent.response.text());
      const done = await browser.follow(
        await browser.post(new URL(cform.action, base).href, cform.fields),
        base,
        `${base}/callback`,
      );
      const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), {
        pkceCodeVerifier: verifier,
      });
      return tokens.access_token;
    }

    const account = (
      tenant: Tenant,
      token: string,
      method: 'GET' | 'PUT' | 'DELETE' = 'GET',
      body?: Buffer,
    ) =>
      server.inject({
        method,
        url: `/t/${tenant.slug}/account/avatar`,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'image/png' } : {}) },
        ...(body ? { payload: body } : {}),
      });

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: base } });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      alpha = await app.tenants.create({ slug: 'alpha', actor: 'test' });
      beta = await app.tenants.create({ slug: 'beta', actor: 'test' });
      annId = await withTenant(app.db, alpha.id, async (tx) => {
        const ann = await app.users.create(
          tx,
          alpha.id,
          { email: 'ann@alpha.test', password: PASSWORD },
          'test',
        );
        return ann.id;
      });
      bobId = await withTenant(app.db, beta.id, async (tx) => {
        const bob = await app.users.create(
          tx,
          beta.id,
          { email: 'bob@beta.test', password: PASSWORD },
          'test',
        );
        return bob.id;
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    test('an avatar uploaded with EXIF GPS tags comes back as a WebP without any of its metadata', async () => {
      const original = await jpegWithGps();
      const before = await sharp(original).metadata();
      assert.ok(before.exif?.includes('owner-name-in-exif'), 'the test image carries EXIF');

      const put = await admin('PUT', `/users/${annId}/avatar`, { body: original });
      assert.equal(put.statusCode, 200, put.body);
      assert.equal(put.json().source, 'jpeg');
      assert.equal(put.json().width, 512);

      const got = await admin('GET', `/users/${annId}/avatar`);
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers['content-type'], 'image/webp');
      assert.match(String(got.headers['cache-control']), /^private, max-age=\d+$/);
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      assert.equal(got.headers.etag, `"${put.json().sha256}"`);
      const stored = got.rawPayload;
      assert.equal(sniffImageFormat(stored), 'webp');
      const after = await sharp(stored).metadata();
      assert.equal(after.format, 'webp');
      assert.equal(after.exif, undefined);
      assert.equal(after.xmp, undefined);
      assert.equal(after.icc, undefined);
      assert.equal(stored.includes('owner-name-in-exif'), false);
      assert.equal(stored.includes('GPS'), false);

      const events = await withTenant(app.db, alpha.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, alpha.id), { limit: 5 }),
      );
      assert.ok(events.some((e) => e.action === 'user.avatar_set' && e.target === `user:${annId}`));
    });

    test('a request naming the current ETag in If-None-Match gets 304 without the image', async () => {
      const got = await admin('GET', `/users/${annId}/avatar`);
      const again = await admin('GET', `/users/${annId}/avatar`, {
        headers: { 'if-none-match': String(got.headers.etag) },
      });
      assert.equal(again.statusCode, 304);
      assert.equal(again.rawPayload.length, 0);
    });

    test('a PDF renamed to .png is refused with media.unsupported_type and the avatar is unchanged', async () => {
      const before = await admin('GET', `/users/${annId}/avatar`);
      const put = await admin('PUT', `/users/${annId}/avatar`, {
        body: MINIMAL_PDF,
        contentType: 'image/png',
      });
      assert.equal(put.statusCode, 400);
      assert.equal(put.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(put.json().code, 'media.unsupported_type');
      const afterwards = await admin('GET', `/users/${annId}/avatar`);
      assert.equal(afterwards.headers.etag, before.headers.etag);
    });

    test('an upload over 5 MiB is refused with media.too_large', async () => {
      const huge = Buffer.alloc(5 * 1024 * 1024 + 1, 0);
      huge.set([0xff, 0xd8, 0xff], 0);
      const put = await admin('PUT', `/users/${annId}/avatar`, { body: huge });
      assert.equal(put.statusCode, 400);
      assert.equal(put.json().code, 'media.too_large');
    });

    test("another tenant's admin cannot read the avatar, by its own tenant's path or by the owner's", async () => {
      const foreignPath = await admin('GET', `/users/${annId}/avatar`, { as: beta, on: alpha });
      assert.equal(foreignPath.statusCode, 403);
      assert.equal(foreignPath.json().code, 'auth.forbidden');
      const ownPath = await admin('GET', `/users/${annId}/avatar`, { on: beta });
      assert.equal(ownPath.statusCode, 404);
      assert.equal(ownPath.json().code, 'user.not_found');
    });

    test('the signed-in user sets and reads their own avatar through the account API', async () => {
      const token = await userAccessToken(beta, 'bob@beta.test', 'openid profile');
      const png = await sharp({ create: { width: 40, height: 30, channels: 4, background: '#0a0c' } })
        .png()
        .toBuffer();
      const put = await account(beta, token, 'PUT', png);
      assert.equal(put.statusCode, 200, put.body);
      assert.equal(put.json().source, 'png');
      assert.equal(put.json().width, 40, 'a small image is never enlarged');
      const got = await account(beta, token);
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers['content-type'], 'image/webp');
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      // The admin of the user's tenant sees the same image.
      const viaAdmin = await admin('GET', `/users/${bobId}/avatar`, { on: beta });
      assert.equal(viaAdmin.headers.etag, got.headers.etag);
      const events = await withTenant(app.db, beta.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, beta.id), { limit: 5 }),
      );
      assert.ok(events.some((e) => e.action === 'user.avatar_set' && e.actor === `user:${bobId}`));
    });

    test("another tenant's user cannot read an avatar through the account API", async () => {
      const bobToken = await userAccessToken(beta, 'bob@beta.test', 'openid profile');
      // Bob's token names no user of alpha: alpha's provider does not know it.
      const response = await account(alpha, bobToken);
      assert.equal(response.statusCode, 401);
      assert.equal(response.json().code, 'auth.unauthenticated');
      assert.match(String(response.headers['www-authenticate']), /invalid_token/);
      const anonymous = await server.inject({ method: 'GET', url: `/t/${alpha.slug}/account/avatar` });
      assert.equal(anonymous.statusCode, 401);
    });

    test('a user uploading through the account API past the allowance gets 429 media.rate_limited; another user does not', async () => {
      const token = await userAccessToken(alpha, 'ann@alpha.test', 'openid profile');
      const image = blackPng(48, 48);
      for (let i = 0; i < DEFAULT_AVATAR_LIMITS.uploadsPerWindow; i++) {
        const put = await account(alpha, token, 'PUT', image);
        assert.equal(put.statusCode, 200, put.body);
      }
      const limited = await account(alpha, token, 'PUT', image);
      assert.equal(limited.statusCode, 429, limited.body);
      assert.equal(limited.json().code, 'media.rate_limited');
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      const bobToken = await userAccessToken(beta, 'bob@beta.test', 'openid profile');
      assert.equal((await account(beta, bobToken, 'PUT', image)).statusCode, 200);
    });

    test('an account token without the profile scope is refused with auth.forbidden', async () => {
      const token = await userAccessToken(alpha, 'ann@alpha.test', 'openid');
      const response = await account(alpha, token);
      assert.equal(response.statusCode, 403);
      assert.equal(response.json().code, 'auth.forbidden');
      assert.match(String(response.headers['www-authenticate']), /insufficient_scope/);
    });

    test('the data-export endpoint answers a bundle that verifies against the tenant JWKS and holds the avatar', async () => {
      const created = await admin('POST', `/users/${annId}/export`);
      assert.equal(created.statusCode, 201, created.body);
      const made = created.json();
      assert.ok(made.files.includes('avatar.webp'));
      assert.equal(made.download, `/api/v1/tenants/alpha/users/${annId}/exports/${made.id}`);
      const download = await server.inject({
        method: 'GET',
        url: made.download,
        headers: { authorization: `Bearer ${await adminToken(alpha)}` },
      });
      assert.equal(download.statusCode, 200);
      assert.equal(download.headers['content-type'], 'application/x-tar');
      assert.match(String(download.headers['content-disposition']), /^attachment; filename="user-export-/);
      const jwks = (await (await fetch(`${base}/t/alpha/jwks`)).json()) as JSONWebKeySet;
      const report = await verifyBundle(download.rawPayload, jwks);
      assert.equal(report.kind, 'user-export');
      assert.equal(report.subject.userId, annId);
      assert.ok(report.files.some((f) => f.path === 'avatar.webp'));
      const otherTenant = await admin('GET', `/users/${annId}/exports/${made.id}`, { as: beta, on: alpha });
      assert.equal(otherTenant.statusCode, 403);
    });

    test('deleting the user deletes their avatar object and data exports', async () => {
      const key = avatarKey(alpha.id, annId);
      assert.ok(await app.objects.head(key), 'the avatar is stored before the deletion');
      const deleted = await admin('DELETE', `/users/${annId}`);
      assert.equal(deleted.statusCode, 204);
      assert.equal(await app.objects.head(key), undefined);
      assert.deepEqual((await app.objects.list(`user-exports/alpha/${annId}/`)).items, []);
      const got = await admin('GET', `/users/${annId}/avatar`);
      assert.equal(got.statusCode, 404);
    });
  });
}
