// Deletes rows that have stopped meaning anything, so tables grow with use and not with time:
// OIDC artefacts past their expiry (codes, tokens, sessions, grants; reads already ignore them)
// sign-in address counters past their reset window, passkey challenges nobody answered, and mailed
// account links (reset, verification, invitation) a day after they expired or were used.
// Idempotent, so every replica may run it.

import { createAccountTokenQueries } from '../identity/account-tokens.queries.js';
import { createPasskeysQueries } from '../identity/passkeys.queries.js';
import { createOidcPayloadsQueries } from '../oidc/oidc-payloads.queries.js';
import { withTenantStatements } from '../storage/db/database.js';
import type { OrthId } from './orthid.js';

/** What the purge uses of a deployment. */
export type HousekeepingDeps = Pick<OrthId, 'db' | 'clock' | 'tenants' | 'signInThrottle'>;

/**
 * Rows deleted per statement. Each batch is its own short transaction, so a backlog (a first run
 * on a busy deployment) never holds one long transaction or writes one burst of WAL.
 */
const PURGE_BATCH = 5000;

export interface PurgeCount {
  tenant: string;
  /** Expired oidc-provider rows deleted. */
  oidcPayloads: number;
  /** Stale sign-in address counters deleted. */
  throttleCounters: number;
  /** Expired passkey ceremony challenges deleted. */
  passkeyChallenges: number;
  /** Account links (reset, verification, invitation) expired or used over a day ago, deleted. */
  accountTokens: number;
}

/** How long a used or expired account link is kept: its page can still say "already used". */
const ACCOUNT_TOKEN_GRACE_MS = 24 * 3600 * 1000;

/** Repeats `deleteBatch` until a batch comes back short; returns the rows deleted in all. */
async function drain(deleteBatch: () => Promise<number>, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch();
    total += deleted;
    if (deleted < batch) return total;
  }
}

/** Purges every tenant, one at a time; returns the tenants where something was deleted. */
export async function purgeExpired(app: HousekeepingDeps, batch = PURGE_BATCH): Promise<PurgeCount[]> {
  const counts: PurgeCount[] = [];
  for (const tenant of await app.tenants.list()) {
    const counted = await withTenantStatements(app.db, tenant.id, async (q) => ({
      oidcPayloads: await drain(() => createOidcPayloadsQueries(q).deleteExpired(batch), batch),
      throttleCounters: await drain(
        () => app.signInThrottle.purgeStaleAddresses(q, app.clock.now(), batch),
        batch,
      ),
      passkeyChallenges: await drain(
        () => createPasskeysQueries(q).deleteExpiredChallenges(app.clock.now(), batch),
        batch,
      ),
      accountTokens: await drain(
        () =>
          createAccountTokenQueries(q).deleteFinished(
            new Date(app.clock.now().getTime() - ACCOUNT_TOKEN_GRACE_MS),
            batch,
          ),
        batch,
      ),
    }));
    if (Object.values(counted).some((n) => n > 0)) counts.push({ tenant: tenant.slug, ...counted });
  }
  return counts;
}

/**
 * Deletes sent and failed mail finished longer than ORTHID_MAIL_RETENTION ago: its recipient and
 * body are personal data, kept only as long as an operator may need to see that a mail went.
 */
export function purgeFinishedMail(app: Pick<OrthId, 'mail'>, batch = PURGE_BATCH): Promise<number> {
  return app.mail.purgeFinished(batch);
}
