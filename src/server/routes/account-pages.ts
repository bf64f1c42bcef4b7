// The user's account pages at /t/:tenant/account, a client of the tenant's own provider: sign-in by
// authorization code with PKCE, then a sealed session cookie; every form carries its CSRF token.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deleteUserExports, exportUserData, openUserExport } from '../../bundles/user-export.js';
import type { Clock } from '../../core/clock.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { Queryable } from '../../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../../crypto/tenant-keys.js';
import type { Avatars } from '../../identity/avatars.js';
import type { Mfa } from '../../identity/mfa.js';
import type { Passkeys } from '../../identity/passkeys.js';
import type { SelfService } from '../../identity/self-service.js';
import { selfDeleteAllowed } from '../../identity/self-service.js';
import type { User, Users } from '../../identity/users.js';
import type { Mail } from '../../mail/mail.js';
import {
  ACCOUNT_CLIENT_ID,
  ACCOUNT_CLIENT_SCOPE,
  accountBase,
  accountClientSecret,
} from '../../oidc/account-client.js';
import type { OidcProviders, TenantProvider } from '../../oidc/providers.js';
import { type Database, withTenant } from '../../storage/db/database.js';
import type { ObjectStore } from '../../storage/objects/object-store.js';
import type { Rbac } from '../../tenancy/rbac.js';
import { chooseLocale, type Locale } from '../../web/i18n.js';
import { PAGE_HEADERS, SCRIPTED_PAGE_HEADERS } from '../../web/layout.js';
import { emailChangedMail, emailChangeMail, emailTakenMail } from '../../web/mails/account-mails.js';
import {
  type AccountFrame,
  accountMessagePage,
  addPasskeyPage,
  addTotpPage,
  confirmEmailPage,
  dataPage,
  newRecoveryCodesPage,
  passwordPage,
  profilePage,
  securityPage,
  sessionsPage,
} from '../../web/pages/account.js';
import { userFacingError } from '../../web/user-error.js';
import {
  type AccountCookies,
  type AccountSession,
  accountCookies,
  cookieValue,
  FLOW_COOKIE,
  FLOW_SECONDS,
  pkceChallenge,
  randomValue,
  SESSION_COOKIE,
  type SignInFlow,
  setCookie,
} from '../account-session.js';
import { sendAvatar } from '../plugins/media.js';
import { boundaryOf, parseMultipart } from '../plugins/multipart-form.js';
import { registerUrlEncodedForm } from '../plugins/url-encoded-form.js';
import { passkeyScriptPath } from './passkey-steps.js';
import { brandFor } from './tenant-brand.js';

/** What the account pages use: the providers, the user's own services and the mail queue. */
export interface AccountPagesDeps {
  config: { publicUrl: string };
  db: Database;
  oidc: Pick<OidcProviders, 'get'>;
  users: Users;
  avatars: Avatars;
  selfService: SelfService;
  mfa: Pick<
    Mfa,
    | 'listFactors'
    | 'requirement'
    | 'removeFactor'
    | 'beginTotpEnrolment'
    | 'confirmTotpEnrolment'
    | 'firstRecoveryCodes'
    | 'regenerateRecoveryCodes'
  >;
  passkeys: Pick<Passkeys, 'registrationOptions' | 'register'>;
  rbac: Rbac;
  mail: Pick<Mail, 'enqueue'>;
  tenantKeys: TenantKeys;
  clock: Clock;
  objects: ObjectStore;
}

type Params = { tenant: string };
type Form = Record<string, string | undefined>;

/** Where a signed-in request stands: its tenant, session, user and the page frame. */
interface Signed {
  tp: TenantProvider;
  cookies: AccountCookies;
  session: AccountSession;
  user: User;
  frame: AccountFrame;
}

/** The notices a redirect after a change may ask the next page to show. */
const NOTICES = {
  name: 'account.done.name',
  email: 'account.done.email',
  picture: 'account.done.picture',
  pictureRemoved: 'account.done.pictureRemoved',
  password: 'account.done.password',
  session: 'account.done.session',
  factor: 'account.done.factor',
  factorAdded: 'account.done.factorAdded',
  reauthenticated: 'account.done.reauthenticated',
} as const;

/**
 * How recent a sign-in must be for a change to how one signs in (a factor added or removed, new
 * recovery codes): a session left open on a shared computer cannot quietly add its own factor.
 */
const RECENT_SIGN_IN_SECONDS = 10 * 60;

