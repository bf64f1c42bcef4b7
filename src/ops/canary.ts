// The deployment's canary: a user in the system tenant with a sealed profile and a TOTP factor, a
// client that can obtain a token, and an object in the store. Their expected values live in the
// keystore, so a restored deployment can prove it signs in (with a second factor), issues tokens,
// decrypts and serves blobs.
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../core/sql.js';
import { adminResourceIndicator } from '../tenancy/admin-resource.js';
import type { OrthId } from './orthid.js';

/** What planting the canary uses of a deployment. */
export type CanaryDeps = Pick<OrthId, 'config' | 'keystore' | 'objects' | 'clients' | 'users' | 'mfa'>;

/** Keystore secret under which the canary's expected values are kept. */
export const CANARY_SECRET = 'backup.canary';
export const CANARY_EMAIL = 'canary@orthid.invalid';
export const CANARY_OBJECT_KEY = 'orthid/canary.txt';

export interface Canary {
  tenantSlug: string;
  email: string;
  password: string;
  name: string;
  clientId: string;
  clientSecret: string;
  /** The audience the canary client asks a token for. */
  resource: string;
  objectKey: string;
  objectSha256: string;
  /** The canary user's TOTP secret (base32); absent from canaries made before second factors. */
  totpSecret?: string;
}

/**
 * Creates the canary in the (just created) system tenant, in its transaction `tx`, and records it
 * in the keystore.
 */
export async function createCanary(
  app: CanaryDeps,
  tx: Queryable,
  systemTenantId: string,
  tenantSlug: string,
): Promise<Canary> {
  const password = randomBytes(32).toString('base64url');
  const name = `Canary ${randomBytes(6).toString('hex')}`;
  const resource = adminResourceIndicator(app.config.publicUrl);
  const user = await app.users.create(
    tx,
    systemTenantId,
    { email: CANARY_EMAIL, name, password, emailVerified: true },
    'system',
  );
  const totpSecret = await app.mfa.provisionTotp(tx, systemTenantId, user.id, 'system');
  const client = await app.clients.create(
    tx,
    systemTenantId,
    { name: 'OrthID backup canary', grantTypes: ['client_credentials'], resources: [resource] },
    'system',
  );
  const body = Buffer.from(
    `OrthID canary object of deployment ${app.keystore.deploymentId}: ${randomBytes(16).toString('hex')}\n`,
  );
  await app.objects.put(CANARY_OBJECT_KEY, body, { contentType: 'text/plain' });
  const canary: Canary = {
    tenantSlug,
    email: CANARY_EMAIL,
    password,
    name,
    clientId: client.clientId,
    clientSecret: client.clientSecret!,
    resource,
    objectKey: CANARY_OBJECT_KEY,
    objectSha256: createHash('sha256').update(body).digest('hex'),
    totpSecret,
  };
  await app.keystore.setSecret(CANARY_SECRET, JSON.stringify(canary));
  return canary;
}

/** The canary recorded in a keystore, or undefined for a deployment that has none. */
export function readCanary(secret: string | undefined): Canary | undefined {
  return secret === undefined ? undefined : (JSON.parse(secret) as Canary);
}
