// A tenant's branding end to end over real HTTP: the colour refused below WCAG's 4.5:1 and
// accepted above it, the support contact checked, the logo re-encoded through the object store
// (bad images refused with nothing changed), and the hosted pages showing logo, colour and
// contact under the same strict CSP as every other tenant.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import sharp from 'sharp';
import { readAudit } from '../../src/audit/audit-log.js';
import { type ErrorCode, exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { sniffImageFormat } from '../../src/identity/avatars.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import {
  checkBrandColour,
  checkSupportContact,
  contrastRatio,
  logoKey,
  mailLogoKey,
} from '../../src/tenancy/branding.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { SCRIPTED_PAGE_HEADERS } from '../../src/web/layout.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { runCli } from '../helpers/cli.js';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase, freePort } from '../helpers/postgres.js';

const refusedWith = (code: ErrorCode) => (error: unknown) => isOrthIdError(error, code);

describe('brand colour and support contact checks', () => {
  test('the WCAG 2.x contrast ratio', () => {
    assert.equal(contrastRatio('#000000', '#ffffff'), 21);
    assert.equal(contrastRatio('#ffffff', '#ffffff'), 1);
    // #767676 on white is the classic lightest grey that passes: 4.54:1.
    assert.equal(Math.round(contrastRatio('#767676', '#ffffff') * 100) / 100, 4.54);
  });

  test('a colour white text cannot be read on is refused with its ratio; a dark one is normalised', () => {
    for (const light of ['#ffeb3b', '#777777', '#3ae']) {
      assert.throws(() => checkBrandColour(light), refusedWith('brand.contrast_insufficient'), light);
    }
    assert.throws(
      () => checkBrandColour('#ffeb3b'),
      (e: unknown) => isOrthIdError(e) && e.details?.minimum === 4.5 && Number(e.details?.ratio) < 1.5,
    );
    for (const bad of ['blue', '1f4fd1', '#1f4fd', '#1f4fd1ff', 'url(x)', '#12;}a{']) {
      assert.throws(() => checkBrandColour(bad), refusedWith('brand.colour_invalid'), bad);
    }
    assert.equal(checkBrandColour('#1F4FD1'), '#1f4fd1');
    assert.equal(checkBrandColour(' #036 '), '#003366');
    assert.equal(checkBrandColour('#767676'), '#767676');
  });

  test('a support contact is an address or an https URL', () => {
    assert.equal(checkSupportContact('https://help.example/support'), 'https://help.example/support');
    assert.equal(checkSupportContact('help@example.org'), 'help@example.org');
    for (const bad of [
      'http://help.example',
      'javascript:alert(1)',
      'https://user:pw@help.example',
      'not an address',
      'a@b',
      '"><script>@x.y',
      '',
    ]) {
      assert.throws(() => checkSupportContact(bad), refusedWith('brand.contact_invalid'), bad);
    }
  });
});

