// A running `orthid start` on the embedded database, set up as an operator would: a tenant, a
// user and clients registered with the `orthid` command. Stock relying parties use it over HTTP.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { adminTokenFrom, readBootstrapCredentials } from './bootstrap-credentials.js';
import { type CliResult, runCli } from './cli.js';
import { embeddedDataDir } from './embedded-data-dir.js';
import { type ServerProcess, startServer } from './server-process.js';

export interface RunningUser {
  email: string;
  name: string;
  password: string;
}

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
}

export interface RunningOrthId {
  server: ServerProcess;
  /** The tenant's issuer, e.g. `http://127.0.0.1:4000/t/acme`. */
  issuer: string;
  tenant: string;
  user: RunningUser;
  /** Runs `orthid …` against this deployment (through the server's control socket). */
  cli(args: readonly string[], input?: string): Promise<CliResult>;
  /** `orthid client create --tenant <tenant> --json` plus `flags`; fails the test unless it succeeds. */
  createClient(flags: readonly string[]): Promise<RegisteredClient>;
  /** A bearer token for the admin API, from the credentials `orthid start` wrote on first run. */
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

export async function startRunningOrthId(
  user: RunningUser,
  tenant = 'acme',
  port?: number,
  /** More of the server's environment, e.g. an SMTP relay. */
  extraEnv: Record<string, string> = {},
): Promise<RunningOrthId> {
  const dir = await embeddedDataDir('orthid-running-');
  let server: ServerProcess;
  try {
    // Generous: a loaded CI machine can take a minute to start it; a healthy one takes seconds.
    server = await startServer({ ...extraEnv, ORTHID_DATA_DIR: dir }, 180_000, port);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const env = { ORTHID_DATA_DIR: dir, ORTHID_PUBLIC_URL: server.url };
  const cli = (args: readonly string[], input?: string) => runCli(args, env, input);
  const running: RunningOrthId = {
    server,
    issuer: `${server.url}/t/${tenant}`,
    tenant,
    user,
    cli,
    async createClient(flags) {
      const created = await cli(['client', 'create', '--tenant', tenant, '--json', ...flags]);
      assert.equal(created.code, 0, created.stderr);
      const { client_id, client_secret } = JSON.parse(created.stdout) as RegisteredClient;
      return { client_id, ...(client_secret ? { client_secret } : {}) };
    },
    async adminToken() {
      return adminTokenFrom(await readBootstrapCredentials(join(dir, 'admin-credentials.json')));
    },
    async stop() {
      try {
        await server.stop();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    const created = await cli(['tenant', 'create', tenant, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const added = await cli(
      ['user', 'create', '--tenant', tenant, '--email', user.email, '--name', user.name, '--password-stdin'],
      user.password,
    );
    assert.equal(added.code, 0, added.stderr);
  } catch (error) {
    await running.stop();
    throw error;
  }
  return running;
}
