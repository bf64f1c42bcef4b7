// `orthid backup prune`: applies the retention policy to the sets in a destination. A set is
// removed manifest first, so one interrupted half-way lists as incomplete, never as complete.
// It also reclaims the temporary files of dumps that were killed.
import type { ObjectStore, TemporaryFiles } from '../storage/objects/object-store.js';
import { applyRetention, type RetentionDecision, type RetentionPolicy } from './retention.js';
import { FILES } from './set-layout.js';
import { type BackupSet, interruptedDumpFiles, listBackupSets } from './sets.js';

export interface PruneResult {
  dryRun: boolean;
  kept: (RetentionDecision & { time: string; status: BackupSet['status'] })[];
  deleted: (RetentionDecision & { time: string; status: BackupSet['status']; size: number })[];
  /** Temporary files of interrupted dumps: removed, or with `dryRun` found. */
  temporaryFiles: TemporaryFiles;
}

async function deletePrefix(store: ObjectStore, prefix: string, first?: string): Promise<void> {
  if (first !== undefined) await store.delete(`${prefix}/${first}`);
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(`${prefix}/`, cursor === undefined ? {} : { cursor });
    cursor = page.cursor;
    keys.push(...page.items.map((item) => item.key));
  } while (cursor !== undefined);
  for (const key of keys) await store.delete(key);
}

export interface PruneOptions {
  policy: RetentionPolicy;
  now: Date;
  dryRun: boolean;
}

export async function pruneBackupSets(
  dest: ObjectStore,
  keystoreStore: ObjectStore,
  options: PruneOptions,
): Promise<PruneResult> {
  const sets = await listBackupSets(dest, keystoreStore);
  const decisions = applyRetention(
    sets.map((s) => ({
      id: s.id,
      time: new Date(s.time),
      status: s.status,
      verified: s.verified?.ok === true,
      drillPassed: s.drill?.ok === true,
    })),
    options.policy,
    options.now,
  );
  const result: PruneResult = {
    dryRun: options.dryRun,
    kept: [],
    deleted: [],
    temporaryFiles: await interruptedDumpFiles(dest, keystoreStore, { reclaim: !options.dryRun }),
  };
  for (const [i, decision] of decisions.entries()) {
    const set = sets[i]!;
    if (decision.keep) {
      result.kept.push({ ...decision, time: set.time, status: set.status });
      continue;
    }
    if (!options.dryRun) {
      await deletePrefix(dest, set.path, set.files.includes(FILES.manifest) ? FILES.manifest : undefined);
      if (keystoreStore !== dest) await deletePrefix(keystoreStore, set.path);
    }
    result.deleted.push({ ...decision, time: set.time, status: set.status, size: set.size });
  }
  return result;
}
