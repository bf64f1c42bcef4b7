// How the provider's bearer secrets are kept at rest: a row is named by a keyed hash of its id,
// never by the id, and a payload keeps no value a client could present; both come back on read.
import { createHmac } from 'node:crypto';
import { aeadOpen, aeadSeal } from '../crypto/aead.js';

type Payload = Record<string, unknown>;

/**
 * A grant's id is not a credential: no endpoint accepts one, and every token names its grant by
 * it (revokeByGrantId, the account's grant list), so Grant rows keep their ids. Every other
 * model's id is what a client or browser presents: a token, a code, a cookie value (Session,
 * Interaction), a PAR request_uri, an auth_req_id, a device code.
 */
const PLAIN_ID = new Set(['Grant']);

/**
 * An interaction's payload carries other secrets besides its own id: the session cookie value
 * (`session.cookie`), the device code and PAR ids, the resume URL (which holds the id), and the
 * authorization request's parameters (a login_hint). A pushed authorization request's payload is
 * such a request. Both are only ever found by their id, so all of it is sealed under a key only
 * that id yields.
 */
const SEALED_WHOLE = new Set(['Interaction', 'PushedAuthorizationRequest']);

/** Stays readable in a sealed payload: the provider's own bookkeeping, no secret. */
const OPEN_FIELDS = new Set(['kind', 'iat', 'exp']);

/**
 * Secrets inside a payload besides its id, sealed under the id. A device code's user code is
 * what the user types to approve the device; the row is also found by it (findByUserCode), so
 * the device code itself is sealed a second time under a key only the user code yields. Its
 * request's parameters and the device's address and user agent are personal data, sealed too.
 */
const SECRET_FIELDS: Record<string, string[]> = { DeviceCode: ['userCode', 'params', 'deviceInfo'] };

/** How a row was looked up: by the provider's id, by a user code, or by neither (a uid). */
export type Lookup = { id: string } | { userCode: string } | undefined;

export interface StoredSecrets {
  /** The row id a model instance is stored under. */
  rowId(model: string, id: string): string;
  /** The user_code column's value for a device flow user code. */
  userCode(value: string): string;
  /** The payload as stored: without the id, its other secrets sealed. */
  conceal(model: string, id: string, payload: Payload): Payload;
  /** The payload as the provider wrote it; undefined when the row is not the one looked up. */
  reveal(model: string, lookup: Lookup, stored: Payload): Payload | undefined;
}

/**
 * `key` is a tenant secret derived once per provider (the tenant's index key under its own
 * purpose), so each call costs one HMAC and never reaches key custody.
 */
export function createStoredSecrets(key: string): StoredSecrets {
  const mac = (purpose: string, value: string) =>
    createHmac('sha256', key).update(`${purpose}\u0000${value}`).digest();
  const aad = (model: string, under: string) => Buffer.from(`orthid/oidc-payload/v1|${model}|${under}`);
  const seal = (model: string, under: 'id' | 'user-code', secret: string, value: Payload) =>
    aeadSeal(
      mac(`seal|${under}|${model}`, secret),
      Buffer.from(JSON.stringify(value)),
      aad(model, under),
    ).toString('base64url');
  const open = (model: string, under: 'id' | 'user-code', secret: string, sealed: unknown) => {
    if (typeof sealed !== 'string') return undefined;
    const plain = aeadOpen(
      mac(`seal|${under}|${model}`, secret),
      Buffer.from(sealed, 'base64url'),
      aad(model, under),
    );
    return plain ? (JSON.parse(plain.toString('utf8')) as Payload) : undefined;
  };

  return {
    rowId: (model, id) => (PLAIN_ID.has(model) ? id : mac(`id|${model}`, id).toString('base64url')),
    userCode: (value) => mac('user-code', value).toString('base64url'),
    conceal(model, id, payload) {
      if (PLAIN_ID.has(model)) return payload;
      const { jti: _id, ...rest } = payload;
      const secret = (field: string) =>
        SEALED_WHOLE.has(model) ? !OPEN_FIELDS.has(field) : (SECRET_FIELDS[model] ?? []).includes(field);
      const kept: Payload = {};
      const hidden: Payload = {};
      for (const [field, value] of Object.entries(rest)) (secret(field) ? hidden : kept)[field] = value;
      if (Object.keys(hidden).length === 0) return kept;
      kept.sealed = seal(model, 'id', id, hidden);
      if (typeof hidden.userCode === 'string') {
        kept.sealedForUserCode = seal(model, 'user-code', hidden.userCode, { jti: id });
      }
      return kept;
    },
    reveal(model, lookup, stored) {
      if (PLAIN_ID.has(model)) return stored;
      const { sealed, sealedForUserCode, ...kept } = stored;
      // Found without a secret (a Session by its uid): given back without its id. The provider
      // only reads such a session (a token's session binding, an interaction's owner), never saves it.
      if (lookup === undefined) return kept;
      const id =
        'id' in lookup ? lookup.id : open(model, 'user-code', lookup.userCode, sealedForUserCode)?.jti;
      if (typeof id !== 'string') return undefined;
      if (sealed === undefined) return { ...kept, jti: id };
      // Not authentic under this id: not the row this id names, so not found.
      const hidden = open(model, 'id', id, sealed);
      return hidden ? { ...kept, ...hidden, jti: id } : undefined;
    },
  };
}
