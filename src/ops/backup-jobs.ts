// Backup sets as the admin API shows them (the listing and freshness warnings of `orthid backup
// list`), and verify and drill runs started from it as jobs. A job runs in the process that
// started it and is recorded in the database (backup_jobs), so every replica and a restarted
// server see it. One verify and one drill at a time across the deployment.
import { hostname } from 'node:os';
import { openDestinations } from '../backup/destination.js';
import { findBackupSet, listBackupSetsWithWarnings, type SetListEntry } from '../backup/sets.js';
import { type VerifyReport, verifyNamedSet } from '../backup/verify.js';
import { isOrthIdError, OrthIdError, toOrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { readIdentityFile } from '../crypto/age/index.js';
import { withSystem } from '../storage/db/database.js';
import type { TemporaryFiles } from '../storage/objects/object-store.js';
import { type BackupJobRow, createBackupJobsQueries } from './backup-jobs.queries.js';
import type { ComposeOrthId, OrthId } from './orthid.js';
import { type DrillReport, drillDatabaseUrl, drillWith } from './restore-deployment.js';

export type BackupJobKind = 'verify' | 'drill';

export interface BackupJob {
  id: string;
  kind: BackupJobKind;
  /** The set's id (`latest` is resolved when the job starts). */
  set: string;
  /** `interrupted`: the server running it stopped (or lost the database) before it finished. */
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  /** Who started it (the audit actor). */
  startedBy: string;
  startedAt: string;
  finishedAt: string | null;
  /** The steps announced so far (a drill's restore steps; a verify's parts once checked). */
  steps: { step: number; title: string; detail?: string; at: string }[];
  /** The report once finished: `ok` false with what failed when a check did. */
  result: { ok: boolean; report: VerifyReport | DrillReport } | null;
  /** Why the job could not run to a report. */
  error: { code: string; message: string } | null;
}

export interface SetsQuery {
  limit: number;
  /** The `next` of the previous page: a set id. */
  after?: string;
  status?: SetListEntry['status'];
}

export interface SetsPage {
  dest: string;
  items: (SetListEntry & { ageSeconds: number })[];
  next: string | null;
  /** The freshness warnings `orthid backup list` prints, at the same thresholds. */
  warnings: string[];
  temporaryFiles: TemporaryFiles;
}

/** How many finished jobs are kept, at most (the newest). */
const KEEP_FINISHED = 50;

type Step = BackupJob['steps'][number];

/**
 * A drill of `set` in this running deployment, with its own custody, backup stores and destroyed
 * key list (not copies opened again), as the drill schedule runs it.
 */
export async function drillLive(
  app: OrthId,
  compose: ComposeOrthId,
  request: {
    set: string;
    identities: string[];
    onStep?: (step: number, title: string, detail?: string) => void;
  },
): Promise<DrillReport> {
  return drillWith(
    {
      config: app.config,
      clock: app.clock,
      log: app.log,
      backups: await openDestinations(app.config),
      custody: app.custody === app.keystore ? undefined : app.custody,
      compose,
      destroyedKeys: app.keystore.destroyedKeys(),
    },
    { ...request, databaseUrl: drillDatabaseUrl(app.config) },
  );
}

export interface BackupJobsOptions {
  /** The wiring that composes the restored copy a drill checks; without it drills are refused. */
  compose?: ComposeOrthId;
  /** Records a finished drill in the system tenant's audit log (the `backup.recordDrill` operation). */
  recordDrill(report: DrillReport, actor: string): Promise<void>;
}

export function createBackupJobs(app: OrthId, options: BackupJobsOptions) {
  const running = new Set<Promise<void>>();
  // Which process runs a job: the host and pid say where to look, the instance tells a restarted
  // server (same host, maybe the same pid in a container) from the one that died.
  const owner = `${hostname()}/${process.pid}/${newId()}`;
  const leaseSeconds = app.config.backup.jobLeaseSeconds;
  let heartbeat: NodeJS.Timeout | undefined;
  const system = <T>(fn: (q: ReturnType<typeof createBackupJobsQueries>) => Promise<T>) =>
    withSystem(app.db, (tx) => fn(createBackupJobsQueries(tx)));
  const interruption = () => {
    const error = new OrthIdError(
      'backup.job_interrupted',
      'The server running this job stopped before it finished; the set is unchanged. Start the job again.',
    );
    return { code: error.code, message: error.message };
  };

  /** Like `system`, after interrupting the running jobs whose owner stopped renewing them. */
  const swept = <T>(fn: (q: ReturnType<typeof createBackupJobsQueries>) => Promise<T>) =>
    system(async (q) => {
      await q.interruptAbandoned(interruption(), app.clock.now().toISOString());
      return fn(q);
    });

  function renewWhileRunning(): void {
    if (running.size === 0) {
      clearInterval(heartbeat);
      heartbeat = undefined;
      return;
    }
    heartbeat ??= setInterval(
      () => {
        system((q) => q.renew(owner, leaseSeconds)).catch((error: unknown) =>
          app.log.warn({ err: error }, 'the lease of a running backup job could not be renewed'),
        );
      },
      Math.max(1000, (leaseSeconds * 1000) / 3),
    ).unref();
  }

  async function identities(): Promise<string[]> {
    const file = app.config.backup.ageIdentityFile;
    return file ? readIdentityFile(file) : [];
  }

  async function run(job: BackupJob): Promise<void> {
    const steps: Step[] = [];
    // Step writes go out one after the other, so an older list never overwrites a newer one.
    let saved: Promise<unknown> = Promise.resolve();
    const step = (n: number, title: string, detail?: string) => {
      steps.push({
        step: n,
        title,
        ...(detail === undefined ? {} : { detail }),
        at: app.clock.now().toISOString(),
      });
      const snapshot = structuredClone(steps);
      saved = saved
        .then(() => system((q) => q.saveSteps(job.id, owner, snapshot)))
        .catch((error: unknown) =>
          app.log.warn({ err: error, job: job.id }, 'the progress of a backup job could not be recorded'),
        );
    };
    let result: BackupJob['result'] = null;
    let failure: BackupJob['error'] = null;
    try {
      if (job.kind === 'verify') {
        step(1, 'checking every part: present, checksum, decrypts, readable');
        const { report } = await verifyNamedSet(
          await openDestinations(app.config),
          job.set,
          app.config.backup.ageIdentityFile,
          app.clock,
        );
        for (const [i, part] of report.parts.entries()) {
          step(i + 2, `${part.part}: ${part.ok ? 'ok' : 'FAILED'}`);
        }
        result = { ok: report.ok, report };
      } else {
        const report = await drillLive(app, options.compose!, {
          set: job.set,
          identities: await identities(),
          onStep: step,
        });
        await options
          .recordDrill(report, job.startedBy)
          .catch((error: unknown) =>
            app.log.warn({ err: error, job: job.id }, 'the drill result could not be added to the audit log'),
          );
        result = { ok: report.ok, report };
      }
    } catch (error) {
      const cause = toOrthIdError(error);
      if (!isOrthIdError(error)) app.log.error({ err: error, job: job.id }, 'a backup job failed');
      failure = { code: cause.code, message: cause.message };
    }
    await saved;
    const finished = await system((q) =>
      q.finish(job.id, owner, {
        status: result?.ok ? 'succeeded' : 'failed',
        finishedAt: app.clock.now().toISOString(),
        steps,
        result,
        error: failure,
      }),
    ).catch((error: unknown) => {
      app.log.error({ err: error, job: job.id }, 'the end of a backup job could not be recorded');
      return true;
    });
    if (!finished) {
      app.log.warn(
        { job: job.id },
        'a backup job finished after it had been given up as interrupted (its lease had run out); its outcome is recorded beside the set',
      );
    }
  }

  return {
    /**
     * At server start: running jobs of processes that are gone become `interrupted`. The
     * embedded database is opened by one process only, so there every running job left is of a
     * process that died; on PostgreSQL another replica may be running one, so only those whose
     * lease ran out are (the others once theirs does).
     */
    async recover(): Promise<string[]> {
      const single = app.config.database.kind === 'embedded';
      return system((q) =>
        q.interruptAbandoned(
          interruption(),
          app.clock.now().toISOString(),
          single ? { except: owner } : undefined,
        ),
      );
    },

    /** Every set, newest first, a page at a time, with the freshness warnings of `backup list`. */
    async listSets(query: SetsQuery): Promise<SetsPage> {
      const now = app.clock.now();
      const listing = await listBackupSetsWithWarnings(await openDestinations(app.config), {
        now,
        maxAgeHours: app.config.backup.maxAgeHours,
        maxDrillAgeDays: app.config.backup.maxDrillAgeDays,
      });
      const matching = listing.sets.filter((s) => query.status === undefined || s.status === query.status);
      let start = 0;
      if (query.after !== undefined) {
        start = matching.findIndex((s) => s.id === query.after) + 1;
        if (start === 0) {
          throw new OrthIdError(
            'request.invalid',
            'The cursor names no backup set; start again without it.',
            {
              details: { fields: [{ path: '/after', message: 'is not a set of this listing' }] },
            },
          );
        }
      }
      const items = matching.slice(start, start + query.limit).map((s) => ({
        ...s,
        ageSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(s.time)) / 1000)),
      }));
      const next = start + query.limit < matching.length ? items.at(-1)!.id : null;
      return {
        dest: listing.dest,
        items,
        next,
        warnings: listing.warnings,
        temporaryFiles: listing.temporaryFiles,
      };
    },

    /**
     * Starts a verify or drill of `ref` (a set id or `latest`) and answers at once with the job;
     * an unknown set is refused before anything starts (`backup.set_not_found`), and so is a
     * second job of a kind while one runs in any replica (`backup.locked`).
     */
    async start(kind: BackupJobKind, ref: string, actor: string): Promise<BackupJob> {
      const busy = async (): Promise<never> => {
        const other = await system((q) => q.running(kind));
        const id = other?.id ?? 'of another server';
        throw new OrthIdError(
          'backup.locked',
          `A ${kind} (job ${id}) is running; follow it with GET backups/jobs/${id} and start another once it has finished.`,
          { details: { job: other?.id ?? null } },
        );
      };
      const stores = await openDestinations(app.config);
      const set = await findBackupSet(stores.dest, ref, stores.keystoreDest);
      if (set.manifest.encrypted && !app.config.backup.ageIdentityFile) {
        throw new OrthIdError(
          'backup.identity_required',
          `The set ${set.id} is encrypted: set ORTHID_BACKUP_AGE_IDENTITY_FILE on the server to an age identity that opens it.`,
        );
      }
      if (kind === 'drill' && !options.compose) {
        throw new OrthIdError(
          'backup.drill_unavailable',
          'This server cannot run drills: it was started without the means to open a restored copy. Run `orthid backup drill`, or start the drill on a server run by `orthid start`.',
        );
      }
      const job: BackupJob = {
        id: newId(),
        kind,
        set: set.id,
        status: 'running',
        startedBy: actor,
        startedAt: app.clock.now().toISOString(),
        finishedAt: null,
        steps: [],
        result: null,
        error: null,
      };
      // The one check of the one-at-a-time rule, in every replica: the insert conflicts with a
      // running job of the kind (after those whose server died are interrupted).
      const inserted = await swept(async (q) => {
        const ok = await q.insertRunning({ ...job, owner, leaseSeconds });
        if (ok) await q.forget(KEEP_FINISHED);
        return ok;
      });
      if (!inserted) await busy();
      const done = run(job).finally(() => {
        running.delete(done);
        renewWhileRunning();
      });
      running.add(done);
      renewWhileRunning();
      return job;
    },

    /** The job, or `backup.job_not_found` (the oldest finished jobs are forgotten). */
    async get(id: string): Promise<BackupJob> {
      const row = await swept((q) => q.get(id));
      if (!row) {
        throw new OrthIdError(
          'backup.job_not_found',
          `No backup job ${id}: only the newest ${KEEP_FINISHED} finished jobs are kept; the outcome stays recorded beside the set.`,
        );
      }
      return present(row);
    },

    /** The jobs kept, newest first. */
    async list(): Promise<BackupJob[]> {
      const rows = await swept((q) => q.list(KEEP_FINISHED + 2));
      return rows.map(present);
    },

    /** Resolves once every job this process runs has finished (server shutdown, tests). */
    async idle(): Promise<void> {
      await Promise.all([...running]);
    },
  };
}

const json = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);
const iso = (value: Date | string): string => new Date(value).toISOString();

function present(row: BackupJobRow): BackupJob {
  return {
    id: row.id,
    kind: row.kind,
    set: row.set_id,
    status: row.status,
    startedBy: row.started_by,
    startedAt: iso(row.started_at),
    finishedAt: row.finished_at === null ? null : iso(row.finished_at),
    steps: (json(row.steps) as Step[] | null) ?? [],
    result: json(row.result) as BackupJob['result'],
    error: json(row.error) as BackupJob['error'],
  };
}

export type BackupJobs = ReturnType<typeof createBackupJobs>;