describe('tenant branding over HTTP', { timeout: 120_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let acme: Tenant;
  const rps: Record<string, { config: oidc.Configuration; redirectUri: string }> = {};

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    for (const slug of ['acme', 'plain']) {
      const tenant = await app.tenants.create({ slug, actor: 'test' });
      const redirectUri = `${base}/callback`;
      const client = await withTenant(app.db, tenant.id, (tx) =>
        app.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [redirectUri] },
          'test',
        ),
      );
      const config = await oidc.discovery(
        new URL(`${base}/t/${slug}`),
        client.clientId,
        client.clientSecret!,
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      rps[slug] = { config, redirectUri };
    }
    acme = await app.tenants.get('acme');
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  const auditOf = async (action: string) =>
    (
      await withTenant(app.db, acme.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, acme.id), { limit: 500 }),
      )
    ).filter((e) => e.action === action);

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

  async function logoRequest(method: 'PUT' | 'DELETE', body?: Buffer, contentType = 'image/png') {
    return server.inject({
      method,
      url: '/api/v1/tenants/acme/branding/logo',
      headers: {
        authorization: `Bearer ${await adminToken(acme)}`,
        ...(body ? { 'content-type': contentType } : {}),
      },
      ...(body ? { payload: body } : {}),
    });
  }

  /** The hosted sign-in page of `slug`, with its response headers. */
  async function signInPage(slug: string) {
    const { config, redirectUri } = rps[slug]!;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const browser = new CookieBrowser();
    const { response } = await browser.follow(await browser.get(url.href), url.href);
    assert.equal(response.status, 200);
    return { page: await response.text(), csp: response.headers.get('content-security-policy') };
  }

  test('tenant configure refuses an unreadable colour and a bad contact, changing nothing', async () => {
    await assert.rejects(
      runOperation(app, 'tenant.configure', {
        slug: 'acme',
        brandColour: '#ffeb3b',
        displayName: 'Acme Corp',
      }),
      refusedWith('brand.contrast_insufficient'),
    );
    await assert.rejects(
      runOperation(app, 'tenant.configure', { slug: 'acme', supportContact: 'http://help.acme.test' }),
      refusedWith('brand.contact_invalid'),
    );
    await assert.rejects(
      runOperation(app, 'tenant.configure', { slug: 'acme', displayName: '  ' }),
      refusedWith('brand.name_invalid'),
    );
    await assert.rejects(
      runOperation(app, 'tenant.configure', { slug: 'acme', mfa: 'required', brandColour: 'red' }),
      refusedWith('brand.colour_invalid'),
    );
    assert.equal(app.mfa.policyOf(await app.tenants.get('acme')).mode, 'off', 'nor the MFA policy');
    const tenant = await app.tenants.get('acme');
    assert.equal(tenant.displayName, 'acme', 'the name is unchanged');
    assert.equal(tenant.settings.brandColour, undefined);
    assert.equal(tenant.settings.supportContact, undefined);
    assert.deepEqual(await auditOf('tenant.configured'), []);
  });

  test('tenant configure sets name, colour and contact, audited (the contact as set only)', async () => {
    const shown = await runOperation(app, 'tenant.configure', {
      slug: 'acme',
      displayName: 'Acme Corporation',
      brandColour: '#1F4FD1',
      supportContact: 'https://help.acme.test/support',
    });
    assert.equal(shown.displayName, 'Acme Corporation');
    assert.equal(shown.brandColour, '#1f4fd1');
    assert.equal(shown.supportContact, 'https://help.acme.test/support');
    const [event] = await auditOf('tenant.configured');
    assert.deepEqual(event?.details, {
      brandColour: '#1f4fd1',
      supportContact: 'set',
      displayName: 'Acme Corporation',
    });
    app.oidc.invalidate(acme.id);
  });

  test('a logo is re-encoded as WebP within 512 px, stored, audited and served inert from the tenant origin', async () => {
    const upload = await sharp({ create: { width: 1600, height: 400, channels: 4, background: '#1f4fd1' } })
      .png()
      .toBuffer();
    const set = await logoRequest('PUT', upload);
    assert.equal(set.statusCode, 200, set.body);
    const info = set.json() as { width: number; height: number; sha256: string; contentType: string };
    assert.deepEqual([info.width, info.height, info.contentType], [512, 128, 'image/webp']);

    const served = await server.inject({ method: 'GET', url: '/t/acme/branding/logo' });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'image/webp');
    assert.equal(served.headers['x-content-type-options'], 'nosniff');
    assert.match(String(served.headers['cache-control']), /^public, max-age=\d+$/);
    assert.equal(served.headers.etag, `"${info.sha256}"`);
    assert.equal(sniffImageFormat(served.rawPayload), 'webp');
    assert.notDeepEqual(served.rawPayload, upload, 'the bytes were re-encoded');
    const meta = await sharp(served.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [512, 128]);
    const again = await server.inject({
      method: 'GET',
      url: '/t/acme/branding/logo',
      headers: { 'if-none-match': `"${info.sha256}"` },
    });
    assert.equal(again.statusCode, 304);
    const [event] = await auditOf('tenant.logo_set');
    assert.deepEqual(event?.details, { sha256: info.sha256, width: 512, height: 128 });
    assert.ok(await app.objects.head(logoKey(acme.id)));
    // Mail clients do not all show WebP: a small PNG rendition is made once, for mail.
    const rendition = await app.objects.get(mailLogoKey(acme.id));
    rendition.body.resume();
    assert.equal(rendition.info.contentType, 'image/png');
    assert.deepEqual((await app.tenants.get('acme')).settings.brandLogo, {
      sha256: info.sha256,
      width: 512,
      height: 128,
      mail: { sha256: rendition.info.sha256, width: 384, height: 96 },
    });
    app.oidc.invalidate(acme.id);
  });

  test('a file that is not a PNG, JPEG or WebP is refused with 400 and the logo stays', async () => {
    const before = (await app.tenants.get('acme')).settings.brandLogo;
    const gif = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000' } })
      .gif()
      .toBuffer();
    for (const [body, type] of [
      [Buffer.from('%PDF-1.4\n%%EOF\n'), 'image/png'],
      [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/png'],
      [gif, 'image/gif'],
    ] as const) {
      const refused = await logoRequest('PUT', body, type);
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().code, 'media.unsupported_type');
    }
    const big = await logoRequest('PUT', Buffer.alloc(600 * 1024, 1));
    assert.equal(big.statusCode, 400);
    assert.equal(big.json().code, 'media.too_large');
    assert.deepEqual((await app.tenants.get('acme')).settings.brandLogo, before);
    assert.equal((await auditOf('tenant.logo_set')).length, 1);
  });

  test('the sign-in page shows logo, colour and contact, with the CSP every tenant gets', async () => {
    const branded = await signInPage('acme');
    const plain = await signInPage('plain');
    assert.equal(branded.csp, SCRIPTED_PAGE_HEADERS['content-security-policy']);
    assert.equal(branded.csp, plain.csp, 'branding changes nothing in the CSP');
    assert.doesNotMatch(branded.csp ?? '', /script-src[^;]*unsafe-inline/);
    assert.match(branded.csp ?? '', /frame-ancestors 'none'/);

    const logo =
      /<img src="(\/t\/acme\/branding\/logo\?v=[0-9a-f]{16})" alt="Acme Corporation" width="512" height="128">/.exec(
        branded.page,
      );
    assert.ok(logo, 'the logo, named by the display name');
    assert.match(branded.page, /<title>Sign in · Acme Corporation<\/title>/);
    assert.match(
      branded.page,
      /<p class="support">Need help\? <a href="https:\/\/help\.acme\.test\/support">help\.acme\.test\/support<\/a><\/p>/,
    );
    assert.doesNotMatch(branded.page, /\sstyle="/, 'no inline style attribute');
    assert.doesNotMatch(branded.page, /#1f4fd1/, 'the colour is not inlined in the page');
    const sheet = /<link rel="stylesheet" href="(\/t\/acme\/branding\.css\?v=[0-9a-f]{16})">/.exec(
      branded.page,
    );
    assert.ok(sheet, 'the tenant stylesheet');
    const css = await fetch(`${base}${sheet[1]}`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(css.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await css.text(), /button\{background:#1f4fd1\}/);
    assert.equal((await fetch(`${base}${logo[1]}`)).status, 200);

    assert.doesNotMatch(
      plain.page,
      /<img|branding\.css|class="support"/,
      'an unbranded tenant shows none of it',
    );
  });

  test('removing the logo is audited; the URL then answers 404, and removing again is media.not_found', async () => {
    assert.equal((await logoRequest('DELETE')).statusCode, 204);
    assert.equal((await server.inject({ method: 'GET', url: '/t/acme/branding/logo' })).statusCode, 404);
    const again = await logoRequest('DELETE');
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().code, 'media.not_found');
    assert.equal((await auditOf('tenant.logo_removed')).length, 1);
    assert.equal((await app.tenants.get('acme')).settings.brandLogo, null);
    assert.equal(await app.objects.head(mailLogoKey(acme.id)), undefined, 'the mail rendition went with it');
    assert.equal((await server.inject({ method: 'GET', url: '/t/nobody/branding.css' })).statusCode, 404);
  });
});

describe('orthid tenant configure and tenant logo', { timeout: 180_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-brand-cli-'));
    env = {
      ORTHID_DATA_DIR: dir,
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: 'brand-cli-test-master-secret-0123456789-abcd',
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    assert.equal((await runCli(['tenant', 'create', 'paris'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('--brand-colour, --support-contact and --display-name are checked and shown', async () => {
    const refused = await runCli(['tenant', 'configure', 'paris', '--brand-colour', '#ffeb3b'], env);
    assert.equal(refused.code, exitCodes.invalid);
    assert.match(refused.stderr, /error\[brand\.contrast_insufficient\].*4\.5:1/);
    const set = await runCli(
      [
        'tenant',
        'configure',
        'paris',
        '--display-name',
        'Ville de Paris',
        '--brand-colour',
        '#8B0000',
        '--support-contact',
        'https://aide.paris.test',
      ],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(
      set.stdout,
      /Branding: name Ville de Paris; colour #8b0000; support https:\/\/aide\.paris\.test\/\./,
    );
    const cleared = await runCli(
      ['tenant', 'configure', 'paris', '--brand-colour', 'default', '--support-contact', 'none', '--json'],
      env,
    );
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.deepEqual(
      (({ brandColour, supportContact }) => ({ brandColour, supportContact }))(JSON.parse(cleared.stdout)),
      { brandColour: 'default', supportContact: 'none' },
    );
  });

  test('tenant logo set re-encodes the file; a PDF is refused; remove takes it away', async () => {
    const png = join(dir, 'logo.png');
    await writeFile(
      png,
      await sharp({ create: { width: 900, height: 300, channels: 3, background: '#8b0000' } })
        .png()
        .toBuffer(),
    );
    const set = await runCli(['tenant', 'logo', 'set', '--tenant', 'paris', '--file', png, '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    const info = JSON.parse(set.stdout) as { width: number; height: number; contentType: string };
    assert.deepEqual([info.width, info.height, info.contentType], [512, 171, 'image/webp']);

    const pdf = join(dir, 'logo.pdf');
    await writeFile(pdf, '%PDF-1.4\n%%EOF\n');
    const refused = await runCli(['tenant', 'logo', 'set', '--tenant', 'paris', '--file', pdf], env);
    assert.equal(refused.code, exitCodes.invalid);
    assert.match(refused.stderr, /error\[media\.unsupported_type\]/);

    const removed = await runCli(['tenant', 'logo', 'remove', '--tenant', 'paris'], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /Logo of paris removed\./);
    const again = await runCli(['tenant', 'logo', 'remove', '--tenant', 'paris'], env);
    assert.equal(again.code, exitCodes.not_found);
    assert.match(again.stderr, /error\[media\.not_found\]/);
  });
});
