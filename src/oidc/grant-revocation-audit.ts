// How a grant revocation by the provider is audited: a replayed code or refresh token (an attack,
// or a client that lost a response) is told apart from a client's or a user's own revocation.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditInput } from '../audit/audit-log.js';

/** The audit event for the provider's `grant.revoked`, without the request's address and agent. */
export function grantRevocationEvent(
  ctx: KoaContextWithOIDC,
  grantId: string,
): Pick<AuditInput, 'actor' | 'action' | 'target' | 'outcome' | 'details'> {
  const target = `grant:${grantId}`;
  const clientId = ctx.oidc?.client?.clientId;
  // The token endpoint revokes a grant only when a code or refresh token it already consumed is
  // presented again; the request is refused, so the event is the refused request's.
  if (ctx.oidc?.route === 'token') {
    const grantType = ctx.oidc.params?.grant_type;
    return {
      actor: clientId ? `client:${clientId}` : 'anonymous',
      action: 'grant.revoked_replay',
      target,
      outcome: 'failure',
      details: {
        reason: 'replay',
        client: clientId ?? null,
        grant: grantId,
        grantType: typeof grantType === 'string' ? grantType : null,
      },
    };
  }
  if (ctx.oidc?.route === 'revocation' && clientId) {
    return {
      actor: `client:${clientId}`,
      action: 'grant.revoked',
      target,
      outcome: 'success',
      details: { reason: 'revocation', client: clientId, grant: grantId },
    };
  }
  const accountId = ctx.oidc?.session?.accountId;
  return {
    actor: accountId ? `user:${accountId}` : 'anonymous',
    action: 'grant.revoked',
    target,
    outcome: 'success',
    details: { reason: ctx.oidc?.route?.startsWith('end_session') ? 'sign_out' : 'other', grant: grantId },
  };
}
