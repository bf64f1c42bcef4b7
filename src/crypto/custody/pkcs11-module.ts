// Loading a PKCS#11 library, once per library path and process: a library keeps process-wide
// state (a second C_Initialize fails, and C_Finalize ends every user's sessions), so custodies
// share the loaded module and finalize it with the last one. Also how its errors read.
import type { PKCS11 } from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import { OrthIdError } from '../../core/errors.js';

export type Lib = PKCS11;
export type Handle = Buffer;

// Results after which a fresh session (and, for a module we alone use, a fresh C_Initialize)
// may succeed: the token was pulled and put back, the session timed out, the HSM restarted.
// SoftHSM2 answers CKR_GENERAL_ERROR when its token directory has gone.
export const RECONNECT = new Set(
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

export const ckr = (error: unknown): string =>
  error instanceof pkcs11js.Pkcs11Error ? error.message : 'native error';
export const isCkr = (error: unknown, name: string): boolean =>
  error instanceof pkcs11js.Pkcs11Error &&
  error.code === (pkcs11js as unknown as Record<string, number>)[name];

export interface LoadedModule {
  path: string;
  lib: Lib;
  refs: number;
  initialized: boolean;
  /** False when someone else in this process initialised the library: we never finalize it. */
  owned: boolean;
}

const modules = new Map<string, LoadedModule>();

export function unavailable(message: string, cause?: unknown): OrthIdError {
  return new OrthIdError('keystore.custody_unavailable', message, cause === undefined ? {} : { cause });
}

export function initialise(module: LoadedModule): void {
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

export function acquireModule(path: string): LoadedModule {
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

export function releaseModule(module: LoadedModule): void {
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
