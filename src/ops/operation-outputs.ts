// What each operation returns, as a schema with its static type: the result an operation's run
// must produce, and what the CLI checks an answer from the control socket against (JSON: every
// time is an ISO string). The domain types they describe are checked against them where the
// operations are defined (src/ops/operations.ts), so a field added to one shows here.
import { type Static, Type } from '@sinclair/typebox';
import { ManifestSchema } from '../backup/manifest.js';
import { SIGNING_ALGS } from '../crypto/signing-keys.js';
import { GRANT_TYPES, RESPONSE_TYPES, SECRET_AUTH_METHODS } from '../oidc/clients.js';

const Strings = Type.Array(Type.String());
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const SigningAlg = Type.Union(SIGNING_ALGS.map((alg) => Type.Literal(alg)));

export const TenantOutput = Type.Object({
  id: Type.String(),
  slug: Type.String(),
  displayName: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('shredded')]),
  settings: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String(),
  issuer: Type.String(),
});
export type TenantOutput = Static<typeof TenantOutput>;

export const TenantSettingsOutput = Type.Object({
  tenant: Type.String(),
  idTokenClaims: Type.Union([Type.Literal('on'), Type.Literal('off')]),
  defaultLocale: Type.String(),
  mailFrom: Type.String(),
  mfa: Type.Object({
    mode: Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')]),
    organisations: Strings,
    roles: Strings,
  }),
  signUp: Type.Union([Type.Literal('on'), Type.Literal('off')]),
  signUpDomains: Strings,
  displayName: Type.String(),
  /** `#rrggbb`, or `default` for OrthID's own colour. */
  brandColour: Type.String(),
  /** An e-mail address or https URL, or `none`. */
  supportContact: Type.String(),
  /** Whether users may delete their own account on the account pages. */
  selfDelete: Type.Union([Type.Literal('on'), Type.Literal('off')]),
});
export type TenantSettingsOutput = Static<typeof TenantSettingsOutput>;

export const ShredOutput = Type.Object({
  tenant: Type.String(),
  tenantId: Type.String(),
  destroyedRootKeyIds: Strings,
  destroyedAt: Type.String(),
  by: Type.String(),
  /** Objects of the tenant (avatars, logo, data exports, audit archives) this run deleted. */
  objectsDeleted: Type.Integer({ minimum: 0 }),
});
export type ShredOutput = Static<typeof ShredOutput>;

export const InvitationOutput = Type.Object({
  id: Type.String(),
  organisationId: Nullable(Type.String()),
  expiresAt: Type.String(),
});
export type InvitationOutput = Static<typeof InvitationOutput>;

/** An invitation as an administrator sees it (src/identity/invitations.ts). */
export const InvitationEntryOutput = Type.Object({
  id: Type.String(),
  email: Type.String(),
  organisationId: Nullable(Type.String()),
  organisationName: Nullable(Type.String()),
  createdBy: Nullable(Type.String()),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  status: Type.Union(['pending', 'accepted', 'expired', 'revoked'].map((s) => Type.Literal(s))),
  endedAt: Nullable(Type.String()),
});
export type InvitationEntryOutput = Static<typeof InvitationEntryOutput>;

export const InvitationPageOutput = Type.Object({
  items: Type.Array(InvitationEntryOutput),
  next: Nullable(Type.String()),
});

export const UserOutput = Type.Object({
  id: Type.String(),
  email: Type.String(),
  emailVerified: Type.Boolean(),
  awaitingVerification: Type.Boolean(),
  name: Nullable(Type.String()),
  phone: Nullable(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  hasPassword: Type.Boolean(),
  lockedAt: Nullable(Type.String()),
  lastSignInAt: Nullable(Type.String()),
  createdAt: Type.String(),
});
export type UserOutput = Static<typeof UserOutput>;

/** A second factor as an administrator sees it: never its secret. */
export const FactorOutput = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  name: Nullable(Type.String()),
  createdAt: Type.String(),
  lastUsedAt: Nullable(Type.String()),
});
export type FactorOutput = Static<typeof FactorOutput>;

export const UserFactorsOutput = Type.Object({
  factors: Type.Array(FactorOutput),
  recoveryCodesLeft: Type.Integer(),
  mustReenrol: Type.Boolean(),
});
export type UserFactorsOutput = Static<typeof UserFactorsOutput>;

export const ReenrolmentOutput = Type.Object({ mustReenrol: Type.Boolean(), factorsRemoved: Type.Integer() });
export type ReenrolmentOutput = Static<typeof ReenrolmentOutput>;

export const UserExportOutput = Type.Object({
  key: Type.String(),
  id: Type.String(),
  size: Type.Number(),
  sha256: Type.String(),
  createdAt: Type.String(),
  userId: Type.String(),
  files: Strings,
});
export type UserExportOutput = Static<typeof UserExportOutput>;

