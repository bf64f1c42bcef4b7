// TypeBox schemas of what the admin API shows of keys: custody, root and data key versions,
// rotations and signing keys. Ids and metadata only; no key material ever has a schema here.
import { Type } from '@sinclair/typebox';
import { RotationProgressOutput } from '../../../ops/operation-outputs.js';
import { SigningAlgorithm, Timestamp } from './schemas.js';

const RootKey = Type.Object({
  id: Type.String(),
  scope: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('retired')]),
  createdAt: Type.String(),
});

export const CustodyInfo = Type.Object({
  kind: Type.String({ description: 'managed, pkcs11 or awskms.' }),
  reference: Type.String({ description: 'Where the root keys live, without secrets.' }),
  ownCustody: Type.Boolean({
    description: "The tenant brings its own key instead of the deployment's custody.",
  }),
  rootKeys: Type.Array(RootKey, { description: 'Root key versions of this tenant alone.' }),
});

const DataKey = Type.Object({
  id: Type.String(),
  purpose: Type.Union([Type.Literal('data'), Type.Literal('index')]),
  version: Type.Integer(),
  status: Type.Union([Type.Literal('active'), Type.Literal('decrypt_only'), Type.Literal('destroyed')]),
  custody: Type.String(),
  rootKeyId: Type.String({ description: 'The root key version that wraps it.' }),
});

const SigningKey = Type.Object({
  kid: Type.String(),
  alg: SigningAlgorithm,
  status: Type.Union([Type.Literal('active'), Type.Literal('retiring')]),
  createdAt: Timestamp,
  retireAfter: Type.Union([Timestamp, Type.Null()]),
  ageSeconds: Type.Integer(),
});

export const KeyStatus = Type.Object({
  tenant: Type.String(),
  shredded: Type.Boolean(),
  custody: CustodyInfo,
  dataKeys: Type.Array(DataKey),
  rotations: Type.Array(RotationProgressOutput, {
    description: 'The newest root and data key rotation, with progress (done of total).',
  }),
  signingKeys: Type.Array(SigningKey, { description: 'Keys that sign or still verify, the active first.' }),
});
