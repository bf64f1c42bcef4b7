// Admin API: a user's sign-in sessions: list, revoke one, or sign out everywhere.
import { Type } from '@sinclair/typebox';
import type { Users } from '../../../identity/users.js';
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { NoContent, PageOf, PageQuery, Params, PROBLEMS, Session, Uuid } from './schemas.js';

const tags = ['sessions'];
const SessionUid = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' });
const OfUser = Params({ userId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface SessionRoutesDeps extends TenantScope {
  sessions: Rbac['sessions'];
  users: Pick<Users, 'get'>;
}

export function registerSessionRoutes(api: AdminApi, deps: SessionRoutesDeps): void {
  const sessions = deps.sessions;

  api.get(
    '/users/:userId/sessions',
    {
      schema: {
        tags,
        summary: "List a user's active sessions",
        params: OfUser,
        querystring: PageQuery(SessionUid),
        response: { 200: PageOf(Session), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) => {
        await deps.users.get(tx, tenant.id, request.params.userId);
        return sessions.list(tx, request.params.userId, request.query);
      }),
  );

  api.delete(
    '/users/:userId/sessions/:sessionUid',
    {
      schema: {
        tags,
        summary: 'Revoke one session and the grants (tokens) its sign-ins created',
        params: Params({ userId: Uuid, sessionUid: SessionUid }),
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        sessions.revoke(tx, tenant.id, request.params.userId, request.params.sessionUid, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.delete(
    '/users/:userId/sessions',
    {
      schema: {
        tags,
        summary: 'Sign the user out everywhere: every session, grant, code and token',
        params: OfUser,
        response: { 200: Type.Object({ sessions: Type.Integer(), grants: Type.Integer() }), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant, actor }) => {
        await deps.users.get(tx, tenant.id, request.params.userId);
        return sessions.revokeAll(tx, tenant.id, request.params.userId, actor);
      }),
  );
}
