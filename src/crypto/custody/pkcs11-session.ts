// One logged-in session on the PKCS#11 token a custody URI names: finding the token's slot
// (by label, and serial, manufacturer and model when given), opening a session and logging in
// with the PIN, and opening them again after the token went away and came back. Only inside
// synchronous runs: pkcs11js calls block, so no two operations (e.g. two
// C_FindObjectsInit…Final sequences) ever interleave on the session.
import pkcs11js from 'pkcs11js';
import type { Pkcs11Uri } from '../../config/pkcs11-uri.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import {
  acquireModule,
  ckr,
  type Handle,
  initialise,
  isCkr,
  type Lib,
  type LoadedModule,
  RECONNECT,
  releaseModule,
  unavailable,
} from './pkcs11-module.js';

export class Pkcs11Session {
  private module: LoadedModule | undefined;
  private slot: Handle | undefined;
  private session: Handle | undefined;

  /** `pin` is kept in memory to log in again after the token comes back. */
  constructor(
    private readonly uri: Pkcs11Uri,
    private readonly pin: string,
  ) {}

  /** Loads the module and logs in to the token; throws `keystore.custody_unavailable` if it cannot. */
  connect(): void {
    this.module ??= acquireModule(this.uri.modulePath);
    this.ensureSession();
  }

  /** Asks the token for its info: throws when it stopped answering. */
  tokenInfo(lib: Lib): void {
    lib.C_GetTokenInfo(this.slot!);
  }

  /** Closes the session and releases the module (finalized with its last user). */
  close(): void {
    this.dropSession();
    if (this.module !== undefined) releaseModule(this.module);
    this.module = undefined;
  }

  /** The session, opened and logged in when there is none; throws `keystore.custody_unavailable`. */
  private ensureSession(): Handle {
    if (this.session !== undefined) return this.session;
    const module = this.module;
    if (module === undefined) throw unavailable(`The PKCS#11 custody ${this.uri.uri} is closed.`);
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

  /** Closes the session (a later run opens a new one). */
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
  run<T>(fn: (lib: Lib, session: Handle) => T): T {
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
  outage(cause: unknown): OrthIdError | undefined {
    if (isOrthIdError(cause)) return cause;
    try {
      this.run((lib) => this.tokenInfo(lib));
      return undefined;
    } catch (error) {
      return isOrthIdError(error)
        ? error
        : unavailable(`The token "${this.uri.token}" stopped answering (${ckr(error)}).`, error);
    }
  }

  failure(error: unknown, what: string): OrthIdError {
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
}
