// The passkey steps of the hosted sign-in: the page script (served from OrthID's own origin),
// ceremony options bound to the interaction, and the form post that carries the browser's
// response back, answered with a page or a redirect exactly like the password form.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, type OrthIdError } from '../../core/errors.js';
import type { Passkeys } from '../../identity/passkeys.js';
import type { TenantProvider } from '../../oidc/providers.js';

type Params = { tenant: string; uid: string };
type Form = Record<string, string | undefined>;

let script: string | undefined;

/** @simplewebauthn/browser's bundle (it defines SimpleWebAuthnBrowser), then the pages' script. */
function passkeyScript(): string {
  if (script === undefined) {
    const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
    const bundle = readFileSync(join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
    const ours = readFileSync(new URL('../../web/scripts/passkeys.browser.js', import.meta.url), 'utf8');
    script = `${bundle}\n${ours}`;
  }
  return script;
}

/** Where the sign-in page finds the passkey script, under the tenant's issuer path. */
export function passkeyScriptPath(tp: TenantProvider): string {
  return `${new URL(tp.provider.issuer).pathname}/assets/passkeys.js`;
}

/** The binding of a ceremony started on an interaction: its challenge serves this one only. */
export function interactionBinding(uid: string): string {
  return `interaction:${uid}`;
}

/** What the interaction routes lend the passkey steps; `I` is the provider's interaction. */
export interface PasskeyStepHelpers<I extends { uid: string; params: Record<string, unknown> }> {
  passkeys: Passkeys;
  load(
    request: FastifyRequest<{ Params: Params }>,
    reply: FastifyReply,
  ): Promise<{ tp: TenantProvider; details: I }>;
  /** Throws `auth.forbidden` unless the form's CSRF token is the interaction's. */
  checkCsrf(tp: TenantProvider, uid: string, token: string | undefined): void;
  /** Finishes the interaction as a sign-in of `accountId` with these RFC 8176 methods. */
  signedIn(reply: FastifyReply, details: I, accountId: string, amr: string[]): Promise<unknown>;
  /** The sign-in page again, with `error` and its status. */
  signInAgain(reply: FastifyReply, tp: TenantProvider, details: I, error: OrthIdError): Promise<unknown>;
}

export function registerPasskeySteps<I extends { uid: string; params: Record<string, unknown> }>(
  app: FastifyInstance,
  h: PasskeyStepHelpers<I>,
): void {
  app.get('/t/:tenant/assets/passkeys.js', async (_request, reply) =>
    reply
      .headers({
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'public, max-age=3600',
        'x-content-type-options': 'nosniff',
      })
      .send(passkeyScript()),
  );

  const context = (request: FastifyRequest<{ Params: Params }>, tp: TenantProvider, clientId: unknown) => ({
    tenantId: tp.tenant.id,
    binding: interactionBinding(request.params.uid),
    ip: request.ip,
    userAgent: request.headers['user-agent'],
    clientId: String(clientId),
  });

  // Passwordless: no user named, so the options list no credentials (nothing tells a visitor
  // whether an account has passkeys) and the browser offers the discoverable ones.
  app.post<{ Params: Params; Body: { csrf?: string } }>(
    '/t/:tenant/interaction/:uid/passkey/options',
    async (request, reply) => {
      const { tp, details } = await h.load(request, reply);
      h.checkCsrf(tp, details.uid, typeof request.body?.csrf === 'string' ? request.body.csrf : undefined);
      const options = await h.passkeys.authenticationOptions(context(request, tp, details.params.client_id));
      return reply.header('cache-control', 'no-store').send(options);
    },
  );

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/passkey', async (request, reply) => {
    const { tp, details } = await h.load(request, reply);
    h.checkCsrf(tp, details.uid, request.body?.csrf);
    try {
      const assertion = await h.passkeys.authenticate(context(request, tp, details.params.client_id), {
        response: request.body?.response ?? '',
      });
      return await h.signedIn(reply, details, assertion.userId, assertion.amr);
    } catch (error) {
      if (!isOrthIdError(error) || error.kind === 'internal') throw error;
      return h.signInAgain(reply, tp, details, error);
    }
  });
}
