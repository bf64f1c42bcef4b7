// `orthid keystore ...`: create, inspect, export and import the managed keystore that holds
// the root keys. Exports are age-encrypted to the operator's recipients.
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import {
  exportKeystoreFiles,
  importKeystoreFiles,
  initKeystore,
  type KeystoreStatus,
  type KeystoreTransferDeps,
  keystoreStatus,
} from '../ops/keystore-files.js';
import { explainError } from '../storage/db/database-errors.js';
import { action, CAUSE_HINT, cliConfig, operation, print } from './context.js';

export function registerKeystoreCommands(program: Command): void {
  const keystore = program.command('keystore').description('Manage the keys that protect the data');

  keystore
    .command('init')
    .description(
      'Create the keystore when absent (sealed with the master secret); with pkcs11:/awskms: custody, also generate (or adopt) the root key inside the HSM or check the KMS key',
    )
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = cliConfig();
        const { result, ceremony, masterGenerated } = await initKeystore(config);
        print(result, Boolean(opts.json), () =>
          [
            result.created
              ? `Created keystore ${result.path}`
              : `Keystore ${result.path} already exists; left unchanged.`,
            ceremony
              ? `${ceremony.created ? 'Generated' : 'Adopted'} root key ${ceremony.rootKeyId} in ${ceremony.kind} custody ${ceremony.reference}; it never leaves it.`
              : '',
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
    .description('Show the custody, root key ids, destroyed keys and rotation progress (never key material)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        // Rotation progress lives in the database (through a running server when embedded).
        const result = await keystoreStatus(cliConfig(), () => operation('keystore.rotations', {}));
        print(result, Boolean(opts.json), (r: KeystoreStatus) =>
          [
            `Custody:      ${r.custody} (${r.reference})`,
            `Deployment:   ${r.deploymentId}`,
            `Root keys:    ${r.rootKeys.map((k) => `${k.id} [${k.scope}, ${k.status}]`).join('\n              ') || 'none'}`,
            ...r.destroyedKeys.map(
              (k) => `Destroyed:    ${k.id} [${k.scope}] on ${k.destroyedAt} by ${k.by}`,
            ),
            ...r.rotations.map(
              (p) =>
                `Rotation:     ${p.tenant} ${p.kind} key ${p.targetKeyId}: ${p.status}, ${p.done}/${p.total} rewritten (started ${p.startedAt})`,
            ),
          ].join('\n'),
        );
      }),
    );

  keystore
    .command('rotate')
    .description(
      "Rotate keys online: --root re-wraps every data key under a new root key version; --tenant SLUG starts a new data key version and re-encrypts the tenant's sealed values (resumes a pass that stopped)",
    )
    .option('--root', 'new root key versions (all tenants, or the one given with --tenant)')
    .option('--tenant <slug>', 'tenant slug')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { root?: boolean; tenant?: string; json?: boolean }) => {
        const result = await operation('keystore.rotate', {
          root: Boolean(opts.root),
          tenant: opts.tenant,
        });
        print(result, Boolean(opts.json), () =>
          'tenants' in result
            ? result.tenants
                .map((t) => `${t.tenant}: root key ${t.rootKeyId}, ${t.rewrapped} data key(s) re-wrapped`)
                .join('\n')
            : `${result.tenant}: data key ${result.targetKeyId} active; ${result.done} record(s) re-encrypted; older versions no longer in use were destroyed.`,
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
        const result = await operation('keystore.rotateSigning', { tenant: opts.tenant, alg: opts.alg });
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
    .description(
      'Write the keystore, age-encrypted to your recipients (opens with the stock `age -d`); with --threshold K, split into one share per recipient, any K of which restore it',
    )
    .requiredOption(
      '-r, --recipient <age1...>',
      'age recipient (repeatable; with --threshold, one per share)',
      collect,
      [],
    )
    .requiredOption(
      '-o, --output <path>',
      'file to write (mode 0600); with --threshold, the prefix of the share files',
    )
    .option('--threshold <k>', 'split into N = recipients shares, K of which restore the keystore (Shamir)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { recipient: string[]; output: string; threshold?: string; json?: boolean }) => {
        const result = await exportKeystoreFiles(
          cliConfig(),
          {
            recipients: opts.recipient,
            output: opts.output,
            threshold: opts.threshold === undefined ? undefined : Number(opts.threshold),
          },
          systemClock,
          transferAudit,
        );
        const { files } = result;
        print(result, Boolean(opts.json), () =>
          result.threshold === undefined
            ? `Wrote the keystore export to ${opts.output} (${result.rootKeyIds.length} root key(s)).`
            : `Wrote ${files.length} shares, any ${result.threshold} of which restore the keystore:\n${files.join('\n')}`,
        );
      }),
    );

  keystore
    .command('import')
    .description(
      "Restore a keystore export (or any K of its shares) into this host's keystore, sealed with this host's master secret",
    )
    .argument('<files...>', 'an export written by `orthid keystore export`, or K share files')
    .requiredOption(
      '-i, --identity <file>',
      'age identity file that opens the export (repeatable)',
      collect,
      [],
    )
    .option('--json', 'print JSON')
    .action(
      action(async (files: string[], opts: { identity: string[]; json?: boolean }) => {
        const result = await importKeystoreFiles(cliConfig(), files, opts.identity, transferAudit);
        print(
          result,
          Boolean(opts.json),
          () =>
            `Imported ${result.rootKeyIds.length} root key(s) of deployment ${result.deploymentId} into ${result.path}.`,
        );
      }),
    );
}

/** Keystore transfers are recorded in the audit log; when they cannot be, the operator is warned. */
const transferAudit: KeystoreTransferDeps = {
  record: (event) => operation('keystore.audit', event),
  notRecorded(error) {
    const e = explainError(error, CAUSE_HINT);
    process.stderr.write(`warning: not recorded in the audit log (${e.code}): ${e.message}\n`);
  },
};

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
