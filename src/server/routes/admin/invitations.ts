// Admin API: invitations. An invitation mails a single-use link to an address; accepting it
// creates a verified user (and the membership of the organisation it names). Works with sign-up off.
// Listed with their state; a pending one can be revoked, which refuses its link at once.
import { Type } from '@sinclair/typebox';
import type { Invitations } from '../../../identity/invitations.js';
import type { SignUp } from '../../../identity/sign-up.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { CreatedSort, IdPageQuery, PageOf, Params, PROBLEMS, Timestamp, Uuid } from './schemas.js';

const tags = ['invitations'];
const ById = Params({ invitationId: Uuid });

const InvitationInput = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    organisationId: Type.Optional(Uuid),
  },
  { additionalProperties: false },
);

const Invitation = Type.Object({
  id: Uuid,
  organisationId: Type.Union([Uuid, Type.Null()]),
  expiresAt: Timestamp,
});

const InvitationStatus = Type.Union(
  ['pending', 'accepted', 'expired', 'revoked'].map((s) => Type.Literal(s)),
  {
    description:
      'pending: the link works; accepted: its account exists; expired; revoked by an administrator.',
  },
);

const InvitationEntry = Type.Object({
  id: Uuid,
  email: Type.String({ description: 'The invited address (stored encrypted; shown to administrators).' }),
  organisationId: Type.Union([Uuid, Type.Null()]),
  organisationName: Type.Union([Type.String(), Type.Null()], {
    description: 'The organisation the new user joins; null without one or when it was deleted since.',
  }),
  createdBy: Type.Union([Type.String(), Type.Null()], {
    description: 'Who created it, as the audit log names actors (user:<id>, cli).',
  }),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  status: InvitationStatus,
  endedAt: Type.Union([Timestamp, Type.Null()], { description: 'When it was accepted or revoked.' }),
});

const InvitationListQuery = Type.Object({ ...IdPageQuery.properties, sort: Type.Optional(CreatedSort) });

export interface InvitationRoutesDeps extends TenantScope {
  signUp: Pick<SignUp, 'invite'>;
  invitations: Invitations;
}

export function registerInvitationRoutes(api: AdminApi, deps: InvitationRoutesDeps): void {
  const { invitations } = deps;

  api.get(
    '/invitations',
    {
      schema: {
        tags,
        summary: 'List invitations with their state (pending, accepted, expired, revoked)',
        description:
          'In creation order (sort=-created: newest first). Finished invitations stay listed until housekeeping deletes them a day after they ended.',
        params: Params({}),
        querystring: InvitationListQuery,
        response: { 200: PageOf(InvitationEntry), ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx, { tenant }) => invitations.list(tx, tenant.id, request.query)),
  );

  api.post(
    '/invitations',
    {
      schema: {
        tags,
        summary: 'Invite an address (optionally into an organisation); the link goes only by mail',
        description:
          'The link works once, for 7 days. 409 user.email_taken when the address already has an account; 404 organisation.not_found.',
        params: Params({}),
        body: InvitationInput,
        response: { 201: Invitation, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const { tenant, actor } = adminContextOf(request);
      const invitation = await deps.signUp.invite(tenant, {
        email: request.body.email,
        organisation: request.body.organisationId,
        actor,
      });
      return reply.code(201).send(invitation);
    },
  );

  api.get(
    '/invitations/:invitationId',
    {
      schema: {
        tags,
        summary: 'Get an invitation',
        params: ById,
        response: { 200: InvitationEntry, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant }) =>
        invitations.get(tx, tenant.id, request.params.invitationId),
      ),
  );

  api.delete(
    '/invitations/:invitationId',
    {
      schema: {
        tags,
        summary: 'Revoke an invitation: its link is refused from now on',
        description:
          'Audited as invitation.revoked. Revoking a revoked or expired invitation changes nothing more; 409 invitation.already_accepted once its account exists (disable or delete the user instead).',
        params: ById,
        response: { 200: InvitationEntry, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant, actor }) =>
        invitations.revoke(tx, tenant.id, request.params.invitationId, actor),
      ),
  );
}
