// The OrthID-managed key custody: root keys kept in one file sealed (AES-256-GCM) under a key
// derived from the operator's master secret with scrypt. Writes are atomic; a wrong secret writes nothing.
import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { OrthIdError } from '../core/errors.js';
import { newId, randomToken } from '../core/ids.js';
import { aeadOpen, aeadSeal } from './aead.js';
import type { KeyCustody, WrappedKey } from './key-custody.js';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, o: object) => Promise<Buffer>;

export interface RootKey {
  id: string;
  /** base64 of 32 random bytes. */
  key: string;
  createdAt: string;
  status: 'active' | 'retired';
}

/** What the keystore protects; also the body of a keystore export. */
export interface KeystoreContents {
  deploymentId: string;
  createdAt: string;
  rootKeys: RootKey[];
  /** Small named secrets the deployment keeps with its keys (e.g. the canary's password). */
  secrets: Record<string, string>;
}

interface SealedFile {
  format: 'orthid-keystore';
  version: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  sealed: string;
}

const KDF = { N: 2 ** 15, r: 8, p: 1 };
const AAD = Buffer.from('orthid-keystore/v1');

async function deriveKey(secret: string, kdf: SealedFile['kdf']): Promise<Buffer> {
  return scrypt(secret, Buffer.from(kdf.salt, 'base64'), 32, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    maxmem: 128 * kdf.N * kdf.r * 2,
  });
}

function newRootKey(): RootKey {
  return {
    id: `mk_${randomToken(12)}`,
    key: randomBytes(32).toString('base64'),
    createdAt: new Date().toISOString(),
    status: 'active',
  };
}

async function writeAtomically(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${randomToken(6)}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function seal(secret: string, contents: KeystoreContents): Promise<string> {
  const kdf = { name: 'scrypt' as const, ...KDF, salt: randomBytes(16).toString('base64') };
  const key = await deriveKey(secret, kdf);
  const sealed = aeadSeal(key, Buffer.from(JSON.stringify(contents)), AAD);
  const file: SealedFile = { format: 'orthid-keystore', version: 1, kdf, sealed: sealed.toString('base64') };
  return `${JSON.stringify(file, null, 2)}\n`;
}

async function readSealed(path: string): Promise<SealedFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const file = JSON.parse(text) as SealedFile;
    if (file.format !== 'orthid-keystore' || file.version !== 1) throw new Error('unknown format');
    return file;
  } catch (cause) {
    throw new OrthIdError('keystore.corrupt', `The keystore at ${path} is not an OrthID keystore file.`, {
      cause,
    });
  }
}

/** The managed keystore, opened with the master secret. */
export class ManagedKeystore implements KeyCustody {
  readonly kind = 'managed';

  private constructor(
    readonly path: string,
    private readonly secret: string,
    private contents: KeystoreContents,
  ) {}

  /** Opens an existing keystore; `keystore.not_initialised` when absent, `keystore.wrong_master_key` when the secret is wrong. */
  static async open(path: string, secret: string): Promise<ManagedKeystore> {
    const file = await readSealed(path);
    if (!file) {
      throw new OrthIdError(
        'keystore.not_initialised',
        `No keystore at ${path}. Create one with: orthid keystore init (or import a backup's keystore with: orthid keystore import FILE --identity KEY).`,
      );
    }
    const key = await deriveKey(secret, file.kdf);
    const plain = aeadOpen(key, Buffer.from(file.sealed, 'base64'), AAD);
    if (!plain) {
      throw new OrthIdError(
        'keystore.wrong_master_key',
        `The master secret does not open the keystore at ${path}. Check ORTHID_MASTER_KEY / ORTHID_MASTER_KEY_FILE; the keystore was left unchanged.`,
      );
    }
    return new ManagedKeystore(path, secret, JSON.parse(plain.toString('utf8')) as KeystoreContents);
  }

