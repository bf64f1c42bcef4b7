// Delivers queued mail. Every replica may run a worker: each claims due mail per tenant with
// FOR UPDATE SKIP LOCKED and a lease, so two workers never hold the same mail. A failed attempt
// is retried with exponential back-off; after the last attempt or past the maximum age the mail
// is marked failed, audited and counted. Woken by LISTEN/NOTIFY on enqueue, and by a poll for
// retries that come due and for notifications missed while the listen connection was down.

import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { SHREDDED } from '../crypto/tenant-keys.js';
import { type Database, withSystem, withTenant } from '../storage/db/database.js';
import { MAIL_CHANNEL, openMail } from './mail.js';
import { allTenantIds, createMailQueueQueries, type MailRow } from './mail-queue.queries.js';
import { DeliveryError, type MailTransport } from './transport.js';

export interface RetryPolicy {
  /** Delay after the first failed attempt; doubled after each further one. */
  baseMs: number;
  maxDelayMs: number;
  /** Attempts after which a mail is marked failed. */
  maxAttempts: number;
  /** Age after which a mail that has not gone is marked failed (a link in it has likely expired). */
  maxAgeMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  baseMs: 30_000,
  maxDelayMs: 60 * 60_000,
  maxAttempts: 12,
  maxAgeMs: 24 * 60 * 60_000,
};

export interface DeliveryWorkerDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  log: Logger;
  /** undefined: no transport is configured, and mail stays queued until one is. */
  transport: MailTransport | undefined;
  retry?: RetryPolicy;
  /** How often due retries are looked for (default 15 s). */
  pollMs?: number;
  /** Mails claimed per tenant and round. */
  batch?: number;
}

export interface DeliveryReport {
  sent: number;
  retrying: number;
  failed: number;
}

export interface DeliveryWorker {
  /** One round over every tenant; resolves when the claimed mail has been tried. */
  runOnce(): Promise<DeliveryReport>;
  /** Listens and polls until stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Delay before attempt `attempts + 1`, after `attempts` failures. */
export function backoffMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxDelayMs, policy.baseMs * 2 ** Math.max(0, attempts - 1));
}

export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const policy = deps.retry ?? DEFAULT_RETRY;
  const batch = deps.batch ?? 20;
  // A lease outlives the transport's own timeouts, so a slow send is never claimed twice.
  const leaseMs = 2 * 60_000;
  let running: Promise<DeliveryReport> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let stopped = false;

  const fail = async (tenantId: string, row: MailRow, reason: string) => {
    await withTenant(deps.db, tenantId, async (tx) => {
      await createMailQueueQueries(tx).markFailed(row.id, deps.clock.now(), reason);
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      // A shredded tenant's audit key is gone with its other keys: there is no log to write to.
      if (keyring.shredded) return;
      await appendAudit(
        tx,
        keyring,
        {
          actor: 'system',
          action: 'mail.failed',
          target: `mail:${row.id}`,
          outcome: 'failure',
          details: { template: row.template, attempts: row.attempts, reason },
        },
        deps.clock,
      );
    });
    deps.log.warn(
      { tenant: tenantId, mail: row.id, template: row.template, attempts: row.attempts, reason },
      'mail failed for good',
    );
  };

  const deliver = async (tenantId: string, row: MailRow, report: DeliveryReport) => {
    const transport = deps.transport;
    if (!transport) return;
    let opened: ReturnType<typeof openMail>;
    try {
      opened = await withTenant(deps.db, tenantId, async (tx) =>
        openMail(await deps.tenantKeys.forTenant(tx, tenantId), row),
      );
    } catch (error) {
      // A mail that cannot be opened (altered, or its key destroyed) never will be: mark it
      // failed so it does not block the mail queued behind it. Anything else (the database is
      // away) ends the round; the lease runs out and the mail is tried again.
      if (!isOrthIdError(error) || !error.code.startsWith('crypto.')) throw error;
      await fail(tenantId, row, error.code.replace('.', '-'));
      report.failed += 1;
      return;
    }
    if (opened.to === SHREDDED) {
      await fail(tenantId, row, 'tenant-shredded');
      report.failed += 1;
      return;
    }
    try {
      await transport.send({
        id: row.id,
        tenantId,
        template: row.template,
        to: opened.to,
        ...opened.content,
      });
    } catch (error) {
      const failure = error instanceof DeliveryError ? error : new DeliveryError('error', false);
      const now = deps.clock.now();
      const tooOld = now.getTime() - row.created_at.getTime() >= policy.maxAgeMs;
      if (failure.permanent || row.attempts >= policy.maxAttempts || tooOld) {
        await fail(tenantId, row, failure.reason);
        report.failed += 1;
        return;
      }
      const next = new Date(now.getTime() + backoffMs(policy, row.attempts));
      await withTenant(deps.db, tenantId, (tx) =>
        createMailQueueQueries(tx).markRetry(row.id, next, failure.reason),
      );
      deps.log.warn(
        {
          tenant: tenantId,
          mail: row.id,
          template: row.template,
          attempts: row.attempts,
          reason: failure.reason,
          retryAt: next.toISOString(),
        },
        'mail delivery failed; it stays queued and is retried',
      );
      report.retrying += 1;
      return;
    }
    await withTenant(deps.db, tenantId, (tx) =>
      createMailQueueQueries(tx).markSent(row.id, deps.clock.now()),
    );
    deps.log.info({ tenant: tenantId, mail: row.id, template: row.template }, 'mail sent');
    report.sent += 1;
  };

  const round = async (): Promise<DeliveryReport> => {
    const report: DeliveryReport = { sent: 0, retrying: 0, failed: 0 };
    if (!deps.transport) return report;
    for (const tenantId of await withSystem(deps.db, allTenantIds)) {
      for (;;) {
        const now = deps.clock.now();
        const claimed = await withTenant(deps.db, tenantId, (tx) =>
          createMailQueueQueries(tx).claimDue(now, new Date(now.getTime() + leaseMs), batch),
        );
        for (const row of claimed) await deliver(tenantId, row, report);
        if (claimed.length < batch) break;
      }
    }
    return report;
  };

  /** One round at a time; a wake-up during a round asks for one more. */
  const runOnce = (): Promise<DeliveryReport> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        let report = await round();
        while (again && !stopped) {
          again = false;
          const more = await round();
          report = {
            sent: report.sent + more.sent,
            retrying: report.retrying + more.retrying,
            failed: report.failed + more.failed,
          };
        }
        return report;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const wake = () => {
    if (stopped) return;
    runOnce().catch((error: unknown) => {
      deps.log.warn(
        // The code only: a database error's text may quote a value.
        { code: (error as { code?: unknown }).code },
        'mail delivery round failed; it runs again at the next poll',
      );
    });
  };

  return {
    runOnce,
    async start() {
      if (!deps.transport) return;
      unlisten = await deps.db.listen(MAIL_CHANNEL, wake, (connected) => {
        if (connected) wake();
      });
      timer = setInterval(wake, deps.pollMs ?? 15_000);
      timer.unref();
      wake();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await unlisten?.();
      await running?.catch(() => undefined);
      deps.transport?.close();
    },
  };
}
