import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Queryable } from '../../src/core/sql.js';
import { type AdminCredentials, bootstrap } from '../../src/ops/bootstrap.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

/** Fixed, so a failure replays exactly; printed by fast-check with the counterexample. */
const SEED = 20261201;
const ADMIN_RUNS = 10;
const OIDC_RUNS = 30;
const REDIRECT_URI = 'https://app.example.test/callback';

/** Input that has broken servers before: NUL and other controls, huge, numeric edge cases, syntax. */
const NASTY: string[] = [
  '',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '%00',
  '\ud800',
  '😀é',
  'x'.repeat(5000),
  '../../etc/passwd',
  '9223372036854775807',
  '-9223372036854775809',
  '1e308',
  '-1',
  '0',
  'null',
  "' OR 1=1 --",
  '\\',
  '{"a":[1]}',
];

const nastyString = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map((s) => `${s}\u0000${s}`),
);

/** Percent-encodes every byte outside the unreserved set (a lone surrogate becomes U+FFFD, as on the wire). */
function encode(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
}

function query(params: Record<string, string | undefined>): string {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined);
  return pairs.map(([k, v]) => `${encode(k)}=${encode(v!)}`).join('&');
}

type Schema = Record<string, unknown> & {
  type?: string;
  format?: string;
  pattern?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
};

/** A plausible value for a schema, so that a request gets past the checks before the one mutated. */
function valueFor(schema: Schema, seeds: Record<string, string[]>, name = ''): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => valueFor(s, seeds, name)));
  switch (schema.type) {
    case 'string': {
      const known = seeds[name] ?? [];
      const shaped =
        schema.format === 'uuid'
          ? fc.uuid()
          : schema.format === 'uri'
            ? fc.webUrl()
            : schema.format === 'email'
              ? fc.emailAddress()
              : schema.pattern
                ? fc
                    .stringMatching(new RegExp(schema.pattern, 'u'))
                    .filter((s) => s.length <= (schema.maxLength ?? 300))
                : fc.string({ maxLength: Math.min(schema.maxLength ?? 50, 50) });
      // Real ids most of the time: a request for a missing row stops before it reaches the database.
      return known.length > 0
        ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: shaped })
        : shaped;
    }
    case 'integer':
    case 'number':
      return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000 });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(valueFor(schema.items ?? {}, seeds, name), { maxLength: 3 });
    case 'object': {
      const properties = schema.properties ?? {};
      return fc.record(
        Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, valueFor(s, seeds, k)])),
        { requiredKeys: (schema.required ?? []).filter((k) => k in properties) },
      );
    }
    default:
      return fc.jsonValue({ maxDepth: 1 });
  }
}

const hostile = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.constantFrom(-1, 2 ** 53, 2 ** 63, 1e308, 0.5, true, null, [], {}) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** Every place in a value where another value can go: [container, key] pairs, depth first. */
function slots(
  value: unknown,
  out: [Record<string, unknown>, string][] = [],
): [Record<string, unknown>, string][] {
  if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      out.push([value as Record<string, unknown>, key]);
      slots((value as Record<string, unknown>)[key], out);
    }
  }
  return out;
}

/**
 * A plausible request with one thing made hostile (a path id, a query value, a body field, or
 * the whole body), or an extra field added, or none: what breaks is then the one thing changed.
 */
function mutated<T extends Record<string, unknown>>(request: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc
    .tuple(
      request,
      fc.constantFrom('replace', 'replace', 'replace', 'add', 'none'),
      fc.nat(),
      hostile,
      nastyString,
    )
    .map(([value, kind, index, replacement, key]) => {
      const copy = structuredClone(value);
      const places = slots(copy);
      if (kind === 'replace' && places.length > 0) {
        const [container, slot] = places[index % places.length]!;
        container[slot] = replacement;
      } else if (kind === 'add') {
        const containers = places
          .map(([c, k]) => c[k])
          .filter((v) => v && typeof v === 'object' && !Array.isArray(v));
        const target = containers[index % Math.max(containers.length, 1)] as
          | Record<string, unknown>
          | undefined;
        if (target) target[key] = replacement;
      }
      return copy;
    });
}

