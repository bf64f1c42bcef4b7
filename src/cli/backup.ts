// `orthid backup …`: dump a backup set (also as `orthid dump …`, which the container image's
// CronJob runs), list sets, verify one, prune by the retention policy. Restore and drill build on these.
import type { Command } from 'commander';
import { describeDestination, openDestinations } from '../backup/destination.js';
import { resolveDumpOptions } from '../backup/dump-request.js';
import { type DumpEvent, planDump } from '../backup/dump-set.js';
import type { Manifest } from '../backup/manifest.js';
import { pruneBackupSets } from '../backup/prune.js';
import { DEFAULT_RETENTION } from '../backup/retention.js';
import { logDumpEvent } from '../backup/run-dump.js';
import {
  type BackupSet,
  describeInterruptedDumpFiles,
  listBackupSetsWithWarnings,
  type SetListEntry,
} from '../backup/sets.js';
import { type VerifyReport, verifyNamedSet } from '../backup/verify.js';
import { systemClock } from '../core/clock.js';
import { exitCodes, OrthIdError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { dumpHere } from '../main.js';
import { action, cliConfig, hereOrOnServer, print } from './context.js';

export interface DumpFlags {
  encrypt?: boolean;
  upload?: boolean;
  recipient?: string[];
  recipientsFile?: string;
  dest?: string;
  keystoreDest?: string;
  sse?: string;
  sseKmsKeyId?: string;
  allowPlaintextUpload?: boolean;
  json?: boolean;
}

interface WhereFlags {
  dest?: string;
  keystoreDest?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

/** Progress per part on a terminal; one JSON line per step otherwise (both on stderr). */
function dumpReporter(): (event: DumpEvent) => void {
  const config = cliConfig();
  if (!process.stderr.isTTY) {
    // The step lines are the command's output for schedulers: shown unless the level asks for errors only.
    const log = createLogger(
      ['silent', 'fatal', 'error'].includes(config.logLevel) ? config.logLevel : 'info',
      process.stderr,
    );
    return (event) => logDumpEvent(log, event);
  }
  const out = process.stderr;
  return (event) => {
    switch (event.step) {
      case 'started':
        out.write(
          `Backup set ${event.setId}\n  to ${event.dest}${event.keystoreDest !== event.dest ? ` (keystore to ${event.keystoreDest})` : ''}\n`,
        );
        break;
      case 'warning':
        out.write(`warning: ${event.message}\n`);
        break;
      case 'part.started':
        out.write(`  ${event.part.padEnd(18)} starting…`);
        break;
      case 'part.progress': {
        const rate = event.bytes / Math.max(event.elapsedMs / 1000, 0.001);
        out.write(
          `\r\x1b[2K  ${event.part.padEnd(18)} ${formatBytes(event.bytes).padStart(10)}  ${formatBytes(rate)}/s  ${(event.elapsedMs / 1000).toFixed(0)} s`,
        );
        break;
      }
      case 'part.finished':
        out.write(
          `\r\x1b[2K  ${event.part.padEnd(18)} ${formatBytes(event.size).padStart(10)}  done in ${(event.elapsedMs / 1000).toFixed(1)} s\n`,
        );
        break;
      case 'finished':
        out.write(`  manifest.json written last: the set is complete.\n`);
        break;
    }
  };
}

export async function dump(flags: DumpFlags): Promise<Manifest> {
  const config = cliConfig();
  // Every refusal about the options comes before anything is opened.
  const options = await resolveDumpOptions(config, {
    encrypt: flags.encrypt,
    upload: flags.upload,
    recipients: flags.recipient,
    recipientsFile: flags.recipientsFile,
    dest: flags.dest,
    keystoreDest: flags.keystoreDest,
    sse: flags.sse,
    sseKmsKeyId: flags.sseKmsKeyId,
    allowPlaintextUpload: flags.allowPlaintextUpload,
  });
  planDump(options);
  const onEvent = dumpReporter();
  return hereOrOnServer(
    'backup.dump',
    options,
    () => dumpHere(config, options, onEvent, createLogger(config.logLevel, process.stderr)),
    // A running `orthid start` holds the embedded database: it takes the dump itself and
    // streams it to the destinations from its own process.
    () =>
      process.stderr.write(
        'The running OrthID server holds the embedded database; it is taking the dump (progress is in its log).\n',
      ),
  );
}

function addDumpOptions(command: Command): Command {
  return command
    .option('--encrypt', 'encrypt every part with age to the recipients (required to upload)')
    .option(
      '--upload',
      'the set leaves this host: requires a configured destination (--dest / ORTHID_BACKUP_DEST)',
    )
    .option(
      '-r, --recipient <age1...>',
      'age recipient (repeatable; default ORTHID_BACKUP_AGE_RECIPIENTS)',
      collect,
    )
    .option('-R, --recipients-file <file>', 'file of age recipients, one per line')
    .option(
      '--dest <url>',
      'where the set goes: file:///path, a path, or s3://bucket/prefix?region=… (default ORTHID_BACKUP_DEST)',
    )
    .option(
      '--keystore-dest <url>',
      'where the keystore export goes (default ORTHID_BACKUP_KEYSTORE_DEST, else beside the set)',
    )
    .option('--sse <type>', 'S3 server-side encryption: aws:kms, aws:kms:dsse or AES256')
    .option('--sse-kms-key-id <id>', 'KMS key for --sse aws:kms')
    .option('--allow-plaintext-upload', 'allow an unencrypted set to be uploaded')
    .option('--json', 'print the manifest as JSON')
    .action(
      action(async (flags: DumpFlags) => {
        const manifest = await dump(flags);
        print(manifest, Boolean(flags.json), (m: Manifest) =>
          [
            `Wrote backup set ${m.setId} (${m.parts.length} parts, ${formatBytes(m.parts.reduce((a, p) => a + p.size, 0))}, ${m.objects.count} objects).`,
            ...m.parts.map(
              (p) => `  ${p.name.padEnd(18)} ${formatBytes(p.size).padStart(10)}  sha256:${p.sha256}`,
            ),
            ...(m.database.source?.replay
              ? [
                  `Read from a standby: holds every transaction the primary committed up to WAL ${m.database.source.replay.lsn}${m.database.source.replay.lastCommitAt ? ` (last commit ${m.database.source.replay.lastCommitAt})` : ''}.`,
                ]
              : []),
          ].join('\n'),
        );
      }),
    );
}

/** `primary`, or `standby@LSN` with the recovery point a set from a replica holds. */
function sourceText(source: SetListEntry['source']): string {
  if (source === null) return '-';
  return source.replay ? `standby@${source.replay.lsn}` : source.standby ? 'standby' : 'primary';
}

function reportOutcome(report: BackupSet['drill']): string {
  return report === null ? '-' : `${report.ok ? 'passed' : 'FAILED'} ${report.at.slice(0, 10)}`;
}

function verifyText(report: VerifyReport): string {
  return [
    `Set ${report.set}: ${report.ok ? 'OK' : 'FAILED'}`,
    ...report.parts.map((p) =>
      p.ok
        ? `  ${p.part.padEnd(18)} ok      ${p.checks.map((c) => c.name).join(', ')}; ${p.checks.at(-1)?.detail ?? ''}`
        : `  ${p.part.padEnd(18)} FAILED  ${p.error?.code}: ${p.error?.message}`,
    ),
  ].join('\n');
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new OrthIdError('request.invalid', `${name} must be a whole number (0 or more).`);
    return n;
  };
}

export function registerBackupCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description('Back up the database, objects and keys; list, verify and prune backup sets');

  addDumpOptions(
    backup
      .command('dump')
      .description('Write one backup set: database dump, objects, keystore export and manifest (last)'),
  );
  // The page's CronJob runs the image (entrypoint `orthid`) with args ["dump", "--encrypt", "--upload"].
  addDumpOptions(program.command('dump', { hidden: true }).description('Same as `orthid backup dump`'));

  backup
    .command('list')
    .description('Show every backup set with its status, time, size, verify and drill outcome')
    .option('--dest <url>', 'where the sets are (default ORTHID_BACKUP_DEST)')
    .option('--keystore-dest <url>', 'where the keystore exports are (default ORTHID_BACKUP_KEYSTORE_DEST)')
    .option(
      '--max-age-hours <n>',
      'warn when the newest complete set is older (default ORTHID_BACKUP_MAX_AGE_HOURS or 26)',
      Number,
    )
    .option('--max-drill-age-days <n>', 'warn when the newest passing drill is older (default 35)', Number)
    .option('--json', 'print JSON')
    .action(
      action(
        async (flags: WhereFlags & { maxAgeHours?: number; maxDrillAgeDays?: number; json?: boolean }) => {
          const config = cliConfig();
          const result = await listBackupSetsWithWarnings(await openDestinations(config, flags), {
            now: systemClock.now(),
            maxAgeHours: flags.maxAgeHours ?? config.backup.maxAgeHours,
            maxDrillAgeDays: flags.maxDrillAgeDays ?? config.backup.maxDrillAgeDays,
          });
          for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
          const leftovers = describeInterruptedDumpFiles(result.temporaryFiles);
          print(result, Boolean(flags.json), (r: typeof result) =>
            [
              r.sets.length === 0
                ? `No backup sets in ${r.dest}.`
                : [
                    `${'SET'.padEnd(56)} ${'STATUS'.padEnd(10)} ${'TIME (UTC)'.padEnd(20)} ${'SIZE'.padStart(10)}  ${'SOURCE'.padEnd(20)} ${'VERIFIED'.padEnd(17)} DRILL`,
                    ...r.sets.map(
                      (s) =>
                        `${s.id.padEnd(56)} ${s.status.padEnd(10)} ${s.time.slice(0, 19).replace('T', ' ').padEnd(20)} ${formatBytes(s.size).padStart(10)}  ${sourceText(s.source).padEnd(20)} ${reportOutcome(s.verified).padEnd(17)} ${reportOutcome(s.drill)}${s.problem ? `  (${s.problem})` : ''}`,
                    ),
                  ].join('\n'),
              ...(leftovers ? [leftovers] : []),
            ].join('\n'),
          );
        },
      ),
    );

  backup
    .command('verify')
    .description(
      "Check a set: every part's SHA-256, that it decrypts, and that pg_restore (or psql) could read it",
    )
    .argument('<set>', 'a set id, or "latest"')
    .option(
      '-i, --identity <file>',
      'age identity file that opens the set (default ORTHID_BACKUP_AGE_IDENTITY_FILE)',
    )
    .option('--dest <url>', 'where the sets are (default ORTHID_BACKUP_DEST)')
    .option('--keystore-dest <url>', 'where the keystore exports are (default ORTHID_BACKUP_KEYSTORE_DEST)')
    .option('--json', 'print JSON')
    .action(
      action(async (ref: string, flags: WhereFlags & { identity?: string; json?: boolean }) => {
        const config = cliConfig();
        const stores = await openDestinations(config, flags);
        const identityFile = flags.identity ?? config.backup.ageIdentityFile;
        const { report, recorded } = await verifyNamedSet(stores, ref, identityFile, systemClock);
        if (!recorded) {
          process.stderr.write(
            `warning: could not record the result beside the set in ${describeDestination(stores.dest.url)} (read-only?).\n`,
          );
        }
        print(report, Boolean(flags.json), verifyText);
        return report.ok ? exitCodes.ok : exitCodes.checkFailed;
      }),
    );

  backup
    .command('prune')
    .description('Delete sets outside the retention policy (nightly for 30 days, one weekly for a year)')
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .option(
      '--keep-daily <days>',
      'keep every set this many days',
      positiveInteger('--keep-daily'),
      DEFAULT_RETENTION.keepDaily,
    )
    .option(
      '--keep-weekly <weeks>',
      "keep each week's newest set this many weeks",
      positiveInteger('--keep-weekly'),
      DEFAULT_RETENTION.keepWeekly,
    )
    .option('--dest <url>', 'where the sets are (default ORTHID_BACKUP_DEST)')
    .option('--keystore-dest <url>', 'where the keystore exports are (default ORTHID_BACKUP_KEYSTORE_DEST)')
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          flags: WhereFlags & { dryRun?: boolean; keepDaily: number; keepWeekly: number; json?: boolean },
        ) => {
          const { dest, keystoreDest } = await openDestinations(cliConfig(), flags);
          const result = await pruneBackupSets(dest, keystoreDest, {
            policy: { keepDaily: flags.keepDaily, keepWeekly: flags.keepWeekly },
            now: systemClock.now(),
            dryRun: flags.dryRun === true,
          });
          print(result, Boolean(flags.json), (r: typeof result) =>
            [
              ...r.deleted.map(
                (d) =>
                  `${r.dryRun ? 'would delete' : 'deleted'}  ${d.id}  (${d.reasons.join(', ')}, ${formatBytes(d.size)})`,
              ),
              ...r.kept.map((k) => `kept          ${k.id}  (${k.reasons.join(', ')})`),
              `${r.dryRun ? 'Would delete' : 'Deleted'} ${r.deleted.length} set(s); kept ${r.kept.length}.`,
              ...(r.temporaryFiles.count > 0
                ? [
                    `${r.dryRun ? 'Would reclaim' : 'Reclaimed'} ${r.temporaryFiles.count} temporary file(s) of interrupted dumps (${formatBytes(r.temporaryFiles.bytes)}).`,
                  ]
                : []),
            ].join('\n'),
          );
        },
      ),
    );
}
