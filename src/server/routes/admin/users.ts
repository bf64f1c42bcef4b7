// Admin API: users of a tenant (list, create, get, update, set password, disable, enable,
// unlock, delete), through the users service of src/identity.
import { Type } from '@sinclair/typebox';
import { deleteUserExports } from '../../../bundles/user-export.js';
import type { Clock } from '../../../core/clock.js';
import { isOrthIdError } from '../../../core/errors.js';
import type { Avatars } from '../../../identity/avatars.js';
import { queueEmailChangedNotice } from '../../../identity/email-change-notice.js';
import type { Mfa } from '../../../identity/mfa.js';
import type { SignUp } from '../../../identity/sign-up.js';
import type { Users } from '../../../identity/users.js';
import type { Mail } from '../../../mail/mail.js';
import type { ObjectStore } from '../../../storage/objects/object-store.js';
import { issuerFor } from '../../../tenancy/tenants.js';
import { brandOf } from '../../../web/brand.js';
import { chooseLocale } from '../../../web/i18n.js';
import { emailChangedMail } from '../../../web/mails/account-mails.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import {
  CreatedSort,
  IdPageQuery,
  NoContent,
  PageOf,
  Params,
  PROBLEMS,
  Text,
  User,
  UserInput,
  UserPatch,
  Uuid,
} from './schemas.js';

const tags = ['users'];
const ById = Params({ userId: Uuid });
const UserListQuery = Type.Object({
  ...IdPageQuery.properties,
  status: Type.Optional(
    Type.Union([Type.Literal('active'), Type.Literal('disabled')], {
      description: 'Only users with this status.',
    }),
  ),
  verification: Type.Optional(
    Type.Literal('pending', {
      description:
        'pending: only users who signed up and have not yet verified their address (they cannot sign in until they do).',
    }),
  ),
  sort: Type.Optional(CreatedSort),
  email: Type.Optional(
    Type.String({
      format: 'email',
      maxLength: 320,
      description:
        'Only the user with this email (exact match, case-insensitive, through the blind index: no partial search).',
    }),
  ),
});
const PasswordInput = Type.Object(
  { password: Text({ minLength: 1, maxLength: 1024, writeOnly: true }) },
  { additionalProperties: false },
);

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface UserRoutesDeps extends TenantScope {
  users: Users;
  /** Where the deleted users' data exports are removed from. */
  objects: ObjectStore;
  /** Whether the tenant's MFA policy applies to a user (the password minimum depends on it). */
  mfa: Pick<Mfa, 'enforcedFor'>;
  /** Mails a new verification link to an account that waits for one. */
  signUp: Pick<SignUp, 'resendForUser'>;
  /** Where the notice to a user's previous address goes when an administrator changes it. */
  mail: Pick<Mail, 'enqueue'>;
  /** The deployment's public URL: the brand's links in that notice. */
  publicUrl: string;
  clock: Clock;
}

const VerificationSent = Type.Object({
  userId: Uuid,
  expiresAt: Type.String({ format: 'date-time', description: 'Until when the new link and code work.' }),
});

