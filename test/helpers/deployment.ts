// A deployment set up through the CLI for backup tests: its environment (data directory,
// database, master secret, backup and keystore destinations, age keys) and its first steps.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from './cli.js';

/** The environment of a deployment under `dir` whose sets are encrypted to `key`. */
export function backupDeploymentEnv(
  dir: string,
  databaseUrl: string,
  masterKey: string,
  key: { recipient: string; file: string },
): Record<string, string> {
  return {
    ORTHID_DATA_DIR: join(dir, 'live'),
    ORTHID_DATABASE_URL: databaseUrl,
    ORTHID_MASTER_KEY: masterKey,
    ORTHID_BACKUP_DEST: `file://${join(dir, 'sets')}`,
    ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys')}`,
    ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    ORTHID_BACKUP_AGE_IDENTITY_FILE: key.file,
  };
}

/** `orthid keystore init` and `orthid migrate`, as an operator's first two commands. */
export async function initDeployment(env: Record<string, string>): Promise<void> {
  for (const args of [['keystore', 'init'], ['migrate']]) {
    const result = await runCli(args, env);
    assert.equal(result.code, 0, result.stderr);
  }
}
