// The keystore file: the deployment's identity, small secrets and, under managed custody, the root
// keys, sealed (AES-256-GCM) under a key derived from the master secret with scrypt. Writes are
// atomic and serialised by a lock file, since replicas sharing the file each add keys to it.
import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomically } from '../core/atomic-file.js';
import { type Clock, systemClock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { parseJson } from '../core/file-format.js';
import { withFileLock } from '../core/file-lock.js';
import { newId, randomToken } from '../core/ids.js';
import { aeadOpen, aeadSeal } from './aead.js';
import { DEPLOYMENT_SCOPE, type KeyCustody, type RootKeyInfo, type WrappedKey } from './key-custody.js';
import {
  type DestroyedKey,
  type ExternalCustodyRef,
  KEYSTORE_CONTENTS,
  type KeystoreContents,
  type RootKey,
  SEALED_KEYSTORE,
  type SealedKeystore,
} from './keystore-format.js';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, o: object) => Promise<Buffer>;

export type { DestroyedKey, ExternalCustodyRef, KeystoreContents, RootKey } from './keystore-format.js';

const KDF = { N: 2 ** 15, r: 8, p: 1 };
const AAD = Buffer.from('orthid-keystore/v1');

async function deriveKey(secret: string, kdf: SealedKeystore['kdf']): Promise<Buffer> {
  return scrypt(secret, Buffer.from(kdf.salt, 'base64'), 32, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    maxmem: 128 * kdf.N * kdf.r * 2,
  });
}

function newRootKey(scope: string, now: Date): RootKey {
  return {
    id: `mk_${randomToken(12)}`,
    key: randomBytes(32).toString('base64'),
    createdAt: now.toISOString(),
    status: 'active',
    ...(scope === DEPLOYMENT_SCOPE ? {} : { scope }),
  };
}

const scopeOf = (key: RootKey): string => key.scope ?? DEPLOYMENT_SCOPE;

/**
 * Serialises read-modify-write of the keystore between processes, also replicas on other hosts
 * sharing the file on a network volume: a lock file beside it (src/core/file-lock.ts says how
 * it stays safe there). A database advisory lock would not do: the keystore is opened before the
 * database, and embedded deployments have no shared database at all.
 */
function withKeystoreLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(`${path}.lock`, fn, {
    onTimeout: (lockPath) =>
      new OrthIdError(
        'keystore.custody_unavailable',
        `The keystore at ${path} stays locked by another process (${lockPath}).`,
      ),
  });
}

