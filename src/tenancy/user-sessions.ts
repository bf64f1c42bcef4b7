// A user's sign-in sessions at the tenant's provider: list them, revoke one, or sign out
// everywhere (every session, and every grant with the codes and tokens issued under it).
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { type RbacDeps, recordChange } from './record-change.js';
import { createUserSessionsQueries, type SessionRow } from './user-sessions.queries.js';

export interface UserSession {
  /** Stable public name of the session (never its cookie value). */
  uid: string;
  signedInAt: string | null;
  expiresAt: string | null;
  /** Clients the user signed in to within this session. */
  clientIds: string[];
  amr: string[];
}

interface StoredSession {
  loginTs?: number;
  amr?: string[];
  authorizations?: Record<string, { grantId?: string }>;
}

function present(row: SessionRow): UserSession {
  const payload = row.payload as StoredSession;
  return {
    uid: row.uid,
    signedInAt: typeof payload.loginTs === 'number' ? new Date(payload.loginTs * 1000).toISOString() : null,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
    clientIds: Object.keys(payload.authorizations ?? {}).sort(),
    amr: Array.isArray(payload.amr) ? payload.amr.filter((v): v is string => typeof v === 'string') : [],
  };
}

function grantIdsIn(row: SessionRow): string[] {
  const authorizations = (row.payload as StoredSession).authorizations ?? {};
  return Object.values(authorizations).flatMap((a) => (typeof a?.grantId === 'string' ? [a.grantId] : []));
}

export function createUserSessions(deps: RbacDeps) {
  return {
    async list(tx: Queryable, userId: string, page: PageRequest): Promise<Page<UserSession>> {
      const rows = await createUserSessionsQueries(tx).page(
        userId,
        deps.clock.now(),
        page.after,
        page.limit + 1,
      );
      return pageOf(rows, page.limit, (r) => r.uid, present);
    },

    /** Ends one session and revokes the grants (and tokens) its sign-ins created. */
    async revoke(tx: Queryable, tenantId: string, userId: string, uid: string, actor: string): Promise<void> {
      const queries = createUserSessionsQueries(tx);
      const row = await queries.deleteOne(userId, uid);
      if (!row) throw new OrthIdError('session.not_found', `User ${userId} has no session ${uid}.`);
      const grants = grantIdsIn(row);
      await queries.revokeGrants(grants);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'session.revoked',
        target: `user:${userId}`,
        details: { sessionUid: uid, grantsRevoked: grants.length },
      });
    },

    /**
     * Signs the user out everywhere but where they are: every other session goes, and every grant
     * but `keepGrantId` (the one the caller's own token stands on), with its codes and tokens.
     */
    async revokeOthers(
      tx: Queryable,
      tenantId: string,
      userId: string,
      keep: { sessionUid: string; grantId: string },
      actor: string,
    ): Promise<{ sessions: number; grants: number }> {
      const queries = createUserSessionsQueries(tx);
      const grantIds = (await queries.grantIdsOf(userId)).filter((id) => id !== keep.grantId);
      const sessions = await queries.deleteAllBut(userId, keep.sessionUid);
      await queries.revokeGrants(grantIds);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'session.revoked_others',
        target: `user:${userId}`,
        details: { sessions, grants: grantIds.length },
      });
      return { sessions, grants: grantIds.length };
    },

    /** Signs the user out everywhere: every session, grant, code and token of theirs goes. */
    async revokeAll(
      tx: Queryable,
      tenantId: string,
      userId: string,
      actor: string,
    ): Promise<{ sessions: number; grants: number }> {
      const queries = createUserSessionsQueries(tx);
      const grantIds = await queries.grantIdsOf(userId);
      const sessions = await queries.deleteAll(userId);
      await queries.revokeGrants(grantIds);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'session.revoked_all',
        target: `user:${userId}`,
        details: { sessions, grants: grantIds.length },
      });
      return { sessions, grants: grantIds.length };
    },
  };
}

export type UserSessions = ReturnType<typeof createUserSessions>;
