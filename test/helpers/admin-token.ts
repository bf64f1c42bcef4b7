// Mints what a tenant's token endpoint issues to an admin client (client credentials): an RFC
// 9068 access token signed with the tenant's active key, for the admin API audience, the client
// made an administrator first, since the admin API checks its standing on every request.
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import type { OrthId } from '../../src/ops/orthid.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from './admin-principal.js';

export interface AdminTokenOptions {
  /** Default: orthid:admin. */
  scope?: string;
  /** Default: admin-client. */
  clientId?: string;
}

export async function mintAdminToken(
  orthid: OrthId,
  tenant: Tenant,
  options: AdminTokenOptions = {},
): Promise<string> {
  const key = await withTenant(orthid.db, tenant.id, async (tx) => {
    const keyring = await orthid.tenantKeys.forTenant(tx, tenant.id);
    if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
      await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
    }
    return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
  });
  const clientId = options.clientId ?? 'admin-client';
  await ensureAdminClient(orthid.db, tenant.id, clientId, orthid.config.publicUrl);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ client_id: clientId, scope: options.scope ?? ADMIN_PERMISSION })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(issuerFor(orthid.config.publicUrl, tenant.slug))
    .setSubject(clientId)
    .setAudience(adminResourceIndicator(orthid.config.publicUrl))
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .setJti(randomUUID())
    .sign(await importJWK(key.privateJwk, key.alg));
}
