// Refresh tokens for the refresh-grant row, minted through the provider's own models (Grant,
// RefreshToken) as the authorization-code flow would leave them: one grant per token, offline
// access plus one API resource scope. Works on any oidc-provider instance, whatever its adapter.
import type Provider from 'oidc-provider';

export interface MintSpec {
  clientId: string;
  accountId: string;
  resource: string;
  /** The resource's scope, e.g. "orders:read". */
  scope: string;
  count: number;
}

export async function mintRefreshTokens(provider: Provider, spec: MintSpec): Promise<string[]> {
  const client = await provider.Client.find(spec.clientId);
  if (!client) throw new Error(`no client ${spec.clientId}`);
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < spec.count; i++) {
    const grant = new provider.Grant({ accountId: spec.accountId, clientId: spec.clientId });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(spec.resource, spec.scope);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: spec.accountId,
      client,
      grantId,
      scope: 'openid offline_access',
      resource: spec.resource,
      gty: 'authorization_code',
      authTime: now,
      iiat: now,
      rotations: 0,
    } as never);
    tokens.push(await token.save());
  }
  return tokens;
}