export const ClientOutput = Type.Object({
  clientId: Type.String(),
  name: Type.String(),
  grantTypes: Type.Array(Type.Union(GRANT_TYPES.map((t) => Type.Literal(t)))),
  redirectUris: Strings,
  postLogoutRedirectUris: Strings,
  scope: Type.String(),
  resources: Strings,
  public: Type.Boolean(),
  responseTypes: Type.Array(Type.Union(RESPONSE_TYPES.map((t) => Type.Literal(t)))),
  idTokenSignedResponseAlg: SigningAlg,
  tokenEndpointAuthMethod: Type.Union([
    ...SECRET_AUTH_METHODS.map((m) => Type.Literal(m)),
    Type.Literal('none'),
  ]),
  firstParty: Type.Boolean(),
  introspects: Strings,
  requirePushedAuthorizationRequests: Type.Boolean(),
  dpopBoundAccessTokens: Type.Boolean(),
  backchannelLogoutUri: Type.Optional(Type.String()),
  requestObjectSigningAlg: Type.Optional(Type.String()),
  previousSecretExpiresAt: Type.Optional(Type.String()),
  disabled: Type.Boolean(),
  createdAt: Type.String(),
});
export type ClientOutput = Static<typeof ClientOutput>;

/** A new client: the secret is in this answer only, once. */
export const RegisteredClientOutput = Type.Composite([
  ClientOutput,
  Type.Object({ clientSecret: Type.Optional(Type.String()) }),
]);
export type RegisteredClientOutput = Static<typeof RegisteredClientOutput>;

/** A client with its new secret: in this answer only, once. */
export const RotatedClientOutput = Type.Composite([
  ClientOutput,
  Type.Object({ clientSecret: Type.String() }),
]);
export type RotatedClientOutput = Static<typeof RotatedClientOutput>;

const SigningKey = Type.Object({ alg: SigningAlg, kid: Type.String() });

export const SigningRotationOutput = Type.Object({
  tenant: Type.String(),
  kid: Type.String(),
  alg: SigningAlg,
  keys: Type.Array(SigningKey),
});
export type SigningRotationOutput = Static<typeof SigningRotationOutput>;

export const RotationProgressOutput = Type.Object({
  tenant: Type.String(),
  kind: Type.Union([Type.Literal('root'), Type.Literal('data')]),
  status: Type.Union([Type.Literal('running'), Type.Literal('done')]),
  targetKeyId: Type.String(),
  done: Type.Number(),
  total: Type.Number(),
  startedAt: Type.String(),
  finishedAt: Nullable(Type.String()),
});
export type RotationProgressOutput = Static<typeof RotationProgressOutput>;

export const KeyRotationOutput = Type.Union([
  Type.Object({
    kind: Type.Literal('root'),
    tenants: Type.Array(
      Type.Object({ tenant: Type.String(), rootKeyId: Type.String(), rewrapped: Type.Number() }),
    ),
  }),
  RotationProgressOutput,
]);
export type KeyRotationOutput = Static<typeof KeyRotationOutput>;

export const RecordedOutput = Type.Object({ recorded: Type.Literal(true) });
export type RecordedOutput = Static<typeof RecordedOutput>;

export const KeystoreAuditOutput = Type.Object({
  recorded: Type.Union([Type.Literal('keystore.exported'), Type.Literal('keystore.imported')]),
});
export type KeystoreAuditOutput = Static<typeof KeystoreAuditOutput>;

export const DumpOutput = ManifestSchema;
export type DumpOutput = Static<typeof DumpOutput>;

export const CheckOutput = Type.Object({
  name: Type.Union([
    Type.Literal('sign-in'),
    Type.Literal('token'),
    Type.Literal('audit-log'),
    Type.Literal('decrypted-fields'),
    Type.Literal('object-store'),
  ]),
  ok: Type.Boolean(),
  detail: Type.String(),
  seconds: Type.Number(),
});
export type CheckOutput = Static<typeof CheckOutput>;

const CheckpointRef = Type.Object({
  key: Type.String(),
  seq: Type.String(),
  head: Type.String(),
  at: Type.String(),
});

export const AuditVerifyOutput = Type.Object({
  tenant: Type.String(),
  ok: Type.Boolean(),
  events: Type.Number(),
  headHash: Type.String(),
  broken: Type.Optional(Type.Object({ seq: Type.String(), reason: Type.String() })),
  headSeq: Type.String(),
  checkpoints: Type.Number(),
  checkpoint: Type.Optional(CheckpointRef),
  code: Type.Optional(Type.Literal('audit.chain_broken')),
  message: Type.Optional(Type.String()),
  /** The checkpoint written after an intact chain was verified. */
  written: Type.Optional(CheckpointRef),
});
export type AuditVerifyOutput = Static<typeof AuditVerifyOutput>;

export const AuditEventOutput = Type.Object({
  seq: Type.Number(),
  id: Type.String(),
  occurredAt: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target: Nullable(Type.String()),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
  hash: Type.String(),
});
export type AuditEventOutput = Static<typeof AuditEventOutput>;

export const AuditArchiveOutput = Type.Object({
  key: Type.String(),
  size: Type.Number(),
  sha256: Type.String(),
  createdAt: Type.String(),
  from: Nullable(Type.String()),
  to: Type.String(),
  events: Type.Number(),
  chain: Type.Object({ ok: Type.Boolean(), events: Type.Number(), headHash: Type.String() }),
});
export type AuditArchiveOutput = Static<typeof AuditArchiveOutput>;

export const StoredAuditArchiveOutput = Type.Object({
  key: Type.String(),
  size: Type.Number(),
  storedAt: Type.String(),
});
export type StoredAuditArchiveOutput = Static<typeof StoredAuditArchiveOutput>;
