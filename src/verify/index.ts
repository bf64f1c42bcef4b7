// The token verifier OrthID exports for resource servers (`import { createVerifier } from
// 'orthid/verify'`): discovers a tenant's JWKS, caches it, and checks signature, issuer, audience and expiry.
import {
  type CryptoKey,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type FlattenedJWSInput,
  type JWTPayload,
  jwtVerify,
  type KeyObject,
  type ProtectedHeaderParameters,
} from 'jose';

/** Claims of an OrthID access token. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  client_id: string;
  /** Space-separated permissions granted on this audience. */
  scope?: string;
  /** Roles behind those permissions. */
  roles?: string[];
}

export interface VerifierOptions {
  /** The tenant's issuer, e.g. https://id.example.com/t/acme. */
  issuer: string;
  /** This resource server's indicator; tokens for other audiences are rejected. */
  audience: string;
  /** Accepted signing algorithms (default EdDSA, ES256, RS256). */
  algorithms?: string[];
  /** Clock tolerance in seconds (default 5). */
  clockToleranceSeconds?: number;
}

/** How long a fetched key set (and a key resolved from it) is trusted before it is fetched again. */
const KEY_SET_MAX_AGE_MS = 10 * 60_000;
/** Distinct kid × alg pairs remembered (only keys the set resolved; rotations add more over time). */
const MAX_RESOLVED_KEYS = 100;

export class TokenVerificationError extends Error {
  constructor(
    readonly code: 'token.invalid' | 'token.expired' | 'token.discovery_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenVerificationError';
  }
}

/**
 * @example
 * const verify = createVerifier({ issuer: 'https://id.example.com/t/acme', audience: 'https://api.example.com' });
 * const claims = await verify(bearerToken); // throws TokenVerificationError
 * if (!claims.scope?.split(' ').includes('orders:read')) reply.code(403);
 */
export function createVerifier(options: VerifierOptions): (token: string) => Promise<AccessTokenClaims> {
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  // Keys the set resolved, by kid and alg, for as long as the set itself trusts them: handing
  // jwtVerify the key instead of the set spares every verification jose's asynchronous key
  // selection (~5 % of an ES256 verification). A kid not seen yet, or an entry older than the
  // set's cache age, goes back to the set, which refetches the JWKS as it would have anyway.
  const resolved = new Map<string, { key: CryptoKey | KeyObject; until: number }>();

  const discover = async () => {
    const url = `${options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let metadata: { issuer?: string; jwks_uri?: string };
    try {
      const response = await fetch(url, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      metadata = (await response.json()) as typeof metadata;
    } catch (cause) {
      throw new TokenVerificationError('token.discovery_failed', `Could not read ${url}.`, { cause });
    }
    if (metadata.issuer !== options.issuer || !metadata.jwks_uri) {
      throw new TokenVerificationError(
        'token.discovery_failed',
        `${url} does not describe issuer ${options.issuer}.`,
      );
    }
    // jose caches the key set and refetches it (at most every 30 s) when a token names an unknown kid.
    return createRemoteJWKSet(new URL(metadata.jwks_uri), {
      cooldownDuration: 30_000,
      cacheMaxAge: KEY_SET_MAX_AGE_MS,
    });
  };

  const idOf = (header: ProtectedHeaderParameters) => `${header.kid ?? ''}|${header.alg ?? ''}`;
  const remembered = (header: ProtectedHeaderParameters) => {
    const hit = resolved.get(idOf(header));
    return hit && hit.until > Date.now() ? hit.key : undefined;
  };
  const resolve = async (header: ProtectedHeaderParameters, token: string) => {
    jwks ??= discover().catch((error) => {
      jwks = undefined;
      throw error;
    });
    const [encoded, payload, signature] = token.split('.');
    const key = await (await jwks)(header, { protected: encoded, payload, signature } as FlattenedJWSInput);
    if (resolved.size >= MAX_RESOLVED_KEYS) resolved.clear();
    resolved.set(idOf(header), { key, until: Date.now() + KEY_SET_MAX_AGE_MS });
    return key;
  };

  return async (token) => {
    try {
      const header = decodeProtectedHeader(token);
      const key = remembered(header) ?? (await resolve(header, token));
      const { payload } = await jwtVerify(token, key, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: options.algorithms ?? ['EdDSA', 'ES256', 'RS256'],
        clockTolerance: options.clockToleranceSeconds ?? 5,
        requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
      });
      return payload as AccessTokenClaims;
    } catch (error) {
      if (error instanceof TokenVerificationError) throw error;
      if (error instanceof errors.JWTExpired)
        throw new TokenVerificationError('token.expired', 'The token has expired.', { cause: error });
      throw new TokenVerificationError('token.invalid', 'The token is not valid for this resource server.', {
        cause: error,
      });
    }
  };
}