async function seal(secret: string, contents: KeystoreContents): Promise<string> {
  const kdf = { name: 'scrypt' as const, ...KDF, salt: randomBytes(16).toString('base64') };
  const key = await deriveKey(secret, kdf);
  const sealed = aeadSeal(key, Buffer.from(JSON.stringify(contents)), AAD);
  const file: SealedKeystore = {
    format: 'orthid-keystore',
    version: 1,
    kdf,
    sealed: sealed.toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

async function readSealed(path: string): Promise<SealedKeystore | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = parseJson(text);
  const problem = parsed === undefined ? 'it is not JSON' : SEALED_KEYSTORE.problem(parsed.value);
  if (parsed === undefined || problem !== undefined || !SEALED_KEYSTORE.is(parsed.value)) {
    throw new OrthIdError(
      'keystore.corrupt',
      `The keystore at ${path} is not an OrthID keystore file (${problem}). Restore it from a keystore export.`,
    );
  }
  return parsed.value;
}

/** The keystore file, opened with the master secret; also the managed custody of root keys. */
export class ManagedKeystore implements KeyCustody {
  readonly kind = 'managed';
  /** The file's modification time when this process last read or wrote it. */
  private seenMtime: number | undefined;

  private constructor(
    readonly path: string,
    private readonly secret: string,
    private contents: KeystoreContents,
    /** Dates the root keys it creates. */
    private readonly clock: Clock,
  ) {}

  /** Opens an existing keystore; `keystore.not_initialised` when absent, `keystore.wrong_master_key` when the secret is wrong. */
  static async open(path: string, secret: string, clock: Clock = systemClock): Promise<ManagedKeystore> {
    return new ManagedKeystore(path, secret, await ManagedKeystore.read(path, secret), clock);
  }

  private static async read(path: string, secret: string): Promise<KeystoreContents> {
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
    const contents = parseJson(plain.toString('utf8'));
    const problem = contents === undefined ? 'it is not JSON' : KEYSTORE_CONTENTS.problem(contents.value);
    if (contents === undefined || problem !== undefined || !KEYSTORE_CONTENTS.is(contents.value)) {
      throw new OrthIdError(
        'keystore.corrupt',
        `The keystore at ${path} opens but its contents are not a keystore (${problem}). Restore it from a keystore export.`,
      );
    }
    return contents.value;
  }

  /**
   * Creates the keystore when absent; opens it otherwise. `created` says which happened. Under
   * BYOK (`external`) it holds no root keys, only the reference to where they are.
   */
  static async init(
    path: string,
    secret: string,
    external?: ExternalCustodyRef,
    clock: Clock = systemClock,
  ): Promise<{ keystore: ManagedKeystore; created: boolean }> {
    if (await readSealed(path)) {
      const keystore = await ManagedKeystore.open(path, secret, clock);
      if (external && keystore.contents.externalCustody?.reference !== external.reference) {
        await keystore.update((c) => ({ ...c, externalCustody: external }));
      }
      return { keystore, created: false };
    }
    const contents: KeystoreContents = {
      deploymentId: newId(),
      createdAt: clock.now().toISOString(),
      rootKeys: external ? [] : [newRootKey(DEPLOYMENT_SCOPE, clock.now())],
      secrets: {},
      ...(external ? { externalCustody: external } : {}),
    };
    await writeFileAtomically(path, await seal(secret, contents), { createDirectory: true });
    return { keystore: new ManagedKeystore(path, secret, contents, clock), created: true };
  }

  /**
   * Writes exported contents as this host's keystore, sealed with this host's secret. An existing
   * keystore of the same deployment is merged (keys are only ever added, and a key this keystore
   * has destroyed never comes back); another deployment's is refused.
   */
  static async import(
    path: string,
    secret: string,
    incoming: KeystoreContents,
    clock: Clock = systemClock,
  ): Promise<ManagedKeystore> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    return withKeystoreLock(path, async () => {
      let contents = incoming;
      if (await readSealed(path)) {
        const existing = await ManagedKeystore.read(path, secret);
        if (existing.deploymentId !== incoming.deploymentId) {
          throw new OrthIdError(
            'keystore.import_conflict',
            `The keystore at ${path} belongs to another deployment (${existing.deploymentId}); the export is of ${incoming.deploymentId}. Import into an empty data directory or move the existing keystore away first.`,
          );
        }
        contents = {
          ...existing,
          rootKeys: mergeById(existing.rootKeys, incoming.rootKeys),
          secrets: { ...incoming.secrets, ...existing.secrets },
          destroyedKeys: mergeById(existing.destroyedKeys ?? [], incoming.destroyedKeys ?? []),
        };
      }
      const destroyed = new Set((contents.destroyedKeys ?? []).map((k) => k.id));
      contents = { ...contents, rootKeys: contents.rootKeys.filter((k) => !destroyed.has(k.id)) };
      await writeFileAtomically(path, await seal(secret, contents), { createDirectory: true });
      return new ManagedKeystore(path, secret, contents, clock);
    });
  }

  get deploymentId(): string {
    return this.contents.deploymentId;
  }

  get reference(): string {
    return this.path;
  }

  /** The external custody holding the root keys, when the deployment uses BYOK. */
  get externalCustody(): ExternalCustodyRef | undefined {
    return this.contents.externalCustody;
  }

  /** A copy of everything the keystore protects, for an (encrypted) export. */
  exportContents(): KeystoreContents {
    return structuredClone(this.contents);
  }

  rootKeyIds(): string[] {
    return this.contents.rootKeys.map((k) => k.id);
  }

  async rootKeys(): Promise<RootKeyInfo[]> {
    return this.contents.rootKeys.map((k) => ({
      id: k.id,
      scope: scopeOf(k),
      status: k.status,
      createdAt: k.createdAt,
    }));
  }

  /** Root keys destroyed so far: what was shredded, when and by whom. */
  destroyedKeys(): DestroyedKey[] {
    return structuredClone(this.contents.destroyedKeys ?? []);
  }

  getSecret(name: string): string | undefined {
    return this.contents.secrets[name];
  }

  async setSecret(name: string, value: string): Promise<void> {
    await this.update((c) => ({ ...c, secrets: { ...c.secrets, [name]: value } }));
  }

  async check(): Promise<void> {
    const file = await readSealed(this.path).catch(() => undefined);
    if (!file) {
      throw new OrthIdError('keystore.custody_unavailable', `The keystore file ${this.path} cannot be read.`);
    }
  }

  async close(): Promise<void> {}

  async wrap(key: Buffer, context: string, scope: string): Promise<WrappedKey> {
    let root = this.activeRoot(scope);
    if (!root) {
      // Another process sharing the file may have created the scope's key already.
      await this.update((c) =>
        c.rootKeys.some((k) => scopeOf(k) === scope && k.status === 'active')
          ? c
          : { ...c, rootKeys: [...c.rootKeys, newRootKey(scope, this.clock.now())] },
      );
      root = this.activeRoot(scope)!;
    }
    const sealed = aeadSeal(Buffer.from(root.key, 'base64'), key, Buffer.from(`${root.id}|${context}`));
    return { custody: this.kind, rootKeyId: root.id, wrapped: sealed.toString('base64url') };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    let root = this.contents.rootKeys.find((k) => k.id === wrapped.rootKeyId);
    if (!root && (await this.changedOnDisk())) {
      // A replica sharing the file may have added it since we read it.
      this.contents = await ManagedKeystore.read(this.path, this.secret);
      root = this.contents.rootKeys.find((k) => k.id === wrapped.rootKeyId);
    }
    if (!root) {
      const destroyed = this.contents.destroyedKeys?.find((k) => k.id === wrapped.rootKeyId);
      throw destroyed
        ? new OrthIdError(
            'crypto.shredded',
            `Root key ${wrapped.rootKeyId} was destroyed on ${destroyed.destroyedAt} by ${destroyed.by}; what it protected cannot be decrypted.`,
          )
        : new OrthIdError(
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

  async rotate(scope: string): Promise<string> {
    const next = newRootKey(scope, this.clock.now());
    await this.update((c) => ({
      ...c,
      rootKeys: [
        ...c.rootKeys.map((k) => (scopeOf(k) === scope ? { ...k, status: 'retired' as const } : k)),
        next,
      ],
    }));
    return next.id;
  }

  async destroy(rootKeyId: string): Promise<void> {
    await this.update((c) =>
      c.rootKeys.some((k) => k.id === rootKeyId)
        ? { ...c, rootKeys: c.rootKeys.filter((k) => k.id !== rootKeyId) }
        : c,
    );
  }

  /** Remembers destroyed root keys (of any custody), so an import never brings them back. */
  async recordDestroyed(keys: DestroyedKey[]): Promise<void> {
    await this.update((c) => ({ ...c, destroyedKeys: mergeById(c.destroyedKeys ?? [], keys) }));
  }

  /**
   * Whether the file changed since this process last read or wrote it. Re-reading costs a scrypt
   * derivation, so a key that is simply absent must not trigger one per request.
   */
  private async changedOnDisk(): Promise<boolean> {
    const modified = await stat(this.path).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (modified === undefined || modified === this.seenMtime) return false;
    this.seenMtime = modified;
    return true;
  }

  private activeRoot(scope: string): RootKey | undefined {
    return this.contents.rootKeys.findLast((k) => scopeOf(k) === scope && k.status === 'active');
  }

  /** Re-reads the file under the lock, applies `change` and writes the result. */
  private async update(change: (contents: KeystoreContents) => KeystoreContents): Promise<void> {
    try {
      await withKeystoreLock(this.path, async () => {
        const current = await ManagedKeystore.read(this.path, this.secret);
        const next = change(current);
        if (next !== current)
          await writeFileAtomically(this.path, await seal(this.secret, next), { createDirectory: true });
        this.contents = next;
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw error;
      throw new OrthIdError(
        'keystore.read_only',
        `The managed keystore at ${this.path} cannot be written (${code}). Each new tenant adds its root key to it: mount it writable and shared by every replica, or keep root keys in an HSM or KMS (ORTHID_KEYSTORE=pkcs11:… or awskms:…).`,
        { cause: error },
      );
    }
  }
}

function mergeById<T extends { id: string }>(first: T[], second: T[]): T[] {
  const known = new Set(first.map((item) => item.id));
  return [...first, ...second.filter((item) => !known.has(item.id))];
}
