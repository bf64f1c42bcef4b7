// The one interface behind which root keys live: wrap and unwrap tenant data keys. The managed
// keystore implements it today; HSM (PKCS#11) and cloud KMS custody plug in without touching callers.

/** A data key wrapped by a root key; stored in Postgres beside the tenant's rows. */
export interface WrappedKey {
  /** Which custody wrapped it, e.g. "managed". */
  custody: string;
  /** The root key (id and version) that wrapped it; backups name these in their manifest. */
  rootKeyId: string;
  /** base64url ciphertext of the data key. */
  wrapped: string;
}

export interface KeyCustody {
  readonly kind: string;
  /** Every root key id this custody can unwrap with. */
  rootKeyIds(): string[];
  /** Wraps a fresh data key under the active root key; `context` binds it to its owner. */
  wrap(key: Buffer, context: string): Promise<WrappedKey>;
  unwrap(wrapped: WrappedKey, context: string): Promise<Buffer>;
  /** Throws `keystore.custody_unavailable` when keys cannot be reached (used by /readyz). */
  check(): Promise<void>;
}