  /** Creates the keystore when absent; opens it otherwise. `created` says which happened. */
  static async init(path: string, secret: string): Promise<{ keystore: ManagedKeystore; created: boolean }> {
    if (await readSealed(path)) return { keystore: await ManagedKeystore.open(path, secret), created: false };
    const contents: KeystoreContents = {
      deploymentId: newId(),
      createdAt: new Date().toISOString(),
      rootKeys: [newRootKey()],
      secrets: {},
    };
    await writeAtomically(path, await seal(secret, contents));
    return { keystore: new ManagedKeystore(path, secret, contents), created: true };
  }

  /**
   * Writes exported contents as this host's keystore, sealed with this host's secret. An existing
   * keystore of the same deployment is merged (keys are only ever added); another deployment's is refused.
   */
  static async import(path: string, secret: string, incoming: KeystoreContents): Promise<ManagedKeystore> {
    let contents = incoming;
    if (await readSealed(path)) {
      const existing = await ManagedKeystore.open(path, secret);
      if (existing.contents.deploymentId !== incoming.deploymentId) {
        throw new OrthIdError(
          'keystore.import_conflict',
          `The keystore at ${path} belongs to another deployment (${existing.contents.deploymentId}); the export is of ${incoming.deploymentId}. Import into an empty data directory or move the existing keystore away first.`,
        );
      }
      const known = new Set(existing.contents.rootKeys.map((k) => k.id));
      contents = {
        ...existing.contents,
        rootKeys: [...existing.contents.rootKeys, ...incoming.rootKeys.filter((k) => !known.has(k.id))],
        secrets: { ...incoming.secrets, ...existing.contents.secrets },
      };
    }
    await writeAtomically(path, await seal(secret, contents));
    return new ManagedKeystore(path, secret, contents);
  }

  get deploymentId(): string {
    return this.contents.deploymentId;
  }

  /** A copy of everything the keystore protects, for an (encrypted) export. */
  exportContents(): KeystoreContents {
    return structuredClone(this.contents);
  }

  rootKeyIds(): string[] {
    return this.contents.rootKeys.map((k) => k.id);
  }

  getSecret(name: string): string | undefined {
    return this.contents.secrets[name];
  }

  async setSecret(name: string, value: string): Promise<void> {
    const next = { ...this.contents, secrets: { ...this.contents.secrets, [name]: value } };
    await writeAtomically(this.path, await seal(this.secret, next));
    this.contents = next;
  }

  async check(): Promise<void> {
    const file = await readSealed(this.path).catch(() => undefined);
    if (!file) {
      throw new OrthIdError('keystore.custody_unavailable', `The keystore file ${this.path} cannot be read.`);
    }
  }

  async wrap(key: Buffer, context: string): Promise<WrappedKey> {
    const root = this.contents.rootKeys.find((k) => k.status === 'active');
    if (!root) throw new OrthIdError('keystore.key_not_found', 'The keystore has no active root key.');
    const sealed = aeadSeal(Buffer.from(root.key, 'base64'), key, Buffer.from(`${root.id}|${context}`));
    return { custody: this.kind, rootKeyId: root.id, wrapped: sealed.toString('base64url') };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    const root = this.contents.rootKeys.find((k) => k.id === wrapped.rootKeyId);
    if (!root) {
      throw new OrthIdError(
        'keystore.key_not_found',
        `Root key ${wrapped.rootKeyId} is not in this keystore. Import the keystore that belongs to this database (orthid keystore import).`,
      );
    }
    const key = aeadOpen(
      Buffer.from(root.key, 'base64'),
      Buffer.from(wrapped.wrapped, 'base64url'),
      Buffer.from(`${root.id}|${context}`),
    );
    if (!key) {
      throw new OrthIdError(
        'crypto.decrypt_failed',
        `A data key wrapped by ${root.id} failed to unwrap (altered or moved).`,
      );
    }
    return key;
  }
}
