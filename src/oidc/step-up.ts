// Step-up: an authorization request whose acr_values accept only a second factor makes the
// provider ask for a sign-in when the browser's session was made with a password alone, instead
// of silently answering with the weaker session (OpenID Connect Core treats acr_values as
// voluntary, so the engine's own policy would).
import type { interactionPolicy as InteractionPolicy } from 'oidc-provider';
import { ACR_MFA, demandsMfa } from '../identity/mfa-factors.js';

/** The engine's prompts with one more login check: `acr_values` demanding MFA. */
export function stepUpPolicy(policy: typeof InteractionPolicy): InteractionPolicy.Prompt[] {
  const prompts = policy.base();
  const login = prompts.get('login')!;
  login.checks.add(
    new policy.Check('mfa_required', 'a second factor is required for this request', (ctx) => {
      const { oidc } = ctx;
      if (!demandsMfa(oidc.params?.acr_values as string | undefined)) return policy.Check.NO_NEED_TO_PROMPT;
      return oidc.session?.accountId && oidc.acr === ACR_MFA
        ? policy.Check.NO_NEED_TO_PROMPT
        : policy.Check.REQUEST_PROMPT;
    }),
  );
  return prompts;
}
