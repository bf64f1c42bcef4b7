// Key custody in AWS KMS: the deployment's root key is the operator's KMS key; each tenant gets a
// KMS key of its own, created by OrthID, so one tenant can be crypto-shredded alone.
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  type KeyMetadata,
  KMSClient,
  type KMSClientConfig,
  ListAliasesCommand,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { AwsKmsUri } from '../../config/awskms-uri.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { checkScope, DEPLOYMENT_SCOPE, type RootKeyInfo, type WrappedKey } from '../key-custody.js';
import type { ByokCustody, CustodyInitResult } from './byok-custody.js';

export interface AwsKmsCustodyOptions {
  uri: AwsKmsUri;
  /** Overrides the standard AWS credential chain (tests); production leaves it unset. */
  credentials?: KMSClientConfig['credentials'];
  /** How long to wait for a TCP connection to KMS before calling it unavailable (default 5 s). */
  connectionTimeoutMs?: number;
}

const BLOB_VERSION = 1;
/** Tags on the KMS keys OrthID creates; destroy() schedules deletion only of keys carrying them. */
const MANAGED_TAG = 'orthid:managed-by';
const SCOPE_TAG = 'orthid:scope';
/** The shortest waiting period KMS allows; within it an operator can still cancel the deletion. */
const DELETION_WINDOW_DAYS = 7;

interface SdkError {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
}

const KEY_GONE = new Set(['NotFoundException', 'KMSInvalidStateException', 'DisabledException']);
const NOT_AUTHENTIC = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

