// The S3 backend (AWS or any S3-compatible server): streamed multipart uploads of bounded memory,
// SHA-256 kept as `x-amz-meta-sha256` on every object, encryption from the URL on every write.
//
// Why uploads may go through a staging key: S3 metadata is fixed when an upload starts, but the
// SHA-256 of a stream is known only at its end. When the caller gives the expected digest we set
// it up front and upload straight to the key; the checksum stream fails before the last part is
// sent, so a wrong digest aborts the upload and nothing becomes visible. Otherwise we upload to
// `<prefix>.orthid-staging/<uuid>` and copy server-side onto the key with the digest as metadata
// (one CopyObject, or UploadPartCopy parts above 5 GiB), then remove the staging object. That
// costs a server-side copy but keeps the rule simple: an object is never visible without its
// checksum, and a failed put leaves an existing object untouched. A checksum sidecar object was
// rejected: it doubles deletes, can be orphaned, and leaves a window with bytes but no digest.
// A crash can leave staging objects behind; list hides them, temporaryFiles reclaims those a
// day old, and a bucket lifecycle rule on `.orthid-staging/` expires them too.
import { randomUUID } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Clock } from '../../core/clock.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { ChecksumStream, expectStored, expectUploaded } from './checksum-stream.js';
import { toListOptions } from './list-options.js';
import { mapConcurrently } from './map-concurrently.js';
import { assertValidKey, assertValidPrefix, RESERVED_SEGMENT_PREFIX } from './object-key.js';
import type {
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  TemporaryFiles,
} from './object-store.js';
import { SHA256_METADATA_KEY, toPutRequest } from './put-request.js';
import { isS3NotFound, s3Failure } from './s3-failure.js';
import { parseS3Location, type S3Location } from './s3-location.js';

/** 8 MiB parts with two in flight: about 24 MiB of memory per upload, 80 GB before S3's 10,000-part limit. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
/** The largest object one CopyObject may copy. */
const MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024;
const COPY_PART_SIZE = 1024 * 1024 * 1024;
const STAGING_PREFIX = `${RESERVED_SEGMENT_PREFIX}-staging/`;
const STAGING_ABANDONED_AFTER_MS = 24 * 3_600_000;
/** HEADs in flight while a list page fills in checksums and metadata. */
const HEAD_CONCURRENCY = 8;

type HeadLike = Pick<GetObjectCommandOutput, 'ContentLength' | 'ContentType' | 'LastModified' | 'Metadata'>;

