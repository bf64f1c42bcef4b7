// Starts a real S3-protocol server (fauxqs, in this process, in memory) on a free loopback port
// with one bucket, for tests of the S3 object store. A server that cannot start fails the test.
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { buildApp } from 'fauxqs';

export interface S3TestServer {
  /** `s3://bucket/prefix?region=…&endpoint=…&forcePathStyle=true`, ready for openObjectStore. */
  url: string;
  endpoint: string;
  bucket: string;
  region: string;
  /** A client on the same bucket, for tests that reach past the store (e.g. to tamper with bytes). */
  client: S3Client;
  stop(): Promise<void>;
}

export interface S3TestServerOptions {
  bucket?: string;
  prefix?: string;
  region?: string;
  /**
   * Runs before every request is served, which waits for it: a test holds reads there to keep a
   * job in progress for as long as it needs (see holdingObjectReads).
   */
  onRequest?: (request: { method: string; url: string }) => Promise<void>;
}

/** A switch for S3TestServerOptions.onRequest that holds object reads (not listings, not JSON). */
export function holdingObjectReads() {
  let waiting: (() => void)[] = [];
  let held = false;
  const reads: string[] = [];
  return {
    hold(): void {
      held = true;
    },
    release(): void {
      held = false;
      for (const go of waiting) go();
      waiting = [];
    },
    /** The object reads held so far. */
    held: () => reads,
    async onRequest({ method, url }: { method: string; url: string }): Promise<void> {
      const [path = '', query = ''] = url.split('?');
      const key = path.split('/').slice(2).join('/');
      if (!held || method !== 'GET' || !key || path.endsWith('.json') || query.includes('list-type')) return;
      reads.push(url);
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
  };
}

/** Dummy credentials: fauxqs does not check signatures, but the SDK will not sign without some. */
export const TEST_CREDENTIALS = {
  accessKeyId: 'orthid-test-access-key',
  secretAccessKey: 'orthid-test-secret-key',
};

export async function startS3Server(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'orthid-test';
  const region = options.region ?? 'eu-west-3';
  const prefix = options.prefix ?? 'objects';
  const app = buildApp({ logger: false, defaultRegion: region });
  const onRequest = options.onRequest;
  if (onRequest)
    app.addHook('onRequest', async (request) => onRequest({ method: request.method, url: request.url }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  // The store under test reads credentials from the standard chain, as in production; the
  // environment is its first link, and nothing else in a test process needs AWS.
  process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  // The SDK's notice that its 2027 releases need Node 22 is for operators, not test output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle: true,
    credentials: TEST_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    client.destroy();
    await app.close();
    throw new Error(`The S3 test server on ${endpoint} did not create bucket "${bucket}"`, { cause: err });
  }
  const query = new URLSearchParams({ region, endpoint, forcePathStyle: 'true' });
  return {
    url: `s3://${bucket}/${prefix}?${query}`,
    endpoint,
    bucket,
    region,
    client,
    async stop() {
      client.destroy();
      await app.close();
    },
  };
}