function reason(error: unknown): string {
  const { name, code, $metadata } = (error ?? {}) as SdkError;
  const parts = [
    typeof name === 'string' && name !== 'Error' ? name : undefined,
    typeof code === 'string' && code !== name ? code : undefined,
    $metadata?.httpStatusCode === undefined ? undefined : `HTTP ${$metadata.httpStatusCode}`,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? 'no answer' : parts.join(', ');
}

function nextStep(error: unknown): string {
  const { name, $metadata } = (error ?? {}) as SdkError;
  if (name === 'CredentialsProviderError') {
    return 'No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or pod role.';
  }
  if (
    name === 'AccessDeniedException' ||
    $metadata?.httpStatusCode === 403 ||
    $metadata?.httpStatusCode === 401
  ) {
    return 'Check that the AWS credentials may use this key (kms:Encrypt, kms:Decrypt, kms:DescribeKey; for tenant keys also kms:CreateKey, kms:CreateAlias, kms:ListAliases, kms:TagResource, kms:ListResourceTags, kms:ScheduleKeyDeletion, kms:DeleteAlias).';
  }
  if (typeof (error as Error)?.message === 'string' && /region is missing/i.test((error as Error).message)) {
    return 'Name the region: awskms:…?region=eu-west-1 in ORTHID_KEYSTORE, or AWS_REGION.';
  }
  return 'Check the endpoint, the network and the AWS credentials, then retry.';
}

export class AwsKmsCustody implements ByokCustody {
  readonly kind = 'awskms' as const;
  readonly reference: string;
  private readonly uri: AwsKmsUri;
  private readonly client: KMSClient;
  /** Scope → key ARN, so a wrap costs one KMS call once the scope's key is known. */
  private readonly scopeKeys = new Map<string, string>();
  private deploymentArn: string | undefined;

  constructor(options: AwsKmsCustodyOptions) {
    this.uri = options.uri;
    this.reference = options.uri.uri;
    this.client = new KMSClient({
      ...(options.uri.region === undefined ? {} : { region: options.uri.region }),
      ...(options.uri.endpoint === undefined ? {} : { endpoint: options.uri.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 2,
      // Without a connection timeout an unreachable endpoint hangs a request instead of failing.
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5_000, requestTimeout: 30_000 },
    });
  }

  /** Checks that the configured key exists, is enabled and encrypts; KMS keys are never created here. */
  async init(): Promise<CustodyInitResult> {
    const metadata = await this.describeDeploymentKey();
    return { rootKeyId: metadata.Arn!, created: false };
  }

  async rootKeys(): Promise<RootKeyInfo[]> {
    const deployment = await this.describeDeploymentKey();
    const keys: RootKeyInfo[] = [this.info(deployment, DEPLOYMENT_SCOPE)];
    const prefix = this.aliasPrefix();
    let marker: string | undefined;
    do {
      const page = await this.call('list the tenant keys', () =>
        this.client.send(
          new ListAliasesCommand({ Limit: 100, ...(marker === undefined ? {} : { Marker: marker }) }),
        ),
      );
      for (const alias of page.Aliases ?? []) {
        if (!alias.AliasName?.startsWith(prefix) || alias.TargetKeyId === undefined) continue;
        const scope = alias.AliasName.slice(prefix.length);
        const { KeyMetadata: metadata } = await this.call(`describe the key of scope ${scope}`, () =>
          this.client.send(new DescribeKeyCommand({ KeyId: alias.TargetKeyId })),
        );
        if (metadata !== undefined && metadata.KeyState !== 'PendingDeletion')
          keys.push(this.info(metadata, scope));
      }
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker !== undefined);
    return keys;
  }

  async wrap(key: Buffer, context: string, scope: string): Promise<WrappedKey> {
    checkScope(scope);
    const keyId = scope === DEPLOYMENT_SCOPE ? this.uri.keyId : await this.scopeKey(scope);
    const result = await this.call('wrap a data key', () =>
      this.client.send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: key,
          EncryptionContext: encryptionContext(context, scope),
        }),
      ),
    );
    const scopeBytes = Buffer.from(scope, 'utf8');
    // The scope rides with the ciphertext so unwrap can rebuild the encryption context; KMS
    // authenticates it, so an edited scope fails to decrypt.
    const blob = Buffer.concat([
      Buffer.from([BLOB_VERSION, scopeBytes.length]),
      scopeBytes,
      Buffer.from(result.CiphertextBlob!),
    ]);
    return { custody: this.kind, rootKeyId: result.KeyId!, wrapped: blob.toString('base64url') };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    if (wrapped.custody !== this.kind) {
      throw new OrthIdError(
        'keystore.key_not_found',
        `This data key was wrapped by "${wrapped.custody}" custody, not by AWS KMS (${this.reference}).`,
      );
    }
    const blob = Buffer.from(wrapped.wrapped, 'base64url');
    const scopeLength = blob[1] ?? 0;
    if (blob[0] !== BLOB_VERSION || blob.length <= 2 + scopeLength) {
      throw new OrthIdError(
        'crypto.decrypt_failed',
        `The wrapped data key under ${wrapped.rootKeyId} is malformed.`,
      );
    }
    const scope = blob.subarray(2, 2 + scopeLength).toString('utf8');
    try {
      const result = await this.client.send(
        new DecryptCommand({
          KeyId: wrapped.rootKeyId,
          CiphertextBlob: blob.subarray(2 + scopeLength),
          EncryptionContext: encryptionContext(context, scope),
        }),
      );
      return Buffer.from(result.Plaintext!);
    } catch (error) {
      throw unwrapFailure(error, wrapped.rootKeyId) ?? this.failure(error, 'unwrap a data key');
    }
  }

  /**
   * KMS keeps every backing key version under one key id and rotates them itself (automatic
   * rotation, which OrthID enables on the tenant keys it creates, or the operator's on-demand
   * rotation); Decrypt picks the right version from the ciphertext. So the id stays the same:
   * re-wrapping after a rotation still moves data keys onto the newest backing version.
   */
  async rotate(scope: string): Promise<string> {
    checkScope(scope);
    if (scope === DEPLOYMENT_SCOPE) return (await this.describeDeploymentKey()).Arn!;
    return this.scopeKey(scope);
  }

  /**
   * Schedules deletion (after KMS's minimum 7-day window) of a tenant key OrthID created; the key
   * is unusable at once. The deployment's key, and any key not tagged as OrthID's, is refused:
   * it is the operator's, and deleting it would shred every tenant at once.
   */
  async destroy(rootKeyId: string): Promise<void> {
    const deployment = await this.describeDeploymentKey();
    const metadata = await this.call(`describe ${rootKeyId}`, async () => {
      try {
        return (await this.client.send(new DescribeKeyCommand({ KeyId: rootKeyId }))).KeyMetadata!;
      } catch (error) {
        if ((error as SdkError).name !== 'NotFoundException') throw error;
        throw new OrthIdError('keystore.key_not_found', `There is no KMS key ${rootKeyId}.`, {
          cause: error,
        });
      }
    });
    if (metadata.Arn === deployment.Arn) {
      throw new OrthIdError(
        'keystore.destroy_refused',
        `OrthID never deletes the deployment's KMS key ${deployment.Arn}: it belongs to the operator and wraps every tenant's keys. Retire it in AWS KMS yourself once nothing refers to it.`,
      );
    }
    // Later calls name the key by its id: KMS takes an id or an ARN, some emulators only the id.
    const keyId = metadata.KeyId!;
    const tags = await this.call(`read the tags of ${rootKeyId}`, () =>
      this.client.send(new ListResourceTagsCommand({ KeyId: keyId })),
    );
    const tag = (name: string) => tags.Tags?.find((t) => t.TagKey === name)?.TagValue;
    const scope = tag(SCOPE_TAG);
    if (tag(MANAGED_TAG) !== 'orthid' || scope === undefined) {
      throw new OrthIdError(
        'keystore.destroy_refused',
        `The KMS key ${rootKeyId} was not created by OrthID (no ${MANAGED_TAG} tag); OrthID deletes only keys it created.`,
      );
    }
    this.scopeKeys.delete(scope);
    if (metadata.KeyState === 'PendingDeletion') return; // destroyed before
    await this.call(`remove the alias of scope ${scope}`, async () => {
      const alias = this.aliasOf(scope);
      try {
        const target = (await this.client.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata;
        if (target?.Arn === metadata.Arn)
          await this.client.send(new DeleteAliasCommand({ AliasName: alias }));
      } catch (error) {
        if ((error as SdkError).name !== 'NotFoundException') throw error;
      }
    });
    await this.call(`schedule deletion of ${rootKeyId}`, () =>
      this.client.send(
        new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: DELETION_WINDOW_DAYS }),
      ),
    );
  }

  async check(): Promise<void> {
    await this.describeDeploymentKey();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async describeDeploymentKey(): Promise<KeyMetadata> {
    const { KeyMetadata: metadata } = await this.call('describe the root key', () =>
      this.client.send(new DescribeKeyCommand({ KeyId: this.uri.keyId })),
    );
    if (metadata === undefined || metadata.Enabled === false || metadata.KeyState !== 'Enabled') {
      throw new OrthIdError(
        'keystore.custody_unavailable',
        `The KMS key ${this.uri.keyId} is ${metadata?.KeyState ?? 'not usable'}; enable it in AWS KMS.`,
      );
    }
    if (
      (metadata.KeyUsage != null && metadata.KeyUsage !== 'ENCRYPT_DECRYPT') ||
      (metadata.KeySpec != null && metadata.KeySpec !== 'SYMMETRIC_DEFAULT')
    ) {
      throw new OrthIdError(
        'keystore.custody_unavailable',
        `The KMS key ${this.uri.keyId} is not a symmetric encryption key (${metadata.KeySpec}, ${metadata.KeyUsage}); create one with KeySpec SYMMETRIC_DEFAULT.`,
      );
    }
    this.deploymentArn = metadata.Arn;
    return metadata;
  }

  /** The tenant's own KMS key: found by its alias, or created (tagged, rotating) on first use. */
  private async scopeKey(scope: string): Promise<string> {
    const known = this.scopeKeys.get(scope);
    if (known !== undefined) return known;
    const alias = this.aliasOf(scope);
    const existing = await this.call(`look up ${alias}`, async () => {
      try {
        return (await this.client.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata;
      } catch (error) {
        if ((error as SdkError).name === 'NotFoundException') return undefined;
        throw error;
      }
    });
    if (existing?.Arn !== undefined) {
      this.scopeKeys.set(scope, existing.Arn);
      return existing.Arn;
    }
    const created = await this.call(`create the KMS key of scope ${scope}`, () =>
      this.client.send(
        new CreateKeyCommand({
          Description: `OrthID root key of tenant ${scope} (deployment key ${this.deploymentArn ?? this.uri.keyId})`,
          KeySpec: 'SYMMETRIC_DEFAULT',
          KeyUsage: 'ENCRYPT_DECRYPT',
          Tags: [
            { TagKey: MANAGED_TAG, TagValue: 'orthid' },
            { TagKey: SCOPE_TAG, TagValue: scope },
          ],
        }),
      ),
    );
    const arn = created.KeyMetadata!.Arn!;
    try {
      await this.client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: arn }));
    } catch (error) {
      // Another replica created the scope's key first: use its key, delete ours.
      if ((error as SdkError).name !== 'AlreadyExistsException') throw this.failure(error, `create ${alias}`);
      await this.client
        .send(new ScheduleKeyDeletionCommand({ KeyId: arn, PendingWindowInDays: DELETION_WINDOW_DAYS }))
        .catch(() => undefined);
      return this.scopeKey(scope);
    }
    // Best effort: without kms:EnableKeyRotation the key still works; the operator can enable it.
    await this.client.send(new EnableKeyRotationCommand({ KeyId: arn })).catch(() => undefined);
    this.scopeKeys.set(scope, arn);
    return arn;
  }

  private aliasPrefix(): string {
    return `alias/${this.uri.scopeAliasPrefix}/`;
  }

  private aliasOf(scope: string): string {
    return `${this.aliasPrefix()}${scope}`;
  }

  private info(metadata: KeyMetadata, scope: string): RootKeyInfo {
    return {
      id: metadata.Arn!,
      scope,
      status: 'active',
      createdAt: metadata.CreationDate?.toISOString() ?? '',
    };
  }

  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.failure(error, doing);
    }
  }

  /** Only the SDK error's name, code and HTTP status are quoted: its messages can echo requests. */
  private failure(error: unknown, doing: string): OrthIdError {
    if (isOrthIdError(error)) return error;
    return new OrthIdError(
      'keystore.custody_unavailable',
      `AWS KMS could not ${doing} with ${this.reference} (${reason(error)}). ${nextStep(error)}`,
      { cause: error },
    );
  }
}

