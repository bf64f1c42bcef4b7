// Admin API: a user's sign-in sessions: list, revoke one, or sign out everywhere.
import { Type } from '@sinclair/typebox';
import type { OrthId } from '../../../ops/orthid.js';
import { type AdminApi, inTenant } from './context.js';
import { NoContent, PageOf, PageQuery, Params, PROBLEMS, Session, Uuid } from './schemas.js';

const tags = ['sessions'];
const SessionUid = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' });
const OfUser = Params({ userId: Uuid });

export function registerSessionRoutes(api: AdminApi, orthid: OrthId): void {
  const sessions = orthid.rbac.sessions;

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
      inTenant(orthid, request, async (tx, { tenant }) => {
        await orthid.users.get(tx, tenant.id, request.params.userId);
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
      await inTenant(orthid, request, (tx, { tenant, actor }) =>
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
      inTenant(orthid, request, async (tx, { tenant, actor }) => {
        await orthid.users.get(tx, tenant.id, request.params.userId);
        return sessions.revokeAll(tx, tenant.id, request.params.userId, actor);
      }),
  );
}
