// Two of the engine's refusals said in the specification's words: the error handler emits its
// event after it has set the body, so a listener may still name the error precisely.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

type ErrorBody = { error?: string; error_description?: string };

function body(ctx: KoaContextWithOIDC): ErrorBody | undefined {
  return typeof ctx.body === 'object' && ctx.body !== null ? (ctx.body as ErrorBody) : undefined;
}

export function clarifyFlowErrors(provider: Provider): void {
  // RFC 8628 §3.1 answers a device authorization request as RFC 6749 §5.2 does: a client not
  // registered for the grant is unauthorized_client (the engine says invalid_request).
  provider.on(
    'device_authorization.error',
    (ctx: KoaContextWithOIDC, err: { error_description?: string }) => {
      const out = body(ctx);
      if (
        out?.error === 'invalid_request' &&
        err.error_description?.endsWith('is not allowed for this client')
      ) {
        out.error = 'unauthorized_client';
        out.error_description = 'this client is not registered for the device authorization grant';
      }
    },
  );
  // A DPoP-bound client without a proof gets invalid_grant; the engine's description ("grant
  // request is invalid") hides the one thing the developer must change.
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: { error_detail?: string }) => {
    const out = body(ctx);
    if (out?.error === 'invalid_grant' && err.error_detail === 'DPoP proof JWT not provided') {
      out.error_description =
        'this client is registered for DPoP-bound access tokens: send a DPoP proof (RFC 9449) with the request';
    }
  });
}
