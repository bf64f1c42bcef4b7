// The passkey steps of the hosted sign-in: the page script (served from OrthID's own origin),
// ceremony options bound to the interaction, and the form posts that carry the browser's
// response back, answered with a page or a redirect exactly like the password form. Passwordless
// sign-in from the sign-in page; a passkey as the second factor, and its enrolment, as a kind of
// factor in the second-factor steps (mfa-steps.ts).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, type OrthIdError } from '../../core/errors.js';
import type { SafeHtml } from '../../core/html.js';
import type { Queryable } from '../../core/sql.js';
import type { Mfa } from '../../identity/mfa.js';
import { ACR_MFA } from '../../identity/mfa-factors.js';
import type { Passkeys } from '../../identity/passkeys.js';
import type { TenantProvider } from '../../oidc/providers.js';
import { type Database, withTenant } from '../../storage/db/database.js';
import type { Locale } from '../../web/i18n.js';
import { recoveryCodesPage } from '../../web/pages/enrol-totp.js';
import {
  enrolPasskeyPage,
  passkeyEnrolOption,
  passkeySecondFactorSection,
} from '../../web/pages/passkeys.js';
import { stepErrorText } from '../../web/user-error.js';
import type { Form, Interaction, InteractionParams as Params } from './interaction-types.js';
import type { InteractionKit, mfaSteps, PendingSignIn, StepError } from './mfa-steps.js';
import { pendingOf } from './mfa-steps.js';
import { brandFor } from './tenant-brand.js';

type Steps = ReturnType<typeof mfaSteps>;

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

/** Where the hosted pages find the passkey script, under the tenant's issuer path. */
export function passkeyScriptPath(tp: TenantProvider): string {
  return `${new URL(tp.provider.issuer).pathname}/assets/passkeys.js`;
}

/** The binding of a ceremony started on an interaction: its challenge serves this one only. */
export function interactionBinding(uid: string): string {
  return `interaction:${uid}`;
}

export interface PasskeyStepsOptions {
  passkeys: Passkeys;
  mfa: Mfa;
  db: Database;
  /** The name the authenticator stores the passkey under (the user's email). */
  accountName(tenantId: string, userId: string): Promise<string>;
}

