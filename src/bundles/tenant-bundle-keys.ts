// The keys a tenant's bundles are signed and verified with: its token signing keys, so the
// tenant's published JWKS verifies its bundles too.
import type { JSONWebKeySet } from 'jose';
import { OrthIdError } from '../core/errors.js';
import { type TenantSigningKey, usableSigningKeys } from '../crypto/signing-keys.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import type { Queryable } from '../storage/db/database.js';

/** The tenant's active signing key; `tx` is scoped to the keyring's tenant. */
export async function activeBundleKey(
  tx: Queryable,
  keyring: TenantKeyring,
  now: Date,
): Promise<TenantSigningKey> {
  const key = (await usableSigningKeys(tx, keyring, now)).find((k) => k.status === 'active');
  if (!key) {
    throw new OrthIdError(
      'bundle.signing_key_missing',
      'This tenant has no active signing key. Create one with: orthid keystore rotate-signing --tenant SLUG',
    );
  }
  return key;
}

/** The tenant's public JWKS as it is now (the same keys its OIDC `jwks_uri` publishes). */
export async function tenantBundleJwks(
  tx: Queryable,
  keyring: TenantKeyring,
  now: Date,
): Promise<JSONWebKeySet> {
  return { keys: (await usableSigningKeys(tx, keyring, now)).map((k) => k.publicJwk) };
}
