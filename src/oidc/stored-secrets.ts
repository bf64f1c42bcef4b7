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
 * authorization request's parameters (a login_hint). It is only ever found by its id, so all of
 * it is sealed under a key only that id yields.
 */
const SEALED_WHOLE = new Set(['Interaction']);

/** Stays readable in a sealed payload: the provider's own bookkeeping, no secret. */
const OPEN_FIELDS = ['kind', 'iat', 'exp'] as const;

export interface StoredSecrets {
  /** The row id a model instance is stored under. */
  rowId(model: string, id: string): string;
  /** The user_code column's value for a device flow user code. */
  userCode(value: string): string;
  /** The payload as stored: without the id, sealed where it holds other secrets. */
  conceal(model: string, id: string, payload: Payload): Payload;
  /** The payload as the provider wrote it, given the id it was looked up by. */
  reveal(model: string, id: string | undefined, stored: Payload): Payload | undefined;
}

/**
 * `key` is a tenant secret derived once per provider (the tenant's index key under its own
 * purpose), so each call costs one HMAC and never reaches key custody.
 */
export function createStoredSecrets(key: string): StoredSecrets {
  const mac = (purpose: string, value: string) =>
    createHmac('sha256', key).update(`${purpose}\u0000${value}`).digest();
  const aad = (model: string) => Buffer.from(`orthid/oidc-payload/v1|${model}`);
  const sealKey = (model: string, id: string) => mac(`seal|${model}`, id);

  return {
    rowId: (model, id) => (PLAIN_ID.has(model) ? id : mac(`id|${model}`, id).toString('base64url')),
    userCode: (value) => mac('user-code', value).toString('base64url'),
    conceal(model, id, payload) {
      if (PLAIN_ID.has(model)) return payload;
      const { jti: _id, ...rest } = payload;
      if (!SEALED_WHOLE.has(model)) return rest;
      const open: Payload = {};
      for (const field of OPEN_FIELDS) if (field in rest) open[field] = rest[field];
      const body = aeadSeal(sealKey(model, id), Buffer.from(JSON.stringify(rest)), aad(model));
      return { ...open, sealed: body.toString('base64url') };
    },
    reveal(model, id, stored) {
      if (PLAIN_ID.has(model)) return stored;
      // Found without its id (a Session by uid): given back without it. The provider only reads
      // such a session (a token's session binding, an interaction's owner) and never saves it.
      if (id === undefined) return stored;
      if (!SEALED_WHOLE.has(model) || typeof stored.sealed !== 'string') return { ...stored, jti: id };
      const plain = aeadOpen(sealKey(model, id), Buffer.from(stored.sealed, 'base64url'), aad(model));
      // Not authentic under this id: not the row this id names, so not found.
      if (!plain) return undefined;
      return { ...(JSON.parse(plain.toString('utf8')) as Payload), jti: id };
    },
  };
}
