// Admin API: a user's second factors (listed without secrets, removed when lost), requiring
// re-enrolment, new recovery codes, and the tenant's MFA policy. Every change is audited by the
// MFA service or the policy operation, with the caller as actor.
import { Type } from '@sinclair/typebox';
import type { Passkeys } from '../../../identity/passkeys.js';
import { configureMfaPolicy } from '../../../ops/mfa-policy.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { type AdminApi, inTenant } from './context.js';
import { NoContent, Params, PROBLEMS, Text, Timestamp, Uuid } from './schemas.js';

const tags = ['users'];
const ById = Params({ userId: Uuid });

const Factor = Type.Object({
  id: Uuid,
  kind: Type.String({ description: 'What verifies it, e.g. totp.' }),
  name: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  passkey: Type.Optional(
    Type.Object(
      {
        backupEligible: Type.Boolean({ description: 'BE: the credential may be synced to other devices.' }),
        backedUp: Type.Boolean({ description: 'BS: it was backed up when last used.' }),
      },
      { description: 'Only for kind passkey: its backup flags (never its public key).' },
    ),
  ),
});

const Factors = Type.Object({
  factors: Type.Array(Factor),
  recoveryCodesLeft: Type.Integer({ description: 'Unused recovery codes.' }),
  mustReenrol: Type.Boolean({ description: 'The user is walked through enrolment at their next sign-in.' }),
});

const MfaPolicy = Type.Object({
  mode: Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')]),
  organisations: Type.Array(Uuid, { description: 'With required: only members of these (empty: everyone).' }),
  roles: Type.Array(Uuid, { description: 'With required: only holders of these roles (empty: everyone).' }),
});

const Names = Type.Array(Text({ minLength: 1, maxLength: 200 }), { maxItems: 100 });
const MfaPolicyInput = Type.Object(
  {
    mode: Type.Optional(
      Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')]),
    ),
    organisations: Type.Optional(Names),
    roles: Type.Optional(Names),
  },
  { additionalProperties: false },
);

/** What the routes use: the factors and the services setting the tenant's policy needs. */
export type UserFactorRoutesDeps = Parameters<typeof configureMfaPolicy>[0] & {
  passkeys: Pick<Passkeys, 'list'>;
};

export function registerUserFactorRoutes(api: AdminApi, deps: UserFactorRoutesDeps): void {
  const { mfa } = deps;

  api.get(
    '/users/:userId/factors',
    {
      schema: {
        tags,
        summary: "List a user's second factors (never their secrets)",
        params: ById,
        response: { 200: Factors, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx) => {
        const listed = await mfa.listFactors(tx, request.params.userId);
        const passkeys = new Map((await deps.passkeys.list(tx, request.params.userId)).map((k) => [k.id, k]));
        return {
          ...listed,
          factors: listed.factors.map((f) => {
            const k = passkeys.get(f.id);
            return k ? { ...f, passkey: { backupEligible: k.backupEligible, backedUp: k.backedUp } } : f;
          }),
        };
      }),
  );

  api.delete(
    '/users/:userId/factors/:factorId',
    {
      schema: {
        tags,
        summary: "Remove a user's (lost) factor; with the last one go their recovery codes",
        params: Params({ userId: Uuid, factorId: Uuid }),
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        mfa.removeFactor(tx, tenant.id, request.params.userId, request.params.factorId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.post(
    '/users/:userId/mfa/reenrol',
    {
      schema: {
        tags,
        summary:
          'Require re-enrolment: removes every factor and recovery code; the user sets up a new factor at their next sign-in',
        params: ById,
        response: {
          200: Type.Object({ mustReenrol: Type.Boolean(), factorsRemoved: Type.Integer() }),
          ...PROBLEMS,
        },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant, actor }) =>
        mfa.requireReenrolment(tx, tenant.id, request.params.userId, actor),
      ),
  );

  api.post(
    '/users/:userId/recovery-codes',
    {
      schema: {
        tags,
        summary:
          'New recovery codes for a user with a factor (the old set stops working); shown only in this response',
        params: ById,
        response: { 200: Type.Object({ codes: Type.Array(Type.String()) }), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant, actor }) => ({
        codes: await mfa.regenerateRecoveryCodes(tx, tenant.id, request.params.userId, actor),
      })),
  );

  api.get(
    '/mfa-policy',
    {
      schema: {
        tags: ['tenant'],
        summary: "The tenant's MFA policy",
        params: Params({}),
        response: { 200: MfaPolicy, ...PROBLEMS },
      },
    },
    async (request) => mfa.policyOf(await deps.tenants.get(adminContextOf(request).tenant.slug)),
  );

  api.put(
    '/mfa-policy',
    {
      schema: {
        tags: ['tenant'],
        summary: "Set the tenant's MFA policy (organisations and roles by name or id; omitted fields stay)",
        params: Params({}),
        body: MfaPolicyInput,
        response: { 200: MfaPolicy, ...PROBLEMS },
      },
    },
    async (request) => {
      const { tenant, actor } = adminContextOf(request);
      // The cached tenant of the request may predate a change just made on another replica.
      const current = await deps.tenants.get(tenant.slug);
      return configureMfaPolicy(deps, current, request.body, actor);
    },
  );
}
