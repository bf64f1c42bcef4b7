// TypeBox schemas shared by the admin API's routes: path parameters, pagination, problems and
// the resource shapes. One schema validates the request, types the handler and documents it.
import { type StringOptions, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { NO_CONTROL_CHARACTERS } from '../../../core/text.js';
import { SIGNING_ALGS } from '../../../crypto/signing-keys.js';

export const Uuid = Type.String({ format: 'uuid' });

/**
 * Text the API accepts: bounded, and without control characters other than tab and line breaks
 * (PostgreSQL cannot store NUL). Every request string is Text, or has a format or pattern of its own.
 */
export function Text(options: StringOptions & { maxLength: number }) {
  return Type.String({ pattern: NO_CONTROL_CHARACTERS, ...options });
}

const TenantSlug = Type.String({
  pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$',
  description: 'Slug of the tenant to manage.',
});

/** Path parameters: the tenant slug every admin route starts with, plus `extra`. */
export function Params<T extends TProperties>(extra: T): TObject<T & { tenant: typeof TenantSlug }> {
  return Type.Object({ ...extra, tenant: TenantSlug });
}

const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size, 1-200.' });

/** `?limit=&after=` where the cursor is `after` (the `next` of the previous page). */
export function PageQuery<T extends TSchema>(after: T) {
  return Type.Object({ limit: Limit, after: Type.Optional(after) });
}

/** Lists keyed by a row id. */
export const IdPageQuery = PageQuery(
  Type.String({ format: 'uuid', description: 'The `next` of the previous page.' }),
);

/** `?sort=created` (oldest first, the default) or `-created` (newest first). */
export const CreatedSort = Type.Union([Type.Literal('created'), Type.Literal('-created')], {
  default: 'created',
  description:
    'Order by creation: `created` oldest first, `-created` newest first. Pass the same sort with `after`.',
});

export function PageOf<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    next: Type.Union([Type.String(), Type.Null()], {
      description: 'Cursor for `?after=`; null on the last page.',
    }),
  });
}

/** RFC 9457 problem details with OrthID's stable `code`. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable error code; branch on this, not on the message.' }),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Unknown({ description: 'Field-level detail, e.g. { fields: [{ path, message }] }.' }),
    ),
  },
  { additionalProperties: true },
);

const problemContent = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

/** The error responses every admin route can give, as application/problem+json. */
export const PROBLEMS = {
  '4xx': problemContent(
    'The request was refused: see `code` (e.g. request.invalid, auth.unauthenticated, auth.forbidden, *.not_found, *.name_taken, request.precondition_required, request.precondition_failed).',
  ),
  '5xx': problemContent('OrthID could not complete the request; details are in the server log.'),
} as const;

export const NoContent = Type.Null({ description: 'Done.' });

export const Timestamp = Type.String({ format: 'date-time' });
const Name = Text({ minLength: 1, maxLength: 200 });
const Description = Text({ maxLength: 1000 });

export const Organisation = Type.Object({ id: Uuid, name: Type.String(), createdAt: Timestamp });
export const OrganisationInput = Type.Object({ name: Name }, { additionalProperties: false });

export const Membership = Type.Object({ id: Uuid, organisationId: Uuid, userId: Uuid, createdAt: Timestamp });
export const MembershipInput = Type.Object({ userId: Uuid }, { additionalProperties: false });

export const SigningAlgorithm = Type.Union(
  SIGNING_ALGS.map((alg) => Type.Literal(alg)),
  { description: 'A JWS algorithm the tenant signs with.' },
);

export const ApiResource = Type.Object({
  id: Uuid,
  indicator: Type.String(),
  name: Type.String(),
  accessTokenAlg: Type.Optional(SigningAlgorithm),
  createdAt: Timestamp,
});
export const ApiResourceInput = Type.Object(
  {
    indicator: Type.String({
      format: 'uri',
      maxLength: 2000,
      description:
        'Resource indicator (RFC 8707): an absolute URI without a fragment; the audience of its tokens.',
    }),
    name: Name,
    accessTokenAlg: Type.Optional(SigningAlgorithm),
  },
  { additionalProperties: false },
);
export const ApiResourcePatch = Type.Object({ name: Name }, { additionalProperties: false });

export const Permission = Type.Object({
  id: Uuid,
  resourceId: Uuid,
  resourceIndicator: Type.String(),
  name: Type.String(),
  description: Type.String(),
});
export const PermissionInput = Type.Object(
  {
    name: Type.String({
      pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,100}$',
      description:
        'A scope token such as orders:read: printable ASCII without spaces, quotes or backslashes.',
    }),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export const PermissionPatch = Type.Object({ description: Description }, { additionalProperties: false });

export const Role = Type.Object({ id: Uuid, name: Type.String(), description: Type.String() });
export const RoleInput = Type.Object(
  { name: Name, description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const RolePatch = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  { additionalProperties: false, minProperties: 1 },
);

export const User = Type.Object({
  id: Uuid,
  email: Type.String(),
  emailVerified: Type.Boolean(),
  awaitingVerification: Type.Boolean({
    description:
      'Signed up on the hosted page and has not yet proved the address: cannot sign in until then.',
  }),
  name: Type.Union([Type.String(), Type.Null()]),
  phone: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  hasPassword: Type.Boolean(),
  lockedAt: Type.Union([Timestamp, Type.Null()]),
  lastSignInAt: Type.Union([Timestamp, Type.Null()]),
  createdAt: Timestamp,
});
const Email = Type.String({ format: 'email', maxLength: 320 });
const PersonalText = Text({ minLength: 1, maxLength: 200 });
export const UserInput = Type.Object(
  {
    email: Email,
    name: Type.Optional(PersonalText),
    phone: Type.Optional(PersonalText),
    emailVerified: Type.Optional(Type.Boolean()),
    password: Type.Optional(
      Text({
        maxLength: 1024,
        writeOnly: true,
        description: 'Checked against the password policy; stored only as a hash.',
      }),
    ),
  },
  { additionalProperties: false },
);
export const UserPatch = Type.Object(
  {
    email: Type.Optional(Email),
    name: Type.Optional(Type.Union([PersonalText, Type.Null()])),
    phone: Type.Optional(Type.Union([PersonalText, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const Session = Type.Object({
  uid: Type.String({ description: 'Public name of the session (never its cookie).' }),
  signedInAt: Type.Union([Timestamp, Type.Null()]),
  expiresAt: Type.Union([Timestamp, Type.Null()]),
  clientIds: Type.Array(Type.String()),
  amr: Type.Array(Type.String()),
});

export const AuditEvent = Type.Object({
  seq: Type.Integer(),
  id: Uuid,
  occurredAt: Timestamp,
  actor: Type.String(),
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  hash: Type.String(),
});

export const Grants = Type.Object({
  permissions: Type.Array(Type.String()),
  roles: Type.Array(Type.String()),
  organisationId: Type.Optional(Uuid),
});
