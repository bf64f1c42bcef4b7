// The keystore's file formats as TypeBox schemas, each with its static type: the contents (what
// the keystore protects, also the body of an export), the sealed file on disk and the export
// file. Readers check against these and nothing else, so `restore` and `backup verify` agree.
import { type Static, Type } from '@sinclair/typebox';
import { fileFormat } from '../core/file-format.js';

const Text = Type.String({ minLength: 1 });
const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$' });

const RootKeySchema = Type.Object({
  id: Text,
  /** base64 of 32 random bytes. */
  key: Base64,
  createdAt: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('retired')]),
  /** A tenant id, or absent for the deployment's own key (keystores written before scopes). */
  scope: Type.Optional(Text),
});
export type RootKey = Static<typeof RootKeySchema>;

/** What remains of a destroyed root key: enough to say what was shredded, when and by whom. */
const DestroyedKeySchema = Type.Object({
  id: Text,
  scope: Type.String(),
  destroyedAt: Type.String(),
  by: Type.String(),
});
export type DestroyedKey = Static<typeof DestroyedKeySchema>;

/** Under BYOK the root keys live outside OrthID; the keystore only names where. */
const ExternalCustodyRefSchema = Type.Object({
  kind: Type.Union([Type.Literal('pkcs11'), Type.Literal('awskms')]),
  reference: Type.String(),
});
export type ExternalCustodyRef = Static<typeof ExternalCustodyRefSchema>;

const KeystoreContentsSchema = Type.Object({
  deploymentId: Text,
  createdAt: Type.String(),
  rootKeys: Type.Array(RootKeySchema),
  /** Small named secrets the deployment keeps with its keys (e.g. the canary's password). */
  secrets: Type.Record(Type.String(), Type.String()),
  /** Destroyed root keys; an import never brings them back. */
  destroyedKeys: Type.Optional(Type.Array(DestroyedKeySchema)),
  /** The external custody (PKCS#11 token, KMS key) holding the root keys, when not managed here. */
  externalCustody: Type.Optional(ExternalCustodyRefSchema),
});
/** What the keystore protects; also the body of a keystore export. */
export type KeystoreContents = Static<typeof KeystoreContentsSchema>;
export const KEYSTORE_CONTENTS = fileFormat(KeystoreContentsSchema);

/** The keystore file on disk: the contents sealed under a key scrypt derives from the master secret. */
export const SEALED_KEYSTORE = fileFormat(
  Type.Object({
    format: Type.Literal('orthid-keystore'),
    version: Type.Literal(1),
    // Bounded, so a tampered file cannot make scrypt take unbounded memory or time.
    kdf: Type.Object({
      name: Type.Literal('scrypt'),
      N: Type.Integer({ minimum: 2, maximum: 2 ** 20 }),
      r: Type.Integer({ minimum: 1, maximum: 32 }),
      p: Type.Integer({ minimum: 1, maximum: 16 }),
      salt: Base64,
    }),
    sealed: Base64,
  }),
);
export type SealedKeystore = Static<typeof SEALED_KEYSTORE.schema>;

/** The plaintext of a keystore export (age-encrypted on disk), and of a share set's sealed body. */
export const KEYSTORE_EXPORT = fileFormat(
  Type.Object({
    format: Type.Literal('orthid-keystore-export'),
    version: Type.Literal(1),
    exportedAt: Type.String(),
    keystore: KeystoreContentsSchema,
  }),
);
export type KeystoreExport = Static<typeof KEYSTORE_EXPORT.schema>;
