// The SQL of the backup jobs table (migration 0020): deployment-wide rows, read and written outside
// any tenant. Leases are compared with the database's clock, so replicas' clocks need not agree.
import type { Queryable } from '../core/sql.js';

export interface BackupJobRow {
  id: string;
  kind: 'verify' | 'drill';
  set_id: string;
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  started_by: string;
  started_at: Date | string;
  finished_at: Date | string | null;
  steps: unknown;
  result: unknown;
  error: unknown;
}

const COLUMNS = `id::text AS id, kind, set_id, status, started_by, started_at, finished_at, steps, result, error`;

export interface NewBackupJob {
  id: string;
  kind: 'verify' | 'drill';
  set: string;
  startedBy: string;
  startedAt: string;
  owner: string;
  leaseSeconds: number;
}

export function createBackupJobsQueries(tx: Queryable) {
  return {
    /**
     * Records a running job unless one of its kind is running (in any process): the partial
     * unique index decides, so two replicas inserting at once cannot both succeed.
     */
    async insertRunning(job: NewBackupJob): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO backup_jobs (id, kind, set_id, status, started_by, started_at, owner, lease_until)
         VALUES ($1, $2, $3, 'running', $4, $5, $6, now() + make_interval(secs => $7))
         ON CONFLICT (kind) WHERE status = 'running' DO NOTHING`,
        [job.id, job.kind, job.set, job.startedBy, job.startedAt, job.owner, job.leaseSeconds],
      );
      return rowCount > 0;
    },

    async running(kind: string): Promise<{ id: string } | undefined> {
      const { rows } = await tx.query<{ id: string }>(
        `SELECT id::text AS id FROM backup_jobs WHERE kind = $1 AND status = 'running'`,
        [kind],
      );
      return rows[0];
    },

    /**
     * Marks interrupted the running jobs whose owner stopped renewing its lease, and, when
     * `deadOwner` is given, those of that owner whatever their lease (a process known to be gone).
     * Returns the ids it marked.
     */
    async interruptAbandoned(
      error: { code: string; message: string },
      finishedAt: string,
      deadOwners?: { except: string },
    ): Promise<string[]> {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE backup_jobs
            SET status = 'interrupted', finished_at = $2, error = $1::jsonb
          WHERE status = 'running'
            AND (lease_until < now() OR ($3::text IS NOT NULL AND owner <> $3::text))
          RETURNING id::text AS id`,
        [JSON.stringify(error), finishedAt, deadOwners?.except ?? null],
      );
      return rows.map((r) => r.id);
    },

    /** Renews the lease of every job `owner` is running. */
    async renew(owner: string, leaseSeconds: number): Promise<void> {
      await tx.query(
        `UPDATE backup_jobs SET lease_until = now() + make_interval(secs => $2)
          WHERE owner = $1 AND status = 'running'`,
        [owner, leaseSeconds],
      );
    },

    /** The steps so far of a job `owner` still runs; false when it is no longer its own. */
    async saveSteps(id: string, owner: string, steps: unknown): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE backup_jobs SET steps = $3::jsonb WHERE id = $1 AND owner = $2 AND status = 'running'`,
        [id, owner, JSON.stringify(steps)],
      );
      return rowCount > 0;
    },

    /** The end of a job `owner` still runs; false when it was given up as interrupted meanwhile. */
    async finish(
      id: string,
      owner: string,
      end: {
        status: 'succeeded' | 'failed';
        finishedAt: string;
        steps: unknown;
        result: unknown;
        error: unknown;
      },
    ): Promise<boolean> {
      const { rowCount } = await tx.query(
        `UPDATE backup_jobs
            SET status = $3, finished_at = $4, steps = $5::jsonb, result = $6::jsonb, error = $7::jsonb
          WHERE id = $1 AND owner = $2 AND status = 'running'`,
        [
          id,
          owner,
          end.status,
          end.finishedAt,
          JSON.stringify(end.steps),
          end.result === null ? null : JSON.stringify(end.result),
          end.error === null ? null : JSON.stringify(end.error),
        ],
      );
      return rowCount > 0;
    },

    async get(id: string): Promise<BackupJobRow | undefined> {
      const { rows } = await tx.query<BackupJobRow>(`SELECT ${COLUMNS} FROM backup_jobs WHERE id = $1`, [id]);
      return rows[0];
    },

    /** The newest jobs first. */
    async list(limit: number): Promise<BackupJobRow[]> {
      const { rows } = await tx.query<BackupJobRow>(
        `SELECT ${COLUMNS} FROM backup_jobs ORDER BY started_at DESC, id DESC LIMIT $1`,
        [limit],
      );
      return rows;
    },

    /** Forgets finished jobs beyond the newest `keep`. */
    async forget(keep: number): Promise<void> {
      await tx.query(
        `DELETE FROM backup_jobs WHERE status <> 'running' AND id NOT IN (
           SELECT id FROM backup_jobs WHERE status <> 'running' ORDER BY started_at DESC, id DESC LIMIT $1)`,
        [keep],
      );
    },
  };
}
