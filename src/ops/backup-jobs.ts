// Backup sets as the admin API shows them (the listing and freshness warnings of `orthid backup
// list`), and verify and drill runs started from it as jobs. Jobs run in this process and are kept
// in its memory: a restart forgets them (the outcome recorded beside the set, and a drill's audit
// event, stay). One verify and one drill at a time.
import { openDestinations } from '../backup/destination.js';
import { findBackupSet, listBackupSetsWithWarnings, type SetListEntry } from '../backup/sets.js';
import { type VerifyReport, verifyNamedSet } from '../backup/verify.js';
import { isOrthIdError, OrthIdError, toOrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { readIdentityFile } from '../crypto/age/index.js';
import type { TemporaryFiles } from '../storage/objects/object-store.js';
import type { ComposeOrthId, OrthId } from './orthid.js';
import { type DrillReport, drillDatabaseUrl, drillWith } from './restore-deployment.js';

export type BackupJobKind = 'verify' | 'drill';

export interface BackupJob {
  id: string;
  kind: BackupJobKind;
  /** The set's id (`latest` is resolved when the job starts). */
  set: string;
  status: 'running' | 'succeeded' | 'failed';
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

/** How long finished jobs are remembered, at most. */
const KEEP_FINISHED = 50;

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
  const jobs = new Map<string, BackupJob>();
  const running = new Set<Promise<void>>();
  const copy = (job: BackupJob): BackupJob => structuredClone(job);

  async function identities(): Promise<string[]> {
    const file = app.config.backup.ageIdentityFile;
    return file ? readIdentityFile(file) : [];
  }

  async function run(job: BackupJob): Promise<void> {
    const step = (n: number, title: string, detail?: string) => {
      job.steps.push({
        step: n,
        title,
        ...(detail === undefined ? {} : { detail }),
        at: app.clock.now().toISOString(),
      });
    };
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
        job.result = { ok: report.ok, report };
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
        job.result = { ok: report.ok, report };
      }
      job.status = job.result.ok ? 'succeeded' : 'failed';
    } catch (error) {
      const failure = toOrthIdError(error);
      if (!isOrthIdError(error)) app.log.error({ err: error, job: job.id }, 'a backup job failed');
      job.status = 'failed';
      job.error = { code: failure.code, message: failure.message };
    } finally {
      job.finishedAt = app.clock.now().toISOString();
    }
  }

  function forget(): void {
    const finished = [...jobs.values()].filter((j) => j.status !== 'running');
    for (const job of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) jobs.delete(job.id);
  }

  return {
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
     * second job of a kind while one runs (`backup.locked`).
     */
    async start(kind: BackupJobKind, ref: string, actor: string): Promise<BackupJob> {
      const busy = [...jobs.values()].find((j) => j.kind === kind && j.status === 'running');
      if (busy) {
        throw new OrthIdError(
          'backup.locked',
          `A ${kind} (job ${busy.id}) is running; follow it with GET backups/jobs/${busy.id} and start another once it has finished.`,
          { details: { job: busy.id } },
        );
      }
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
      jobs.set(job.id, job);
      forget();
      const done = run(job).finally(() => running.delete(done));
      running.add(done);
      return copy(job);
    },

    /** The job, or `backup.job_not_found` (a restart forgets jobs). */
    get(id: string): BackupJob {
      const job = jobs.get(id);
      if (!job) {
        throw new OrthIdError(
          'backup.job_not_found',
          `No backup job ${id} in this process (jobs are kept in memory: a restart forgets them; the outcome stays recorded beside the set).`,
        );
      }
      return copy(job);
    },

    /** The jobs this process remembers, newest first. */
    list(): BackupJob[] {
      return [...jobs.values()].reverse().map(copy);
    },

    /** Resolves once every running job has finished (server shutdown, tests). */
    async idle(): Promise<void> {
      await Promise.all([...running]);
    },
  };
}

export type BackupJobs = ReturnType<typeof createBackupJobs>;
