// Starts moto's server (an AWS-protocol emulator whose KMS speaks the real JSON 1.1 protocol and
// enforces encryption contexts) on a free loopback port with one symmetric key. Missing: fails.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { freePort } from './postgres.js';

export interface KmsTestServer {
  endpoint: string;
  region: string;
  /** ARN of a symmetric encryption key created for the test. */
  keyArn: string;
  /** The key's id (moto's DisableKey and ScheduleKeyDeletion take the id, not the ARN). */
  keyId: string;
  /** `alias/…` pointing at that key. */
  alias: string;
  /** A client on the server, for tests that reach past the custody (disable a key, read tags). */
  client: KMSClient;
  stop(): Promise<void>;
}

/** Dummy credentials: moto does not check signatures, but the SDK will not sign without some. */
export const TEST_CREDENTIALS = {
  accessKeyId: 'orthid-test-access-key',
  secretAccessKey: 'orthid-test-secret-key',
};

/** moto_server on PATH, else in a pyenv-installed Python (where the machine image puts it). */
function motoServer(): string {
  const probe = spawnSync('moto_server', ['--help'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return 'moto_server';
  const pyenv = '/root/.pyenv/versions';
  const found = existsSync(pyenv)
    ? readdirSync(pyenv)
        .map((version) => join(pyenv, version, 'bin', 'moto_server'))
        .find((path) => existsSync(path))
    : undefined;
  if (found !== undefined) return found;
  throw new Error(
    "moto_server (a KMS-protocol server) is required for the awskms custody tests but is not installed. Install it: pip install 'moto[server]'",
  );
}

async function waitForServer(child: ChildProcess, endpoint: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${output()}`);
    try {
      await fetch(`${endpoint}/moto-api/`);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`moto_server did not answer at ${endpoint}: ${output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export async function startKmsServer(options: { region?: string } = {}): Promise<KmsTestServer> {
  const region = options.region ?? 'eu-west-1';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(motoServer(), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const collect = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitForServer(child, endpoint, () => log);
    // The custody under test reads credentials from the standard chain, as in production; the
    // environment is its first link, and nothing else in a test process needs AWS.
    process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
    delete process.env.AWS_SESSION_TOKEN;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    const client = new KMSClient({ region, endpoint, credentials: TEST_CREDENTIALS });
    const created = await client.send(
      new CreateKeyCommand({ Description: 'OrthID test deployment key', KeySpec: 'SYMMETRIC_DEFAULT' }),
    );
    const keyArn = created.KeyMetadata!.Arn!;
    const alias = 'alias/orthid-deployment';
    await client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyArn }));
    return {
      endpoint,
      region,
      keyArn,
      keyId: created.KeyMetadata!.KeyId!,
      alias,
      client,
      async stop() {
        client.destroy();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
