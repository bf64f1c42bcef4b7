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

/** What an operator sees of a signing key: never its private half. */
export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  status: 'active' | 'retiring';
  createdAt: string;
  /** A retiring key leaves JWKS at this time. */
  retireAfter: string | null;
}

/** The keys that may sign or verify now (as `usableSigningKeys`), without opening any private half. */
export async function describeSigningKeys(tx: Queryable, now: Date): Promise<SigningKeyInfo[]> {
  const rows = await createSigningKeysQueries(tx).usable(now);
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    status: row.status === 'active' ? 'active' : 'retiring',
    createdAt: new Date(row.created_at).toISOString(),
    retireAfter: row.retire_after ? new Date(row.retire_after).toISOString() : null,
  }));
}

/**
 * The active key of `alg` among `keys`. A tenant holds one active key per algorithm it signs
 * with: its default (settings.signingAlg: bundles, audit checkpoints, access tokens) and RS256,
 * the algorithm every OpenID provider must offer, with ES256 and EdDSA for clients that ask.
 */
export function activeKeyOf(keys: TenantSigningKey[], alg: SigningAlg): TenantSigningKey | undefined {
  return keys.find((k) => k.status === 'active' && k.alg === alg);
}

/**
 * Creates a new active key of `alg`; the previous active key of that algorithm keeps verifying
 * (in JWKS) until `overlapSeconds` from now, the longest lifetime of a token it may have signed.
 * Keys of other algorithms are left as they are.
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
  await queries.retireActive(alg, new Date(now.getTime() + overlapSeconds * 1000));
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
 * Rotates each of the tenant's active keys at least `maxAgeMs` old, whatever its algorithm (all of
 * them when `maxAgeMs` is omitted); returns the new keys (none when every key is young enough, or
 * another replica just rotated).
 */
export async function rotateSigningKeys(
  tx: Queryable,
  keyring: TenantKeyring,
  now: Date,
  overlapSeconds: number,
  maxAgeMs = Number.NEGATIVE_INFINITY,
): Promise<{ alg: SigningAlg; kid: string }[]> {
  const queries = createSigningKeysQueries(tx);
  await queries.lock(keyring.tenantId);
  const rotated: { alg: SigningAlg; kid: string }[] = [];
  for (const [alg, createdAt] of await queries.activeCreatedAt()) {
    if (now.getTime() - createdAt.getTime() < maxAgeMs) continue;
    rotated.push({ alg, kid: await rotateSigningKey(tx, keyring, alg, now, overlapSeconds) });
  }
  return rotated;
}

/**
 * Adds an active key for each of `algs` the tenant lacks; true when it added one. Replicas
 * building the same tenant's provider at once add each key once (the tenant's signing lock).
 */
export async function ensureSigningKeys(
  tx: Queryable,
  keyring: TenantKeyring,
  algs: readonly SigningAlg[],
  now: Date,
): Promise<boolean> {
  const queries = createSigningKeysQueries(tx);
  const missing = (present: Map<SigningAlg, Date>) => algs.filter((alg) => !present.has(alg));
  if (missing(await queries.activeCreatedAt()).length === 0) return false;
  await queries.lock(keyring.tenantId);
  const toAdd = missing(await queries.activeCreatedAt());
  for (const alg of toAdd) await rotateSigningKey(tx, keyring, alg, now, 0);
  return toAdd.length > 0;
}
