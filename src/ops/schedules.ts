// In-process schedules for single-node deployments (ORTHID_BACKUP_SCHEDULE, ORTHID_DRILL_SCHEDULE,
// ORTHID_AUDIT_EXPORT_SCHEDULE): the same dump, drill and audit archive the CLI runs, logged and
// audited; and, on every replica, the purge of expired rows.
import { readFile } from 'node:fs/promises';
import { Cron } from 'croner';
import { OrthIdError } from '../core/errors.js';
import { parseIdentityFile } from '../crypto/age/index.js';
import type { OrthId } from '../main.js';
import { purgeExpired } from './housekeeping.js';
import { rotateAgedSigningKeys } from './key-rotation.js';
import { archivePreviousMonth } from './monthly-audit-archives.js';
import { runOperation } from './operations.js';
import { drill } from './restore.js';

export interface Schedules {
  stop(): void;
}

function cron(pattern: string, variable: string, run: () => Promise<void>): Cron {
  try {
    // protect: a run still going when the next is due is skipped (the page's concurrencyPolicy: Forbid).
    return new Cron(pattern, { protect: true, timezone: 'UTC' }, run);
  } catch (cause) {
    throw new OrthIdError(
      'config.invalid',
      `${variable} "${pattern}" is not a cron expression (e.g. "0 2 * * *").`,
      { cause },
    );
  }
}

export function startSchedules(app: OrthId): Schedules {
  const { backup } = app.config;
  const jobs: Cron[] = [];
  if (backup.schedule) {
    jobs.push(
      cron(backup.schedule, 'ORTHID_BACKUP_SCHEDULE', async () => {
        try {
          const encrypt = backup.ageRecipients.length > 0;
          await runOperation(app, 'backup.dump', {
            encrypt,
            upload: backup.destConfigured,
            recipients: backup.ageRecipients,
            dest: backup.dest,
            destConfigured: backup.destConfigured,
            ...(backup.keystoreDest ? { keystoreDest: backup.keystoreDest } : {}),
          });
        } catch (err) {
          app.log.error({ err }, 'scheduled backup failed');
        }
      }),
    );
  }
  if (backup.drillSchedule) {
    jobs.push(
      cron(backup.drillSchedule, 'ORTHID_DRILL_SCHEDULE', async () => {
        try {
          if (!backup.ageIdentityFile)
            throw new OrthIdError(
              'backup.identity_required',
              'Set ORTHID_BACKUP_AGE_IDENTITY_FILE for scheduled drills.',
            );
          const identities = parseIdentityFile(
            await readFile(backup.ageIdentityFile, 'utf8'),
            backup.ageIdentityFile,
          );
          const databaseUrl =
            backup.drillDatabaseUrl ??
            (app.config.database.kind === 'postgres' ? app.config.database.migrationUrl : undefined);
          const report = await drill(
            app.config,
            { set: 'latest', identities, databaseUrl },
            app.clock,
            app.log,
          );
          await runOperation(app, 'backup.recordDrill', { report });
          app.log[report.ok ? 'info' : 'error'](
            { set: report.set, ok: report.ok, restoreSeconds: report.restore_seconds },
            'scheduled drill finished',
          );
        } catch (err) {
          app.log.error({ err }, 'scheduled drill failed');
        }
      }),
    );
  }
  if (app.config.auditExportSchedule) {
    jobs.push(
      cron(app.config.auditExportSchedule, 'ORTHID_AUDIT_EXPORT_SCHEDULE', async () => {
        try {
          const outcomes = await archivePreviousMonth(app);
          const failed = outcomes.filter((o) => o.outcome === 'failed').length;
          app.log[failed > 0 ? 'error' : 'info']({ outcomes }, 'monthly audit archives finished');
        } catch (err) {
          app.log.error({ err }, 'monthly audit archives failed');
        }
      }),
    );
  }
  const { signingKeyRotationMs } = app.config;
  if (signingKeyRotationMs !== undefined) {
    // Hourly is fine-grained enough for an age counted in days, and the check is one query per tenant.
    jobs.push(
      cron('17 * * * *', 'ORTHID_SIGNING_KEY_ROTATION', async () => {
        try {
          const rotated = await rotateAgedSigningKeys(app, signingKeyRotationMs);
          if (rotated.length > 0) app.log.info({ rotated }, 'rotated aged signing keys');
        } catch (err) {
          app.log.error({ err }, 'scheduled signing key rotation failed');
        }
      }),
    );
  }
  // Not configurable: expired rows only cost space and index size, and the purge is cheap.
  jobs.push(
    cron('*/15 * * * *', 'housekeeping', async () => {
      try {
        const purged = await purgeExpired(app);
        if (purged.length > 0) app.log.info({ purged }, 'purged expired rows');
      } catch (err) {
        app.log.error({ err }, 'scheduled purge of expired rows failed');
      }
    }),
  );
  return {
    stop() {
      for (const job of jobs) job.stop();
    },
  };
}
