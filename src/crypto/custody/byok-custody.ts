// What BYOK custody (a PKCS#11 token, a cloud KMS) offers beyond KeyCustody: the key ceremony
// that creates or adopts the deployment's root key. Types only; the providers implement them.
import type { KeyCustody } from '../key-custody.js';

/** The protection a token reports for a root key (never its value). */
export interface RootKeyProtection {
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
  /** Generated inside the token (CKA_LOCAL), rather than imported. */
  local: boolean;
}

/** What `init` did: generated the deployment's root key, or adopted the one already there. */
export interface CustodyInitResult {
  rootKeyId: string;
  created: boolean;
  /** PKCS#11 only: an adopted key may be weaker than one OrthID generates; show it to the operator. */
  protection?: RootKeyProtection;
}

export interface ByokCustody extends KeyCustody {
  readonly kind: 'pkcs11' | 'awskms';
  /**
   * The key ceremony (`orthid keystore init`): PKCS#11 generates the deployment root key inside
   * the token unless one exists; AWS KMS checks that the configured key exists and can encrypt.
   */
  init(): Promise<CustodyInitResult>;
}