export function registerUserRoutes(api: AdminApi, deps: UserRoutesDeps, avatars: Avatars): void {
  const users = deps.users;

  /**
   * Removes a deleted user's objects (avatar, data exports). The object store cannot join the
   * transaction, so this runs after the commit; a failure is logged with where to clean up, and a
   * repeated DELETE (404) runs it again.
   */
  async function removeObjectsOf(request: Parameters<typeof adminContextOf>[0], userId: string) {
    const { tenant } = adminContextOf(request);
    try {
      await avatars.purgeUser(tenant.id, userId);
      await deleteUserExports(deps, tenant, userId);
    } catch (err) {
      request.log.error(
        { err, tenant: tenant.slug, userId },
        'could not delete the objects of a deleted user',
      );
    }
  }

  api.get(
    '/users',
    {
      schema: {
        tags,
        summary: 'List users in creation order, or find one by email',
        description:
          'Filters combine. 400 request.invalid for a sort other than created or -created, or a cursor this API did not return.',
        params: Params({}),
        querystring: UserListQuery,
        response: { 200: PageOf(User), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) => {
        const { email, verification, ...paging } = request.query;
        const awaitingVerification = verification === 'pending' ? true : undefined;
        if (email !== undefined) {
          const found = await users.getByEmail(tx, tenant.id, email);
          const matches =
            found &&
            (paging.status === undefined || found.status === paging.status) &&
            (awaitingVerification === undefined || found.awaitingVerification);
          return { items: matches ? [found] : [], next: null };
        }
        const page = await users.list(tx, tenant.id, { ...paging, awaitingVerification });
        return { items: page.users, next: page.next };
      }),
  );

  api.post(
    '/users',
    {
      schema: {
        tags,
        summary: 'Create a user',
        params: Params({}),
        body: UserInput,
        response: { 201: User, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      // A new user belongs to no organisation yet: only a tenant-wide MFA requirement counts.
      const created = await inTenant(deps, request, async (tx, { tenant, actor }) =>
        users.create(tx, tenant.id, request.body, actor, {
          mfaEnforced: await deps.mfa.enforcedFor(tx, tenant.id),
        }),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/users/:userId',
    { schema: { tags, summary: 'Get a user', params: ById, response: { 200: User, ...PROBLEMS } } },
    (request) => inTenant(deps, request, (tx, { tenant }) => users.get(tx, tenant.id, request.params.userId)),
  );

  api.patch(
    '/users/:userId',
    {
      schema: {
        tags,
        summary: "Change a user's email, name or phone (null clears name or phone)",
        params: ById,
        body: UserPatch,
        response: { 200: User, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant, actor }) => {
        const { userId } = request.params;
        const previous =
          request.body.email === undefined ? undefined : await users.get(tx, tenant.id, userId);
        const updated = await users.update(tx, tenant.id, userId, request.body, actor);
        if (previous) {
          // The user did not ask for this: their previous address is told, in the tenant's
          // language (the user's own is not known here), in the same transaction as the change.
          const locale = chooseLocale({ tenantDefault: tenant.settings.defaultLocale });
          const brand = brandOf(tenant, issuerFor(deps.publicUrl, tenant.slug));
          const at = deps.clock.now();
          await queueEmailChangedNotice(
            deps.mail,
            tx,
            tenant.id,
            { previous: previous.email, next: updated.email },
            (maskedAddress) => emailChangedMail(locale, brand, { maskedAddress, at }),
          );
        }
        return updated;
      }),
  );

  api.put(
    '/users/:userId/password',
    {
      schema: {
        tags,
        summary: "Set a user's password (also lifts a sign-in lock)",
        params: ById,
        body: PasswordInput,
        response: { 200: User, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant, actor }) =>
        users.setPassword(tx, tenant.id, request.params.userId, request.body.password, {
          mfaEnforced: await deps.mfa.enforcedFor(tx, tenant.id, request.params.userId),
          actor,
        }),
      ),
  );

  for (const [action, summary] of [
    ['disable', 'Disable a user: they can no longer sign in'],
    ['enable', 'Enable a disabled user'],
    ['unlock', 'Lift a sign-in lock and clear failure counters'],
  ] as const) {
    api.post(
      `/users/:userId/${action}`,
      { schema: { tags, summary, params: ById, response: { 200: User, ...PROBLEMS } } },
      (request) =>
        inTenant(deps, request, (tx, { tenant, actor }) =>
          users[action](tx, tenant.id, request.params.userId, actor),
        ),
    );
  }

  api.post(
    '/users/:userId/verification',
    {
      schema: {
        tags,
        summary: 'Mail a new verification link and code to a user awaiting verification',
        description:
          'Earlier links stop working. 409 user.not_awaiting_verification when the account does not wait for one; 429 signup.throttled past the per-address limit (3 mails an hour). To remove a pending account, delete the user.',
        params: ById,
        response: { 202: VerificationSent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const { tenant, actor } = adminContextOf(request);
      const sent = await deps.signUp.resendForUser(tenant, request.params.userId, { actor });
      return reply.code(202).send(sent);
    },
  );

  api.delete(
    '/users/:userId',
    {
      schema: {
        tags,
        summary:
          'Delete a user and their personal data, avatar and data exports (the audit log keeps the id only)',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      try {
        await inTenant(deps, request, (tx, { tenant, actor }) =>
          users.delete(tx, tenant.id, request.params.userId, actor),
        );
      } catch (error) {
        if (isOrthIdError(error, 'user.not_found')) await removeObjectsOf(request, request.params.userId);
        throw error;
      }
      await removeObjectsOf(request, request.params.userId);
      return reply.code(204).send(null);
    },
  );
}
