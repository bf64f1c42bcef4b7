// `orthid keystore ...`: create, inspect, export and import the managed keystore that holds
// the root keys. Exports are age-encrypted to the operator's recipients.
import { createReadStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { parseIdentityFile } from '../crypto/age/index.js';
import { exportKeystore, readKeystoreExport } from '../crypto/keystore-export.js';
import { ManagedKeystore } from '../crypto/managed-keystore.js';
import { resolveMasterSecret } from '../crypto/master-secret.js';
import { openKeystore } from '../main.js';
import { action, cliConfig, operation, print, writeFileAtomically } from './context.js';

export function registerKeystoreCommands(program: Command): void {
  const keystore = program.command('keystore').description('Manage the keys that protect the data');

  keystore
    .command('init')
    .description('Create the managed keystore when absent (sealed with the master secret)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = cliConfig();
        await mkdir(dirname(config.keystorePath), { recursive: true, mode: 0o700 });
        const { keystore: ks, created, masterGenerated } = await openKeystore(config, true);
        const result = { created, path: ks.path, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
        print(result, Boolean(opts.json), () =>
          [
            created ? `Created keystore ${ks.path}` : `Keystore ${ks.path} already exists; left unchanged.`,
            masterGenerated
              ? `Generated a master secret in ${config.dataDir}/master.key: back it up separately.`
              : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      }),
    );

  keystore
    .command('status')
    .description('Show the keystore: custody, deployment and root key ids (never key material)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const { keystore: ks } = await openKeystore(cliConfig(), false);
        const result = {
          custody: ks.kind,
          path: ks.path,
          deploymentId: ks.deploymentId,
          rootKeyIds: ks.rootKeyIds(),
        };
        print(result, Boolean(opts.json), (r: typeof result) =>
          [
            `Custody:      ${r.custody} (${r.path})`,
            `Deployment:   ${r.deploymentId}`,
            `Root keys:    ${r.rootKeyIds.join(', ')}`,
          ].join('\n'),
        );
      }),
    );

  keystore
    .command('rotate-signing')
    .description(
      'Activate a new token signing key for a tenant; the previous key stays in JWKS until its tokens expire',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--alg <alg>', "EdDSA, ES256 or RS256 (default: the tenant's current algorithm)")
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; alg?: string; json?: boolean }) => {
        const result = (await operation('keystore.rotateSigning', {
          tenant: opts.tenant,
          alg: opts.alg,
        })) as {
          kid: string;
          alg: string;
        };
        print(
          result,
          Boolean(opts.json),
          () => `Tenant ${opts.tenant} now signs with ${result.alg} key ${result.kid}.`,
        );
      }),
    );

  registerKeystoreTransferCommands(keystore);
}

function registerKeystoreTransferCommands(keystore: Command): void {
  keystore
    .command('export')
    .description('Write the keystore, age-encrypted to your recipients (opens with the stock `age -d`)')
    .requiredOption('-r, --recipient <age1...>', 'age recipient (repeatable)', collect, [])
    .requiredOption('-o, --output <file>', 'file to write (created with mode 0600)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { recipient: string[]; output: string; json?: boolean }) => {
        const { keystore: ks } = await openKeystore(cliConfig(), false);
        await writeFileAtomically(
          opts.output,
          exportKeystore(ks.exportContents(), opts.recipient, new Date()),
        );
        const result = { path: opts.output, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
        print(
          result,
          Boolean(opts.json),
          () => `Wrote the keystore export to ${opts.output} (${result.rootKeyIds.length} root key(s)).`,
        );
      }),
    );

  keystore
    .command('import')
    .description(
      "Restore a keystore export into this host's keystore (sealed with this host's master secret)",
    )
    .argument('<file>', 'an export written by `orthid keystore export`')
    .requiredOption('-i, --identity <file>', 'age identity file that opens the export')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, opts: { identity: string; json?: boolean }) => {
        const config = cliConfig();
        const identities = parseIdentityFile(await readFile(opts.identity, 'utf8'), opts.identity);
        const contents = await readKeystoreExport(createReadStream(file), identities);
        const master = await resolveMasterSecret(config.masterKey);
        const ks = await ManagedKeystore.import(config.keystorePath, master.value, contents);
        const result = { path: ks.path, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
        print(
          result,
          Boolean(opts.json),
          () =>
            `Imported ${result.rootKeyIds.length} root key(s) of deployment ${ks.deploymentId} into ${ks.path}.`,
        );
      }),
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
