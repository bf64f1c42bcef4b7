// `orthid keystore ...`: create, inspect, export and import the managed keystore that holds
// the root keys. Exports are age-encrypted to the operator's recipients.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { openKeystore } from '../main.js';
import { action, cliConfig, print } from './context.js';

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
            masterGenerated ? `Generated a master secret in ${config.dataDir}/master.key: back it up separately.` : '',
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
        const result = { custody: ks.kind, path: ks.path, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
        print(result, Boolean(opts.json), (r: typeof result) =>
          [`Custody:      ${r.custody} (${r.path})`, `Deployment:   ${r.deploymentId}`, `Root keys:    ${r.rootKeyIds.join(', ')}`].join(
            '\n',
          ),
        );
      }),
    );
}
