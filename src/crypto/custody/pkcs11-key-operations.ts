// Operations on root keys inside the token: finding objects, listing OrthID's root keys,
// generating one (AES-256, never extractable, encrypt/decrypt only) and the AES-GCM mechanism
// that wraps data keys with it. Sessions and logins are the custody's business, not these.
import type { AesGCM, Mechanism, Template } from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import { parseLabel, type TokenKey } from './pkcs11-labels.js';
import type { Handle, Lib } from './pkcs11-module.js';

export const GCM_NONCE = 12;
export const GCM_TAG = 16;

export function findObjects(lib: Lib, session: Handle, template: Template): Handle[] {
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

/** The root keys of `object` on the token: the AES secret keys whose labels OrthID wrote. */
export function listRootKeys(lib: Lib, session: Handle, object: string): TokenKey[] {
  const handles = findObjects(lib, session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
  ]);
  const keys: TokenKey[] = [];
  for (const handle of handles) {
    const [label, id] = lib.C_GetAttributeValue(session, handle, [
      { type: pkcs11js.CKA_LABEL },
      { type: pkcs11js.CKA_ID },
    ]);
    const key = parseLabel(object, handle, label!.value.toString('utf8'), id!.value.toString('utf8'));
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

export function generateRootKey(lib: Lib, session: Handle, label: string, stamp: string): Handle {
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

/** AES-GCM with a 12-byte nonce and a 16-byte tag, as wrap and unwrap use it. */
export function gcm(nonce: Buffer, aad: Buffer): Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_GCM,
      iv: nonce,
      aad,
      ivBits: GCM_NONCE * 8,
      tagBits: GCM_TAG * 8,
    } as AesGCM,
  };
}
