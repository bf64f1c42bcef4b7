import assert from 'node:assert/strict';
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
} from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { type AuditEvent, readAudit } from '../../src/audit/audit-log.js';
import { openBackupStores } from '../../src/backup/destination.js';
import { restoreBackupSet } from '../../src/backup/restore-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { composeOrthId } from '../../src/main.js';
import { ensureAccountClients } from '../../src/ops/bootstrap.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { throwawayRestoreTarget } from '../../src/storage/db/open-restore-target.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { seriousViolations } from '../helpers/axe.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'a passkey is better than this password';

/** A credential as Chromium's virtual authenticator holds it (CDP WebAuthn.Credential). */
interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  privateKey: string;
  userHandle?: string;
  signCount: number;
  backupEligibility?: boolean;
  backupState?: boolean;
}

interface Device {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

/** Makes the page's browser one without conditional mediation (no passkey autofill). */
const NO_AUTOFILL =
  "Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false });";

/**
 * Passkeys in real Chromium with its virtual authenticator (CDP WebAuthn domain): enrolment in
 * the second-factor steps, passwordless sign-in with a discoverable credential (autofill and the
 * button), a passkey as the second factor after the password, and the refusals a user would meet.
 * The public URL is http://localhost:<port>: WebAuthn needs a secure context and a domain as RP
 * ID, and localhost is both. One browser for the file; each "device" is a fresh profile.
 */
describe('passkeys in Chromium with a virtual authenticator', { timeout: 300_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let port: number;
  let tenantId: string;
  let userId: string;
  let config: oidc.Configuration;
  let redirectUri: string;
  /** Pat's "Laptop" passkey, copied out of the authenticator that registered it. */
  let laptop: VirtualCredential;
  let laptopId: string;

  before(async () => {
    port = await freePort();
    base = `http://localhost:${port}`;
    redirectUri = `${base}/callback`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    tenantId = tenant.id;
    const client = await withTenant(app.db, tenant.id, async (tx) => {
      await app.tenants.setSettings(tx, tenant.id, { mfa: { mode: 'optional' } });
      userId = (
        await app.users.create(
          tx,
          tenant.id,
          { email: 'pat@acme.test', name: 'Pat', password: PASSWORD },
          'test',
        )
      ).id;
      await app.users.create(
        tx,
        tenant.id,
        { email: 'sam@acme.test', name: 'Sam', password: PASSWORD },
        'test',
      );
      return app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Acme Portal',
          grantTypes: ['authorization_code'],
          redirectUris: [redirectUri],
          firstParty: true,
        },
        'test',
      );
    });
    config = await oidc.discovery(
      new URL(`${base}/t/acme`),
      client.clientId,
      client.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  async function addAuthenticator(cdp: CDPSession): Promise<string> {
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return authenticatorId;
  }

  /** A fresh browser profile with one virtual platform authenticator that verifies its user. */
  async function device(options: { autofill?: boolean; holding?: VirtualCredential } = {}): Promise<Device> {
    const context = await browser.newContext();
    if (options.autofill === false) await context.addInitScript(NO_AUTOFILL);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const authenticatorId = await addAuthenticator(cdp);
    if (options.holding) {
      await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: options.holding });
    }
    return { context, page, cdp, authenticatorId };
  }

  async function credentials(d: Device): Promise<VirtualCredential[]> {
    const { credentials } = await d.cdp.send('WebAuthn.getCredentials', {
      authenticatorId: d.authenticatorId,
    });
    return credentials as VirtualCredential[];
  }

  async function startSignIn(page: Page) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const response = await page.goto(url.href);
    return { verifier, response };
  }