function isListable(key: string): boolean {
  try {
    assertValidKey(key);
    return true;
  } catch {
    // Written by another tool (e.g. "dir/" markers, "a//b") or our own staging: not an object of ours.
    return false;
  }
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly #location: S3Location;
  readonly #client: S3Client;
  /** The modification time of a write when the server's answer gives none. */
  readonly #clock: Clock;
  #region: Promise<string | undefined> | undefined;

  constructor(url: string, location: S3Location, client: S3Client, clock: Clock) {
    this.url = url;
    this.#location = location;
    this.#client = client;
    this.#clock = clock;
  }

  get #context() {
    return { bucket: this.#location.bucket, endpoint: this.#location.endpoint };
  }

  #fullKey(key: string): string {
    return this.#location.prefix + key;
  }

  /** Encryption settings for every request that writes bytes (put, copy, multipart create). */
  get #encryption() {
    const { sse } = this.#location;
    if (sse === undefined) return {};
    return sse.kmsKeyId === undefined
      ? { ServerSideEncryption: sse.type }
      : { ServerSideEncryption: sse.type, SSEKMSKeyId: sse.kmsKeyId };
  }

  #info(key: string, output: HeadLike): ObjectInfo {
    const { [SHA256_METADATA_KEY]: sha256, ...metadata } = output.Metadata ?? {};
    const info: ObjectInfo = {
      key,
      size: output.ContentLength ?? 0,
      sha256: sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : '',
      lastModified: output.LastModified ?? new Date(0),
      metadata,
    };
    if (output.ContentType !== undefined) info.contentType = output.ContentType;
    return info;
  }

  async put(key: string, body: Readable | Buffer | Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    const request = toPutRequest(key, body, options);
    const { bucket } = this.#location;
    const expected = request.sha256;
    const direct = expected !== undefined;
    const target = direct ? this.#fullKey(key) : `${this.#location.prefix}${STAGING_PREFIX}${randomUUID()}`;
    const checksum = new ChecksumStream(expected === undefined ? undefined : expectUploaded(key, expected));
    let sourceError: unknown;
    request.body.once('error', (err) => {
      sourceError = err;
    });
    // Errors surface through `checksum`, which the upload reads; the callback only absorbs them here.
    pipeline(request.body, checksum, () => undefined);
    const upload = new Upload({
      client: this.#client,
      params: {
        Bucket: bucket,
        Key: target,
        Body: checksum,
        ContentType: request.contentType,
        Metadata: direct ? { ...request.metadata, [SHA256_METADATA_KEY]: expected } : request.metadata,
        ...this.#encryption,
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      checksum.destroy();
      if (sourceError !== undefined && !isOrthIdError(err)) throw sourceError;
      throw s3Failure(err, this.#context, `upload "${key}"`);
    }
    const sha256 = checksum.sha256;
    const size = checksum.byteCount;
    let lastModified = this.#clock.now();
    if (!direct) {
      try {
        lastModified = await this.#copyInto(target, this.#fullKey(key), size, {
          ContentType: request.contentType,
          Metadata: { ...request.metadata, [SHA256_METADATA_KEY]: sha256 },
        });
      } catch (err) {
        throw s3Failure(err, this.#context, `store "${key}"`);
      } finally {
        // Best effort: a leftover staging object is hidden from list and expired by lifecycle rules.
        await this.#client
          .send(new DeleteObjectCommand({ Bucket: bucket, Key: target }))
          .catch(() => undefined);
      }
    }
    return {
      key,
      size,
      sha256,
      contentType: request.contentType,
      lastModified,
      metadata: { ...request.metadata },
    };
  }

  /** Server-side copy that replaces the metadata; returns the new object's modification time. */
  async #copyInto(
    from: string,
    to: string,
    size: number,
    attributes: { ContentType: string; Metadata: Record<string, string> },
  ): Promise<Date> {
    const { bucket } = this.#location;
    const source = copySource(bucket, from);
    if (size <= MAX_SINGLE_COPY) {
      const result = await this.#client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: to,
          CopySource: source,
          MetadataDirective: 'REPLACE',
          ...attributes,
          ...this.#encryption,
        }),
      );
      return result.CopyObjectResult?.LastModified ?? this.#clock.now();
    }
    const { UploadId } = await this.#client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ...attributes, ...this.#encryption }),
    );
    try {
      // Parts of at least 1 GiB stay under the 10,000-part limit up to S3's 5 TiB object size.
      const partSize = Math.max(COPY_PART_SIZE, Math.ceil(size / 10_000));
      const parts: { PartNumber: number; ETag: string | undefined }[] = [];
      for (let start = 0, partNumber = 1; start < size; start += partSize, partNumber++) {
        const end = Math.min(start + partSize, size) - 1;
        const result = await this.#client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: to,
            UploadId,
            PartNumber: partNumber,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: partNumber, ETag: result.CopyPartResult?.ETag });
      }
      await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: to,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return this.#clock.now();
    } catch (err) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  async get(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    assertValidKey(key);
    let output: GetObjectCommandOutput;
    try {
      output = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#location.bucket, Key: this.#fullKey(key) }),
      );
    } catch (err) {
      throw s3Failure(err, this.#context, `read "${key}"`, key);
    }
    const info = this.#info(key, output);
    const raw = output.Body;
    if (!(raw instanceof Readable)) {
      throw new OrthIdError(
        'internal.unexpected',
        'The S3 client returned a body that is not a Node.js stream.',
      );
    }
    if (info.sha256 === '') return { info, body: raw };
    const verify = new ChecksumStream(expectStored(key, `bucket "${this.#location.bucket}"`, info.sha256));
    // Errors reach the reader through `verify`; the callback only stops pipeline from rethrowing.
    return { info, body: pipeline(raw, verify, () => undefined) };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const output = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#location.bucket, Key: this.#fullKey(key) }),
      );
      return this.#info(key, output);
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw s3Failure(err, this.#context, `read "${key}"`);
    }
  }

  /**
   * One ListObjectsV2 page (more if hidden keys were skipped), then a HEAD per key: S3 listings
   * carry neither user metadata nor our checksum, and the contract promises both.
   */
  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    assertValidPrefix(prefix);
    const { cursor, limit } = toListOptions(options);
    const { bucket } = this.#location;
    const strip = this.#location.prefix.length;
    const keys: string[] = [];
    let token: string | undefined;
    let truncated = false;
    try {
      do {
        const output = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: this.#fullKey(prefix),
            MaxKeys: limit - keys.length,
            ...(token === undefined
              ? { StartAfter: cursor === undefined ? undefined : this.#fullKey(cursor) }
              : { ContinuationToken: token }),
          }),
        );
        for (const object of output.Contents ?? []) {
          const key = object.Key?.slice(strip);
          if (key !== undefined && isListable(key)) keys.push(key);
        }
        truncated = output.IsTruncated === true;
        token = output.NextContinuationToken;
      } while (truncated && token !== undefined && keys.length < limit);
    } catch (err) {
      throw s3Failure(err, this.#context, 'list objects');
    }
    const infos = await mapConcurrently(keys, HEAD_CONCURRENCY, (key) => this.head(key));
    const items = infos.filter((info): info is ObjectInfo => info !== undefined);
    return truncated && keys.length > 0 ? { items, cursor: keys.at(-1) as string } : { items };
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#location.bucket, Key: this.#fullKey(key) }),
      );
    } catch (err) {
      // S3 answers 204 for a missing key; some compatible servers answer 404.
      if (isS3NotFound(err)) return;
      throw s3Failure(err, this.#context, `delete "${key}"`);
    }
  }

  /**
   * Staging objects left by a put that died between its upload and its copy. A live put keeps
   * one for the length of a server-side copy at most, so a day-old one is abandoned.
   */
  async temporaryFiles(options: { reclaim: boolean }): Promise<TemporaryFiles> {
    const { bucket } = this.#location;
    const found: TemporaryFiles = { count: 0, bytes: 0 };
    const before = Date.now() - STAGING_ABANDONED_AFTER_MS;
    let token: string | undefined;
    try {
      do {
        const output = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: `${this.#location.prefix}${STAGING_PREFIX}`,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
        for (const object of output.Contents ?? []) {
          if (object.Key === undefined || (object.LastModified?.getTime() ?? 0) > before) continue;
          if (options.reclaim)
            await this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key }));
          found.count += 1;
          found.bytes += object.Size ?? 0;
        }
        token = output.IsTruncated === true ? output.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      throw s3Failure(
        err,
        this.#context,
        options.reclaim ? 'remove staging objects' : 'list staging objects',
      );
    }
    return found;
  }

  region(): Promise<string | undefined> {
    this.#region ??= this.#lookUpRegion();
    return this.#region;
  }

  async #lookUpRegion(): Promise<string | undefined> {
    if (this.#location.region !== undefined) return this.#location.region;
    try {
      const output = await this.#client.send(new GetBucketLocationCommand({ Bucket: this.#location.bucket }));
      const constraint = output.LocationConstraint as string | undefined;
      // S3 reports its original region as no constraint, and Ireland by its legacy name.
      if (constraint === undefined || constraint === '') return 'us-east-1';
      return constraint === 'EU' ? 'eu-west-1' : constraint;
    } catch (err) {
      this.#region = undefined;
      throw s3Failure(err, this.#context, 'look up the bucket region');
    }
  }
}

async function createClient(location: S3Location): Promise<S3Client> {
  const config: S3ClientConfig = {
    endpoint: location.endpoint,
    forcePathStyle: location.forcePathStyle,
    // S3-compatible servers that predate the newest checksum framing would otherwise store the
    // framing with the bytes; our own SHA-256 covers integrity end to end.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    followRegionRedirects: true,
    // Without it an unreachable endpoint hangs a request forever instead of failing.
    requestHandler: { connectionTimeout: 10_000 },
  };
  if (location.region !== undefined) return new S3Client({ ...config, region: location.region });
  // No region in the URL: take the standard chain's (AWS_REGION, profile); failing that, S3's
  // default, from which followRegionRedirects finds the bucket's real region.
  const client = new S3Client(config);
  try {
    await client.config.region();
    return client;
  } catch {
    client.destroy();
    return new S3Client({ ...config, region: 'us-east-1' });
  }
}

/** Opens an `s3://bucket/prefix?…` store; credentials come from the standard AWS chain. */
export async function openS3ObjectStore(url: string, clock: Clock): Promise<ObjectStore> {
  const location = parseS3Location(url);
  return new S3ObjectStore(url, location, await createClient(location), clock);
}
