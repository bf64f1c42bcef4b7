// A tenant's look on its hosted pages and mail: what the layout shows besides the page itself.
// Built from the tenant record alone (its shape, not its module: web depends on core only).

export interface Brand {
  /** The tenant's display name: the page title's suffix and the footer. */
  name: string;
}

/** The parts of a tenant record a brand is made of. */
export interface BrandSource {
  displayName: string;
  settings: Readonly<Record<string, unknown>>;
}

export function brandOf(tenant: BrandSource): Brand {
  return { name: tenant.displayName };
}
