// Where backup sets go and come from: a file:// directory (local to the deployment) or an s3://
// bucket (uploaded, with optional SSE-KMS), opened as an object store; plus the region rule that
// keeps backups in the deployment's region.
import { backupLocation, type Config } from '../config/config.js';
import { OrthIdError } from '../core/errors.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { openObjectStore } from '../storage/objects/open-object-store.js';
import { isServerSideEncryption, SSE_TYPES } from '../storage/objects/s3-location.js';

export type OpenStore = (url: string) => Promise<ObjectStore>;

export interface BackupStores {
  /** Where the sets are. */
  dest: ObjectStore;
  /** Where the keystore exports are: the same store unless configured apart. */
  keystoreDest: ObjectStore;
}

/** Opens the sets' store and the keystore exports' store (once, when they are the same). */
export async function openBackupStores(
  dest: string,
  keystoreDest: string | undefined,
): Promise<BackupStores> {
  const sets = await openObjectStore(dest);
  return {
    dest: sets,
    keystoreDest:
      keystoreDest === undefined || keystoreDest === dest ? sets : await openObjectStore(keystoreDest),
  };
}

/** Where an operator named the sets and keystore exports (flags); unnamed ones are the configured ones. */
export interface NamedDestinations {
  dest?: string | undefined;
  keystoreDest?: string | undefined;
}

export interface ResolvedDestinations {
  dest: string;
  /** Whether the sets' place was named (flag or ORTHID_BACKUP_DEST) rather than the local default. */
  destConfigured: boolean;
  keystoreDest: string | undefined;
}

/** A location an operator typed as a URL; `backup.destination_invalid` naming `flag` when it is none. */
function location(value: string, flag: string): string {
  const url = backupLocation(value);
  if (url === undefined) {
    throw new OrthIdError(
      'backup.destination_invalid',
      `${flag} must be a file:///absolute/path, a path, or an s3://bucket/prefix URL.`,
    );
  }
  return url;
}

/** Destinations as named, falling back to ORTHID_BACKUP_DEST / ORTHID_BACKUP_KEYSTORE_DEST. */
export function resolveDestinations(config: Config, named: NamedDestinations = {}): ResolvedDestinations {
  return {
    dest: named.dest === undefined ? config.backup.dest : location(named.dest, '--dest'),
    destConfigured: named.dest !== undefined || config.backup.destConfigured,
    keystoreDest:
      named.keystoreDest === undefined
        ? config.backup.keystoreDest
        : location(named.keystoreDest, '--keystore-dest'),
  };
}

/** Opens the stores of the destinations as named (or configured). */
export function openDestinations(config: Config, named: NamedDestinations = {}): Promise<BackupStores> {
  const where = resolveDestinations(config, named);
  return openBackupStores(where.dest, where.keystoreDest);
}

export interface ServerSideEncryptionOption {
  type: string;
  kmsKeyId?: string | undefined;
}

export function isRemote(url: string): boolean {
  return /^s3:\/\//i.test(url);
}

/** Describes a destination for messages: never a query string (it may name a KMS key or endpoint). */
export function describeDestination(url: string): string {
  return url.replace(/\?.*$/, '');
}

/**
 * Adds `--sse`/`--sse-kms-key-id` to an s3:// URL (a local one is returned as is: the disk is
 * its own business); `backup.destination_invalid` for a bad type or a conflict with the URL.
 */
export function withServerSideEncryption(url: string, sse: ServerSideEncryptionOption | undefined): string {
  if (sse === undefined) return url;
  if (!isServerSideEncryption(sse.type)) {
    throw new OrthIdError('backup.destination_invalid', `--sse must be one of ${SSE_TYPES.join(', ')}.`);
  }
  if (sse.kmsKeyId !== undefined && sse.type === 'AES256') {
    throw new OrthIdError(
      'backup.destination_invalid',
      '--sse-kms-key-id needs --sse aws:kms (or aws:kms:dsse).',
    );
  }
  if (!isRemote(url)) return url;
  const [base, query = ''] = url.split('?', 2) as [string, string?];
  const params = new URLSearchParams(query);
  const existing = params.get('sse');
  if (existing !== null && existing !== sse.type) {
    throw new OrthIdError(
      'backup.destination_invalid',
      `The destination URL already sets sse=${existing}; --sse ${sse.type} contradicts it.`,
    );
  }
  params.set('sse', sse.type);
  if (sse.kmsKeyId !== undefined) params.set('sseKmsKeyId', sse.kmsKeyId);
  return `${base}?${params.toString()}`;
}

/**
 * Refuses a destination outside `region` before any byte is written. A file:// destination is
 * on this host, so in the deployment's region; an s3:// one states its region in the URL or the
 * bucket reports it.
 */
export async function assertInRegion(
  store: ObjectStore,
  url: string,
  region: string,
  what: string,
): Promise<void> {
  if (!isRemote(url)) return;
  const actual = await store.region();
  if (actual !== region) {
    throw new OrthIdError(
      'backup.region_mismatch',
      `The ${what} ${describeDestination(url)} is in region ${actual ?? '(unknown)'}, but this deployment runs in ${region} (ORTHID_REGION). Backups stay in the deployment's region: use a bucket in ${region}.`,
      { details: { expected: region, actual: actual ?? null } },
    );
  }
}

function locationOf(url: string): { root: string; prefix: string } | undefined {
  const file = /^file:\/\/(\/[^?#]*)/i.exec(url);
  if (file) return { root: 'file', prefix: `${decodeURIComponent(file[1]!).replace(/\/+$/, '')}/` };
  const s3 = /^s3:\/\/([^/?#]+)\/?([^?#]*)/i.exec(url);
  if (s3)
    return {
      root: `s3:${s3[1]}`,
      prefix: s3[2] === '' ? '' : `${decodeURIComponent(s3[2]!).replace(/\/+$/, '')}/`,
    };
  return undefined;
}

/**
 * The key prefix under which `inner` lies inside the store at `outer` (e.g. backups written into
 * the object store itself), or undefined when it lies elsewhere.
 */
export function prefixWithin(outer: string, inner: string): string | undefined {
  const a = locationOf(outer);
  const b = locationOf(inner);
  if (!a || !b || a.root !== b.root || !b.prefix.startsWith(a.prefix)) return undefined;
  return b.prefix.slice(a.prefix.length);
}

/** Whether two destination URLs name the same place. */
export function sameDestination(a: string, b: string): boolean {
  return prefixWithin(a, b) === '' && prefixWithin(b, a) === '';
}
