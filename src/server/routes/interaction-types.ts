// The shapes the hosted sign-in steps share: the interaction's route parameters, a posted form,
// and the provider's interaction with the result a step records on it.
import type { TenantProvider } from '../../oidc/providers.js';

export type InteractionParams = { tenant: string; uid: string };
export type Form = Record<string, string | undefined>;
export type Interaction = Awaited<ReturnType<TenantProvider['provider']['interactionDetails']>>;
export type InteractionResults = NonNullable<Interaction['result']>;
