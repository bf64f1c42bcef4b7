// The admin API client: openapi-fetch typed by openapi.d.ts (generated from the server's own
// OpenAPI document), the bearer token on every request, and one error shape for every failure.
import createClient, { type Middleware } from 'openapi-fetch';
import { BASE, currentSession, here, lastIssuer, signIn } from '../auth';
import type { paths } from './openapi';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;
/** The JSON a successful call of `path` with `method` returns. */
export type Ok<P extends keyof paths, M extends Method> = paths[P][M] extends { responses: infer R }
  ? R extends { 200: infer S }
    ? JsonOf<S>
    : R extends { 201: infer S }
      ? JsonOf<S>
      : never
  : never;
/** The JSON body `path` with `method` takes. */
export type Body<P extends keyof paths, M extends Method> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

const T = '/api/v1/tenants/{tenant}';
export type User = Ok<`${typeof T}/users/{userId}`, 'get'>;
export type Session = Ok<`${typeof T}/users/{userId}/sessions`, 'get'>['items'][number];
export type Organisation = Ok<`${typeof T}/organisations/{organisationId}`, 'get'>;
export type Membership = Ok<`${typeof T}/memberships/{membershipId}`, 'get'>;
export type ApiResource = Ok<`${typeof T}/resources/{resourceId}`, 'get'>;
export type Permission = Ok<`${typeof T}/resources/{resourceId}/permissions/{permissionId}`, 'get'>;
export type Role = Ok<`${typeof T}/roles/{roleId}`, 'get'>;
export type Client = Ok<`${typeof T}/clients/{clientId}`, 'get'>;
export type NewClient = Body<`${typeof T}/clients`, 'post'>;
export type Invitation = Ok<`${typeof T}/invitations/{invitationId}`, 'get'>;
export type AuditEvent = Ok<`${typeof T}/audit-events`, 'get'>['items'][number];

/** An RFC 9457 problem from the API, or a network failure dressed as one. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors?: unknown,
    /** For a 403: the permission the token lacks, when the API names one. */
    readonly missingPermission?: string,
  ) {
    super(detail);
  }
}

/** How long after a sign-in a refused token is shown as an error rather than signed in again. */
const FRESH_MS = 10_000;

const auth: Middleware = {
  onRequest({ request }) {
    const session = currentSession();
    if (session) request.headers.set('authorization', `Bearer ${session.accessToken}`);
    return request;
  },
  async onResponse({ response }) {
    // An expired or revoked token: sign in again at the same tenant and come back to this screen.
    // A token refused moments after the sign-in that gave it would only loop: its error is shown.
    const session = currentSession();
    if (response.status === 401 && !(session && Date.now() - session.obtainedAt < FRESH_MS)) {
      await signIn(session?.issuer ?? lastIssuer(), here());
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: BASE });
api.use(auth);

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The response's data, or an ApiProblem carrying the API's code and message. */
export async function call<T>(request: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request;
  } catch (cause) {
    throw new ApiProblem(0, 'network', `The server could not be reached (${String(cause)}).`);
  }
  if (result.response.ok) return result.data as T;
  const problem = (result.error ?? {}) as { code?: string; detail?: string; errors?: unknown };
  const challenge = result.response.headers.get('www-authenticate') ?? '';
  throw new ApiProblem(
    result.response.status,
    problem.code ?? `http.${result.response.status}`,
    problem.detail ?? result.response.statusText,
    problem.errors,
    result.response.status === 403 ? /scope="([^"]+)"/.exec(challenge)?.[1] : undefined,
  );
}

/** The response's data and its ETag: the version a change of it names in If-Match. */
export async function callVersioned<T>(request: Promise<Result<T>>): Promise<{ data: T; etag: string }> {
  let etag = '';
  const data = await call(
    request.then((result) => {
      etag = result.response.headers.get('etag') ?? '';
      return result;
    }),
  );
  return { data, etag };
}
