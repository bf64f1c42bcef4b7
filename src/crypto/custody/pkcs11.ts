// Key custody in a PKCS#11 token (an HSM; SoftHSM2 in tests): root keys are AES-256 keys generated
// inside the token, never extractable; data keys are wrapped and unwrapped there with AES-GCM.
// The module is loaded by pkcs11-module.ts, the session kept by pkcs11-session.ts, the keys'
// labels read by pkcs11-labels.ts and the key operations run by pkcs11-key-operations.ts.
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { Pkcs11Uri } from '../../config/pkcs11-uri.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { checkScope, DEPLOYMENT_SCOPE, type RootKeyInfo, type WrappedKey } from '../key-custody.js';
import type { ByokCustody, CustodyInitResult, RootKeyProtection } from './byok-custody.js';
import {
  findObjects,
  GCM_NONCE,
  GCM_TAG,
  gcm,
  generateRootKey,
  listRootKeys,
} from './pkcs11-key-operations.js';
import { byAge, createdAtOf, labelOf, stampOf, type TokenKey } from './pkcs11-labels.js';
import { type Handle, type Lib, unavailable } from './pkcs11-module.js';
import { Pkcs11Session } from './pkcs11-session.js';

export interface Pkcs11CustodyOptions {
  uri: Pkcs11Uri;
  /** The token's user PIN; kept in memory to log in again after the token comes back. */
  pin: string;
  /** Dates the root keys it generates (their labels carry the time); the system clock by default. */
  clock?: Clock;
}

export class Pkcs11Custody implements ByokCustody {
  readonly kind = 'pkcs11' as const;
  readonly reference: string;
  private readonly uri: Pkcs11Uri;
  private readonly token: Pkcs11Session;
  private readonly clock: Clock;

  constructor(options: Pkcs11CustodyOptions) {
    this.uri = options.uri;
    this.clock = options.clock ?? systemClock;
    this.reference = options.uri.uri;
    this.token = new Pkcs11Session(options.uri, options.pin);
  }

  /** Loads the module and logs in to the token; throws `keystore.custody_unavailable` if it cannot. */
  connect(): void {
    this.token.connect();
  }

  /** Runs `fn` on the token's session (reconnecting once after a token-level failure). */
  private run<T>(fn: (lib: Lib, session: Handle) => T): T {
    return this.token.run(fn);
  }

  private failure(error: unknown, what: string): OrthIdError {
    return this.token.failure(error, what);
  }

  private outage(cause: unknown): OrthIdError | undefined {
    return this.token.outage(cause);
  }

  /**
   * The key ceremony: generates the deployment root key (`<object>`) inside the token when no
   * root key of the deployment exists, or adopts the one there.
   */
  async init(): Promise<CustodyInitResult> {
    const id = this.run((lib, session) => {
      const existing = this.activeKey(lib, session, DEPLOYMENT_SCOPE);
      if (existing !== undefined) return { id: existing.id, created: false };
      generateRootKey(lib, session, this.uri.object, stampOf(this.clock.now()));
      return { id: this.uri.object, created: true };
    });
    return { rootKeyId: id.id, created: id.created, protection: await this.protection(id.id) };
  }

  async rootKeys(): Promise<RootKeyInfo[]> {
    const keys = this.run((lib, session) => listRootKeys(lib, session, this.uri.object));
    const scopes = new Map<string, TokenKey[]>();
    for (const key of keys) scopes.set(key.scope, [...(scopes.get(key.scope) ?? []), key]);
    return [...scopes.values()].flatMap((versions) =>
      versions.sort(byAge).map((key, i) => ({
        id: key.id,
        scope: key.scope,
        status: i === versions.length - 1 ? ('active' as const) : ('retired' as const),
        createdAt: createdAtOf(key.stamp),
      })),
    );
  }

  async wrap(key: Buffer, context: string, scope: string): Promise<WrappedKey> {
    checkScope(scope);
    const aad = Buffer.from(context, 'utf8');
    const nonce = randomBytes(GCM_NONCE);
    try {
      return this.run((lib, session) => {
        let root = this.activeKey(lib, session, scope);
        if (root === undefined) {
          // The deployment's own `<object>` label is created only by init (one ceremony, no race
          // between replicas); a first key made here gets a unique versioned label.
          const label = this.newLabel(lib, session, scope);
          root = {
            handle: generateRootKey(lib, session, label.id, label.stamp),
            id: label.id,
            scope,
            stamp: label.stamp,
          };
        }
        lib.C_EncryptInit(session, gcm(nonce, aad), root.handle);
        const sealed = lib.C_Encrypt(session, key, Buffer.alloc(key.length + GCM_TAG));
        return {
          custody: this.kind,
          rootKeyId: root.id,
          wrapped: Buffer.concat([nonce, sealed]).toString('base64url'),
        };
      });
    } catch (error) {
      throw this.failure(error, 'wrap a data key');
    }
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    if (wrapped.custody !== this.kind) {
      throw new OrthIdError(
        'keystore.key_not_found',
        `This data key was wrapped by "${wrapped.custody}" custody, not by the PKCS#11 token ${this.reference}.`,
      );
    }
    const blob = Buffer.from(wrapped.wrapped, 'base64url');
    if (blob.length < GCM_NONCE + GCM_TAG + 1) {
      throw new OrthIdError(
        'crypto.decrypt_failed',
        `The wrapped data key under ${wrapped.rootKeyId} is truncated.`,
      );
    }
    const aad = Buffer.from(context, 'utf8');
    return this.withRoot(
      wrapped.rootKeyId,
      (lib, session, handle) => {
        lib.C_DecryptInit(session, gcm(blob.subarray(0, GCM_NONCE), aad), handle);
        return Buffer.from(lib.C_Decrypt(session, blob.subarray(GCM_NONCE), Buffer.alloc(blob.length)));
      },
      // The token says only "failed" (SoftHSM2: CKR_GENERAL_ERROR) for a wrong tag; with the
      // token still answering and the key found, that is a decryption failure.
      (error) =>
        new OrthIdError(
          'crypto.decrypt_failed',
          `The data key wrapped under ${wrapped.rootKeyId} does not open in this context: it was wrapped for another owner, or it is corrupt.`,
          { cause: error },
        ),
    );
  }

