// The checks that prove a deployment works, used after a restore and by the drill: sign in as the
// canary, obtain and verify a token, verify and read every audit log, open the canary's sealed
// fields, read the canary object. Each passes or fails with a reason; none throws.
import { createHash } from 'node:crypto';
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { inject } from 'light-my-request';
import { type AnchoredReport, holdAgainstCheckpoints } from '../audit/audit-checkpoints.js';
import { type ChainReport, readAudit, verifyAuditChain } from '../audit/audit-log.js';
import { isOrthIdError } from '../core/errors.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { totpCode } from '../identity/totp.js';
import { assertActsAsAppRole } from '../storage/db/app-role-probe.js';
import { type Queryable, withTenant } from '../storage/db/database.js';
import { issuerFor } from '../tenancy/tenants.js';
import { CANARY_SECRET, type Canary, readCanary } from './canary.js';
import type { OrthId } from './orthid.js';

export interface CheckResult {
  name: 'sign-in' | 'token' | 'audit-log' | 'decrypted-fields' | 'object-store';
  ok: boolean;
  detail: string;
  /** Wall time of the check, so an operator sees where a slow drill spends it. */
  seconds: number;
}

function reason(error: unknown): string {
  if (isOrthIdError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

async function check(name: CheckResult['name'], fn: () => Promise<string>): Promise<CheckResult> {
  const started = performance.now();
  const seconds = () => Math.round(performance.now() - started) / 1000;
  try {
    const detail = await fn();
    return { name, ok: true, detail, seconds: seconds() };
  } catch (error) {
    return { name, ok: false, detail: reason(error), seconds: seconds() };
  }
}

async function signIn(app: OrthId, canary: Canary): Promise<string> {
  const tenant = await app.tenants.get(canary.tenantSlug);
  const { userId } = await app.signInWithPassword({
    tenantId: tenant.id,
    email: canary.email,
    password: canary.password,
    ip: '127.0.0.1',
    userAgent: 'orthid-backup-check',
  });
  if (!canary.totpSecret) {
    return `signed in as the canary user ${userId} in tenant ${canary.tenantSlug} (its canary predates second factors: no TOTP to check)`;
  }
  await secondFactor(app, tenant.id, userId, canary.totpSecret);
  return `signed in as the canary user ${userId} in tenant ${canary.tenantSlug} with its password and a TOTP code`;
}

/**
 * The canary's TOTP code for now, through the sign-in's verification (the sealed secret opens, the
 * code matches). Probed, not spent: checks may run any number of times in one time step.
 */
async function secondFactor(app: OrthId, tenantId: string, userId: string, secret: string): Promise<void> {
  await app.mfa.verifyTotp(
    {
      tenantId,
      userId,
      ip: '127.0.0.1',
      userAgent: 'orthid-backup-check',
      code: totpCode(secret, app.clock.now()),
    },
    { probe: true },
  );
}

/** Asks the tenant's own token endpoint (in process, no socket) and verifies against its JWKS. */
async function token(app: OrthId, canary: Canary): Promise<string> {
  const { handle } = await app.oidc.get(canary.tenantSlug);
  // The API the canary client may ask for now: the one it was made with until a start at
  // another public URL moves the admin API (and the client's allowed resources) there.
  const tenant = await app.tenants.get(canary.tenantSlug);
  const client = await withTenant(app.db, tenant.id, (tx) => app.clients.get(tx, canary.clientId));
  const resource = client.resources[0] ?? canary.resource;
  const response = await inject(handle, {
    method: 'POST',
    url: '/token',
    headers: {
      authorization: `Basic ${Buffer.from(`${canary.clientId}:${canary.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
  });
  if (response.statusCode !== 200) {
    throw new Error(`the token endpoint answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
  }
  const { access_token } = response.json() as { access_token: string };
  const jwks = await inject(handle, { method: 'GET', url: '/jwks' });
  const issuer = issuerFor(app.config.publicUrl, canary.tenantSlug);
  const { protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks.json() as JSONWebKeySet), {
    issuer,
    audience: resource,
  });
  return `issued a token signed by ${protectedHeader.alg} key ${protectedHeader.kid} and verified it against ${issuer}/jwks`;
}

/** A chain this long is checked as two halves at once, each on its own connection (and core). */
const HALVES_FROM = 100_000;

async function tenantChain(app: OrthId, tenantId: string): Promise<AnchoredReport> {
  // Reading opens the sealed details, so the tenant's keys must match its data; the newest event
  // also gives the chain's length.
  const [newest] = await withTenant(app.db, tenantId, async (tx) =>
    readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 20 }),
  );
  const head = newest?.seq ?? 0;
  const inTenant = <T>(fn: (tx: Queryable, keyring: TenantKeyring) => Promise<T>) =>
    withTenant(app.db, tenantId, async (tx) => fn(tx, await app.tenantKeys.forTenant(tx, tenantId)));
  let chain: ChainReport;
  if (head < HALVES_FROM) chain = await inTenant((tx, keyring) => verifyAuditChain(tx, keyring));
  else {
    // The second half starts from the stored hash of the first half's last event, which the
    // first half checks: together they are the whole chain up to the newest event read above.
    const middle = String(Math.floor(head / 2));
    const [first, second] = await Promise.all([
      inTenant((tx, keyring) => verifyAuditChain(tx, keyring, { throughSeq: middle })),
      inTenant((tx, keyring) =>
        verifyAuditChain(tx, keyring, { afterSeq: middle, throughSeq: String(head) }),
      ),
    ]);
    chain = first.ok ? { ...second, events: first.events + second.events } : first;
  }
  // The checkpoints in the object store include those the backup manifest names: they were
  // written before the dump, so the restored objects hold them.
  return inTenant((tx, keyring) => holdAgainstCheckpoints(tx, keyring, app.objects, chain));
}

async function auditLogs(app: OrthId): Promise<string> {
  let events = 0;
  let anchored = 0;
  const tenants = await app.tenants.list();
  for (const tenant of tenants) {
    const report = await tenantChain(app, tenant.id);
    if (!report.ok)
      throw new Error(
        `the audit chain of ${tenant.slug} is broken at event #${report.broken!.seq}: ${report.broken!.reason}`,
      );
    events += report.events;
    if (report.checkpoint) anchored += 1;
  }
  return `${tenants.length} tenant audit chain(s) intact, ${events} events, ${anchored} held against a checkpoint; newest events decrypt`;
}

async function decryptedFields(app: OrthId, canary: Canary): Promise<string> {
  const tenant = await app.tenants.get(canary.tenantSlug);
  const row = await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, canary.email));
  if (!row) throw new Error('the canary user is not in the database');
  const user = await withTenant(app.db, tenant.id, (tx) => app.users.get(tx, tenant.id, row.id));
  if (user.name !== canary.name || user.email !== canary.email) {
    throw new Error("the canary's decrypted profile differs from the values recorded in the keystore");
  }
  return "the canary's sealed email and name decrypt to the values recorded in the keystore";
}

async function objectStore(app: OrthId, canary: Canary): Promise<string> {
  const { body } = await app.objects.get(canary.objectKey);
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  if (hash.digest('hex') !== canary.objectSha256)
    throw new Error('the canary object differs from the one recorded');
  return `read ${canary.objectKey} from ${app.objects.url}`;
}

/** Runs every check against `app` (a restored or live deployment). */
export async function runVerificationChecks(app: OrthId): Promise<CheckResult[]> {
  const canary = readCanary(app.keystore.getSecret(CANARY_SECRET));
  const missing = async (): Promise<string> => {
    throw new Error('the keystore records no canary; start OrthID once on this deployment to create it');
  };
  // Independent, so they run at once: the audit chains keep the database busy while the sign-in
  // and the token keep Node busy.
  return Promise.all([
    check('sign-in', canary ? () => signIn(app, canary) : missing),
    check('token', canary ? () => token(app, canary) : missing),
    check('audit-log', () => auditLogs(app)),
    check('decrypted-fields', canary ? () => decryptedFields(app, canary) : missing),
    check('object-store', canary ? () => objectStore(app, canary) : missing),
  ]);
}

/**
 * `orthid backup check`: the checks against a deployment, after asking whether its database login
 * can act as the application role at all (otherwise every check would fail with the same cause).
 */
export async function checkDeployment(app: OrthId): Promise<CheckResult[]> {
  await assertActsAsAppRole(app.db);
  return runVerificationChecks(app);
}
