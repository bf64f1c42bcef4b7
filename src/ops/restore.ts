// `orthid backup restore` and `orthid backup drill`: the page's six steps end to end. Restore
// writes to the configured (or given) target; a drill restores into a throwaway one, runs the
// checks, records the result and removes the throwaway target whatever happened.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { analyzeRestored } from '../backup/backup.queries.js';
import { type BackupStores, openBackupStores } from '../backup/destination.js';
import { checkPostgresTarget, restoreBackupSet } from '../backup/restore.js';
import { FILES } from '../backup/set-layout.js';
import { findBackupSet } from '../backup/sets.js';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { openExternalCustody } from '../crypto/custody/deployment-custody.js';
import type { KeyCustody } from '../crypto/key-custody.js';
import { type DestroyedKey, ManagedKeystore } from '../crypto/managed-keystore.js';
import { resolveMasterSecret } from '../crypto/master-secret.js';
import type { Database } from '../storage/db/database.js';
import { openPglite, type PgliteDriver } from '../storage/db/pglite-driver.js';
import { openPostgres } from '../storage/db/postgres-driver.js';
import { createDatabase, databaseUrlFor, dropDatabase } from '../storage/db/restore.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { openObjectStore } from '../storage/objects/open-object-store.js';
import type { ComposeOrthId } from './orthid.js';
import { type CheckResult, runVerificationChecks } from './verification-checks.js';

export interface RestoreRequest {
  set: string;
  identities: string[];
  /** Target database (default: the configured PostgreSQL, or the embedded data directory). */
  databaseUrl?: string;
  objectStoreUrl?: string;
  keystorePath?: string;
  /** A keystore export to restore instead of the set's own. */
  keystoreFile?: string;
  clean?: boolean;
  onStep?: (step: number, title: string, detail?: string) => void;
}

export interface StepTime {
  /** 0 is opening the destination, the keys and the set before the page's step 1. */
  step: number;
  title: string;
  seconds: number;
}

export interface RestoreOutcome {
  ok: boolean;
  set: string;
  checks: CheckResult[];
  restore_seconds: number;
  /** How long each step took, so an operator can see what a slow restore or drill spends its time on. */
  steps: StepTime[];
}

/**
 * Times the steps as they are announced: a step lasts until the next one starts, the last until
 * `finish`. Passes each announcement on to the caller's `onStep`.
 */
function stepTimer(onStep: RestoreRequest['onStep']) {
  const steps: StepTime[] = [];
  let current = { step: 0, title: 'Open the backup destination and the keys', started: performance.now() };
  const close = (now: number) =>
    steps.push({
      step: current.step,
      title: current.title,
      seconds: Math.round(now - current.started) / 1000,
    });
  return {
    onStep(step: number, title: string, detail?: string) {
      const now = performance.now();
      close(now);
      current = { step, title, started: now };
      onStep?.(step, title, detail);
    },
    finish(): StepTime[] {
      close(performance.now());
      return steps;
    },
  };
}

/** The checks run at once: two halves of a long audit chain, the sign-in and the token. */
const CHECK_CONNECTIONS = 4;

function openBackups(config: Config): Promise<BackupStores> {
  return openBackupStores(config.backup.dest, config.backup.keystoreDest);
}

/** Runs step 6 against the restored parts, as a deployment of its own. */
async function checkRestored(
  config: Config,
  parts: {
    db: Database;
    keystore: Awaited<ReturnType<typeof restoreBackupSet>>['keystore'];
    objects: ObjectStore;
    custody: KeyCustody | undefined;
  },
  clock: Clock,
  log: Logger,
  compose: ComposeOrthId,
): Promise<CheckResult[]> {
  const { custody, ...rest } = parts;
  const restored = compose({ config, clock, log, ...rest, ...(custody ? { custody } : {}) });
  return runVerificationChecks(restored);
}

/** Root keys this deployment destroyed (crypto-shredding): a restore must not bring them back. */
async function destroyedKeys(config: Config, masterSecret: string): Promise<DestroyedKey[]> {
  const live = await ManagedKeystore.open(config.keystorePath, masterSecret).catch(() => undefined);
  return live?.destroyedKeys() ?? [];
}

async function openEmbeddedTarget(dir: string): Promise<PgliteDriver> {
  const db = await openPglite(dir);
  const { rows } = await db.ownerQuery<{ n: string }>(
    `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`,
  );
  if (Number(rows[0]!.n) > 0) {
    await db.close();
    throw new OrthIdError(
      'backup.target_not_empty',
      `The embedded database in ${dir} is not empty. Restore into a new data directory (ORTHID_DATA_DIR).`,
    );
  }
  return db;
}

