// When a refresh token is issued: by policy, not by prompt. The provider drops `offline_access`
// from every authorization request without `prompt=consent`, so a relying party that does not
// force the consent page (oidc-client-ts, express-openid-connect) never gets one. OpenID Connect
// Core §11 allows offline access when "other conditions for processing the request permitting
// offline access are in place"; here that condition is consent itself, kept in the user's grant:
// the request keeps `offline_access`, and the consent prompt asks for it unless the user already
// granted it to this client (or the client is first-party, see interactions). A request that
// cannot show a consent page (`prompt=none`) still loses it, as before.
import type Provider from 'oidc-provider';

/** The endpoints that hold authorization request parameters. */
const AUTHORIZATION_ROUTES = new Set(['authorization', 'pushed_authorization_request']);

type Params = Record<string, unknown>;

interface Context {
  route?: string;
  client?: { grantTypeAllowed(type: string): boolean };
}

function words(value: unknown): Set<string> {
  return new Set(typeof value === 'string' ? value.split(' ').filter(Boolean) : []);
}

/**
 * True when `next` is `previous` less `offline_access` and nothing else changed: the provider's
 * prompt rule, and only that, removed it from a code request of a client allowed refresh tokens.
 */
function droppedForPromptOnly(ctx: Context, params: Params, previous: unknown, next: unknown): boolean {
  const before = words(previous);
  const after = words(next);
  if (!before.has('offline_access') || after.has('offline_access')) return false;
  if (before.size !== after.size + 1 || [...after].some((s) => !before.has(s))) return false;
  if (!words(params.response_type).has('code') || words(params.prompt).has('none')) return false;
  return ctx.client?.grantTypeAllowed('refresh_token') === true;
}

export function keepOfflineAccessWithoutPrompt(provider: Provider): void {
  const prototype = provider.OIDCContext.prototype;
  const inner = Object.getOwnPropertyDescriptor(prototype, 'params');
  if (!inner?.get || !inner.set) throw new TypeError('the provider context has no params accessor');
  const { get, set } = inner;
  Object.defineProperty(prototype, 'params', {
    configurable: true,
    get(this: Context) {
      return get.call(this);
    },
    set(this: Context, params: Params | undefined) {
      if (!params || !AUTHORIZATION_ROUTES.has(this.route ?? '')) {
        set.call(this, params);
        return;
      }
      const ctx = this;
      set.call(
        this,
        new Proxy(params, {
          set(target, name, value) {
            target[name as string] =
              name === 'scope' && droppedForPromptOnly(ctx, target, target.scope, value)
                ? `${value ?? ''} offline_access`.trim()
                : value;
            return true;
          },
        }),
      );
    },
  });
}
