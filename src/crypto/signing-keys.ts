// Token signing keys per tenant: generated with jose, private halves sealed under the tenant's
// data key, rotated with overlap so tokens signed by a previous key verify until they expire.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Queryable } from '../core/sql.js';
import { createSigningKeysQueries, type SigningKeyRow } from './signing-keys.queries.js';
import type { TenantKeyring } from './tenant-keys.js';

export type SigningAlg = SigningKeyRow['alg'];
export const SIGNING_ALGS: readonly SigningAlg[] = ['EdDSA', 'ES256', 'RS256'];

export interface TenantSigningKey {
  kid: string;
  alg: SigningAlg;
  status: 'active' | 'retiring';
  privateJwk: JWK;
  publicJwk: JWK;
}

const FIELD = { table: 'signing_keys', column: 'private_jwk' };

async function generate(alg: SigningAlg): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    ...(alg === 'RS256' ? { modulusLength: 3072 } : {}),
  });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const meta = { kid, alg, use: 'sig' };
  return {
    kid,
    publicJwk: { ...publicJwk, ...meta },
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
  };
}

/** Keys that may sign or verify now, the active key first; `tx` is scoped to the keyring's tenant. */
export async function usableSigningKeys(
  tx: Queryable,
  keyring: TenantKeyring,
  now: Date,
): Promise<TenantSigningKey[]> {
  const rows = await createSigningKeysQueries(tx).usable(now);
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    status: row.status === 'active' ? 'active' : 'retiring',
    publicJwk: row.public_jwk as JWK,
    privateJwk: JSON.parse(keyring.open(row.private_jwk, { ...FIELD, rowId: row.kid })) as JWK,
  }));
}

/**
 * Creates a new active key; any previous active key keeps verifying (in JWKS) until
 * `overlapSeconds` from now, the longest lifetime of a token it may have signed.
 */
export async function rotateSigningKey(
  tx: Queryable,
  keyring: TenantKeyring,
  alg: SigningAlg,
  now: Date,
  overlapSeconds: number,
): Promise<string> {
  const queries = createSigningKeysQueries(tx);
  await queries.markRetired(now);
  await queries.retireActive(new Date(now.getTime() + overlapSeconds * 1000));
  const key = await generate(alg);
  await queries.insert(keyring.tenantId, {
    kid: key.kid,
    alg,
    public_jwk: key.publicJwk as Record<string, unknown>,
    private_jwk: keyring.seal(JSON.stringify(key.privateJwk), { ...FIELD, rowId: key.kid }),
    status: 'active',
    retire_after: null,
  });
  return key.kid;
}

/**
 * Rotates the tenant's signing key when the active one is older than `maxAgeMs`; returns the new
 * kid, or undefined when the key is young enough (or another replica just rotated it).
 */
export async function rotateSigningKeyIfAged(
  tx: Queryable,
  keyring: TenantKeyring,
  alg: SigningAlg,
  now: Date,
  maxAgeMs: number,
  overlapSeconds: number,
): Promise<string | undefined> {
  const createdAt = await createSigningKeysQueries(tx).lockActiveCreatedAt(keyring.tenantId);
  if (!createdAt || now.getTime() - new Date(createdAt).getTime() < maxAgeMs) return undefined;
  return rotateSigningKey(tx, keyring, alg, now, overlapSeconds);
}
