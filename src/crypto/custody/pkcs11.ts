// Key custody in a PKCS#11 token (an HSM; SoftHSM2 in tests): root keys are AES-256 keys generated
// inside the token, never extractable; data keys are wrapped and unwrapped there with AES-GCM.
import { randomBytes } from 'node:crypto';
import type { AesGCM, Mechanism, PKCS11, Template } from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import type { Pkcs11Uri } from '../../config/pkcs11-uri.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import {
  checkScope,
  DEPLOYMENT_SCOPE,
  isKeyScope,
  type RootKeyInfo,
  type WrappedKey,
} from '../key-custody.js';
import type { ByokCustody, CustodyInitResult, RootKeyProtection } from './byok-custody.js';

type Lib = PKCS11;
type Handle = Buffer;

export interface Pkcs11CustodyOptions {
  uri: Pkcs11Uri;
  /** The token's user PIN; kept in memory to log in again after the token comes back. */
  pin: string;
}

const NONCE = 12;
const TAG = 16;
const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

// Results after which a fresh session (and, for a module we alone use, a fresh C_Initialize)
// may succeed: the token was pulled and put back, the session timed out, the HSM restarted.
// SoftHSM2 answers CKR_GENERAL_ERROR when its token directory has gone.
const RECONNECT = new Set(
  [
    'CKR_SESSION_HANDLE_INVALID',
    'CKR_SESSION_CLOSED',
    'CKR_DEVICE_REMOVED',
    'CKR_DEVICE_ERROR',
    'CKR_TOKEN_NOT_PRESENT',
    'CKR_TOKEN_NOT_RECOGNIZED',
    'CKR_USER_NOT_LOGGED_IN',
    'CKR_GENERAL_ERROR',
    'CKR_CRYPTOKI_NOT_INITIALIZED',
  ].map((name) => (pkcs11js as unknown as Record<string, number>)[name]),
);

const ckr = (error: unknown): string =>
  error instanceof pkcs11js.Pkcs11Error ? error.message : 'native error';
const isCkr = (error: unknown, name: string): boolean =>
  error instanceof pkcs11js.Pkcs11Error &&
  error.code === (pkcs11js as unknown as Record<string, number>)[name];

// --- one loaded module per library path and process -------------------------------------------
// A PKCS#11 library keeps process-wide state: a second C_Initialize fails, and C_Finalize ends
// every user's sessions. So custodies share the loaded module and finalize it with the last one.

interface LoadedModule {
  path: string;
  lib: Lib;
  refs: number;
  initialized: boolean;
  /** False when someone else in this process initialised the library: we never finalize it. */
  owned: boolean;
}

const modules = new Map<string, LoadedModule>();

function unavailable(message: string, cause?: unknown): OrthIdError {
  return new OrthIdError('keystore.custody_unavailable', message, cause === undefined ? {} : { cause });
}

function initialise(module: LoadedModule): void {
  if (module.initialized) return;
  try {
    module.lib.C_Initialize();
    module.owned = true;
  } catch (error) {
    if (!isCkr(error, 'CKR_CRYPTOKI_ALREADY_INITIALIZED')) {
      throw unavailable(
        `The PKCS#11 module ${module.path} failed to initialise (${ckr(error)}). Check that the HSM is reachable; for SoftHSM2, that SOFTHSM2_CONF names a config whose tokendir exists.`,
        error,
      );
    }
    module.owned = false;
  }
  module.initialized = true;
}

function acquireModule(path: string): LoadedModule {
  let module = modules.get(path);
  if (module === undefined) {
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(path);
    } catch (error) {
      throw unavailable(
        `Could not load the PKCS#11 module ${path} (${(error as Error).message}). Install the HSM vendor's library there (SoftHSM2: apt-get install softhsm2) or fix module-path in ORTHID_KEYSTORE.`,
        error,
      );
    }
    module = { path, lib, refs: 0, initialized: false, owned: false };
    modules.set(path, module);
  }
  try {
    initialise(module);
  } catch (error) {
    if (module.refs === 0) {
      modules.delete(path);
      module.lib.close();
    }
    throw error;
  }
  module.refs += 1;
  return module;
}

