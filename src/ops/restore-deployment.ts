// `orthid backup restore` and `orthid backup drill`: one restore plan through the page's six steps
// (backup/restore-set.ts), step 6 being the checks against the restored parts composed as a
// deployment of their own. A restore writes to the given target, or to the configured (live)
// stores only when told so; a drill is the same plan with a throwaway target, whose result is
// recorded beside the set and which is removed whatever happened.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BackupStores, openBackupStores, sameDestination } from '../backup/destination.js';
import {
  type RestoredSet,
  type RestorePlan,
  type RestoreStep,
  restoreBackupSet,
} from '../backup/restore-set.js';
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
import { openRestoreTarget, throwawayRestoreTarget } from '../storage/db/open-restore-target.js';
import type { RestoreTarget } from '../storage/db/restore-target.js';
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
  /** Replace a target database or object store that is not empty. */
  clean?: boolean;
  /** The target may be this deployment's own database and object store (the configured ones). */
  intoLiveStores?: boolean;
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
 * `finish`. Passes each announcement on to the caller's `onStep`. The restore itself lasts until
 * step 6 starts.
 */
function stepTimer(onStep: RestoreRequest['onStep']) {
  const started = performance.now();
  const steps: StepTime[] = [];
  let restoreSeconds: number | undefined;
  let current = { step: 0, title: 'Open the backup destination and the keys', started };
  const close = (now: number) =>
    steps.push({
      step: current.step,
      title: current.title,
      seconds: Math.round(now - current.started) / 1000,
    });
  return {
    onStep(step: RestoreStep, title: string, detail?: string) {
      const now = performance.now();
      close(now);
      if (step === 6) restoreSeconds = (now - started) / 1000;
      current = { step, title, started: now };
      onStep?.(step, title, detail);
    },
    restoreSeconds: () => restoreSeconds ?? (performance.now() - started) / 1000,
    finish(): StepTime[] {
      close(performance.now());
      return steps;
    },
  };
}

/** The checks run at once: two halves of a long audit chain, the sign-in and the token. */
const CHECK_CONNECTIONS = 4;

/** What a restore plan needs from the deployment it runs for, however it was opened. */
export interface RestoreDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  backups: BackupStores;
  /** Under BYOK: the deployment's token or KMS (the caller closes it). */
  custody: KeyCustody | undefined;
  /** Composes the restored parts into a deployment for step 6 (the wiring's composeOrthId). */
  compose: ComposeOrthId;
}

/** Where a plan puts what it restores, besides the database. */
interface PlanTarget {
  set: string;
  identities: string[];
  target: RestoreTarget;
  objects: ObjectStore;
  cleanObjects?: boolean;
  keystorePath: string;
  masterSecret: string;
  keystoreFile?: () => ReturnType<typeof createReadStream>;
  destroyedKeys?: DestroyedKey[];
  /** Statistics for a target that will serve. */
  analyze: boolean;
}

/**
 * The one restore plan: the six steps, step 6 composing the restored parts as a deployment of
 * their own and running the checks against it. The caller closes or discards the target.
 */
async function runRestorePlan(
  deps: RestoreDeps,
  plan: PlanTarget,
  timer: ReturnType<typeof stepTimer>,
): Promise<RestoreOutcome> {
  const { config, clock, log, custody, compose } = deps;
  const verify = (restored: RestoredSet) =>
    runVerificationChecks(
      compose({
        config,
        clock,
        log,
        db: restored.db,
        keystore: restored.keystore,
        objects: plan.objects,
        ...(custody ? { custody } : {}),
      }),
    );
  const options: RestorePlan<CheckResult[]> = {
    ...deps.backups,
    ...plan,
    custody,
    connections: CHECK_CONNECTIONS + (plan.analyze ? 1 : 0),
    verify,
    onStep: timer.onStep,
  };
  const result = await restoreBackupSet(options);
  const checks = result.checks ?? [];
  return {
    ok: checks.every((c) => c.ok),
    set: result.manifest.setId,
    checks,
    restore_seconds: timer.restoreSeconds(),
    steps: timer.finish(),
  };
}

/** Same server, port and database name: the URLs may differ in login, password or options. */
function sameDatabase(a: string, b: string): boolean {
  const [x, y] = [new URL(a), new URL(b)];
  const port = (u: URL) => u.port || '5432';
  return x.hostname === y.hostname && port(x) === port(y) && x.pathname === y.pathname;
}

/**
 * The configured database and object store are the live deployment's: a restore replaces them
 * only when told so (`--into-live-stores`), e.g. on a host provisioned for the restore.
 */
function assertTargetsChosen(config: Config, request: RestoreRequest): void {
  if (request.intoLiveStores) return;
  const { database } = config;
  const live: string[] = [];
  const configuredUrls = database.kind === 'postgres' ? [database.url, database.migrationUrl] : [];
  if (request.databaseUrl === undefined || configuredUrls.some((u) => sameDatabase(u, request.databaseUrl!)))
    live.push(database.kind === 'postgres' ? 'database (ORTHID_DATABASE_URL)' : `database (${database.dir})`);
  if (request.objectStoreUrl === undefined || sameDestination(request.objectStoreUrl, config.objectStore))
    live.push('object store (ORTHID_OBJECT_STORE)');
  if (live.length === 0) return;
  throw new OrthIdError(
    'backup.target_live',
    `The restore would write into this deployment's own ${live.join(' and ')}. Pass --database-url and --object-store to restore beside it, or --into-live-stores when these are the stores to restore into (a deployment provisioned for the restore; --clean replaces them when they are not empty). Nothing was restored.`,
    { details: { live } },
  );
}

