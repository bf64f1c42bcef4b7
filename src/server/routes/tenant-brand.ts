// A tenant's brand on the pages this server renders: its URLs (stylesheet, logo) go under the
// tenant's issuer path, so a public URL with a path prefix keeps working on every page.
import type { TenantProvider } from '../../oidc/providers.js';
import { type Brand, brandOf } from '../../web/brand.js';

export function brandFor(tp: Pick<TenantProvider, 'tenant' | 'provider'>): Brand {
  return brandOf(tp.tenant, tp.provider.issuer);
}