function releaseModule(module: LoadedModule): void {
  module.refs -= 1;
  if (module.refs > 0) return;
  modules.delete(module.path);
  try {
    if (module.initialized && module.owned) module.lib.C_Finalize();
  } catch {
    // Finalizing a module whose token has gone can fail; the library is unloaded either way.
  }
  module.lib.close();
}

// --- labels -------------------------------------------------------------------------------------
// The deployment's first root key is labelled exactly `<object>` (so an operator can create it
// beforehand, e.g. with pkcs11-tool, and OrthID adopts it). Every other root key is labelled
// `<object>/<scope>/<stamp>`, the stamp being its UTC creation time (20261125T211900123Z), so
// labels are unique for good: a shredded tenant's key id is never reused. The label is the root
// key id; CKA_ID holds the stamp.

interface TokenKey {
  handle: Handle;
  id: string;
  scope: string;
  /** '' for an adopted `<object>` key whose creation time the token does not tell. */
  stamp: string;
}

function stampOf(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:.]/g, '')
    .replace(/(\d{6})(\d{3})Z$/, '$1$2Z');
}

function createdAtOf(stamp: string): string {
  const m = STAMP.exec(stamp);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : '';
}

/** Compares root keys of one scope, oldest first: the adopted `<object>` key, then by stamp. */
const byAge = (a: TokenKey, b: TokenKey): number => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0);

export class Pkcs11Custody implements ByokCustody {
  readonly kind = 'pkcs11' as const;
  readonly reference: string;
  private readonly uri: Pkcs11Uri;
  private readonly pin: string;
  private module: LoadedModule | undefined;
  private slot: Handle | undefined;
  private session: Handle | undefined;

  constructor(options: Pkcs11CustodyOptions) {
    this.uri = options.uri;
    this.pin = options.pin;
    this.reference = options.uri.uri;
  }

  /** Loads the module and logs in to the token; throws `keystore.custody_unavailable` if it cannot. */
  connect(): void {
    this.module ??= acquireModule(this.uri.modulePath);
    this.ensureSession();
  }

  /**
   * The key ceremony: generates the deployment root key (`<object>`) inside the token when no
   * root key of the deployment exists, or adopts the one there.
   */
  async init(): Promise<CustodyInitResult> {
    const id = this.run((lib, session) => {
      const existing = this.activeKey(lib, session, DEPLOYMENT_SCOPE);
      if (existing !== undefined) return { id: existing.id, created: false };
      this.generate(lib, session, this.uri.object, stampOf(new Date()));
      return { id: this.uri.object, created: true };
    });
    return { rootKeyId: id.id, created: id.created, protection: await this.protection(id.id) };
  }

