// `orthid backup …`: dump a backup set (also as `orthid dump …`, which the container image's
// CronJob runs), list sets, verify one, prune by the retention policy. Restore and drill build on these.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { describeDestination, openBackupStores } from '../backup/destination.js';
import type { DumpEvent, DumpOptions } from '../backup/dump-set.js';
import { planDump } from '../backup/dump-set.js';
import type { Manifest } from '../backup/manifest.js';
import { pruneBackupSets } from '../backup/prune.js';
import { DEFAULT_RETENTION } from '../backup/retention.js';
import { logDumpEvent } from '../backup/run-dump.js';
import {
  type BackupSet,
  describeInterruptedDumpFiles,
  findBackupSet,
  freshnessWarnings,
  interruptedDumpFiles,
  listBackupSets,
} from '../backup/sets.js';
import { recordVerifyReport, type VerifyReport, verifyBackupSet } from '../backup/verify.js';
import { backupLocation, type Config } from '../config/config.js';
import { systemClock } from '../core/clock.js';
import { exitCodes, OrthIdError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { parseIdentityFile } from '../crypto/age/index.js';
import { dumpHere } from '../main.js';
import type { OperationInput } from '../ops/operations.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
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

function location(value: string, flag: string): string {
  const url = backupLocation(value);
  if (url === undefined) {
    throw new OrthIdError(
      'backup.destination_invalid',
      `${flag} must be a file:///absolute/path, a path, or an s3://bucket/prefix URL.`,
    );
  }
  return url;
}

/** Destinations from flags, falling back to ORTHID_BACKUP_DEST / ORTHID_BACKUP_KEYSTORE_DEST. */
function destinations(
  config: Config,
  flags: WhereFlags,
): { dest: string; destConfigured: boolean; keystoreDest: string | undefined } {
  return {
    dest: flags.dest === undefined ? config.backup.dest : location(flags.dest, '--dest'),
    destConfigured: flags.dest !== undefined || config.backup.destConfigured,
    keystoreDest:
      flags.keystoreDest === undefined
        ? config.backup.keystoreDest
        : location(flags.keystoreDest, '--keystore-dest'),
  };
}

async function openStores(
  config: Config,
  flags: WhereFlags,
): Promise<{ dest: ObjectStore; keystoreStore: ObjectStore }> {
  const where = destinations(config, flags);
  const stores = await openBackupStores(where.dest, where.keystoreDest);
  return { dest: stores.dest, keystoreStore: stores.keystoreDest };
}

/** Recipients from `-r`/`-R` (age's own flags), else ORTHID_BACKUP_AGE_RECIPIENTS. */
async function recipientsFrom(config: Config, flags: DumpFlags): Promise<string[]> {
  const given = [...(flags.recipient ?? [])];
  if (flags.recipientsFile !== undefined) {
    const text = await readFile(flags.recipientsFile, 'utf8').catch((cause: NodeJS.ErrnoException) => {
      throw new OrthIdError(
        'backup.no_recipients',
        `Cannot read the recipients file ${flags.recipientsFile} (${cause.code}).`,
        { cause },
      );
    });
    given.push(
      ...text
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
  }
  return given.length > 0 ? given : config.backup.ageRecipients;
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
  const where = destinations(config, flags);
  const options: DumpOptions & OperationInput<'backup.dump'> = {
    encrypt: flags.encrypt === true,
    upload: flags.upload === true,
    recipients: await recipientsFrom(config, flags),
    ...where,
    sse:
      flags.sse === undefined
        ? flags.sseKmsKeyId === undefined
          ? undefined
          : { type: 'aws:kms', kmsKeyId: flags.sseKmsKeyId }
        : { type: flags.sse, kmsKeyId: flags.sseKmsKeyId },
    allowPlaintextUpload: flags.allowPlaintextUpload === true,
  };
  // Every refusal about the options comes before anything is opened.
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

interface ListEntry {
  id: string;
  path: string;
  time: string;
  status: BackupSet['status'];
  problem?: string;
  size: number;
  encrypted: boolean | null;
  database: string | null;
  /** What the dump read (primary or standby) and, from a standby, the recovery point it holds. */
  source: NonNullable<Manifest['database']['source']> | null;
  verified: BackupSet['verified'];
  drill: BackupSet['drill'];
}

function listEntry(set: BackupSet): ListEntry {
  return {
    id: set.id,
    path: set.path,
    time: set.time,
    status: set.status,
    ...(set.problem === undefined ? {} : { problem: set.problem }),
    size: set.size,
    encrypted: set.manifest?.encrypted ?? null,
    database: set.manifest
      ? `${set.manifest.database.engine} ${set.manifest.database.serverVersion} (${set.manifest.database.format})`
      : null,
    source: set.manifest?.database.source ?? null,
    verified: set.verified,
    drill: set.drill,
  };
}

/** `primary`, or `standby@LSN` with the recovery point a set from a replica holds. */
function sourceText(source: ListEntry['source']): string {
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
          const { dest, keystoreStore } = await openStores(config, flags);
          const sets = await listBackupSets(dest, keystoreStore);
          const warnings = freshnessWarnings(sets, {
            now: systemClock.now(),
            maxAgeHours: flags.maxAgeHours ?? config.backup.maxAgeHours,
            maxDrillAgeDays: flags.maxDrillAgeDays ?? config.backup.maxDrillAgeDays,
          });
          for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
          const temporaryFiles = await interruptedDumpFiles(dest, keystoreStore, { reclaim: false });
          const result = {
            dest: describeDestination(dest.url),
            sets: sets.map(listEntry),
            temporaryFiles,
            warnings,
          };
          const leftovers = describeInterruptedDumpFiles(temporaryFiles);
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
        const { dest, keystoreStore } = await openStores(config, flags);
        const set = await findBackupSet(dest, ref, keystoreStore);
        const identityFile = flags.identity ?? config.backup.ageIdentityFile;
        let identities: string[] = [];
        if (set.manifest.encrypted) {
          if (identityFile === undefined) {
            throw new OrthIdError(
              'backup.identity_required',
              'The set is encrypted: pass --identity FILE (or set ORTHID_BACKUP_AGE_IDENTITY_FILE).',
            );
          }
          identities = parseIdentityFile(await readFile(identityFile, 'utf8'), identityFile);
        }
        const report = await verifyBackupSet({ dest, keystoreStore, identities, clock: systemClock }, set);
        await recordVerifyReport(dest, set, report).catch(() => {
          process.stderr.write(
            `warning: could not record the result beside the set in ${describeDestination(dest.url)} (read-only?).\n`,
          );
        });
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
          const config = cliConfig();
          const { dest, keystoreStore } = await openStores(config, flags);
          const result = await pruneBackupSets(dest, keystoreStore, {
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
