// Root key labels on the token. The deployment's first root key is labelled exactly `<object>`
// (so an operator can create it beforehand, e.g. with pkcs11-tool, and OrthID adopts it). Every
// other root key is labelled `<object>/<scope>/<stamp>`, the stamp being its UTC creation time
// (20261125T211900123Z), so labels are unique for good: a shredded tenant's key id is never
// reused. The label is the root key id; CKA_ID holds the stamp.
import { DEPLOYMENT_SCOPE, isKeyScope } from '../key-custody.js';
import type { Handle } from './pkcs11-module.js';

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

export interface TokenKey {
  handle: Handle;
  id: string;
  scope: string;
  /** '' for an adopted `<object>` key whose creation time the token does not tell. */
  stamp: string;
}

export function stampOf(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:.]/g, '')
    .replace(/(\d{6})(\d{3})Z$/, '$1$2Z');
}

export function createdAtOf(stamp: string): string {
  const m = STAMP.exec(stamp);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : '';
}

/** Compares root keys of one scope, oldest first: the adopted `<object>` key, then by stamp. */
export const byAge = (a: TokenKey, b: TokenKey): number =>
  a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0;

/** The key a label (and CKA_ID) on the token names, or undefined when it is no OrthID root key of `object`. */
export function parseLabel(
  object: string,
  handle: Handle,
  label: string,
  ckaId: string,
): TokenKey | undefined {
  if (label === object) {
    return { handle, id: label, scope: DEPLOYMENT_SCOPE, stamp: STAMP.test(ckaId) ? ckaId : '' };
  }
  if (!label.startsWith(`${object}/`)) return undefined;
  const parts = label.slice(object.length + 1).split('/');
  if (parts.length === 2 && isKeyScope(parts[0]!) && STAMP.test(parts[1]!)) {
    return { handle, id: label, scope: parts[0]!, stamp: parts[1]! };
  }
  return undefined;
}

/** The label of a new root key of `scope` made at `stamp`. */
export function labelOf(object: string, scope: string, stamp: string): string {
  return `${object}/${scope}/${stamp}`;
}