  async rootKeys(): Promise<RootKeyInfo[]> {
    const keys = this.run((lib, session) => this.listKeys(lib, session));
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
    const nonce = randomBytes(NONCE);
    try {
      return this.run((lib, session) => {
        let root = this.activeKey(lib, session, scope);
        if (root === undefined) {
          // The deployment's own `<object>` label is created only by init (one ceremony, no race
          // between replicas); a first key made here gets a unique versioned label.
          const label = this.newLabel(lib, session, scope);
          root = {
            handle: this.generate(lib, session, label.id, label.stamp),
            id: label.id,
            scope,
            stamp: label.stamp,
          };
        }
        lib.C_EncryptInit(session, gcm(nonce, aad), root.handle);
        const sealed = lib.C_Encrypt(session, key, Buffer.alloc(key.length + TAG));
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
    if (blob.length < NONCE + TAG + 1) {
      throw new OrthIdError(
        'crypto.decrypt_failed',
        `The wrapped data key under ${wrapped.rootKeyId} is truncated.`,
      );
    }
    const aad = Buffer.from(context, 'utf8');
    return this.withRoot(
      wrapped.rootKeyId,
      (lib, session, handle) => {
        lib.C_DecryptInit(session, gcm(blob.subarray(0, NONCE), aad), handle);
        return Buffer.from(lib.C_Decrypt(session, blob.subarray(NONCE), Buffer.alloc(blob.length)));
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
        this.generate(lib, session, label.id, label.stamp);
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
      lib.C_GetTokenInfo(this.slot!);
      return this.listKeys(lib, session);
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
    this.dropSession();
    if (this.module !== undefined) releaseModule(this.module);
    this.module = undefined;
  }

  // --- sessions -----------------------------------------------------------------------------------
  // One session, used only inside synchronous runs: pkcs11js calls block, so no two operations
  // (e.g. two C_FindObjectsInit…Final sequences) ever interleave on it.

  private ensureSession(): Handle {
    if (this.session !== undefined) return this.session;
    const module = this.module;
    if (module === undefined) throw unavailable(`The PKCS#11 custody ${this.reference} is closed.`);
    const lib = module.lib;
    const slot = this.findSlot(module);
    let session: Handle;
    try {
      session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (error) {
      throw unavailable(`Could not open a session on the token "${this.uri.token}" (${ckr(error)}).`, error);
    }
    try {
      lib.C_Login(session, pkcs11js.CKU_USER, this.pin);
    } catch (error) {
      // Login is per application, not per session: another session of ours may hold it.
      if (!isCkr(error, 'CKR_USER_ALREADY_LOGGED_IN')) {
        try {
          lib.C_CloseSession(session);
        } catch {}
        throw this.loginFailure(error);
      }
    }
    this.slot = slot;
    this.session = session;
    return session;
  }

  private findSlot(module: LoadedModule): Handle {
    const lib = module.lib;
    let slots: Handle[];
    try {
      initialise(module);
      slots = lib.C_GetSlotList(true);
    } catch (error) {
      if (isOrthIdError(error)) throw error;
      // Only a module no one else in this process uses may be re-initialised to see tokens anew.
      if (!(module.owned && module.refs === 1)) {
        throw unavailable(`The PKCS#11 module ${module.path} cannot list its tokens (${ckr(error)}).`, error);
      }
      try {
        lib.C_Finalize();
      } catch {}
      module.initialized = false;
      initialise(module);
      try {
        slots = lib.C_GetSlotList(true);
      } catch (again) {
        throw unavailable(`The PKCS#11 module ${module.path} cannot list its tokens (${ckr(again)}).`, again);
      }
    }
    const seen: string[] = [];
    const matches = slots.filter((slot) => {
      try {
        const info = lib.C_GetTokenInfo(slot);
        const label = info.label.trim();
        if (label !== '') seen.push(label);
        return (
          label === this.uri.token &&
          (this.uri.serial === undefined || info.serialNumber.trim() === this.uri.serial) &&
          (this.uri.manufacturer === undefined || info.manufacturerID.trim() === this.uri.manufacturer) &&
          (this.uri.model === undefined || info.model.trim() === this.uri.model)
        );
      } catch {
        return false;
      }
    });
    if (matches.length === 0) {
      throw unavailable(
        `No token labelled "${this.uri.token}" is present in ${module.path} (tokens present: ${seen.length === 0 ? 'none' : seen.map((l) => `"${l}"`).join(', ')}). Insert or initialise the token, or fix token= in ORTHID_KEYSTORE.`,
      );
    }
    if (matches.length > 1) {
      throw unavailable(
        `${matches.length} tokens are labelled "${this.uri.token}"; add serial=… to ORTHID_KEYSTORE to say which one.`,
      );
    }
    const slot = matches[0]!;
    if (!lib.C_GetMechanismList(slot).includes(pkcs11js.CKM_AES_GCM)) {
      throw unavailable(
        `The token "${this.uri.token}" does not offer CKM_AES_GCM, which OrthID wraps data keys with.`,
      );
    }
    return slot;
  }

  private loginFailure(error: unknown): OrthIdError {
    const token = `"${this.uri.token}"`;
    if (isCkr(error, 'CKR_PIN_INCORRECT') || isCkr(error, 'CKR_PIN_LEN_RANGE')) {
      return unavailable(
        `The token ${token} rejected the PIN (${ckr(error)}). Check ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE; repeated wrong PINs lock the token.`,
        error,
      );
    }
    if (isCkr(error, 'CKR_PIN_LOCKED')) {
      return unavailable(
        `The token ${token} is locked after too many wrong PINs; its security officer must unlock it.`,
        error,
      );
    }
    return unavailable(`Could not log in to the token ${token} (${ckr(error)}).`, error);
  }

  private dropSession(): void {
    if (this.session === undefined || this.module === undefined) return;
    try {
      this.module.lib.C_CloseSession(this.session);
    } catch {
      // The session died with the token; nothing to close.
    }
    this.session = undefined;
  }

  /** Runs `fn` on the session; after a token-level failure, reconnects once and retries. */
  private run<T>(fn: (lib: Lib, session: Handle) => T): T {
    const lib = (this.module ?? this.connectModule()).lib;
    try {
      return fn(lib, this.ensureSession());
    } catch (error) {
      if (isOrthIdError(error) || !(error instanceof pkcs11js.Pkcs11Error) || !RECONNECT.has(error.code))
        throw error;
      this.dropSession();
      return fn(lib, this.ensureSession());
    }
  }

  private connectModule(): LoadedModule {
    this.module = acquireModule(this.uri.modulePath);
    return this.module;
  }

  /** The error to report when the token itself cannot be reached, or undefined when it can. */
  private outage(cause: unknown): OrthIdError | undefined {
    if (isOrthIdError(cause)) return cause;
    try {
      this.run((lib) => lib.C_GetTokenInfo(this.slot!));
      return undefined;
    } catch (error) {
      return isOrthIdError(error)
        ? error
        : unavailable(`The token "${this.uri.token}" stopped answering (${ckr(error)}).`, error);
    }
  }

  private failure(error: unknown, what: string): OrthIdError {
    return (
      this.outage(error) ??
      new OrthIdError(
        'keystore.custody_unavailable',
        `The token "${this.uri.token}" could not ${what} (${ckr(error)}).`,
        {
          cause: error,
        },
      )
    );
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
    const handles = this.find(lib, session, [
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

  private find(lib: Lib, session: Handle, template: Template): Handle[] {
    lib.C_FindObjectsInit(session, template);
    try {
      const handles: Handle[] = [];
      for (;;) {
        const batch = lib.C_FindObjects(session, 64);
        if (batch.length === 0) return handles;
        handles.push(...batch);
      }
    } finally {
      lib.C_FindObjectsFinal(session);
    }
  }

  private listKeys(lib: Lib, session: Handle): TokenKey[] {
    const handles = this.find(lib, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    ]);
    const keys: TokenKey[] = [];
    const prefix = `${this.uri.object}/`;
    for (const handle of handles) {
      const [label, id] = lib.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_LABEL },
        { type: pkcs11js.CKA_ID },
      ]);
      const text = label!.value.toString('utf8');
      if (text === this.uri.object) {
        const stamp = id!.value.toString('utf8');
        keys.push({ handle, id: text, scope: DEPLOYMENT_SCOPE, stamp: STAMP.test(stamp) ? stamp : '' });
      } else if (text.startsWith(prefix)) {
        const parts = text.slice(prefix.length).split('/');
        if (parts.length === 2 && isKeyScope(parts[0]!) && STAMP.test(parts[1]!)) {
          keys.push({ handle, id: text, scope: parts[0]!, stamp: parts[1]! });
        }
      }
    }
    return keys;
  }

  private activeKey(lib: Lib, session: Handle, scope: string): TokenKey | undefined {
    return this.listKeys(lib, session)
      .filter((key) => key.scope === scope)
      .sort(byAge)
      .at(-1);
  }

  private newLabel(lib: Lib, session: Handle, scope: string): { id: string; stamp: string } {
    const existing = new Set(this.listKeys(lib, session).map((key) => key.id));
    for (let t = Date.now(); ; t++) {
      const stamp = stampOf(new Date(t));
      const id = `${this.uri.object}/${scope}/${stamp}`;
      if (!existing.has(id)) return { id, stamp };
    }
  }

  private generate(lib: Lib, session: Handle, label: string, stamp: string): Handle {
    return lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: Buffer.from(stamp, 'utf8') },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      // Least privilege: the key wraps by encryption only; it cannot export other keys or sign.
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ]);
  }
}

function gcm(nonce: Buffer, aad: Buffer): Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_GCM,
      iv: nonce,
      aad,
      ivBits: NONCE * 8,
      tagBits: TAG * 8,
    } as AesGCM,
  };
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
