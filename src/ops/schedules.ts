// In-process schedules for single-node deployments (ORTHID_BACKUP_SCHEDULE, ORTHID_DRILL_SCHEDULE,
// ORTHID_AUDIT_EXPORT_SCHEDULE): the same dump, drill and audit archive the CLI runs, logged and
// audited; and, on every replica, the purge of expired rows. Runs call the same typed operations
// (src/ops/operations.ts) as the CLI and the control socket.
import { Cron } from 'croner';
import { OrthIdError } from '../core/errors.js';
import { readIdentityFile } from '../crypto/age/index.js';
import { drillLive } from './backup-jobs.js';
import { purgeExpired, purgeFinishedMail } from './housekeeping.js';
import { rotateAgedSigningKeys } from './key-rotation.js';
import { archivePreviousMonth } from './monthly-audit-archives.js';
import { runOperation } from './operations.js';
import type { ComposeOrthId, OrthId } from './orthid.js';

export interface Schedules {
  /** The variables whose runs are in progress, e.g. `['ORTHID_BACKUP_SCHEDULE']`. */
  running(): string[];
  /** Runs not started because the variable's previous run was still in progress, by variable. */
  skipped(): Record<string, number>;
  /** Stops further runs, and resolves once the runs in progress have finished. */
  stop(): Promise<void>;
}

/** Calls `fire` at every time `pattern` names until stopped; throws when `pattern` is not one. */
export type Ticker = (pattern: string, variable: string, fire: () => void) => { stop(): void };

const cronTicker: Ticker = (pattern, _variable, fire) => new Cron(pattern, { timezone: 'UTC' }, fire);

export interface ScheduleOptions {
  /** What fires the runs: cron times in UTC, unless a caller drives them itself. */
  ticker?: Ticker;
  /** Composes the restored copy a scheduled drill checks (the wiring's composeOrthId). */
  compose?: ComposeOrthId;
}

export function startSchedules(app: OrthId, options: ScheduleOptions = {}): Schedules {
  const { backup } = app.config;
  const ticker = options.ticker ?? cronTicker;
  const jobs: { stop(): void }[] = [];
  // Runs in progress, by the variable that scheduled them: stopping waits for them, so a dump is
  // never cut off by the database closing under it.
  const running = new Map<Promise<void>, string>();
  const busy = new Set<string>();
  const skipped: Record<string, number> = {};

  function schedule(pattern: string, variable: string, failure: string, run: () => Promise<void>): void {
    const tracked = async () => {
      // A run still going when the next is due is skipped (the page's concurrencyPolicy: Forbid):
      // two dumps at once would double the load, and two purges or rotations would race.
      if (busy.has(variable)) {
        skipped[variable] = (skipped[variable] ?? 0) + 1;
        app.log.warn({ schedule: variable }, 'scheduled run skipped: the previous one is still running');
        return;
      }
      busy.add(variable);
      const done = run().catch((err: unknown) => app.log.error({ err }, failure));
      running.set(done, variable);
      await done;
      running.delete(done);
      busy.delete(variable);
    };
    try {
      jobs.push(ticker(pattern, variable, () => void tracked()));
    } catch (cause) {
      throw new OrthIdError(
        'config.invalid',
        `${variable} "${pattern}" is not a cron expression (e.g. "0 2 * * *").`,
        { cause },
      );
    }
  }

  if (backup.schedule) {
    schedule(backup.schedule, 'ORTHID_BACKUP_SCHEDULE', 'scheduled backup failed', async () => {
      await runOperation(app, 'backup.dump', {
        encrypt: backup.ageRecipients.length > 0,
        upload: backup.destConfigured,
        recipients: backup.ageRecipients,
        dest: backup.dest,
        destConfigured: backup.destConfigured,
        ...(backup.keystoreDest ? { keystoreDest: backup.keystoreDest } : {}),
      });
    });
  }
  if (backup.drillSchedule) {
    schedule(backup.drillSchedule, 'ORTHID_DRILL_SCHEDULE', 'scheduled drill failed', async () => {
      if (!backup.ageIdentityFile)
        throw new OrthIdError(
          'backup.identity_required',
          'Set ORTHID_BACKUP_AGE_IDENTITY_FILE for scheduled drills.',
        );
      const identities = await readIdentityFile(backup.ageIdentityFile);
      if (!options.compose)
        throw new OrthIdError(
          'internal.unexpected',
          'Scheduled drills need the wiring to compose the restored copy (ScheduleOptions.compose).',
        );
      // The running deployment's own custody and destroyed-key list, not copies opened again.
      const report = await drillLive(app, options.compose, { set: 'latest', identities });
      await runOperation(app, 'backup.recordDrill', { report });
      app.log[report.ok ? 'info' : 'error'](
        { set: report.set, ok: report.ok, restoreSeconds: report.restore_seconds },
        'scheduled drill finished',
      );
    });
  }
  if (app.config.auditExportSchedule) {
    schedule(
      app.config.auditExportSchedule,
      'ORTHID_AUDIT_EXPORT_SCHEDULE',
      'monthly audit archives failed',
      async () => {
        const outcomes = await archivePreviousMonth(app);
        const failed = outcomes.filter((o) => o.outcome === 'failed').length;
        app.log[failed > 0 ? 'error' : 'info']({ outcomes }, 'monthly audit archives finished');
      },
    );
  }
  const { signingKeyRotationMs } = app.config;
  if (signingKeyRotationMs !== undefined) {
    // Hourly is fine-grained enough for an age counted in days, and the check is one query per tenant.
    schedule(
      '17 * * * *',
      'ORTHID_SIGNING_KEY_ROTATION',
      'scheduled signing key rotation failed',
      async () => {
        const rotated = await rotateAgedSigningKeys(app, signingKeyRotationMs);
        if (rotated.length > 0) app.log.info({ rotated }, 'rotated aged signing keys');
      },
    );
  }
  // Not configurable: expired rows only cost space and index size, and the purge is cheap.
  schedule('*/15 * * * *', 'housekeeping', 'scheduled purge of expired rows failed', async () => {
    const purged = await purgeExpired(app);
    if (purged.length > 0) app.log.info({ purged }, 'purged expired rows');
    const mails = await purgeFinishedMail(app);
    if (mails > 0) app.log.info({ mails }, 'purged finished mail past its retention');
  });

  const names = () => [...running.values()];
  return {
    running: names,
    skipped: () => ({ ...skipped }),
    async stop() {
      for (const job of jobs) job.stop();
      if (running.size === 0) return;
      app.log.info({ running: names() }, 'waiting for scheduled runs to finish');
      await Promise.all(running.keys());
    },
  };
}