  async rotate(scope: string): Promise<string> {
    checkScope(scope);
    try {
      return this.run((lib, session) => {
        const label = this.newLabel(lib, session, scope);
        generateRootKey(lib, session, label.id, label.stamp);
        return label.id;
      });
    } catch (error) {
      throw this.failure(error, 'generate a root key');
    }
  }

  async destroy(rootKeyId: string): Promise<void> {
    this.withRoot(rootKeyId, (lib, session, handle) => lib.C_DestroyObject(session, handle));
  }

  async check(): Promise<void> {
    const keys = this.run((lib, session) => {
      this.token.tokenInfo(lib);
      return listRootKeys(lib, session, this.uri.object);
    });
    if (keys.length === 0) {
      throw new OrthIdError(
        'keystore.not_initialised',
        `The token "${this.uri.token}" holds no OrthID root key labelled "${this.uri.object}". Create it with: orthid keystore init`,
      );
    }
  }

  /** The root key's protection attributes, as the token reports them (never its value). */
  async protection(rootKeyId: string): Promise<RootKeyProtection> {
    return this.withRoot(rootKeyId, (lib, session, handle) => {
      const names = [
        'CKA_SENSITIVE',
        'CKA_EXTRACTABLE',
        'CKA_ALWAYS_SENSITIVE',
        'CKA_NEVER_EXTRACTABLE',
        'CKA_LOCAL',
      ];
      const values = lib
        .C_GetAttributeValue(
          session,
          handle,
          names.map((name) => ({ type: (pkcs11js as unknown as Record<string, number>)[name]! })),
        )
        .map((a) => a.value[0] === 1);
      return {
        sensitive: values[0]!,
        extractable: values[1]!,
        alwaysSensitive: values[2]!,
        neverExtractable: values[3]!,
        local: values[4]!,
      };
    });
  }

  async close(): Promise<void> {
    this.token.close();
  }

  // --- keys ---------------------------------------------------------------------------------------

  /**
   * Finds the root key and runs `fn` with it in one run on the session. A key not in the token
   * is `keystore.key_not_found`; a token that stopped answering `keystore.custody_unavailable`;
   * any other failure is what `onFailure` says (default: custody_unavailable).
   */
  private withRoot<T>(
    rootKeyId: string,
    fn: (lib: Lib, session: Handle, handle: Handle) => T,
    onFailure?: (error: unknown) => OrthIdError,
  ): T {
    let result: { found: false } | { found: true; value: T };
    try {
      result = this.run((lib, session) => {
        const handle = this.findByLabel(lib, session, rootKeyId);
        return handle === undefined ? { found: false } : { found: true, value: fn(lib, session, handle) };
      });
    } catch (error) {
      if (isOrthIdError(error)) throw error;
      throw this.outage(error) ?? onFailure?.(error) ?? this.failure(error, `use root key ${rootKeyId}`);
    }
    if (!result.found) {
      // SoftHSM2 finds nothing, rather than failing, once its token directory has gone.
      const outage = this.outage(undefined);
      if (outage) throw outage;
      throw new OrthIdError(
        'keystore.key_not_found',
        `The root key ${rootKeyId} is not in the token "${this.uri.token}": it was destroyed (shredded or retired), or this is another token.`,
      );
    }
    return result.value;
  }

  private findByLabel(lib: Lib, session: Handle, label: string): Handle | undefined {
    if (label !== this.uri.object && !label.startsWith(`${this.uri.object}/`)) return undefined;
    const handles = findObjects(lib, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    if (handles.length > 1) {
      throw new OrthIdError(
        'keystore.custody_unavailable',
        `The token "${this.uri.token}" holds ${handles.length} keys labelled "${label}"; keep one (pkcs11-tool --list-objects shows them).`,
      );
    }
    return handles[0];
  }

  private activeKey(lib: Lib, session: Handle, scope: string): TokenKey | undefined {
    return listRootKeys(lib, session, this.uri.object)
      .filter((key) => key.scope === scope)
      .sort(byAge)
      .at(-1);
  }

  private newLabel(lib: Lib, session: Handle, scope: string): { id: string; stamp: string } {
    const existing = new Set(listRootKeys(lib, session, this.uri.object).map((key) => key.id));
    for (let t = this.clock.now().getTime(); ; t++) {
      const stamp = stampOf(new Date(t));
      const id = labelOf(this.uri.object, scope, stamp);
      if (!existing.has(id)) return { id, stamp };
    }
  }
}

/**
 * Opens PKCS#11 custody and logs in to the token, so a wrong PIN or a missing token is reported
 * at start (`keystore.custody_unavailable`), never as a stack trace.
 *
 * @example
 * const custody = await openPkcs11Custody({ uri: parsed, pin });
 * await custody.init(); // generates or adopts the deployment's root key
 */
export async function openPkcs11Custody(options: Pkcs11CustodyOptions): Promise<Pkcs11Custody> {
  const custody = new Pkcs11Custody(options);
  try {
    custody.connect();
  } catch (error) {
    await custody.close();
    throw isOrthIdError(error)
      ? error
      : unavailable(`Could not open the PKCS#11 custody ${custody.reference}.`, error);
  }
  return custody;
}