/** What passkeys add to the second-factor steps; `attach` registers the routes once they exist. */
export function passkeySteps(kit: InteractionKit, opts: PasskeyStepsOptions) {
  const { passkeys } = opts;

  const ceremony = (tp: TenantProvider, uid: string, action: string, options: string) => {
    const base = kit.base(tp, uid);
    return {
      csrf: tp.csrfToken(uid),
      action: `${base}/${action}`,
      options: `${base}/${options}`,
      script: passkeyScriptPath(tp),
    };
  };

  const listOf = (tp: TenantProvider, userId: string) =>
    withTenant(opts.db, tp.tenant.id, (tx) => passkeys.list(tx, userId));

  async function renderEnrol(
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    pending: PendingSignIn,
    error?: StepError,
    notice?: (locale: Locale) => string,
  ) {
    const base = kit.base(tp, details.uid);
    const locale = kit.locale(reply.request, tp, details);
    return kit.page(
      reply,
      enrolPasskeyPage({
        locale,
        brand: brandFor(tp),
        ...ceremony(tp, details.uid, 'passkey/register', 'passkey/register/options'),
        passkeys: await listOf(tp, pending.accountId),
        removeAction: `${base}/passkey/remove`,
        doneAction: `${base}/passkey/done`,
        totpAction: `${base}/enrol/totp`,
        notice: notice?.(locale),
        error: error && (error.text ?? stepErrorText(locale, error)),
        errorCode: error?.code,
      }),
      error?.status ?? 200,
    );
  }

  return {
    /** The second-factor page's passkey section, for a user who has a passkey. */
    hasOtherFactors: async (tx: Queryable, accountId: string) =>
      (await passkeys.list(tx, accountId)).length > 0,

    async extraSections(
      tp: TenantProvider,
      details: Interaction,
      accountId: string,
      locale: Locale,
    ): Promise<SafeHtml[]> {
      if ((await listOf(tp, accountId)).length === 0) return [];
      return [
        passkeySecondFactorSection({
          ...ceremony(tp, details.uid, 'passkey', 'passkey/options'),
          locale,
        }),
      ];
    },

    enrolSections(
      tp: TenantProvider,
      details: Interaction,
      _pending: PendingSignIn,
      locale: Locale,
    ): SafeHtml[] {
      return [
        passkeyEnrolOption({
          locale,
          csrf: tp.csrfToken(details.uid),
          action: `${kit.base(tp, details.uid)}/enrol/passkey`,
        }),
      ];
    },

    renderStep: (
      reply: FastifyReply,
      tp: TenantProvider,
      details: Interaction,
      pending: PendingSignIn,
      error?: StepError,
    ) => renderEnrol(reply, tp, details, pending, error),

    attach(
      app: FastifyInstance,
      steps: Steps,
      signIn: {
        /** The sign-in page again, with the refusal. */
        again(
          reply: FastifyReply,
          tp: TenantProvider,
          details: Interaction,
          error: OrthIdError,
        ): Promise<unknown>;
      },
    ) {
      app.get('/t/:tenant/assets/passkeys.js', async (_request, reply) =>
        reply
          .headers({
            'content-type': 'text/javascript; charset=utf-8',
            'cache-control': 'public, max-age=3600',
            'x-content-type-options': 'nosniff',
          })
          .send(passkeyScript()),
      );

      const context = (
        request: FastifyRequest<{ Params: Params }>,
        tp: TenantProvider,
        details: Interaction,
      ) => ({
        tenantId: tp.tenant.id,
        binding: interactionBinding(details.uid),
        ip: request.ip,
        userAgent: request.headers['user-agent'],
        clientId: String(details.params.client_id),
      });

      /** A step of this kind in progress, or `mfa.step_expired`. */
      async function inStep(
        request: FastifyRequest<{ Params: Params; Body?: Form }>,
        reply: FastifyReply,
        step: PendingSignIn['step'],
      ) {
        const current = await steps.current(request, reply);
        return { ...current, ok: current.pending.step === step };
      }

      // Sign-in options: for the pending second factor, the user's own credentials; otherwise
      // passwordless, listing none, so nothing tells a visitor whether an account has passkeys.
      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey/options',
        async (request, reply) => {
          const { tp, details } = await kit.load(request, reply);
          kit.checkCsrf(tp, details.uid, request.body);
          const pending = pendingOf(details);
          let userId: string | undefined;
          if (pending) {
            const current = await steps.current(request, reply);
            if (current.pending.step !== 'second_factor')
              return steps.render(reply, tp, details, current.pending);
            userId = current.pending.accountId;
          }
          const options = await passkeys.authenticationOptions(context(request, tp, details), userId);
          return reply.header('cache-control', 'no-store').send(options);
        },
      );

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey',
        async (request, reply) => {
          const { tp, details } = await kit.load(request, reply);
          kit.checkCsrf(tp, details.uid, request.body);
          const response = request.body?.response ?? '';
          if (pendingOf(details)) {
            const { pending } = await steps.current(request, reply);
            if (pending.step !== 'second_factor') return steps.render(reply, tp, details, pending);
            try {
              const assertion = await passkeys.authenticate(context(request, tp, details), {
                response,
                userId: pending.accountId,
              });
              return await steps.complete(reply, details, {
                ...pending,
                method: 'passkey',
                methodAmr: assertion.amr.filter((m) => m !== 'mfa'),
              });
            } catch (error) {
              return steps.renderWith(reply, tp, details, pending, steps.errorStatus(error, reply));
            }
          }
          try {
            const assertion = await passkeys.authenticate(context(request, tp, details), { response });
            return await kit.finish(
              reply,
              details,
              // User verification is required here, so the passkey alone is two factors.
              { login: { accountId: assertion.userId, amr: assertion.amr, acr: ACR_MFA, remember: true } },
              { mergeWithLastSubmission: false },
            );
          } catch (error) {
            if (!isOrthIdError(error) || error.kind === 'internal') throw error;
            return signIn.again(reply, tp, details, error);
          }
        },
      );

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/enrol/passkey',
        async (request, reply) => {
          const { tp, details, pending } = await steps.current(request, reply);
          if (pending.step !== 'offer' && pending.step !== 'enrol_totp' && pending.step !== 'enrol_passkey')
            return steps.render(reply, tp, details, pending);
          const next: PendingSignIn = { ...pending, step: 'enrol_passkey', factorId: undefined };
          await steps.save(details, next);
          return renderEnrol(reply, tp, details, next);
        },
      );

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey/register/options',
        async (request, reply) => {
          const { tp, details, pending, ok } = await inStep(request, reply, 'enrol_passkey');
          if (!ok) return steps.render(reply, tp, details, pending);
          const name = await opts.accountName(tp.tenant.id, pending.accountId);
          const options = await passkeys.registrationOptions(
            context(request, tp, details),
            { id: pending.accountId, name, displayName: name },
            tp.tenant.displayName,
          );
          return reply.header('cache-control', 'no-store').send(options);
        },
      );

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey/register',
        async (request, reply) => {
          const { tp, details, pending, ok } = await inStep(request, reply, 'enrol_passkey');
          if (!ok) return steps.render(reply, tp, details, pending);
          try {
            const added = await passkeys.register(context(request, tp, details), {
              userId: pending.accountId,
              response: request.body?.response ?? '',
              name: request.body?.name,
            });
            return await renderEnrol(reply, tp, details, pending, undefined, (locale) =>
              locale.t('passkey.addedNotice', { name: added.name }),
            );
          } catch (error) {
            return renderEnrol(reply, tp, details, pending, steps.errorStatus(error, reply));
          }
        },
      );

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey/remove',
        async (request, reply) => {
          const { tp, details, pending, ok } = await inStep(request, reply, 'enrol_passkey');
          if (!ok) return steps.render(reply, tp, details, pending);
          const factorId = request.body?.factor ?? '';
          const mine = (await listOf(tp, pending.accountId)).find((k) => k.id === factorId);
          if (!mine) {
            return renderEnrol(reply, tp, details, pending, {
              message: 'No such passkey on your account. Reload the page and try again.',
              code: 'passkey.not_found',
              status: 404,
            });
          }
          await withTenant(opts.db, tp.tenant.id, (tx) =>
            opts.mfa.removeFactor(tx, tp.tenant.id, pending.accountId, factorId, `user:${pending.accountId}`),
          );
          return renderEnrol(reply, tp, details, pending, undefined, (locale) =>
            locale.t('passkey.removedNotice', { name: mine.name }),
          );
        },
      );

      /**
       * Registering a passkey proved it for this sign-in, as confirming a TOTP code does. The
       * first factor of an account comes with recovery codes, shown once; the sign-in finishes
       * after them (or at once when the account has some already).
       */
      async function enrolled(
        reply: FastifyReply,
        tp: TenantProvider,
        details: Interaction,
        pending: PendingSignIn,
      ) {
        const mine = await listOf(tp, pending.accountId);
        if (mine.length === 0) return renderEnrol(reply, tp, details, pending);
        const methodAmr = [mine.at(-1)!.backupEligible ? 'swk' : 'hwk', 'user'];
        const codes = await withTenant(opts.db, tp.tenant.id, (tx) =>
          opts.mfa.firstRecoveryCodes(tx, tp.tenant.id, pending.accountId, `user:${pending.accountId}`),
        );
        const next: PendingSignIn = { ...pending, method: 'passkey', methodAmr };
        if (!codes) return steps.complete(reply, details, next);
        await steps.save(details, { ...next, step: 'recovery_codes' });
        return kit.page(
          reply,
          recoveryCodesPage({
            locale: kit.locale(reply.request, tp, details),
            brand: brandFor(tp),
            csrf: tp.csrfToken(details.uid),
            action: `${kit.base(tp, details.uid)}/continue`,
            codes,
          }),
        );
      }

      app.post<{ Params: Params; Body: Form }>(
        '/t/:tenant/interaction/:uid/passkey/done',
        async (request, reply) => {
          const { tp, details, pending, ok } = await inStep(request, reply, 'enrol_passkey');
          if (!ok) return steps.render(reply, tp, details, pending);
          return enrolled(reply, tp, details, pending);
        },
      );

      return {
        /** A passkey just registered as this sign-in's proof: recovery codes if new, then the login. */
        enrolled,
      };
    },
  };
}
