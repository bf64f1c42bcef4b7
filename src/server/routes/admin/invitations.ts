// Admin API: invitations. An invitation mails a single-use link to an address; accepting it
// creates a verified user (and the membership of the organisation it names). Works with sign-up off.
import { Type } from '@sinclair/typebox';
import type { SignUp } from '../../../identity/sign-up.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import type { AdminApi } from './context.js';
import { PROBLEMS, Timestamp, Uuid } from './schemas.js';

const tags = ['invitations'];

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

export interface InvitationRoutesDeps {
  signUp: Pick<SignUp, 'invite'>;
}

export function registerInvitationRoutes(api: AdminApi, deps: InvitationRoutesDeps): void {
  api.post(
    '/invitations',
    {
      schema: {
        tags,
        summary: 'Invite an address (optionally into an organisation); the link goes only by mail',
        description:
          'The link works once, for 7 days. 409 user.email_taken when the address already has an account; 404 organisation.not_found.',
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
}