const PICTURE_BODY_LIMIT = 5 * 1024 * 1024 + 64 * 1024;

export async function accountPages(app: FastifyInstance, deps: AccountPagesDeps): Promise<void> {
  const { publicUrl } = deps.config;
  const secure = publicUrl.startsWith('https:');
  const basePath = (slug: string) => new URL(accountBase(publicUrl, slug)).pathname;

  registerUrlEncodedForm(app);
  app.addContentTypeParser(
    'multipart/form-data',
    { parseAs: 'buffer', bodyLimit: PICTURE_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  );

  const localeOf = (request: FastifyRequest, tp?: TenantProvider): Locale =>
    chooseLocale({
      acceptLanguage: request.headers['accept-language'],
      tenantDefault: tp?.tenant.settings.defaultLocale,
    });

  /** `headers`: SCRIPTED_PAGE_HEADERS for a page that loads the passkey script. */
  const page = (
    reply: FastifyReply,
    body: string,
    status = 200,
    headers: typeof PAGE_HEADERS | typeof SCRIPTED_PAGE_HEADERS = PAGE_HEADERS,
  ) => reply.status(status).headers(headers).send(body);

  const inTenant = <T>(tp: TenantProvider, fn: (tx: Queryable) => Promise<T>) =>
    withTenant(deps.db, tp.tenant.id, fn);

  async function keyringOf(tp: TenantProvider): Promise<TenantKeyring> {
    return inTenant(tp, (tx) => deps.tenantKeys.forTenant(tx, tp.tenant.id));
  }

  async function cookiesOf(tp: TenantProvider): Promise<AccountCookies> {
    return accountCookies(await keyringOf(tp), tp.tenant.id, () => deps.clock.now());
  }

  function clear(reply: FastifyReply, slug: string, name: string) {
    void reply.header('set-cookie', setCookie(name, '', { path: basePath(slug), secure, maxAgeSeconds: 0 }));
  }

  /**
   * Sends the browser to the tenant's provider to sign in; it comes back to `returnTo`. `login`:
   * the provider asks for the user's credentials again even within its own session.
   */
  async function beginSignIn(
    reply: FastifyReply,
    tp: TenantProvider,
    cookies: AccountCookies,
    returnTo: string,
    prompt?: 'login',
  ) {
    const flow: SignInFlow = {
      state: randomValue(),
      verifier: randomValue(),
      nonce: randomValue(),
      returnTo,
      expiresAt: Math.floor(deps.clock.now().getTime() / 1000) + FLOW_SECONDS,
    };
    const slug = tp.tenant.slug;
    const url = new URL(`${tp.provider.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: ACCOUNT_CLIENT_SCOPE,
      redirect_uri: `${accountBase(publicUrl, slug)}/callback`,
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: pkceChallenge(flow.verifier),
      code_challenge_method: 'S256',
      ...(prompt ? { prompt } : {}),
    }).toString();
    void reply.header(
      'set-cookie',
      setCookie(FLOW_COOKIE, cookies.seal('flow', flow), {
        path: basePath(slug),
        secure,
        maxAgeSeconds: FLOW_SECONDS,
      }),
    );
    return reply.header('cache-control', 'no-store').redirect(url.href, 303);
  }

  /** The signed-in session of this request, still backed by a live token; undefined otherwise. */
  async function signedIn(
    request: FastifyRequest<{ Params: Params }>,
    tp: TenantProvider,
    cookies: AccountCookies,
  ) {
    const session = cookies.open<AccountSession>(
      'session',
      cookieValue(request.headers.cookie, SESSION_COOKIE),
    );
    if (!session) return undefined;
    // Sign-out everywhere and revocation end the token and its grant: the pages follow at once.
    const token = await tp.provider.AccessToken.find(session.accessToken);
    if (!token || token.accountId !== session.userId || token.clientId !== ACCOUNT_CLIENT_ID)
      return undefined;
    const grant = await tp.provider.Grant.find(session.grantId);
    if (!grant || grant.accountId !== session.userId) return undefined;
    const user = await inTenant(tp, (tx) => deps.users.get(tx, tp.tenant.id, session.userId)).catch(
      (error: unknown) => {
        if (isOrthIdError(error, 'user.not_found')) return undefined;
        throw error;
      },
    );
    return user && user.status === 'active' ? { session, user } : undefined;
  }

  /**
   * Runs `handler` for a signed-in request; without a session, sends the browser to sign in (back
   * to this page for a GET, to the account's first page for a form). Forms must carry the CSRF token.
   */
  function signedInRoute<B = Form>(
    handler: (
      signed: Signed,
      request: FastifyRequest<{ Params: Params; Body: B }>,
      reply: FastifyReply,
    ) => unknown,
  ) {
    return async (request: FastifyRequest<{ Params: Params; Body: B }>, reply: FastifyReply) => {
      const tp = await deps.oidc.get(request.params.tenant);
      const cookies = await cookiesOf(tp);
      const found = await signedIn(request, tp, cookies);
      const base = basePath(tp.tenant.slug);
      if (!found) {
        clear(reply, tp.tenant.slug, SESSION_COOKIE);
        const path = request.url.split('?')[0]!;
        return beginSignIn(
          reply,
          tp,
          cookies,
          request.method === 'GET' && path.startsWith(base) ? path : base,
        );
      }
      const locale = localeOf(request, tp);
      const done = (request.query as { done?: string } | undefined)?.done;
      const notice = done && Object.hasOwn(NOTICES, done) ? NOTICES[done as keyof typeof NOTICES] : undefined;
      const signed: Signed = {
        tp,
        cookies,
        ...found,
        frame: {
          locale,
          brand: brandFor(tp),
          base,
          csrf: cookies.csrfToken(found.session),
          ...(notice ? { notice: locale.t(notice) } : {}),
        },
      };
      if (request.method === 'POST') {
        const csrf =
          (request.body as Form | undefined)?.csrf ?? (request as { multipartCsrf?: string }).multipartCsrf;
        if (!cookies.checkCsrf(found.session, csrf)) {
          throw new OrthIdError('account.csrf_invalid', 'The form expired. Open the page again and retry.');
        }
      }
      return handler(signed, request, reply);
    };
  }

  /**
   * `signedInRoute` for a change to how the user signs in: with a sign-in older than
   * RECENT_SIGN_IN_SECONDS the provider asks for their credentials again first. A page comes back
   * to itself; a form to the security page, whose notice says to make the change again.
   */
  function recentSignInRoute<B = Form>(
    handler: (
      signed: Signed,
      request: FastifyRequest<{ Params: Params; Body: B }>,
      reply: FastifyReply,
    ) => unknown,
  ) {
    return signedInRoute<B>((signed, request, reply) => {
      const age = deps.clock.now().getTime() / 1000 - signed.session.authTime;
      // A sign-in "in the future" is another replica's clock running ahead: recent all the same.
      if (age <= RECENT_SIGN_IN_SECONDS) return handler(signed, request, reply);
      const returnTo =
        request.method === 'GET'
          ? request.url.split('?')[0]!
          : `${signed.frame.base}/security?done=reauthenticated`;
      return beginSignIn(reply, signed.tp, signed.cookies, returnTo, 'login');
    });
  }

  const actorOf = (signed: Signed) => `user:${signed.user.id}`;
  const back = (reply: FastifyReply, signed: Signed, path: string, notice: keyof typeof NOTICES) =>
    reply.redirect(`${signed.frame.base}${path}?done=${notice}`, 303);

  /** The page again with the error of a refused form, at the error's status. */
  function refused(
    reply: FastifyReply,
    signed: Signed,
    error: unknown,
    render: (frame: AccountFrame) => string | Promise<string>,
    headers?: typeof SCRIPTED_PAGE_HEADERS,
  ) {
    if (!isOrthIdError(error) || error.kind === 'internal' || error.kind === 'unavailable') throw error;
    const frame = {
      ...signed.frame,
      error: { message: userFacingError(signed.frame.locale, error), code: error.code },
    };
    if (typeof error.details?.retryAfterSeconds === 'number') {
      void reply.header('retry-after', String(error.details.retryAfterSeconds));
    }
    return Promise.resolve(render(frame)).then((body) => page(reply, body, error.httpStatus, headers));
  }

  /** Fastify's own refusals of a request (a body too large, an unknown media type) as our codes. */
  const framework = (error: unknown): OrthIdError | undefined => {
    const { code, statusCode } = error as { code?: string; statusCode?: number };
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return new OrthIdError('media.too_large', 'Upload a picture of at most 5 MiB.');
    }
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return new OrthIdError('request.invalid', 'The form could not be read; send it again from the page.');
    }
    return undefined;
  };

  app.setErrorHandler(async (error, request, reply) => {
    const slug = (request.params as Partial<Params>).tenant ?? '';
    const tp = await deps.oidc.get(slug).catch(() => undefined);
    const locale = localeOf(request, tp);
    const known = isOrthIdError(error) ? error : framework(error);
    if (!known || known.kind === 'internal') request.log.error({ err: error }, 'account page failed');
    else request.log.info({ code: known.code }, 'account page refused');
    const status = known ? known.httpStatus : 500;
    const code = known?.code ?? 'internal.unexpected';
    return page(
      reply,
      accountMessagePage(locale, tp ? brandFor(tp) : { name: slug }, {
        title: locale.t('error.title'),
        error: { message: known ? userFacingError(locale, known) : locale.t('error.generic'), code },
        ...(tp ? { link: { href: basePath(tp.tenant.slug), label: locale.t('account.toAccount') } } : {}),
      }),
      status,
    );
  });

  // Sign-in: the provider's answer comes back here.
  app.get<{ Params: Params; Querystring: Record<string, string | undefined> }>(
    '/t/:tenant/account/callback',
    async (request, reply) => {
      const tp = await deps.oidc.get(request.params.tenant);
      const cookies = await cookiesOf(tp);
      const slug = tp.tenant.slug;
      const flow = cookies.open<SignInFlow>('flow', cookieValue(request.headers.cookie, FLOW_COOKIE));
      clear(reply, slug, FLOW_COOKIE);
      const failed = () =>
        new OrthIdError(
          'account.sign_in_failed',
          'The sign-in did not complete; open the account page again.',
        );
      const { code, state } = request.query;
      // A stale or foreign answer, or the provider's refusal: nothing is signed in.
      if (!flow || state !== flow.state || typeof code !== 'string' || request.query.error) throw failed();
      const secret = accountClientSecret(await keyringOf(tp), tp.tenant.id);
      const exchanged = await app.inject({
        method: 'POST',
        url: `/t/${slug}/token`,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${ACCOUNT_CLIENT_ID}:${encodeURIComponent(secret)}`).toString('base64')}`,
        },
        payload: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: `${accountBase(publicUrl, slug)}/callback`,
          code_verifier: flow.verifier,
        }).toString(),
      });
      if (exchanged.statusCode !== 200) {
        request.log.info({ status: exchanged.statusCode }, 'account sign-in: the code exchange was refused');
        throw failed();
      }
      const tokens = exchanged.json<{ access_token?: string; id_token?: string }>();
      const idClaims = JSON.parse(
        Buffer.from((tokens.id_token ?? '').split('.')[1] ?? '', 'base64url').toString('utf8') || '{}',
      ) as { nonce?: string; sub?: string; auth_time?: number };
      const token = tokens.access_token ? await tp.provider.AccessToken.find(tokens.access_token) : undefined;
      if (
        !token?.accountId ||
        !token.grantId ||
        idClaims.nonce !== flow.nonce ||
        idClaims.sub !== token.accountId
      ) {
        throw failed();
      }
      const session: AccountSession = {
        userId: token.accountId,
        accessToken: tokens.access_token!,
        grantId: token.grantId,
        sessionUid: token.sessionUid ?? '',
        formKey: randomValue(),
        expiresAt: token.exp!,
        // The account client requires auth_time; without it the sign-in counts as long ago.
        authTime: typeof idClaims.auth_time === 'number' ? idClaims.auth_time : 0,
      };
      void reply.header(
        'set-cookie',
        setCookie(SESSION_COOKIE, cookies.seal('session', session), {
          path: basePath(slug),
          secure,
          maxAgeSeconds: token.exp! - Math.floor(deps.clock.now().getTime() / 1000),
        }),
      );
      const base = basePath(slug);
      return reply.redirect(flow.returnTo.startsWith(base) ? flow.returnTo : base, 303);
    },
  );

  app.get<{ Params: Params }>('/t/:tenant/account/signed-out', async (request, reply) => {
    const tp = await deps.oidc.get(request.params.tenant);
    const locale = localeOf(request, tp);
    return page(
      reply,
      accountMessagePage(locale, brandFor(tp), {
        title: locale.t('account.signedOut.title'),
        body: locale.t('account.signedOut.body'),
        link: { href: basePath(tp.tenant.slug), label: locale.t('account.signInAgain') },
      }),
    );
  });

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/sign-out',
    signedInRoute((signed, _request, reply) => {
      clear(reply, signed.tp.tenant.slug, SESSION_COOKIE);
      // The provider's own sign-out ends its session too, then comes back to the signed-out page.
      const url = new URL(`${signed.tp.provider.issuer}/session/end`);
      url.search = new URLSearchParams({
        client_id: ACCOUNT_CLIENT_ID,
        post_logout_redirect_uri: `${accountBase(publicUrl, signed.tp.tenant.slug)}/signed-out`,
      }).toString();
      return reply.redirect(url.href, 303);
    }),
  );

  // Profile.
  const renderProfile = async (signed: Signed, frame = signed.frame) => {
    const hasPicture = await inTenant(signed.tp, (tx) =>
      deps.avatars.get(tx, signed.tp.tenant.id, signed.user.id),
    ).then(
      () => true,
      (error: unknown) => {
        if (isOrthIdError(error, 'media.not_found')) return false;
        throw error;
      },
    );
    return profilePage(frame, {
      name: signed.user.name,
      email: signed.user.email,
      emailVerified: signed.user.emailVerified,
      ...(hasPicture ? { pictureUrl: `${frame.base}/picture` } : {}),
    });
  };

  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account',
    signedInRoute(async (signed, _request, reply) => page(reply, await renderProfile(signed))),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/name',
    signedInRoute(async (signed, request, reply) => {
      try {
        await inTenant(signed.tp, (tx) =>
          deps.selfService.rename(tx, signed.tp.tenant.id, signed.user.id, request.body?.name ?? ''),
        );
      } catch (error) {
        return refused(reply, signed, error, (frame) => renderProfile(signed, frame));
      }
      return back(reply, signed, '', 'name');
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/email',
    signedInRoute(async (signed, request, reply) => {
      const { tp, frame } = signed;
      try {
        await inTenant(tp, async (tx) => {
          const asked = await deps.selfService.requestEmailChange(
            tx,
            tp.tenant.id,
            signed.user.id,
            request.body?.email ?? '',
          );
          const brand = brandFor(tp);
          const mail =
            asked.kind === 'link'
              ? emailChangeMail(
                  frame.locale,
                  brand,
                  `${accountBase(publicUrl, tp.tenant.slug)}/email/confirm?token=${asked.secret}`,
                )
              : emailTakenMail(frame.locale, brand);
          await deps.mail.enqueue(tx, tp.tenant.id, {
            to: asked.email,
            template: asked.kind === 'link' ? 'email-change' : 'email-change-taken',
            ...mail,
          });
        });
      } catch (error) {
        return refused(reply, signed, error, (f) => renderProfile(signed, f));
      }
      return back(reply, signed, '', 'email');
    }),
  );

  // The link in the mail: it proves the new address on whatever device opens it.
  app.get<{ Params: Params; Querystring: { token?: string } }>(
    '/t/:tenant/account/email/confirm',
    async (request, reply) => {
      const tp = await deps.oidc.get(request.params.tenant);
      const locale = localeOf(request, tp);
      return page(
        reply,
        confirmEmailPage(
          locale,
          brandFor(tp),
          `${basePath(tp.tenant.slug)}/email/confirm`,
          request.query.token ?? '',
        ),
      );
    },
  );

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/account/email/confirm', async (request, reply) => {
    const tp = await deps.oidc.get(request.params.tenant);
    const locale = localeOf(request, tp);
    await inTenant(tp, (tx) =>
      deps.selfService.confirmEmailChange(tx, tp.tenant.id, request.body?.token ?? '', (maskedAddress) =>
        emailChangedMail(locale, brandFor(tp), { maskedAddress, at: deps.clock.now() }),
      ),
    );
    return page(
      reply,
      accountMessagePage(locale, brandFor(tp), {
        title: locale.t('account.emailConfirm.done'),
        link: { href: basePath(tp.tenant.slug), label: locale.t('account.toAccount') },
      }),
    );
  });

  // Picture.
  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/picture',
    signedInRoute(async (signed, request, reply) => {
      const avatar = await inTenant(signed.tp, (tx) =>
        deps.avatars.get(tx, signed.tp.tenant.id, signed.user.id),
      );
      return sendAvatar(request, reply, avatar);
    }),
  );

  // The form's fields come from the multipart body, so its CSRF token is read before the check.
  app.addHook('preHandler', async (request) => {
    if (!Buffer.isBuffer(request.body)) return;
    const boundary = boundaryOf(request.headers['content-type']);
    if (!boundary) throw new OrthIdError('request.invalid', 'The form could not be read; send it again.');
    const parts = parseMultipart(request.body, boundary);
    (request as { multipartCsrf?: string }).multipartCsrf = parts.get('csrf')?.data.toString('utf8');
    request.body = { picture: parts.get('picture')?.data } as unknown as Buffer;
  });

  app.post<{ Params: Params; Body: { picture?: Buffer } }>(
    '/t/:tenant/account/picture',
    signedInRoute<{ picture?: Buffer }>(async (signed, request, reply) => {
      const { tp } = signed;
      try {
        const picture = request.body?.picture;
        if (!picture || picture.length === 0) {
          throw new OrthIdError('media.unsupported_type', 'Choose a picture to upload.');
        }
        // Counted (and committed) before any decoding, as the account API does.
        await inTenant(tp, (tx) => deps.avatars.countUpload(tx, tp.tenant.id, actorOf(signed)));
        const prepared = await deps.avatars.prepare(picture);
        await inTenant(tp, (tx) =>
          deps.avatars.set(tx, tp.tenant.id, signed.user.id, prepared, actorOf(signed)),
        );
      } catch (error) {
        return refused(reply, signed, error, (f) => renderProfile(signed, f));
      }
      return back(reply, signed, '', 'picture');
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/picture/remove',
    signedInRoute(async (signed, _request, reply) => {
      const { tp } = signed;
      try {
        await inTenant(tp, (tx) => deps.avatars.delete(tx, tp.tenant.id, signed.user.id, actorOf(signed)));
      } catch (error) {
        return refused(reply, signed, error, (f) => renderProfile(signed, f));
      }
      return back(reply, signed, '', 'pictureRemoved');
    }),
  );

  // Password.
  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/password',
    signedInRoute((signed, _request, reply) => page(reply, passwordPage(signed.frame))),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/password',
    signedInRoute(async (signed, request, reply) => {
      const { tp, session } = signed;
      try {
        const outcome = await inTenant(tp, async (tx) => {
          const changed = await deps.selfService.changePassword(tx, tp.tenant.id, signed.user.id, {
            current: request.body?.current ?? '',
            next: request.body?.password ?? '',
            ip: request.ip,
          });
          // A new password ends every other sign-in: whoever knew the old one is signed out.
          if (changed === 'changed') {
            await deps.rbac.sessions.revokeOthers(
              tx,
              tp.tenant.id,
              signed.user.id,
              { sessionUid: session.sessionUid, grantId: session.grantId },
              actorOf(signed),
            );
          }
          return changed;
        });
        if (outcome === 'incorrect') {
          throw new OrthIdError('account.password_incorrect', 'Your current password is not right.');
        }
      } catch (error) {
        return refused(reply, signed, error, (f) => passwordPage(f));
      }
      return back(reply, signed, '/password', 'password');
    }),
  );

  // Sessions.
  const renderSessions = async (signed: Signed, frame = signed.frame) => {
    const { tp } = signed;
    const { items } = await inTenant(tp, (tx) => deps.rbac.sessions.list(tx, signed.user.id, { limit: 100 }));
    const names = new Map<string, string>();
    for (const id of new Set(items.flatMap((s) => s.clientIds))) {
      if (id === ACCOUNT_CLIENT_ID) names.set(id, frame.locale.t('account.sessions.accountApp'));
      else names.set(id, (await tp.provider.Client.find(id))?.clientName ?? id);
    }
    return sessionsPage(
      frame,
      items.map((s) => ({
        uid: s.uid,
        current: s.uid === signed.session.sessionUid,
        signedInAt: s.signedInAt ? new Date(s.signedInAt) : null,
        apps: s.clientIds.map((id) => names.get(id)!),
      })),
    );
  };

  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/sessions',
    signedInRoute(async (signed, _request, reply) => page(reply, await renderSessions(signed))),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/sessions/sign-out',
    signedInRoute(async (signed, request, reply) => {
      const { tp } = signed;
      try {
        await inTenant(tp, (tx) =>
          deps.rbac.sessions.revoke(
            tx,
            tp.tenant.id,
            signed.user.id,
            request.body?.session ?? '',
            actorOf(signed),
          ),
        );
      } catch (error) {
        return refused(reply, signed, error, (f) => renderSessions(signed, f));
      }
      return back(reply, signed, '/sessions', 'session');
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/sessions/sign-out-everywhere',
    signedInRoute(async (signed, _request, reply) => {
      const { tp } = signed;
      await inTenant(tp, (tx) =>
        deps.rbac.sessions.revokeAll(tx, tp.tenant.id, signed.user.id, actorOf(signed)),
      );
      clear(reply, tp.tenant.slug, SESSION_COOKIE);
      return reply.redirect(`${basePath(tp.tenant.slug)}/signed-out`, 303);
    }),
  );

  // Second factors.
  const renderSecurity = async (signed: Signed, frame = signed.frame) => {
    const { tp } = signed;
    const { listed, required } = await inTenant(tp, async (tx) => ({
      listed: await deps.mfa.listFactors(tx, signed.user.id),
      required: (await deps.mfa.requirement(tx, tp.tenant.id, signed.user.id)) === 'required',
    }));
    return securityPage(frame, {
      factors: listed.factors.map((f) => ({
        id: f.id,
        kind: f.kind,
        name: f.name,
        createdAt: new Date(f.createdAt),
      })),
      recoveryCodesLeft: listed.recoveryCodesLeft,
      lastIsRequired: required,
    });
  };

  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security',
    signedInRoute(async (signed, _request, reply) => page(reply, await renderSecurity(signed))),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/remove',
    recentSignInRoute(async (signed, request, reply) => {
      const { tp } = signed;
      try {
        await inTenant(tp, async (tx) => {
          const { factors } = await deps.mfa.listFactors(tx, signed.user.id);
          const required = (await deps.mfa.requirement(tx, tp.tenant.id, signed.user.id)) === 'required';
          // Removing the last factor where one is required would lock the user out at their next sign-in.
          if (required && factors.length <= 1 && factors.some((f) => f.id === request.body?.factor)) {
            throw new OrthIdError(
              'account.factor_required',
              'Your organisation requires a second factor: keep at least one.',
            );
          }
          await deps.mfa.removeFactor(
            tx,
            tp.tenant.id,
            signed.user.id,
            request.body?.factor ?? '',
            actorOf(signed),
          );
        });
      } catch (error) {
        return refused(reply, signed, error, (f) => renderSecurity(signed, f));
      }
      return back(reply, signed, '/security', 'factor');
    }),
  );

  /**
   * Ceremonies started on the account pages are bound to the account session that started them
   * (its form key is a secret of that session's cookie), as the sign-in's are to its interaction.
   */
  const ceremonyBinding = (signed: Signed) => `account:${signed.session.formKey}`;

  /** After a factor is added: its new recovery codes once, or the security page. */
  const added = (reply: FastifyReply, signed: Signed, codes: string[] | undefined) =>
    codes
      ? page(reply, newRecoveryCodesPage(signed.frame, codes))
      : back(reply, signed, '/security', 'factorAdded');

  // An authenticator app: started by a form (it writes a pending factor), confirmed by its code.
  const beginTotp = (signed: Signed, factorId?: string) =>
    deps.mfa.beginTotpEnrolment({
      tenantId: signed.tp.tenant.id,
      userId: signed.user.id,
      interactionUid: ceremonyBinding(signed),
      issuer: signed.tp.tenant.displayName,
      account: signed.user.email,
      ...(factorId ? { factorId } : {}),
    });

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/totp',
    recentSignInRoute(async (signed, _request, reply) =>
      page(reply, addTotpPage(signed.frame, await beginTotp(signed))),
    ),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/totp/confirm',
    recentSignInRoute(async (signed, request, reply) => {
      const factorId = request.body?.factor ?? '';
      let codes: string[] | undefined;
      try {
        ({ recoveryCodes: codes } = await deps.mfa.confirmTotpEnrolment({
          tenantId: signed.tp.tenant.id,
          userId: signed.user.id,
          ip: request.ip,
          userAgent: request.headers['user-agent'],
          clientId: ACCOUNT_CLIENT_ID,
          factorId,
          interactionUid: ceremonyBinding(signed),
          code: request.body?.code ?? '',
        }));
      } catch (error) {
        // The same pending enrolment again (a mistyped code), or a new one if that one is gone.
        return refused(reply, signed, error, async (f) => addTotpPage(f, await beginTotp(signed, factorId)));
      }
      return added(reply, signed, codes);
    }),
  );

  // A passkey: the page and its script run the ceremony; the filled form posts here.
  const ceremonyOf = (signed: Signed) => ({
    tenantId: signed.tp.tenant.id,
    binding: ceremonyBinding(signed),
    clientId: ACCOUNT_CLIENT_ID,
  });
  const renderAddPasskey = (signed: Signed, frame = signed.frame) =>
    addPasskeyPage(frame, {
      csrf: frame.csrf,
      action: `${frame.base}/security/passkey`,
      options: `${frame.base}/security/passkey/options`,
      script: passkeyScriptPath(signed.tp),
    });

  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/passkey',
    recentSignInRoute((signed, _request, reply) =>
      page(reply, renderAddPasskey(signed), 200, SCRIPTED_PAGE_HEADERS),
    ),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/passkey/options',
    recentSignInRoute(async (signed, request, reply) => {
      const { user } = signed;
      const options = await deps.passkeys.registrationOptions(
        { ...ceremonyOf(signed), ip: request.ip, userAgent: request.headers['user-agent'] },
        { id: user.id, name: user.email, displayName: user.name ?? user.email },
        signed.tp.tenant.displayName,
      );
      return reply.header('cache-control', 'no-store').send(options);
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/passkey',
    recentSignInRoute(async (signed, request, reply) => {
      const { tp, user } = signed;
      let codes: string[] | undefined;
      try {
        await deps.passkeys.register(
          { ...ceremonyOf(signed), ip: request.ip, userAgent: request.headers['user-agent'] },
          {
            userId: user.id,
            response: request.body?.response ?? '',
            name: request.body?.name,
            // An account's first factor brings its recovery codes, in the passkey's transaction.
            within: async (tx) => {
              codes = await deps.mfa.firstRecoveryCodes(tx, tp.tenant.id, user.id, actorOf(signed));
            },
          },
        );
      } catch (error) {
        return refused(reply, signed, error, (f) => renderAddPasskey(signed, f), SCRIPTED_PAGE_HEADERS);
      }
      return added(reply, signed, codes);
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/security/recovery-codes',
    recentSignInRoute(async (signed, _request, reply) => {
      const { tp } = signed;
      try {
        const codes = await inTenant(tp, (tx) =>
          deps.mfa.regenerateRecoveryCodes(tx, tp.tenant.id, signed.user.id, actorOf(signed)),
        );
        return page(reply, newRecoveryCodesPage(signed.frame, codes));
      } catch (error) {
        return refused(reply, signed, error, (f) => renderSecurity(signed, f));
      }
    }),
  );

  // Data: export and deletion.
  const renderData = (signed: Signed, frame = signed.frame) =>
    dataPage(frame, { selfDelete: selfDeleteAllowed(signed.tp.tenant) });

  app.get<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/data',
    signedInRoute((signed, _request, reply) => page(reply, renderData(signed))),
  );

  const exportDeps = () => ({
    db: deps.db,
    objects: deps.objects,
    tenantKeys: deps.tenantKeys,
    clock: deps.clock,
    publicUrl,
    users: deps.users,
    rbac: deps.rbac,
  });

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/data/export',
    signedInRoute(async (signed, _request, reply) => {
      const { tp } = signed;
      const made = await exportUserData(exportDeps(), tp.tenant, signed.user.id, actorOf(signed));
      const { info, body } = await openUserExport(
        exportDeps(),
        tp.tenant,
        signed.user.id,
        made.id,
        actorOf(signed),
      );
      return reply
        .code(200)
        .headers({
          'content-type': 'application/x-tar',
          'content-length': String(info.size),
          'content-disposition': `attachment; filename="account-export-${made.id}.bundle"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        })
        .send(body);
    }),
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/account/data/delete',
    signedInRoute(async (signed, request, reply) => {
      const { tp } = signed;
      try {
        await inTenant(tp, async (tx) => {
          await deps.selfService.deleteSelf(tx, tp.tenant, signed.user.id, request.body?.confirmation ?? '');
          await deps.rbac.sessions.revokeAll(tx, tp.tenant.id, signed.user.id, actorOf(signed));
        });
      } catch (error) {
        return refused(reply, signed, error, (f) => renderData(signed, f));
      }
      // After the commit: the object store cannot join the transaction (as the admin API does).
      try {
        await deps.avatars.purgeUser(tp.tenant.id, signed.user.id);
        await deleteUserExports(exportDeps(), tp.tenant, signed.user.id);
      } catch (err) {
        request.log.error({ err, tenant: tp.tenant.slug }, 'could not delete the objects of a deleted user');
      }
      clear(reply, tp.tenant.slug, SESSION_COOKIE);
      const { locale } = signed.frame;
      return page(
        reply,
        accountMessagePage(locale, signed.frame.brand, {
          title: locale.t('account.deleted.title'),
          body: locale.t('account.deleted.body'),
        }),
      );
    }),
  );
}