export async function restoreDeployment(
  config: Config,
  request: RestoreRequest,
  clock: Clock,
  log: Logger,
  compose: ComposeOrthId,
): Promise<RestoreOutcome> {
  assertTargetsChosen(config, request);
  const timer = stepTimer(request.onStep);
  // Under BYOK the token or KMS is opened (and reached) first: where it is unreachable, the restore
  // fails with keystore.custody_unavailable before touching the target.
  const custody = await openExternalCustody(config);
  try {
    const backups = await openBackupStores(config.backup.dest, config.backup.keystoreDest);
    const master = await resolveMasterSecret(config.masterKey);
    const objects = await openObjectStore(request.objectStoreUrl ?? config.objectStore);
    const { database } = config;
    const postgresUrl =
      request.databaseUrl ?? (database.kind === 'postgres' ? database.migrationUrl : undefined);
    const target = openRestoreTarget(
      postgresUrl === undefined && database.kind === 'embedded'
        ? { embeddedDir: database.dir }
        : { postgresUrl: postgresUrl!, clean: request.clean ?? false },
    );
    try {
      const outcome = await runRestorePlan(
        { config, clock, log, backups, custody, compose },
        {
          set: request.set,
          identities: request.identities,
          target,
          objects,
          cleanObjects: request.clean ?? false,
          keystorePath: request.keystorePath ?? config.keystorePath,
          masterSecret: master.value,
          ...(request.keystoreFile ? { keystoreFile: () => createReadStream(request.keystoreFile!) } : {}),
          analyze: true,
        },
        timer,
      );
      await target.close();
      return outcome;
    } finally {
      await target.discard();
    }
  } finally {
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
 * Where a drill creates its throwaway database: ORTHID_DRILL_DATABASE_URL, else the configured
 * PostgreSQL server; on the embedded default none (an in-memory PGlite).
 */
export function drillDatabaseUrl(config: Config): string | undefined {
  return (
    config.backup.drillDatabaseUrl ??
    (config.database.kind === 'postgres' ? config.database.migrationUrl : undefined)
  );
}

/**
 * Restores a set into a throwaway target, runs the checks and writes the report beside the set,
 * with the deployment's own parts: a running server passes its live custody, backup stores and
 * the root keys its keystore destroyed, instead of opening them again. Never throws for a failed
 * restore or check: the report says what failed.
 */
export async function drillWith(
  deps: RestoreDeps & { destroyedKeys: DestroyedKey[] },
  request: DrillRequest,
): Promise<DrillReport> {
  const { clock, log, backups } = deps;
  const startedAt = clock.now().toISOString();
  const timer = stepTimer(request.onStep);
  const set = await findBackupSet(backups.dest, request.set, backups.keystoreDest);
  const target = throwawayRestoreTarget(request.databaseUrl);
  // A drill server its login cannot restore into is refused before anything is created.
  if (request.databaseUrl) {
    await target.inspect({
      setId: set.manifest.setId,
      format: set.manifest.database.format,
      dumpTool: set.manifest.database.dumpTool,
    });
  }
  const scratch = await mkdtemp(join(tmpdir(), 'orthid-drill-'));
  let outcome: RestoreOutcome & { error?: DrillReport['error'] };
  try {
    outcome = await runRestorePlan(
      deps,
      {
        set: set.id,
        identities: request.identities,
        target,
        objects: await openObjectStore(pathToFileURL(join(scratch, 'objects')).href),
        keystorePath: join(scratch, 'keystore'),
        masterSecret: randomBytes(32).toString('base64'),
        destroyedKeys: deps.destroyedKeys,
        analyze: false,
      },
      timer,
    );
  } catch (error) {
    const e =
      error instanceof OrthIdError
        ? error
        : new OrthIdError('backup.restore_failed', String((error as Error)?.message ?? error));
    outcome = {
      ok: false,
      set: set.id,
      checks: [],
      restore_seconds: timer.restoreSeconds(),
      steps: timer.finish(),
      error: { code: e.code, message: e.message },
    };
  } finally {
    await target.discard().catch((err) => log.error({ err }, 'could not remove the drill database'));
    await rm(scratch, { recursive: true, force: true });
  }
  const { error, ...rest } = outcome;
  const report: DrillReport = {
    ...rest,
    set: set.id,
    startedAt,
    finishedAt: clock.now().toISOString(),
    target: target.description,
    ...(error ? { error } : {}),
  };
  await backups.dest.put(
    `${set.path}/${FILES.drillReport}`,
    Buffer.from(`${JSON.stringify(report, null, 2)}\n`),
    {
      contentType: 'application/json',
    },
  );
  return report;
}

/** Root keys this deployment destroyed (crypto-shredding): a restore must not bring them back. */
async function destroyedKeys(config: Config): Promise<DestroyedKey[]> {
  const masterSecret = (await resolveMasterSecret(config.masterKey)).value;
  const live = await ManagedKeystore.open(config.keystorePath, masterSecret).catch(() => undefined);
  return live?.destroyedKeys() ?? [];
}

/** `orthid backup drill` from the command line: the deployment's parts opened from its config. */
export async function drill(
  config: Config,
  request: DrillRequest,
  clock: Clock,
  log: Logger,
  compose: ComposeOrthId,
): Promise<DrillReport> {
  const custody = await openExternalCustody(config);
  try {
    const backups = await openBackupStores(config.backup.dest, config.backup.keystoreDest);
    return await drillWith(
      { config, clock, log, backups, custody, compose, destroyedKeys: await destroyedKeys(config) },
      request,
    );
  } finally {
    await custody?.close();
  }
}
