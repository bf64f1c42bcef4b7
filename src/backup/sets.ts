// Finding backup sets in a destination: every set directory with its status (complete only when
// its manifest is present and every part it names exists), size, and the verify and drill
// reports kept beside it. `latest` means the newest complete set; incomplete ones are never offered.
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import type { ObjectStore, TemporaryFiles } from '../storage/objects/object-store.js';
import { type BackupStores, describeDestination } from './destination.js';
import { type Manifest, parseManifest } from './manifest.js';
import { FILES, parseSetId, parseSetKey } from './set-layout.js';

export type SetStatus = 'complete' | 'incomplete' | 'damaged';

/** A verify or drill outcome recorded beside a set. */
export interface SetReport {
  ok: boolean;
  at: string;
}

export interface BackupSet {
  id: string;
  /** Directory of the set inside the destination, e.g. `2026/06/22/<id>`. */
  path: string;
  /** Start time of the dump (from the manifest, else from the set id). */
  time: string;
  status: SetStatus;
  /** Why a set is not complete. */
  problem?: string;
  /** Bytes of the set's parts (those present). */
  size: number;
  /** File names present in the set's directory. */
  files: string[];
  manifest?: Manifest;
  verified: SetReport | null;
  drill: SetReport | null;
}

async function readText(store: ObjectStore, key: string, limit = 1024 * 1024): Promise<string> {
  const { body } = await store.get(key);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new OrthIdError(
        'backup.manifest_invalid',
        `${key} is larger than ${limit} bytes; it is not a manifest or report.`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readReport(store: ObjectStore, key: string): Promise<SetReport | null> {
  try {
    const value = JSON.parse(await readText(store, key)) as {
      ok?: unknown;
      finishedAt?: unknown;
      at?: unknown;
    };
    const at =
      typeof value.finishedAt === 'string'
        ? value.finishedAt
        : typeof value.at === 'string'
          ? value.at
          : undefined;
    return typeof value.ok === 'boolean' && at !== undefined ? { ok: value.ok, at } : null;
  } catch {
    // A missing or unreadable report is no report.
    return null;
  }
}

/** Reads the manifest of the set at `path`; `backup.set_incomplete` when it has none. */
export async function readManifest(store: ObjectStore, path: string): Promise<Manifest> {
  try {
    return parseManifest(await readText(store, `${path}/${FILES.manifest}`));
  } catch (error) {
    if (isOrthIdError(error, 'objects.not_found')) {
      throw new OrthIdError(
        'backup.set_incomplete',
        `The set ${path} has no manifest: its dump did not finish, so it is never restored. Use another set (orthid backup list).`,
      );
    }
    throw error;
  }
}

async function allKeys(
  store: ObjectStore,
): Promise<Map<string, { files: Map<string, number>; time: Date; id: string }>> {
  const sets = new Map<string, { files: Map<string, number>; time: Date; id: string }>();
  let cursor: string | undefined;
  do {
    const page = await store.list('', cursor === undefined ? {} : { cursor });
    cursor = page.cursor;
    for (const item of page.items) {
      const parsed = parseSetKey(item.key);
      if (!parsed) continue;
      const set = sets.get(parsed.path) ?? { files: new Map(), time: parsed.time, id: parsed.id };
      set.files.set(parsed.file, item.size);
      sets.set(parsed.path, set);
    }
  } while (cursor !== undefined);
  return sets;
}

/**
 * Every set in `dest`, newest first. `keystoreStore` is where keystore exports live when apart
 * from the sets; a complete set needs its keystore part there.
 */
export async function listBackupSets(
  dest: ObjectStore,
  keystoreStore: ObjectStore = dest,
): Promise<BackupSet[]> {
  const found = await allKeys(dest);
  const keystoreKeys = keystoreStore === dest ? undefined : await allKeys(keystoreStore);
  const sets: BackupSet[] = [];
  for (const [path, entry] of found) {
    const files = [...entry.files.keys()].sort();
    const set: BackupSet = {
      id: entry.id,
      path,
      time: entry.time.toISOString(),
      status: 'incomplete',
      size: [...entry.files.values()].reduce((a, b) => a + b, 0),
      files,
      verified: entry.files.has(FILES.verifyReport)
        ? await readReport(dest, `${path}/${FILES.verifyReport}`)
        : null,
      drill: entry.files.has(FILES.drillReport)
        ? await readReport(dest, `${path}/${FILES.drillReport}`)
        : null,
    };
    if (!entry.files.has(FILES.manifest)) {
      set.problem = 'no manifest: the dump did not finish';
    } else {
      try {
        const manifest = await readManifest(dest, path);
        set.manifest = manifest;
        set.time = manifest.startedAt;
        set.size = manifest.parts.reduce((sum, part) => sum + part.size, 0);
        const missing = manifest.parts.filter((part) => {
          if (part.location === 'dest') return !entry.files.has(part.name);
          return keystoreKeys === undefined
            ? !entry.files.has(part.name)
            : !keystoreKeys.get(path)?.files.has(part.name);
        });
        if (missing.length > 0) {
          set.status = 'damaged';
          set.problem = `missing ${missing.map((p) => p.name).join(', ')}`;
        } else {
          set.status = 'complete';
        }
      } catch (error) {
        set.status = 'damaged';
        set.problem = isOrthIdError(error) ? error.message : 'the manifest cannot be read';
      }
    }
    sets.push(set);
  }
  return sets.sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
}

/**
 * The set `ref` names: `latest` (the newest complete set), a set id, or a set path. Throws
 * `backup.set_not_found`, or `backup.set_incomplete` for a set that is not complete.
 */
export async function findBackupSet(
  dest: ObjectStore,
  ref: string,
  keystoreStore: ObjectStore = dest,
): Promise<BackupSet & { manifest: Manifest }> {
  const sets = await listBackupSets(dest, keystoreStore);
  const where = describeDestination(dest.url);
  const set =
    ref === 'latest'
      ? sets.find((s) => s.status === 'complete')
      : sets.find((s) => s.id === ref || s.path === ref.replace(/\/+$/, ''));
  if (!set) {
    throw new OrthIdError(
      'backup.set_not_found',
      ref === 'latest'
        ? `No complete backup set in ${where}. Take one with: orthid backup dump --encrypt`
        : `No backup set "${ref}" in ${where}${parseSetId(ref.split('/').pop() ?? '') ? '' : ' (a set id looks like <deployment id>-20260622T020000Z)'}. List them with: orthid backup list`,
    );
  }
  if (set.status !== 'complete' || !set.manifest) {
    throw new OrthIdError(
      'backup.set_incomplete',
      `The set ${set.id} is ${set.status} (${set.problem}); it cannot be used. Pick a complete set from: orthid backup list`,
    );
  }
  return set as BackupSet & { manifest: Manifest };
}

export interface FreshnessWarningsOptions {
  now: Date;
  maxAgeHours: number;
  maxDrillAgeDays: number;
}

/** The "silence is an alarm" warnings: no recent complete set, no recent passing drill. */
export function freshnessWarnings(sets: readonly BackupSet[], options: FreshnessWarningsOptions): string[] {
  const warnings: string[] = [];
  const hours = (iso: string) => (options.now.getTime() - new Date(iso).getTime()) / 3_600_000;
  const newest = sets.find((s) => s.status === 'complete');
  if (!newest) warnings.push('There is no complete backup set.');
  else if (hours(newest.time) > options.maxAgeHours) {
    warnings.push(
      `The newest complete backup set (${newest.id}) is ${Math.floor(hours(newest.time))} h old, more than ${options.maxAgeHours} h: is the scheduled dump running?`,
    );
  }
  const drills = sets
    .filter((s) => s.drill?.ok)
    .map((s) => s.drill!.at)
    .sort()
    .reverse();
  if (drills.length === 0) warnings.push('No restore drill has passed: run orthid backup drill.');
  else if (hours(drills[0]!) > options.maxDrillAgeDays * 24) {
    warnings.push(
      `The newest passing restore drill is ${Math.floor(hours(drills[0]!) / 24)} days old, more than ${options.maxDrillAgeDays}: run orthid backup drill.`,
    );
  }
  return warnings;
}

/** One set as `orthid backup list` shows it: what it holds, never its parts' keys. */
export type SetListEntry = Pick<
  BackupSet,
  'id' | 'path' | 'time' | 'status' | 'problem' | 'size' | 'verified' | 'drill'
> & {
  encrypted: boolean | null;
  database: string | null;
  /** What the dump read (primary or standby) and, from a standby, the recovery point it holds. */
  source: NonNullable<Manifest['database']['source']> | null;
};

function listEntry(set: BackupSet): SetListEntry {
  return {
    id: set.id,
    path: set.path,
    time: set.time,
    status: set.status,
    ...(set.problem === undefined ? {} : { problem: set.problem }),
    size: set.size,
    encrypted: set.manifest?.encrypted ?? null,
    database: set.manifest
      ? `${set.manifest.database.engine} ${set.manifest.database.serverVersion} (${set.manifest.database.format})`
      : null,
    source: set.manifest?.database.source ?? null,
    verified: set.verified,
    drill: set.drill,
  };
}

export interface SetListing {
  /** The destination, described (no query string). */
  dest: string;
  sets: SetListEntry[];
  /** Temporary files interrupted dumps left behind (interruptedDumpFiles), not reclaimed here. */
  temporaryFiles: TemporaryFiles;
  /** The freshness warnings (freshnessWarnings). */
  warnings: string[];
}

/** Every set in `stores`, newest first, with the freshness warnings. */
export async function listBackupSetsWithWarnings(
  stores: BackupStores,
  options: FreshnessWarningsOptions,
): Promise<SetListing> {
  const sets = await listBackupSets(stores.dest, stores.keystoreDest);
  const warnings = freshnessWarnings(sets, options);
  const temporaryFiles = await interruptedDumpFiles(stores.dest, stores.keystoreDest, { reclaim: false });
  return { dest: describeDestination(stores.dest.url), sets: sets.map(listEntry), temporaryFiles, warnings };
}

/**
 * The temporary files that killed or failed dumps left in the sets' and the keystore exports'
 * destinations (a part being written when the process died), removed with `reclaim`. Files of a
 * dump still running are never counted: its process holds their locks.
 */
export async function interruptedDumpFiles(
  dest: ObjectStore,
  keystoreStore: ObjectStore,
  options: { reclaim: boolean },
): Promise<TemporaryFiles> {
  const found = await dest.temporaryFiles(options);
  if (keystoreStore === dest) return found;
  const more = await keystoreStore.temporaryFiles(options);
  return { count: found.count + more.count, bytes: found.bytes + more.bytes };
}

/** The line `backup list` prints about them; undefined when there are none. */
export function describeInterruptedDumpFiles(files: TemporaryFiles): string | undefined {
  if (files.count === 0) return undefined;
  const mib = (files.bytes / (1024 * 1024)).toFixed(1);
  return `temporary files from interrupted dumps: ${files.count} file${files.count === 1 ? '' : 's'}, ${mib} MiB (reclaimed by the next dump or \`orthid backup prune\`)`;
}