  async function claimsAt(page: Page, verifier: string) {
    return (
      await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier })
    ).claims()!;
  }

  async function events(action: string): Promise<AuditEvent[]> {
    return withTenant(app.db, tenantId, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenantId);
      return (await readAudit(tx, keyring, { limit: 1000 })).filter(
        (e) => e.action === action && (e.details?.method === 'passkey' || action !== 'user.sign_in'),
      );
    });
  }

  async function storedLaptop() {
    return withTenant(app.db, tenantId, async (tx) =>
      (await app.passkeys.list(tx, userId)).find((k) => k.name === 'Laptop'),
    );
  }

  async function storedCount(): Promise<number> {
    return withTenant(app.db, tenantId, async (tx) => {
      const { rows } = await tx.query<{ sign_count: string }>(
        'SELECT sign_count FROM passkey_credentials WHERE factor_id = $1',
        [laptopId],
      );
      return Number(rows[0]!.sign_count);
    });
  }

  async function passwordStep(page: Page, email = 'pat@acme.test') {
    await page.fill('#email', email);
    await page.fill('#password', PASSWORD);
    await page.click('form[action$="/login"] button[type=submit]');
  }

  test('the sign-in page offers passkey autofill through a same-origin script, under a CSP without inline scripts', async () => {
    const d = await device();
    try {
      const { response } = await startSignIn(d.page);
      const csp = response!.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline'?[^;]*script|script-src[^;]*unsafe-inline/);
      assert.equal(await d.page.getAttribute('#email', 'autocomplete'), 'username webauthn');
      assert.equal(await d.page.locator('script:not([src])').count(), 0);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      assert.equal((await d.page.textContent('#passkey-button'))?.trim(), 'Sign in with a passkey');
    } finally {
      await d.context.close();
    }
  });

  test('Pat adds two named passkeys at the enrolment step, removes one, and the ID token says pwd, hwk, user and mfa', async () => {
    const d = await device({ autofill: false });
    try {
      const { verifier } = await startSignIn(d.page);
      await passwordStep(d.page);
      assert.match((await d.page.textContent('h1')) ?? '', /Protect your account/);
      await d.page.click('#enrol-passkey button');
      assert.equal(await d.page.textContent('h1'), 'Your passkeys');
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      await d.page.fill('#passkey-name', 'Laptop');
      await d.page.click('#passkey-button');
      await d.page.waitForSelector('text=Passkey “Laptop” added.');

      // The same authenticator again: the browser refuses it (excludeCredentials), the page says so.
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      await d.page.fill('#passkey-name', 'Laptop again');
      await d.page.click('#passkey-button');
      await d.page.waitForSelector('#passkey-status:not([hidden])');
      assert.match(
        (await d.page.textContent('#passkey-status')) ?? '',
        /holds a passkey for this account already/,
      );

      // A second authenticator (a security key): the laptop's is set aside, then put back.
      [laptop] = await credentials(d);
      assert.ok(laptop?.isResidentCredential, 'a discoverable credential');
      await d.cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: d.authenticatorId });
      d.authenticatorId = await addAuthenticator(d.cdp);
      await d.page.fill('#passkey-name', 'Security key');
      await d.page.click('#passkey-button');
      await d.page.waitForSelector('text=Passkey “Security key” added.');
      assert.equal(await d.page.locator('#passkeys li').count(), 2);
      assert.match((await d.page.textContent('#passkeys')) ?? '', /Laptop · this device only · added/);

      await d.page.click('button:has-text("Remove Security key")');
      await d.page.waitForSelector('text=Passkey “Security key” removed.');
      assert.equal(await d.page.locator('#passkeys li').count(), 1);
      const removed = (await events('user.mfa_factor_removed'))[0];
      assert.equal(removed?.actor, `user:${userId}`);
      assert.equal(removed?.details?.factor, 'passkey');

      await d.page.click('#passkeys-done button');
      assert.match((await d.page.textContent('h1')) ?? '', /recovery codes/i);
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await d.page.click('button[type=submit]');
      await landed;
      const claims = await claimsAt(d.page, verifier);
      assert.deepEqual(claims.amr, ['pwd', 'hwk', 'user', 'mfa']);
      const stored = await storedLaptop();
      assert.ok(stored);
      laptopId = stored.id;
      assert.equal(stored.backupEligible, false);
      assert.equal(stored.backedUp, false);
      const registered = (await events('passkey.registered')).filter((e) => e.outcome === 'success');
      assert.equal(registered.length, 2);
    } finally {
      await d.context.close();
    }
  });

  test('passkey autofill signs Pat in without a password: the ID token says hwk, user and mfa', async () => {
    const d = await device({ holding: laptop });
    try {
      // Conditional mediation: the virtual authenticator answers the autofill request itself,
      // as a person picking their passkey from the email field's suggestions would.
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      const { verifier } = await startSignIn(d.page);
      await landed;
      const claims = await claimsAt(d.page, verifier);
      assert.equal(claims.sub, userId);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      assert.equal(claims.acr, 'urn:orthid:acr:aal2');
      const last = (await events('user.sign_in'))[0];
      assert.equal(last?.outcome, 'success');
      assert.equal(last?.details?.passkey, laptopId);
      assert.ok((await storedLaptop())?.lastUsedAt, 'last use recorded');
      laptop = (await credentials(d))[0]!;
    } finally {
      await d.context.close();
    }
  });

  test('where the browser offers no autofill, the "Sign in with a passkey" button signs Pat in', async () => {
    const d = await device({ autofill: false, holding: laptop });
    try {
      const { verifier } = await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      assert.ok(d.page.url().includes('/interaction/'), 'nothing happened before the click');
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await d.page.click('#passkey-button');
      await landed;
      assert.deepEqual((await claimsAt(d.page, verifier)).amr, ['hwk', 'user', 'mfa']);
      laptop = (await credentials(d))[0]!;
    } finally {
      await d.context.close();
    }
  });

  test('after the password, the passkey is the second factor', async () => {
    const d = await device({ autofill: false, holding: laptop });
    try {
      const { verifier } = await startSignIn(d.page);
      await passwordStep(d.page);
      assert.equal(await d.page.textContent('h1'), 'Two-step verification');
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await d.page.click('#passkey-button');
      await landed;
      const claims = await claimsAt(d.page, verifier);
      assert.deepEqual(claims.amr, ['pwd', 'hwk', 'user', 'mfa']);
      assert.equal((await events('user.sign_in'))[0]?.details?.step, 'second_factor');
      laptop = (await credentials(d))[0]!;
    } finally {
      await d.context.close();
    }
  });

  /** Signs in with the button on a device holding `credential`; returns the refusal shown. */
  async function refusedWith(credential: VirtualCredential) {
    const d = await device({ autofill: false, holding: credential });
    try {
      await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      await d.page.click('#passkey-button');
      const alert = await d.page.waitForSelector('[role=alert]');
      assert.ok(d.page.url().includes('/interaction/'), 'still on the sign-in page');
      return { code: await alert.getAttribute('data-code'), message: (await alert.textContent()) ?? '' };
    } finally {
      await d.context.close();
    }
  }

  test('a passkey this deployment never registered is refused with a clear message, audited', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const stranger: VirtualCredential = {
      credentialId: randomBytes(16).toString('base64'),
      isResidentCredential: true,
      rpId: 'localhost',
      privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      userHandle: randomBytes(32).toString('base64'),
      signCount: 0,
    };
    const refusal = await refusedWith(stranger);
    assert.equal(refusal.code, 'passkey.unknown_credential');
    assert.match(refusal.message, /not registered here/);
    const last = (await events('user.sign_in'))[0];
    assert.equal(last?.outcome, 'failure');
    assert.equal(last?.details?.reason, 'unknown_credential');
  });

  test('a copy of the passkey whose counter went backwards is refused as a cloned authenticator; nothing changes', async () => {
    const before = await storedCount();
    const lastUsed = (await storedLaptop())?.lastUsedAt;
    assert.ok(before >= 2, `the stored counter moved with each sign-in (${before})`);
    const refusal = await refusedWith({ ...laptop, signCount: 0 });
    assert.equal(refusal.code, 'passkey.counter_regressed');
    assert.match(refusal.message, /may have been copied/);
    const last = (await events('user.sign_in'))[0];
    assert.equal(last?.details?.reason, 'counter_regressed');
    assert.equal(last?.details?.storedCount, before);
    assert.equal(await storedCount(), before);
    assert.equal((await storedLaptop())?.lastUsedAt, lastUsed);
  });

  test('the same key claiming to be backup-eligible now is refused as inconsistent', async () => {
    const before = await storedCount();
    const refusal = await refusedWith({ ...laptop, backupEligibility: true, backupState: true });
    assert.equal(refusal.code, 'passkey.flags_inconsistent');
    assert.equal((await events('user.sign_in'))[0]?.details?.reason, 'flags_inconsistent');
    assert.equal(await storedCount(), before);
  });

  /**
   * An assertion signed with the passkey's own private key, as an authenticator would make it for
   * `origin` and `rpId`: what a look-alike site relaying a phished user's assertion would hold.
   */
  function signedAssertion(credential: VirtualCredential, challenge: string, origin: string, rpId: string) {
    const clientDataJSON = Buffer.from(
      JSON.stringify({ type: 'webauthn.get', challenge, origin, crossOrigin: false }),
    );
    const flags = Buffer.from([0x05]); // user present, user verified
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(credential.signCount + 100);
    const authenticatorData = Buffer.concat([createHash('sha256').update(rpId).digest(), flags, counter]);
    const key = createPrivateKey({
      key: Buffer.from(credential.privateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    const signature = sign(
      key.asymmetricKeyType === 'ed25519' ? null : 'sha256',
      Buffer.concat([authenticatorData, createHash('sha256').update(clientDataJSON).digest()]),
      key,
    );
    const id = Buffer.from(credential.credentialId, 'base64').toString('base64url');
    return JSON.stringify({
      id,
      rawId: id,
      type: 'public-key',
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authenticatorData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: Buffer.from(credential.userHandle!, 'base64').toString('base64url'),
      },
    });
  }

  /** Asks the server for passwordless options, as the page's script does; returns them. */
  async function challengeOf(page: Page) {
    return (await page.evaluate(`(async () => {
      const form = document.getElementById('passkey-form');
      const res = await fetch(form.dataset.options, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csrf: form.elements.csrf.value }),
      });
      return res.json();
    })()`)) as { challenge: string };
  }

  /** Posts `assertion` through the sign-in page's own form, with a challenge the server issued. */
  async function postThroughSignInPage(assertion: (challenge: string) => string, askForOptions = true) {
    const d = await device({ autofill: false });
    try {
      await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      const options = askForOptions ? await challengeOf(d.page) : { challenge: '' };
      await d.page.evaluate(`(() => {
        const form = document.getElementById('passkey-form');
        form.elements.response.value = ${JSON.stringify(assertion(options.challenge))};
        form.submit();
      })()`);
      const alert = await d.page.waitForSelector('[role=alert]');
      return { code: await alert.getAttribute('data-code'), message: (await alert.textContent()) ?? '' };
    } finally {
      await d.context.close();
    }
  }

  test('an assertion made for another origin (a look-alike site) is refused, even with the right challenge and key', async () => {
    const before = await storedCount();
    const refusal = await postThroughSignInPage((challenge) =>
      signedAssertion(laptop, challenge, `http://evil.localhost:${port}`, 'localhost'),
    );
    assert.equal(refusal.code, 'passkey.origin_mismatch');
    assert.match(refusal.message, /made for another website/);
    assert.equal((await events('user.sign_in'))[0]?.details?.reason, 'origin_mismatch');
    assert.equal(await storedCount(), before);
  });

  test('an assertion for another RP ID is refused the same way', async () => {
    const refusal = await postThroughSignInPage((challenge) =>
      signedAssertion(laptop, challenge, base, 'evil.localhost'),
    );
    assert.equal(refusal.code, 'passkey.origin_mismatch');
    assert.equal((await events('user.sign_in'))[0]?.details?.reason, 'rp_id_mismatch');
  });

  test('a correctly made assertion through the same path is accepted (the forged ones failed for their origin alone)', async () => {
    const d = await device({ autofill: false });
    try {
      await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      const options = await challengeOf(d.page);
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await d.page.evaluate(`(() => {
        const form = document.getElementById('passkey-form');
        form.elements.response.value = ${JSON.stringify(signedAssertion(laptop, options.challenge, base, 'localhost'))};
        form.submit();
      })()`);
      await landed;
    } finally {
      await d.context.close();
    }
  });

  test('a challenge serves one response: after a refused one, a good response to it is refused too', async () => {
    const d = await device({ autofill: false });
    try {
      await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      const { challenge } = await challengeOf(d.page);
      const submit = async (json: string) => {
        await d.page.evaluate(`(() => {
          const form = document.getElementById('passkey-form');
          form.elements.response.value = ${JSON.stringify(json)};
          form.submit();
        })()`);
        return d.page.waitForSelector('[role=alert]');
      };
      const first = await submit(
        signedAssertion(laptop, challenge, `http://evil.localhost:${port}`, 'localhost'),
      );
      assert.equal(await first.getAttribute('data-code'), 'passkey.origin_mismatch');
      const good = { ...laptop, signCount: laptop.signCount + 1000 };
      const second = await submit(signedAssertion(good, challenge, base, 'localhost'));
      assert.equal(await second.getAttribute('data-code'), 'passkey.challenge_missing');
      assert.match((await second.textContent()) ?? '', /expired or was already used/);
    } finally {
      await d.context.close();
    }
  });

  test('a passkey made in one sign-in cannot complete the enrolment of another: refused, audited, nothing added', async () => {
    const d = await device({ autofill: false });
    try {
      const toEnrolPage = async (page: Page) => {
        await startSignIn(page);
        await passwordStep(page, 'sam@acme.test');
        await page.click('#enrol-passkey button');
        await page.waitForSelector('#passkey-button:not([hidden])');
      };
      await toEnrolPage(d.page);
      // The ceremony of the first sign-in, its response kept instead of posted.
      const made = (await d.page.evaluate(`(async () => {
        const form = document.getElementById('passkey-form');
        const res = await fetch(form.dataset.options, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ csrf: form.elements.csrf.value }),
        });
        const optionsJSON = await res.json();
        return JSON.stringify(await SimpleWebAuthnBrowser.startRegistration({ optionsJSON }));
      })()`)) as string;
      const other = await d.context.newPage();
      await toEnrolPage(other);
      await other.evaluate(`(() => {
        const form = document.getElementById('passkey-form');
        form.elements.response.value = ${JSON.stringify(made)};
        form.submit();
      })()`);
      const alert = await other.waitForSelector('[role=alert]');
      assert.equal(await alert.getAttribute('data-code'), 'passkey.challenge_missing');
      assert.equal(await other.isVisible('#no-passkeys'), true);
      const refused = (await events('passkey.registered'))[0];
      assert.equal(refused?.outcome, 'failure');
      assert.equal(refused?.details?.reason, 'challenge_missing');
    } finally {
      await d.context.close();
    }
  });

  test('without JavaScript the password path still works: no passkey button, the offer skipped, amr pwd', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      const { verifier } = await startSignIn(page);
      assert.equal(await page.isVisible('#passkey-button'), false);
      await passwordStep(page, 'sam@acme.test');
      assert.match((await page.textContent('h1')) ?? '', /Protect your account/);
      const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
      await page.click('#enrol-skip button');
      await landed;
      assert.deepEqual((await claimsAt(page, verifier)).amr, ['pwd']);
    } finally {
      await context.close();
    }
  });
  test('a backup carries the passkeys: on the restored copy, under the same public URL, Pat signs in with the passkey', async () => {
    requireAgeCli();
    const work = mkdtempSync(join(tmpdir(), 'orthid-passkeys-restore-'));
    try {
      const key = ageKeygen(work);
      const dest = pathToFileURL(join(work, 'sets')).href;
      await runBackupDump(
        { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
        { encrypt: true, upload: false, recipients: [key.recipient], dest, destConfigured: true },
      );
      const result = await restoreBackupSet({
        set: 'latest',
        ...(await openBackupStores(dest, undefined)),
        identities: [key.identity],
        target: throwawayRestoreTarget(undefined),
        objects: await openObjectStore(pathToFileURL(join(work, 'restored-objects')).href),
        keystorePath: join(work, 'restored-keystore'),
        masterSecret: TEST_MASTER_KEY,
        destroyedKeys: app.keystore.destroyedKeys(),
      });
      const restored = composeOrthId({
        config: app.config,
        clock: systemClock,
        log: createLogger('silent'),
        db: result.db,
        keystore: result.keystore,
        objects: app.objects,
      });
      // The restored copy answers on the original's address: a passkey belongs to its origin.
      await server.close();
      const copy = await buildServer(restored);
      try {
        await copy.listen({ host: '127.0.0.1', port });
        const names = await withTenant(restored.db, tenantId, async (tx) =>
          (await restored.passkeys.list(tx, userId)).map((k) => k.name),
        );
        assert.deepEqual(names, ['Laptop']);
        const d = await device({
          autofill: false,
          holding: { ...laptop, signCount: laptop.signCount + 5000 },
        });
        try {
          const { verifier } = await startSignIn(d.page);
          await d.page.waitForSelector('#passkey-button:not([hidden])');
          const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
          await d.page.click('#passkey-button');
          await landed;
          assert.equal((await claimsAt(d.page, verifier)).sub, userId);
          laptop = (await credentials(d))[0]!;
        } finally {
          await d.context.close();
        }
      } finally {
        await copy.close();
        await restored.close();
        server = await buildServer(app);
        await server.listen({ host: '127.0.0.1', port });
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  /** The admin API as a tenant administrator's client calls it. */
  async function admin(method: 'GET' | 'DELETE', path: string) {
    const signing = await withTenant(app.db, tenantId, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenantId);
      if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
        await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
      }
      return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
    });
    await ensureAdminClient(app.db, tenantId, 'admin-client', app.config.publicUrl);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ client_id: 'admin-client', scope: ADMIN_PERMISSION })
      .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: 'at+jwt' })
      .setIssuer(issuerFor(app.config.publicUrl, 'acme'))
      .setSubject('admin-client')
      .setAudience(adminResourceIndicator(app.config.publicUrl))
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .setJti(randomUUID())
      .sign(await importJWK(signing.privateJwk, signing.alg));
    return server.inject({
      method,
      url: `/api/v1/tenants/acme${path}`,
      headers: { authorization: `Bearer ${token}` },
    });
  }

  test('an administrator sees the passkey among the factors (name, times, backup flags, no key) and removes it; then it signs in no more', async () => {
    const listed = await admin('GET', `/users/${userId}/factors`);
    assert.equal(listed.statusCode, 200);
    const factor = listed.json().factors.find((f: { kind: string }) => f.kind === 'passkey');
    assert.deepEqual(Object.keys(factor).sort(), [
      'createdAt',
      'id',
      'kind',
      'lastUsedAt',
      'name',
      'passkey',
    ]);
    assert.equal(factor.name, 'Laptop');
    assert.deepEqual(factor.passkey, { backupEligible: false, backedUp: false });
    assert.ok(factor.lastUsedAt);
    const publicKey = await withTenant(app.db, tenantId, async (tx) => {
      const { rows } = await tx.query<{ public_key: Buffer }>('SELECT public_key FROM passkey_credentials');
      return rows[0]!.public_key.toString('base64url');
    });
    assert.ok(!listed.body.includes(publicKey), 'the public key is not listed');

    const removed = await admin('DELETE', `/users/${userId}/factors/${factor.id}`);
    assert.equal(removed.statusCode, 204);
    const event = (await events('user.mfa_factor_removed'))[0];
    assert.equal(event?.details?.factor, 'passkey');
    assert.equal(event?.outcome, 'success');
    const rows = await withTenant(app.db, tenantId, async (tx) =>
      Number((await tx.query<{ n: string }>('SELECT count(*) AS n FROM passkey_credentials')).rows[0]!.n),
    );
    assert.equal(rows, 0, 'the credential went with its factor');
    const refusal = await refusedWith(laptop);
    assert.equal(refusal.code, 'passkey.unknown_credential');
  });

  test('on the account pages, Kim adds a passkey with the browser and gets recovery codes with it; the pages pass axe', async () => {
    const kim = await withTenant(app.db, tenantId, (tx) =>
      app.users.create(tx, tenantId, { email: 'kim@acme.test', name: 'Kim', password: PASSWORD }, 'test'),
    );
    await ensureAccountClients(app);
    const d = await device();
    try {
      // The account pages sign Kim in through the provider, then come back to the page asked for.
      await d.page.goto(`${base}/t/acme/account/security/passkey`);
      await passwordStep(d.page, 'kim@acme.test');
      await d.page.waitForSelector('#enrol-skip button');
      await Promise.all([
        d.page.waitForURL((u) => u.pathname === '/t/acme/account/security/passkey'),
        d.page.click('#enrol-skip button'),
      ]);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      assert.deepEqual(await seriousViolations(d.page), []);
      await d.page.fill('#passkey-name', 'Phone');
      await Promise.all([d.page.waitForSelector('#recovery-codes'), d.page.click('#passkey-button')]);
      assert.equal(await d.page.locator('#recovery-codes li').count(), 10, 'the first factor brings codes');
      await Promise.all([
        d.page.waitForURL((u) => u.pathname === '/t/acme/account/security'),
        d.page.click('#codes-saved'),
      ]);
      assert.match((await d.page.textContent('main')) ?? '', /Passkey · Phone/);
      assert.deepEqual(await seriousViolations(d.page), []);
      assert.equal((await credentials(d)).length, 1, 'the authenticator holds it');
      const stored = await withTenant(app.db, tenantId, (tx) => app.passkeys.list(tx, kim.id));
      assert.deepEqual(
        stored.map((k) => k.name),
        ['Phone'],
      );
    } finally {
      await d.context.close();
    }
  });

  test('an invitation is accepted with a passkey: the script sends the link with its options; the account signs in with it', async () => {
    const email = 'ida@acme.test';
    const secret = await withTenant(
      app.db,
      tenantId,
      async (tx) =>
        (await app.accountTokens.issue(tx, tenantId, { purpose: 'invitation', email, ttlSeconds: 3600 }))
          .secret,
    );
    const d = await device({ autofill: false });
    try {
      await d.page.goto(`${base}/t/acme/invitation?token=${secret}`);
      // The offer the markup hides until the script finds WebAuthn.
      await d.page.click('#passkey-invitation:not([hidden]) a');
      await d.page.fill('#name', 'Ida Rhodes');
      await d.page.click('button[type=submit]');
      // The next page has loaded once its script has shown the button.
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      assert.equal(await d.page.textContent('h1'), 'Create your passkey');
      await d.page.click('#passkey-button');
      await d.page.waitForSelector('#recovery-codes');
      const [made] = await credentials(d);
      assert.ok(made?.isResidentCredential, 'a discoverable credential');
      const account = await withTenant(app.db, tenantId, async (tx) => {
        const row = await app.users.findByEmail(tx, tenantId, email);
        return (
          row && {
            id: row.id,
            password: row.password_hash !== null,
            passkeys: (await app.passkeys.list(tx, row.id)).length,
          }
        );
      });
      assert.deepEqual(account && { password: account.password, passkeys: account.passkeys }, {
        password: false,
        passkeys: 1,
      });
      await d.page.click('#continue button');
      await d.page.waitForFunction("document.querySelector('h1')?.textContent === 'Your account is ready'");

      const { verifier } = await startSignIn(d.page);
      await d.page.waitForSelector('#passkey-button:not([hidden])');
      const landed = d.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await d.page.click('#passkey-button');
      await landed;
      const claims = await claimsAt(d.page, verifier);
      assert.equal(claims.sub, account!.id);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    } finally {
      await d.context.close();
    }
  });
});
