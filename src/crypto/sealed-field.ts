// Seals and opens personal fields with a tenant's data key. A sealed value names its key id and
// version and is bound to tenant, table, column and row, so a copy moved anywhere else fails to open.
import { OrthIdError } from '../core/errors.js';
import { aeadOpen, aeadSeal } from './aead.js';

/** Where a sealed value lives; bound into the ciphertext as associated data. */
export interface FieldContext {
  tenantId: string;
  table: string;
  column: string;
  rowId: string;
}

export interface DataKey {
  id: string;
  version: number;
  key: Buffer;
}

const PREFIX = 'enc1';

function aad(context: FieldContext, keyId: string): Buffer {
  return Buffer.from(
    `orthid/field/v1|${context.tenantId}|${context.table}|${context.column}|${context.rowId}|${keyId}`,
  );
}

/** `enc1.<key id>.<key version>.<base64url(nonce || ciphertext || tag)>` */
export function sealField(key: DataKey, plaintext: string, context: FieldContext): string {
  const body = aeadSeal(key.key, Buffer.from(plaintext, 'utf8'), aad(context, key.id));
  return `${PREFIX}.${key.id}.${key.version}.${body.toString('base64url')}`;
}

export interface ParsedSealed {
  keyId: string;
  version: number;
  body: Buffer;
}

export function parseSealed(value: string): ParsedSealed {
  const [prefix, keyId, version, body, extra] = value.split('.');
  if (prefix !== PREFIX || !keyId || !version || !body || extra !== undefined || !/^\d+$/.test(version)) {
    throw new OrthIdError('crypto.ciphertext_malformed', 'A stored value is not an OrthID sealed field.');
  }
  return { keyId, version: Number(version), body: Buffer.from(body, 'base64url') };
}

export function openField(key: DataKey, sealed: ParsedSealed, context: FieldContext): string {
  const plain = aeadOpen(key.key, sealed.body, aad(context, key.id));
  if (!plain) {
    throw new OrthIdError(
      'crypto.decrypt_failed',
      `The sealed ${context.table}.${context.column} of row ${context.rowId} does not open: it was altered or copied from another row or tenant.`,
    );
  }
  return plain.toString('utf8');
}