export async function restoreDeployment(
  config: Config,
  request: RestoreRequest,
  clock: Clock,
  log: Logger,
  /** Composes the restored parts into a deployment for step 6 (the wiring's composeOrthId). */
  compose: ComposeOrthId,
): Promise<RestoreOutcome> {
  const started = Date.now();
  const timer = stepTimer(request.onStep);
  // Under BYOK the token or KMS is opened (and reached) first: where it is unreachable, the restore
  // fails with keystore.custody_unavailable before touching the target.
  const custody = await openExternalCustody(config);
  const backups = await openBackups(config);
  const master = await resolveMasterSecret(config.masterKey);
  const objects = await openObjectStore(request.objectStoreUrl ?? config.objectStore);
  const keystorePath = request.keystorePath ?? config.keystorePath;
  const { database } = config;
  const postgresUrl =
    request.databaseUrl ?? (database.kind === 'postgres' ? database.migrationUrl : undefined);
  const embedded =
    postgresUrl === undefined && database.kind === 'embedded'
      ? await openEmbeddedTarget(database.dir)
      : undefined;
  try {
    const result = await restoreBackupSet({
      set: request.set,
      ...backups,
      identities: request.identities,
      target: embedded
        ? { kind: 'pglite', db: embedded }
        : { kind: 'postgres', url: postgresUrl!, clean: request.clean ?? false },
      objects,
      keystorePath,
      masterSecret: master.value,
      custody,
      ...(request.keystoreFile ? { keystoreFile: () => createReadStream(request.keystoreFile!) } : {}),
      onStep: timer.onStep,
    });
    const restore_seconds = (Date.now() - started) / 1000;
    timer.onStep(6, 'Verify: sign in, verify a token, read the audit log, confirm decrypted fields render');
    const db = embedded ?? (await openPostgres(postgresUrl!, { max: CHECK_CONNECTIONS + 1 }));
    try {
      // Statistics are gathered while the checks run, on a connection of their own.
      const [checks] = await Promise.all([
        checkRestored(config, { db, keystore: result.keystore, objects, custody }, clock, log, compose),
        analyzeRestored(db),
      ]);
      return {
        ok: checks.every((c) => c.ok),
        set: result.manifest.setId,
        checks,
        restore_seconds,
        steps: timer.finish(),
      };
    } finally {
      if (!embedded) await db.close();
    }
  } finally {
    await embedded?.close();
    await custody?.close();
  }
}

export interface DrillReport extends RestoreOutcome {
  startedAt: string;
  finishedAt: string;
  target: string;
  /** Why the restore itself failed, when it did (then `checks` is empty). */
  error?: { code: string; message: string };
}

export interface DrillRequest {
  set: string;
  identities: string[];
  /** Server on which a throwaway database is created; unset on the embedded default = in-memory PGlite. */
  databaseUrl?: string;
  onStep?: RestoreRequest['onStep'];
}

/**
 * Restores a set into a throwaway target, runs the checks and writes the report beside the set.
 * Never throws for a failed restore or check: the report says what failed.
 */
export async function drill(
  config: Config,
  request: DrillRequest,
  clock: Clock,
  log: Logger,
  /** Composes the restored parts into a deployment for the checks (the wiring's composeOrthId). */
  compose: ComposeOrthId,
): Promise<DrillReport> {
  const startedAt = clock.now().toISOString();
  const started = Date.now();
  const timer = stepTimer(request.onStep);
  const custody = await openExternalCustody(config);
  const backups = await openBackups(config);
  const set = await findBackupSet(backups.dest, request.set, backups.keystoreDest);
  const destroyed = await destroyedKeys(config, (await resolveMasterSecret(config.masterKey)).value);
  const targetName = `orthid_drill_${randomBytes(6).toString('hex')}`;
  // A drill server its login cannot restore into is refused before the throwaway database exists.
  if (request.databaseUrl)
    await checkPostgresTarget(databaseUrlFor(request.databaseUrl, targetName), set.manifest, false).catch(
      async (error) => {
        await custody?.close();
        throw error;
      },
    );
  const scratch = await mkdtemp(join(tmpdir(), 'orthid-drill-'));
  const objects = await openObjectStore(pathToFileURL(join(scratch, 'objects')).href);
  const keystorePath = join(scratch, 'keystore');
  const masterSecret = randomBytes(32).toString('base64');
  const targetUrl = request.databaseUrl ? await createDatabase(request.databaseUrl, targetName) : undefined;
  const memory = targetUrl ? undefined : await openPglite('memory://');
  let report: DrillReport;
  try {
    const result = await restoreBackupSet({
      set: set.id,
      ...backups,
      identities: request.identities,
      target: memory ? { kind: 'pglite', db: memory } : { kind: 'postgres', url: targetUrl!, clean: false },
      objects,
      keystorePath,
      masterSecret,
      custody,
      destroyedKeys: destroyed,
      onStep: timer.onStep,
    });
    const restore_seconds = (Date.now() - started) / 1000;
    timer.onStep(6, 'Verify: sign in, verify a token, read the audit log, confirm decrypted fields render');
    const db = memory ?? (await openPostgres(targetUrl!, { max: CHECK_CONNECTIONS }));
    try {
      const checks = await checkRestored(
        config,
        { db, keystore: result.keystore, objects, custody },
        clock,
        log,
        compose,
      );
      report = {
        ok: checks.every((c) => c.ok),
        set: set.id,
        checks,
        restore_seconds,
        steps: timer.finish(),
        startedAt,
        finishedAt: clock.now().toISOString(),
        target: memory ? 'in-memory embedded database' : 'throwaway PostgreSQL database',
      };
    } finally {
      if (!memory) await db.close();
    }
  } catch (error) {
    const e =
      error instanceof OrthIdError
        ? error
        : new OrthIdError('backup.restore_failed', String((error as Error)?.message ?? error));
    report = {
      ok: false,
      set: set.id,
      checks: [],
      restore_seconds: (Date.now() - started) / 1000,
      steps: timer.finish(),
      startedAt,
      finishedAt: clock.now().toISOString(),
      target: memory ? 'in-memory embedded database' : 'throwaway PostgreSQL database',
      error: { code: e.code, message: e.message },
    };
  } finally {
    await memory?.close().catch(() => {});
    if (targetUrl)
      await dropDatabase(targetUrl).catch((err) => log.error({ err }, 'could not drop the drill database'));
    await rm(scratch, { recursive: true, force: true });
    await custody?.close();
  }
  await backups.dest.put(
    `${set.path}/${FILES.drillReport}`,
    Buffer.from(`${JSON.stringify(report, null, 2)}\n`),
    {
      contentType: 'application/json',
    },
  );
  return report;
}