/**
 * What a failed Decrypt means for the caller: a ciphertext that does not open in this context
 * (`crypto.decrypt_failed`), or a key that is deleted, pending deletion or disabled
 * (`keystore.key_not_found`, as after crypto-shredding); undefined for outages.
 */
export function unwrapFailure(error: unknown, rootKeyId: string): OrthIdError | undefined {
  const { name } = (error ?? {}) as SdkError;
  if (typeof name === 'string' && NOT_AUTHENTIC.has(name)) {
    return new OrthIdError(
      'crypto.decrypt_failed',
      `The data key wrapped under ${rootKeyId} does not open in this context: it was wrapped for another owner, or it is corrupt.`,
      { cause: error },
    );
  }
  if (typeof name === 'string' && KEY_GONE.has(name)) {
    return new OrthIdError(
      'keystore.key_not_found',
      `The KMS key ${rootKeyId} is deleted, pending deletion or disabled (${name}); data keys it wrapped do not open.`,
      { cause: error },
    );
  }
  return undefined;
}

function encryptionContext(context: string, scope: string): Record<string, string> {
  return { orthid: context, scope };
}

/** Opens AWS KMS custody and checks the configured key, so a bad key or endpoint is reported at start. */
export async function openAwsKmsCustody(options: AwsKmsCustodyOptions): Promise<AwsKmsCustody> {
  const custody = new AwsKmsCustody(options);
  try {
    await custody.check();
  } catch (error) {
    await custody.close();
    throw error;
  }
  return custody;
}
