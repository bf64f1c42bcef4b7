// The one interface behind which root keys live: wrap and unwrap tenant data keys. The managed
// keystore, a PKCS#11 token and a cloud KMS implement it; callers never see key material.
import { OrthIdError } from '../core/errors.js';

/** A data key wrapped by a root key; stored in Postgres beside the tenant's rows. */
export interface WrappedKey {
  /** Which custody wrapped it: "managed", "pkcs11" or "awskms". */
  custody: string;
  /** The root key (id and version) that wrapped it; backups name these in their manifest. */
  rootKeyId: string;
  /** base64url ciphertext of the data key. */
  wrapped: string;
}

export interface RootKeyInfo {
  id: string;
  /** Whose data keys it wraps: a tenant id, or "deployment". Destroying a scope's keys shreds it. */
  scope: string;
  /** `active` wraps new keys; `retired` only unwraps (older backups still refer to it). */
  status: 'active' | 'retired';
  createdAt: string;
}

export type CustodyKind = 'managed' | 'pkcs11' | 'awskms';

export interface KeyCustody {
  readonly kind: CustodyKind;
  /** Where the root keys live, without secrets: a file path, a PKCS#11 URI without PIN, a KMS key ARN. */
  readonly reference: string;
  /** Root keys this custody holds (ids and metadata only, never material). */
  rootKeys(): Promise<RootKeyInfo[]>;
  /**
   * Wraps a data key under the active root key of `scope`, creating the scope's first root key
   * when it has none. `context` is bound to the ciphertext (AAD / encryption context).
   */
  wrap(key: Buffer, context: string, scope: string): Promise<WrappedKey>;
  unwrap(wrapped: WrappedKey, context: string): Promise<Buffer>;
  /** Creates a new root key version for `scope` and makes it the active one; returns its id. */
  rotate(scope: string): Promise<string>;
  /** Destroys a root key version for good (crypto-shredding): nothing it wrapped opens again. */
  destroy(rootKeyId: string): Promise<void>;
  /** Throws `keystore.custody_unavailable` when keys cannot be reached (used by /readyz). */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** The scope of root keys that belong to no tenant. */
export const DEPLOYMENT_SCOPE = 'deployment';

/** A scope as the custodies store it (a tenant id, or "deployment"): safe in key labels and tags. */
const SCOPE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Whether `text` is a key scope (a label or tag read back from a token or KMS may not be). */
export function isKeyScope(text: string): boolean {
  return SCOPE.test(text);
}

/** `request.invalid` unless `scope` is a key scope; every custody checks with this one rule. */
export function checkScope(scope: string): void {
  if (!isKeyScope(scope)) {
    throw new OrthIdError('request.invalid', `"${scope}" is not a key scope (a tenant id, or "deployment").`);
  }
}
