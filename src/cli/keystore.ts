// `orthid keystore ...`: create, inspect, export and import the managed keystore that holds
// the root keys. Exports are age-encrypted to the operator's recipients.
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { parseIdentityFile } from '../crypto/age/index.js';
import type { CustodyInitResult } from '../crypto/custody/byok-custody.js';
import { openExternalCustody } from '../crypto/custody/deployment-custody.js';
import type { RootKeyInfo } from '../crypto/key-custody.js';
import { exportKeystore, readKeystoreExport } from '../crypto/keystore-export.js';
import { exportKeystoreShares, readKeystoreShares } from '../crypto/keystore-shares.js';
import type { DestroyedKey } from '../crypto/managed-keystore.js';
import { ManagedKeystore } from '../crypto/managed-keystore.js';
import { resolveMasterSecret } from '../crypto/master-secret.js';
import { openKeystore } from '../crypto/open-keystore.js';
import type { RotationProgress } from '../ops/key-rotation.js';
import { explainError } from '../storage/db/database-errors.js';
import { action, CAUSE_HINT, cliConfig, operation, print, writeFileAtomically } from './context.js';

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
        // The custody opens first: a token or binding that is not there refuses before any file
        // is written, and a ceremony that fails takes back the keystore this run created.
        const custody = await openExternalCustody(config);
        let opened: Awaited<ReturnType<typeof openKeystore>>;
        let ceremony: CustodyInitResult | undefined;
        try {
          await mkdir(dirname(config.keystorePath), { recursive: true, mode: 0o700 });
          opened = await openKeystore(config, true);
          try {
            ceremony = await custody?.init();
          } catch (error) {
            if (opened.created) await rm(opened.keystore.path, { force: true });
            if (opened.masterGenerated && config.masterKey.kind === 'generated')
              await rm(config.masterKey.path, { force: true });
            throw error;
          }
        } finally {
          await custody?.close();
        }
        const { keystore: ks, created, masterGenerated } = opened;
        const result = {
          created,
          path: ks.path,
          deploymentId: ks.deploymentId,
          custody: custody
            ? { kind: custody.kind, reference: custody.reference, ...ceremony }
            : { kind: 'managed' },
          rootKeyIds: ceremony ? [ceremony.rootKeyId] : ks.rootKeyIds(),
        };
        print(result, Boolean(opts.json), () =>
          [
            created ? `Created keystore ${ks.path}` : `Keystore ${ks.path} already exists; left unchanged.`,
            ceremony
              ? `${ceremony.created ? 'Generated' : 'Adopted'} root key ${ceremony.rootKeyId} in ${custody!.kind} custody ${custody!.reference}; it never leaves it.`
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
        const config = cliConfig();
        const { keystore: ks } = await openKeystore(config, false);
        const custody = (await openExternalCustody(config)) ?? ks;
        const rootKeys = await custody.rootKeys().finally(() => custody.close());
        // Rotation progress lives in the database; a host that only holds the keystore has none.
        const hasDatabase = config.database.kind === 'postgres' || existsSync(config.database.dir);
        const result: KeystoreStatus = {
          custody: custody.kind,
          reference: custody.reference,
          deploymentId: ks.deploymentId,
          rootKeyIds: rootKeys.map((k) => k.id),
          rootKeys,
          destroyedKeys: ks.destroyedKeys(),
          rotations: hasDatabase ? ((await operation('keystore.rotations', {})) as RotationProgress[]) : [],
        };
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
        const result = (await operation('keystore.rotate', {
          root: Boolean(opts.root),
          tenant: opts.tenant,
        })) as
          | { kind: 'root'; tenants: { tenant: string; rootKeyId: string; rewrapped: number }[] }
          | RotationProgress;
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
        const { keystore: ks } = await openKeystore(cliConfig(), false);
        const now = systemClock.now();
        let files: string[];
        if (opts.threshold === undefined) {
          await writeFileAtomically(opts.output, exportKeystore(ks.exportContents(), opts.recipient, now));
          files = [opts.output];
        } else {
          const threshold = Number(opts.threshold);
          const set = exportKeystoreShares(ks.exportContents(), opts.recipient, threshold, now);
          files = set.shares.map((_, i) => `${opts.output}.share-${i + 1}-of-${set.shares.length}.age`);
          for (const [i, share] of set.shares.entries()) await writeFileAtomically(files[i]!, share);
        }
        const result = {
          files,
          threshold: opts.threshold === undefined ? undefined : Number(opts.threshold),
          deploymentId: ks.deploymentId,
          rootKeyIds: ks.rootKeyIds(),
        };
        await auditKeystoreTransfer('keystore.exported', {
          files: files.length,
          threshold: result.threshold ?? null,
          recipients: opts.recipient.length,
        });
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
        const config = cliConfig();
        const identities: string[] = [];
        for (const file of opts.identity)
          identities.push(...parseIdentityFile(await readFile(file, 'utf8'), file));
        const contents =
          files.length === 1
            ? await readKeystoreExport(createReadStream(files[0]!), identities)
            : await readKeystoreShares(
                files.map((f) => createReadStream(f)),
                identities,
              );
        const master = await resolveMasterSecret(config.masterKey);
        const ks = await ManagedKeystore.import(config.keystorePath, master.value, contents);
        const result = { path: ks.path, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
        await auditKeystoreTransfer('keystore.imported', { files: files.length });
        print(
          result,
          Boolean(opts.json),
          () =>
            `Imported ${result.rootKeyIds.length} root key(s) of deployment ${ks.deploymentId} into ${ks.path}.`,
        );
      }),
    );
}

/**
 * Records an export or import in the system tenant's audit log. Importing onto a new host comes
 * before its database is restored; then there is no log yet, and the operator is told so.
 */
async function auditKeystoreTransfer(action: string, details: Record<string, unknown>): Promise<void> {
  try {
    await operation('keystore.audit', { action, details });
  } catch (error) {
    const e = explainError(error, CAUSE_HINT);
    process.stderr.write(`warning: not recorded in the audit log (${e.code}): ${e.message}\n`);
  }
}

interface KeystoreStatus {
  custody: string;
  reference: string;
  deploymentId: string;
  rootKeyIds: string[];
  rootKeys: RootKeyInfo[];
  destroyedKeys: DestroyedKey[];
  rotations: RotationProgress[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
