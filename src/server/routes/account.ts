// The account API a signed-in user calls about themself: /t/:tenant/account/avatar (GET, PUT,
// DELETE), authorised by the opaque access token their tenant's provider issued (the userinfo token).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { Queryable } from '../../core/sql.js';
import type { Avatars } from '../../identity/avatars.js';
import type { Users } from '../../identity/users.js';
import type { OidcProviders } from '../../oidc/providers.js';
import { type Database, withTenant } from '../../storage/db/database.js';
import type { Tenant } from '../../tenancy/tenants.js';
import { imageBodyOf, registerImageBody, sendAvatar } from '../plugins/media.js';

/** The scopes a token needs here: an OpenID sign-in that the user let read their profile. */
export const ACCOUNT_SCOPES = ['openid', 'profile'] as const;

/** RFC 6750 b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

type Params = { tenant: string };

interface AccountCaller {
  tenant: Tenant;
  userId: string;
}

function challenge(reply: FastifyReply, error?: string, description?: string): void {
  const params = ['realm="orthid"'];
  if (error) params.push(`error="${error}"`);
  if (description) params.push(`error_description="${description.replace(/["\\]/g, '')}"`);
  if (error === 'insufficient_scope') params.push(`scope="${ACCOUNT_SCOPES.join(' ')}"`);
  void reply.header('WWW-Authenticate', `Bearer ${params.join(', ')}`);
}

/** What the account API uses: the tenants' providers (to find a token), the users and their avatars. */
export interface AccountDeps {
  db: Database;
  oidc: Pick<OidcProviders, 'get'>;
  users: Pick<Users, 'get'>;
  avatars: Avatars;
}

export async function accountRoutes(app: FastifyInstance, deps: AccountDeps): Promise<void> {
  const { avatars } = deps;
  registerImageBody(app);

  /**
   * The same checks the provider's userinfo endpoint makes, against the tenant in the path: the
   * token is one of this tenant's (a token of another tenant is simply not found), unexpired, not
   * bound to an API audience, not sender-constrained (no DPoP here), carries openid and profile,
   * and its grant still stands (sign-out everywhere and revocation end it); the user is active.
   */
  async function caller(
    request: FastifyRequest<{ Params: Params }>,
    reply: FastifyReply,
  ): Promise<AccountCaller> {
    const invalid = (description: string) => {
      challenge(reply, 'invalid_token', description);
      return new OrthIdError('auth.unauthenticated', description);
    };
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) {
      challenge(reply);
      throw new OrthIdError(
        'auth.unauthenticated',
        'Send the access token your application received at sign-in as "Authorization: Bearer <token>".',
      );
    }
    const { tenant, provider } = await deps.oidc.get(request.params.tenant);
    const token = await provider.AccessToken.find(match[1]!);
    if (!token?.accountId || !token.grantId || !token.clientId) {
      throw invalid('The access token is unknown, expired or revoked; sign in again.');
    }
    const bound = token as unknown as { aud?: unknown; jkt?: string; 'x5t#S256'?: string };
    if (bound.aud !== undefined) {
      throw invalid(
        'The access token is for an API; use the token issued without a resource (the userinfo token).',
      );
    }
    if (bound.jkt !== undefined || bound['x5t#S256'] !== undefined) {
      throw invalid('Sender-constrained (DPoP or mTLS) access tokens are not accepted by the account API.');
    }
    const missing = ACCOUNT_SCOPES.filter((scope) => !token.scopes.has(scope));
    if (missing.length > 0) {
      challenge(reply, 'insufficient_scope', `The access token lacks ${missing.join(' ')}.`);
      throw new OrthIdError(
        'auth.forbidden',
        `The access token lacks the ${missing.join(' and ')} scope; request "${ACCOUNT_SCOPES.join(' ')}" at sign-in.`,
      );
    }
    const grant = await provider.Grant.find(token.grantId, { ignoreExpiration: true });
    if (
      !grant ||
      grant.isExpired ||
      grant.clientId !== token.clientId ||
      grant.accountId !== token.accountId
    ) {
      throw invalid('The sign-in behind this access token has ended; sign in again.');
    }
    const user = await withTenant(deps.db, tenant.id, (tx) =>
      deps.users.get(tx, tenant.id, token.accountId!),
    ).catch((error: unknown) => {
      throw isOrthIdError(error, 'user.not_found') ? invalid('This account no longer exists.') : error;
    });
    if (user.status !== 'active') throw invalid('This account is disabled.');
    return { tenant, userId: user.id };
  }

  // Before the body is read: an unauthenticated caller never gets 5 MiB buffered.
  const callers = new WeakMap<FastifyRequest, AccountCaller>();
  app.addHook('onRequest', async (request, reply) => {
    callers.set(request, await caller(request as FastifyRequest<{ Params: Params }>, reply));
  });
  const me = (request: FastifyRequest): AccountCaller => callers.get(request)!;
  const inTenant = <T>(caller: AccountCaller, fn: (tx: Queryable) => Promise<T>) =>
    withTenant(deps.db, caller.tenant.id, fn);

  app.get('/t/:tenant/account/avatar', async (request, reply) => {
    const { tenant, userId } = me(request);
    const avatar = await inTenant(me(request), (tx) => avatars.get(tx, tenant.id, userId));
    return sendAvatar(request, reply, avatar);
  });

  app.put('/t/:tenant/account/avatar', async (request) => {
    const { tenant, userId } = me(request);
    const body = imageBodyOf(request);
    const actor = `user:${userId}`;
    // Counted (and committed) before any decoding, so even uploads that fail use up the allowance.
    await inTenant(me(request), (tx) => avatars.countUpload(tx, tenant.id, actor));
    const prepared = await avatars.prepare(body);
    return inTenant(me(request), (tx) => avatars.set(tx, tenant.id, userId, prepared, actor));
  });

  app.delete('/t/:tenant/account/avatar', async (request, reply) => {
    const { tenant, userId } = me(request);
    await inTenant(me(request), (tx) => avatars.delete(tx, tenant.id, userId, `user:${userId}`));
    return reply.code(204).send();
  });
}