const asText = (value: unknown) => (typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));

interface Operation {
  method: string;
  path: string;
  parameters: { in: string; name: string; schema: Schema }[];
  body?: { type: string; schema?: Schema };
}

function operations(document: {
  paths: Record<string, Record<string, Record<string, unknown>>>;
}): Operation[] {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const content = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)
        ?.content;
      const type = content ? Object.keys(content)[0] : undefined;
      return {
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters as Operation['parameters'] | undefined) ?? [],
        ...(type ? { body: { type, schema: content![type]!.schema } } : {}),
      };
    }),
  );
}

for (const driver of DRIVERS) {
  describe(`bad input is refused with 4xx, never 5xx, and changes nothing (${driver})`, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let adminToken: string;
    let client: { clientId: string; clientSecret: string };
    const seeds: Record<string, string[]> = { tenant: ['acme', 'system'] };
    let tenantIds: string[] = [];

    /** What a request could change: every tenant's audit head (each change appends in its transaction) and stored protocol state. */
    async function state(): Promise<string> {
      const parts = await Promise.all(
        tenantIds.map((id) =>
          withTenant(orthid.db, id, async (tx: Queryable) => {
            const audit = await tx.query<{ n: string }>(
              'SELECT coalesce(max(seq), 0) AS n FROM audit_events',
            );
            const payloads = await tx.query<{ n: string }>('SELECT count(*) AS n FROM oidc_payloads');
            return `${audit.rows[0]!.n}/${payloads.rows[0]!.n}`;
          }),
        ),
      );
      return parts.join(' ');
    }

    /** Injects `options` as a request; a 5xx fails, and so does a refusal that changed anything. */
    let known: string | undefined;
    async function probe(options: InjectOptions): Promise<LightMyRequestResponse> {
      // Every refusal leaves the state as it was, so the state after the last request is the one before this.
      known ??= await state();
      const response = await app.inject(options);
      const label = `${options.method} ${String(options.url).slice(0, 200)}`;
      assert.ok(
        response.statusCode < 500,
        `${label} answered ${response.statusCode}: ${response.body.slice(0, 300)}`,
      );
      const after = await state();
      if (response.statusCode >= 400) assert.equal(after, known, `${label} was refused but changed state`);
      known = after;
      return response;
    }

    before(async () => {
      orthid = await createTestOrthId(driver);
      const file = join(orthid.dataDir, 'admin-credentials.json');
      await bootstrap(orthid, file);
      const credentials = JSON.parse(await readFile(file, 'utf8')) as AdminCredentials;
      const acme = await orthid.tenants.create({ slug: 'acme', actor: 'test' });
      tenantIds = [acme.id, (await orthid.tenants.get('system')).id];
      await withTenant(orthid.db, acme.id, async (tx) => {
        const user = await orthid.users.create(
          tx,
          acme.id,
          { email: 'ann@acme.test', password: 'a long enough passphrase 42' },
          'test',
        );
        const created = await orthid.clients.create(
          tx,
          acme.id,
          {
            name: 'Acme Web',
            grantTypes: ['authorization_code', 'refresh_token'],
            redirectUris: [REDIRECT_URI],
          },
          'test',
        );
        client = { clientId: created.clientId, clientSecret: created.clientSecret! };
        const resource = await orthid.rbac.resources.create(
          tx,
          acme.id,
          { indicator: 'https://api.acme.test', name: 'API' },
          'test',
        );
        const permission = await orthid.rbac.permissions.create(
          tx,
          acme.id,
          resource.id,
          { name: 'orders:read' },
          'test',
        );
        const role = await orthid.rbac.roles.create(tx, acme.id, { name: 'clerk' }, 'test');
        const organisation = await orthid.rbac.organisations.create(
          tx,
          acme.id,
          { name: 'Acme Retail' },
          'test',
        );
        const membership = await orthid.rbac.memberships.add(tx, acme.id, organisation.id, user.id, 'test');
        Object.assign(seeds, {
          userId: [user.id],
          clientId: [client.clientId],
          resourceId: [resource.id],
          permissionId: [permission.id],
          roleId: [role.id],
          organisationId: [organisation.id],
          membershipId: [membership.id],
          resource: ['https://api.acme.test'],
        });
      });
      app = await buildServer(orthid);
      const token = await app.inject({
        method: 'POST',
        url: '/t/system/token',
        headers: {
          authorization: `Basic ${Buffer.from(`${credentials.client_id}:${credentials.client_secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: query({
          grant_type: 'client_credentials',
          scope: credentials.scope,
          resource: credentials.resource,
        }),
      });
      assert.equal(token.statusCode, 200, token.body);
      adminToken = token.json().access_token;
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test('the reported inputs are refused with the field or the protocol error named', async () => {
      const admin = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
        probe({
          method,
          url: `/api/v1/tenants/acme${url}`,
          headers: { authorization: `Bearer ${adminToken}` },
          ...(payload ? { payload } : {}),
        });
      const fields = (r: LightMyRequestResponse) =>
        (r.json() as { code: string; errors?: { fields: { path: string }[] } }).errors?.fields.map(
          (f) => f.path,
        );

      const role = await admin('POST', '/roles', { name: 'a\u0000b', description: 'c\u0000d' });
      assert.equal(role.statusCode, 400);
      assert.equal(role.json().code, 'request.invalid');
      assert.deepEqual(fields(role), ['/name', '/description']);
      const permission = await admin('POST', `/resources/${seeds.resourceId![0]}/permissions`, {
        name: 'orders:\u0000',
      });
      assert.deepEqual(fields(permission), ['/name']);
      const audit = await admin('GET', '/audit-events?after=9223372036854775807');
      assert.equal(audit.statusCode, 400);
      assert.deepEqual(fields(audit), ['/after']);
      assert.equal((await admin('GET', '/clients/a%00b')).statusCode, 400);
      assert.equal((await admin('GET', '/users/not-a-uuid')).statusCode, 400);
      assert.equal((await admin('POST', '/organisations', { name: 'x'.repeat(201) })).statusCode, 400);

      const form = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
        probe({
          method: 'POST',
          url: `/t/acme${url}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          payload: query(fields),
        });
      const basic = {
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
      };
      const expect = async (response: Promise<LightMyRequestResponse>, error: string) => {
        const r = await response;
        assert.equal(r.statusCode >= 400 && r.statusCode < 500, true, r.body);
        assert.equal(r.json().error, error, r.body);
        assert.ok(r.json().error_description, 'the refusal says why');
      };
      // Unauthenticated: the client id itself carries the NUL.
      await expect(
        form('/token', { grant_type: 'client_credentials', client_id: 'a\u0000b', client_secret: 'x' }),
        'invalid_request',
      );
      await expect(
        form('/token', { grant_type: 'refresh_token', refresh_token: 'a\u0000b' }, basic),
        'invalid_request',
      );
      await expect(
        form(
          '/token',
          {
            grant_type: 'authorization_code',
            code: 'a\u0000b',
            redirect_uri: REDIRECT_URI,
            code_verifier: 'x'.repeat(43),
          },
          basic,
        ),
        'invalid_request',
      );
      await expect(form('/token/introspection', { token: 'a\u0000b' }, basic), 'invalid_request');
      await expect(form('/token/revocation', { token: 'a\u0000b' }, basic), 'invalid_request');
      await expect(probe({ method: 'GET', url: '/t/acme/me?access_token=a%00b' }), 'invalid_request');
      // HTTP Basic credentials are not parameters: the provider refuses a NUL there itself, and an
      // id longer than any it issues is not looked up but unknown.
      const basicOf = (id: string) => ({
        authorization: `Basic ${Buffer.from(`${id}:x`).toString('base64')}`,
      });
      await expect(form('/token', { grant_type: 'client_credentials' }, basicOf('a%00b')), 'invalid_request');
      await expect(
        form('/token', { grant_type: 'client_credentials' }, basicOf('c'.repeat(600))),
        'invalid_client',
      );
      // OrthID's own code looks tokens up too (the account API): an impossible one is simply not found.
      const { provider } = await orthid.oidc.get('acme');
      assert.equal(await provider.AccessToken.find('a\u0000b'), undefined);
      assert.equal(await provider.Grant.find('g\u0000'), undefined);
      await expect(
        form('/token', { grant_type: 'refresh_token', refresh_token: 'r'.repeat(600) }, basic),
        'invalid_grant',
      );
      // An authorization request of a known client gets the error at its registered redirect URI.
      const redirected = await probe({
        method: 'GET',
        url: `/t/acme/auth?client_id=${client.clientId}&response_type=code&scope=openid&state=a%00b`,
      });
      assert.equal(redirected.statusCode, 303);
      const back = new URL(String(redirected.headers.location));
      assert.equal(`${back.origin}${back.pathname}`, REDIRECT_URI);
      assert.equal(back.searchParams.get('error'), 'invalid_request');
      assert.match(
        back.searchParams.get('error_description') ?? '',
        /state must not contain control characters/,
      );
      // An unknown client's gets the error page.
      const page = await probe({ method: 'GET', url: '/t/acme/auth?client_id=nobody&state=a%00b' });
      assert.equal(page.statusCode, 400);
      assert.equal((await probe({ method: 'GET', url: '/t/ac%00me/jwks' })).statusCode, 404);
    });

    // The generated requests run on PostgreSQL only, to stay within the suite's time: PGlite is the
    // same server code and answers the reported inputs above identically.
    if (driver !== 'postgres') return;
    test('every admin API operation of the OpenAPI document answers generated requests below 500', {
      timeout: 120_000,
    }, async () => {
      const document = await app.inject({
        url: '/api/openapi.json',
        headers: { authorization: `Bearer ${adminToken}` },
      });
      const ops = operations(document.json());
      assert.ok(ops.length >= 50, `only ${ops.length} operations documented`);
      for (const op of ops) {
        const pathParams = op.parameters.filter((p) => p.in === 'path');
        const queryParams = op.parameters.filter((p) => p.in === 'query');
        const arbitrary = mutated(
          fc.record({
            path: fc.record(
              Object.fromEntries(pathParams.map((p) => [p.name, valueFor(p.schema, seeds, p.name)])),
            ),
            query: fc.record(
              Object.fromEntries(queryParams.map((p) => [p.name, valueFor(p.schema, seeds, p.name)])),
              { requiredKeys: [] },
            ),
            body:
              op.body?.type === 'application/json'
                ? valueFor(op.body.schema ?? {}, seeds)
                : fc.uint8Array({ maxLength: 64 }),
          }),
        );
        await fc.assert(
          fc.asyncProperty(arbitrary, async ({ path, query: q, body }) => {
            const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
              encode(asText((path as Record<string, unknown> | null)?.[name])),
            );
            const search =
              q && typeof q === 'object'
                ? query(Object.fromEntries(Object.entries(q).map(([k, v]) => [k, asText(v)])))
                : encode(asText(q));
            const payload =
              op.body?.type === 'application/json'
                ? JSON.stringify(body ?? null)
                : Buffer.from(body instanceof Uint8Array ? body : asText(body));
            await probe({
              method: op.method as 'GET',
              url: search ? `${url}?${search}` : url,
              headers: {
                authorization: `Bearer ${adminToken}`,
                ...(op.body ? { 'content-type': op.body.type } : {}),
              },
              ...(op.body ? { payload } : {}),
            });
          }),
          { seed: SEED, numRuns: ADMIN_RUNS, endOnFailure: true },
        );
      }
    });

    test('every OIDC endpoint of discovery, and the hosted pages, answer generated requests below 500', {
      timeout: 120_000,
    }, async () => {
      const discovery = (
        await app.inject({ url: '/t/acme/.well-known/openid-configuration' })
      ).json() as Record<string, unknown>;
      const issuer = String(discovery.issuer);
      const path = (url: unknown) => `/t/acme${String(url).slice(issuer.length)}`;
      const plausible: Record<string, fc.Arbitrary<string>> = {
        client_id: fc.constant(client.clientId),
        client_secret: fc.constant(client.clientSecret),
        redirect_uri: fc.constant(REDIRECT_URI),
        post_logout_redirect_uri: fc.constant(REDIRECT_URI),
        response_type: fc.constantFrom('code', 'id_token', 'code id_token', 'none'),
        grant_type: fc.constantFrom(
          'authorization_code',
          'refresh_token',
          'client_credentials',
          'urn:ietf:params:oauth:grant-type:device_code',
        ),
        scope: fc.constantFrom('openid', 'openid email offline_access', 'orders:read'),
        code_challenge: fc.constant('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
        code_challenge_method: fc.constantFrom('S256', 'plain'),
        code_verifier: fc.constant('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
        prompt: fc.constantFrom('login', 'consent', 'none'),
        resource: fc.constant('https://api.acme.test'),
        token_type_hint: fc.constantFrom('access_token', 'refresh_token'),
        client_assertion_type: fc.constant('urn:ietf:params:oauth:client-assertion-type:jwt-bearer'),
      };
      const param = (name: string) =>
        fc.option(
          plausible[name]
            ? fc.oneof({ weight: 2, arbitrary: plausible[name] }, { weight: 1, arbitrary: nastyString })
            : nastyString,
          {
            nil: undefined,
          },
        );
      const AUTH = [
        'client_id',
        'response_type',
        'redirect_uri',
        'scope',
        'state',
        'nonce',
        'code_challenge',
        'code_challenge_method',
        'prompt',
        'login_hint',
        'id_token_hint',
        'max_age',
        'claims',
        'ui_locales',
        'resource',
        'request',
        'request_uri',
        'response_mode',
        'acr_values',
      ];
      const CLIENT_AUTH = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
      const endpoints: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; params: string[] }[] = [
        { method: 'GET', url: path(discovery.authorization_endpoint), params: AUTH },
        { method: 'POST', url: path(discovery.authorization_endpoint), params: AUTH },
        {
          method: 'POST',
          url: path(discovery.token_endpoint),
          params: [
            'grant_type',
            'code',
            'redirect_uri',
            'code_verifier',
            'refresh_token',
            'device_code',
            'scope',
            'resource',
            ...CLIENT_AUTH,
          ],
        },
        {
          method: 'POST',
          url: path(discovery.introspection_endpoint),
          params: ['token', 'token_type_hint', ...CLIENT_AUTH],
        },
        {
          method: 'POST',
          url: path(discovery.revocation_endpoint),
          params: ['token', 'token_type_hint', ...CLIENT_AUTH],
        },
        { method: 'GET', url: path(discovery.userinfo_endpoint), params: ['access_token'] },
        { method: 'POST', url: path(discovery.userinfo_endpoint), params: ['access_token'] },
        {
          method: 'GET',
          url: path(discovery.end_session_endpoint),
          params: [
            'id_token_hint',
            'post_logout_redirect_uri',
            'state',
            'client_id',
            'logout_hint',
            'ui_locales',
          ],
        },
        {
          method: 'POST',
          url: path(discovery.end_session_endpoint),
          params: ['id_token_hint', 'post_logout_redirect_uri', 'state', 'client_id', 'logout_hint'],
        },
        {
          method: 'POST',
          url: `${path(discovery.end_session_endpoint)}/confirm`,
          params: ['xsrf', 'logout'],
        },
        { method: 'GET', url: path(discovery.jwks_uri), params: [] },
        { method: 'GET', url: '/t/acme/.well-known/openid-configuration', params: [] },
        ...(discovery.device_authorization_endpoint
          ? [
              {
                method: 'POST' as const,
                url: path(discovery.device_authorization_endpoint),
                params: ['scope', 'resource', ...CLIENT_AUTH],
              },
              { method: 'GET' as const, url: '/t/acme/device', params: ['user_code'] },
              {
                method: 'POST' as const,
                url: '/t/acme/device',
                params: ['xsrf', 'user_code', 'confirm', 'abort'],
              },
            ]
          : []),
        ...(discovery.pushed_authorization_request_endpoint
          ? [
              {
                method: 'POST' as const,
                url: path(discovery.pushed_authorization_request_endpoint),
                params: [...AUTH, ...CLIENT_AUTH],
              },
            ]
          : []),
        { method: 'GET', url: '/t/acme/auth/{uid}', params: [] },
        { method: 'GET', url: '/t/acme/interaction/{uid}', params: [] },
        { method: 'POST', url: '/t/acme/interaction/{uid}/login', params: ['csrf', 'email', 'password'] },
        { method: 'POST', url: '/t/acme/interaction/{uid}/consent', params: ['csrf'] },
        { method: 'POST', url: '/t/acme/interaction/{uid}/abort', params: ['csrf'] },
        { method: 'GET', url: '/t/acme/account/avatar', params: [] },
        { method: 'PUT', url: '/t/acme/account/avatar', params: [] },
        { method: 'DELETE', url: '/t/acme/account/avatar', params: [] },
      ];
      // An endpoint discovery names that this table misses fails here, not silently.
      const covered = new Set(endpoints.map((e) => e.url));
      for (const [key, value] of Object.entries(discovery)) {
        if (key.endsWith('_endpoint') || key === 'jwks_uri')
          assert.ok(covered.has(path(value)), `${key} is not fuzzed`);
      }
      const credentials = fc.oneof(
        fc.constant(undefined),
        fc.constant(`Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`),
        fc
          .tuple(nastyString, nastyString)
          .map(
            ([id, secret]) => `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`,
          ),
        fc.stringMatching(/^[\x21-\x7e]{1,80}$/).map((t) => `Bearer ${t}`),
      );
      for (const endpoint of endpoints) {
        const arbitrary = fc.record({
          params: fc.record(Object.fromEntries(endpoint.params.map((p) => [p, param(p)]))),
          uid: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,43}$/), nastyString),
          authorization: credentials,
          cookie: fc.option(
            fc.stringMatching(/^_(session|interaction|interaction_resume)=[\x21-\x7e]{0,60}$/),
            { nil: undefined },
          ),
        });
        await fc.assert(
          fc.asyncProperty(arbitrary, async ({ params, uid, authorization, cookie }) => {
            const search = query(params as Record<string, string | undefined>);
            const url = endpoint.url.replace('{uid}', encode(uid));
            const headers: Record<string, string> = {
              ...(authorization ? { authorization } : {}),
              ...(cookie ? { cookie } : {}),
            };
            if (endpoint.method === 'GET' || endpoint.method === 'DELETE') {
              await probe({ method: endpoint.method, url: search ? `${url}?${search}` : url, headers });
            } else if (endpoint.method === 'PUT') {
              await probe({
                method: 'PUT',
                url,
                headers: { ...headers, 'content-type': 'image/png' },
                payload: Buffer.from(search),
              });
            } else {
              await probe({
                method: 'POST',
                url,
                headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
                payload: search,
              });
            }
          }),
          { seed: SEED, numRuns: OIDC_RUNS, endOnFailure: true },
        );
      }
    });
  });
}
