// `orthid backup restore|drill|check`: the restore half of the backup page. Steps are printed as
// they run; `--json` prints the outcome for scripts; the exit code is 0 only when every check passed.
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { exitCodes, OrthIdError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { readIdentityFile } from '../crypto/age/index.js';
import { composeOrthId } from '../main.js';
import {
  type DrillReport,
  drill,
  drillDatabaseUrl,
  type RestoreOutcome,
  restoreDeployment,
} from '../ops/restore-deployment.js';
import { type CheckResult, checkDeployment } from '../ops/verification-checks.js';
import { action, cliConfig, operation, print, withOrthId } from './context.js';

async function identities(file: string | undefined): Promise<string[]> {
  const path = file ?? cliConfig().backup.ageIdentityFile;
  if (!path) {
    throw new OrthIdError(
      'backup.identity_required',
      'Pass --identity FILE (an age identity file, e.g. from age-keygen) or set ORTHID_BACKUP_AGE_IDENTITY_FILE.',
    );
  }
  return readIdentityFile(path);
}

/** Steps go to stderr, so stdout stays machine-readable under --json. */
function printStep(step: number, title: string, detail?: string): void {
  process.stderr.write(`[${step}/6] ${title}${detail ? ` (${detail})` : ''}\n`);
}

function checksText(checks: CheckResult[]): string {
  return checks.map((c) => `  ${c.ok ? 'PASS' : 'FAIL'} ${c.name.padEnd(17)} ${c.detail}`).join('\n');
}

function outcomeText(o: RestoreOutcome & { error?: DrillReport['error'] }, what: string): string {
  const head = o.ok
    ? `${what} of set ${o.set} passed every check (restore took ${o.restore_seconds.toFixed(1)} s).`
    : `${what} of set ${o.set} FAILED${o.error ? `: error[${o.error.code}] ${o.error.message}` : '.'}`;
  return o.checks.length ? `${head}\n${checksText(o.checks)}` : head;
}

export function registerRestoreCommands(backup: Command): void {
  backup
    .command('restore')
    .description('Restore a backup set: keystore first, then database, objects, migrations, then verify')
    .argument('[set]', 'set id, set path or "latest"', 'latest')
    .option('-i, --identity <file>', 'age identity file (default ORTHID_BACKUP_AGE_IDENTITY_FILE)')
    .option(
      '--database-url <url>',
      'target PostgreSQL database (created when missing; default: the configured database)',
    )
    .option('--object-store <url>', 'target object store (default ORTHID_OBJECT_STORE)')
    .option('--keystore <url>', 'target keystore file as file:///path (default ORTHID_KEYSTORE)')
    .option('--keystore-file <file>', "a keystore export to restore instead of the set's keystore.age")
    .option('--clean', 'replace a target database or object store that is not empty')
    .option('--into-live-stores', "restore into this deployment's own (configured) database and object store")
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          set: string,
          opts: {
            identity?: string;
            databaseUrl?: string;
            objectStore?: string;
            keystore?: string;
            keystoreFile?: string;
            clean?: boolean;
            intoLiveStores?: boolean;
            json?: boolean;
          },
        ) => {
          const config = cliConfig();
          const outcome = await restoreDeployment(
            config,
            {
              set,
              identities: await identities(opts.identity),
              databaseUrl: opts.databaseUrl,
              objectStoreUrl: opts.objectStore,
              keystorePath: opts.keystore ? new URL(opts.keystore).pathname : undefined,
              keystoreFile: opts.keystoreFile,
              clean: opts.clean,
              intoLiveStores: opts.intoLiveStores,
              onStep: printStep,
            },
            systemClock,
            createLogger('warn', process.stderr),
            composeOrthId,
          );
          print(outcome, Boolean(opts.json), (o: RestoreOutcome) => outcomeText(o, 'Restore'));
          return outcome.ok ? exitCodes.ok : exitCodes.checkFailed;
        },
      ),
    );

  backup
    .command('drill')
    .description('Restore a set into a throwaway target, run the checks, record the result, clean up')
    .option('--from <set>', 'set id, set path or "latest"', 'latest')
    .option('-i, --identity <file>', 'age identity file (default ORTHID_BACKUP_AGE_IDENTITY_FILE)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { from: string; identity?: string; json?: boolean }) => {
        const config = cliConfig();
        const report = await drill(
          config,
          {
            set: opts.from,
            identities: await identities(opts.identity),
            databaseUrl: drillDatabaseUrl(config),
            onStep: printStep,
          },
          systemClock,
          createLogger('warn', process.stderr),
          composeOrthId,
        );
        // The live deployment records the drill in its audit log (through the running server when embedded).
        await operation('backup.recordDrill', { report }).catch((error: OrthIdError) =>
          process.stderr.write(
            `warning: the drill result could not be added to the audit log: ${error.message}\n`,
          ),
        );
        print(report, Boolean(opts.json), (r: DrillReport) => outcomeText(r, 'Drill'));
        return report.ok ? exitCodes.ok : exitCodes.checkFailed;
      }),
    );

  backup
    .command('check')
    .description('Run the verification checks against a deployment (default: this one)')
    .option('--database-url <url>', 'the deployment database to check (default: the configured one)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { databaseUrl?: string; json?: boolean }) => {
        const checks = opts.databaseUrl
          ? await withOrthId(checkDeployment, { databaseUrl: opts.databaseUrl })
          : ((await operation('backup.check', {})) as CheckResult[]);
        const ok = checks.every((c) => c.ok);
        print(
          { ok, checks },
          Boolean(opts.json),
          () => `${ok ? 'Every check passed.' : 'Some checks FAILED.'}\n${checksText(checks)}`,
        );
        return ok ? exitCodes.ok : exitCodes.checkFailed;
      }),
    );
}
