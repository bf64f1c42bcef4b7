// Reads the environment once into a typed, validated Config. Every problem is reported at once;
// nothing else in OrthID reads process.env.
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cron } from 'croner';
import { OrthIdError } from '../core/errors.js';
import { type AwsKmsUri, parseAwsKmsUri } from './awskms-uri.js';
import { type Pkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';

export type DatabaseConfig =
  | { kind: 'embedded'; dir: string }
  | { kind: 'postgres'; url: string; migrationUrl: string };

export type MasterKeySource =
  | { kind: 'value'; value: string }
  | { kind: 'file'; path: string }
  /** Embedded default only: generated on first start into the data directory (mode 0600). */
  | { kind: 'generated'; path: string };

/** A secret given in the environment, or the path of a file holding it (read when it is used). */
export type SecretSource = { kind: 'value'; value: string } | { kind: 'file'; path: string };

/** A PKCS#11 token holds the root keys; the PIN logs OrthID in to it. */
export interface Pkcs11CustodyConfig extends Pkcs11Uri {
  kind: 'pkcs11';
  pin: SecretSource;
}

/** An AWS KMS key holds the root keys; credentials come from the standard AWS chain. */
export interface AwsKmsCustodyConfig extends AwsKmsUri {
  kind: 'awskms';
}

/** Who holds the root keys that wrap tenant data keys (ORTHID_KEYSTORE). */
export type CustodyConfig = { kind: 'managed' } | Pkcs11CustodyConfig | AwsKmsCustodyConfig;

/** Where backup sets live and what protects them (`orthid backup …`). */
export interface BackupConfig {
  /** Destination of backup sets: a file:// or s3:// URL (default file://<data dir>/backups). */
  dest: string;
  /** Whether ORTHID_BACKUP_DEST named the destination (rather than the local default). */
  destConfigured: boolean;
  /** Destination of keystore exports; undefined means beside the sets (a warning at dump time). */
  keystoreDest: string | undefined;
  /** age recipients (age1…) backups are encrypted to. */
  ageRecipients: string[];
  /** age identity file that opens backups (verify, restore, drill). */
  ageIdentityFile: string | undefined;
  /** `backup list` warns when the newest complete set is older than this. */
  maxAgeHours: number;
  /** `backup list` warns when the newest passing drill is older than this. */
  maxDrillAgeDays: number;
  /** Server on which `backup drill` creates its throwaway database; unset: an in-memory embedded one. */
  drillDatabaseUrl: string | undefined;
  /**
   * How long a verify or drill job started from the admin API stays `running` after its server
   * last renewed it: past it, the job's process is taken for dead and the job is `interrupted`.
   */
  jobLeaseSeconds: number;
  /** Cron expressions (UTC) for in-process dumps and drills on single-node deployments. */
  schedule: string | undefined;
  drillSchedule: string | undefined;
}

/** An SMTP relay (ORTHID_SMTP_URL); the password is read from its file when the first mail goes. */
export interface SmtpConfig {
  host: string;
  port: number;
  /** smtps://: TLS from the first byte (port 465 by default). */
  secure: boolean;
  /** smtp://: STARTTLS is required (true) unless turned off for a loopback relay. */
  starttls: boolean;
  user: string | undefined;
  passwordFile: string | undefined;
  /** PEM file of the CA(s) the server's certificate is checked against, besides the system's. */
  caFile: string | undefined;
}

/** Outgoing mail: the relay or the outbox, the default sender and how long finished mail is kept. */
export interface MailConfig {
  smtp: SmtpConfig | undefined;
  /** Directory where mail is written as .eml files when no SMTP relay is configured. */
  outboxDir: string | undefined;
  /** Sender of tenants that configure none ("Name <address>"). */
  from: string;
  retentionMs: number;
}

export interface Config {
  dataDir: string;
  /** Outgoing mail (src/mail). */
  mail: MailConfig;
  database: DatabaseConfig;
  /** Where `backup dump` reads from (e.g. a read replica); defaults to the migration (owner) connection. */
  backupDatabaseUrl: string | undefined;
  backup: BackupConfig;
  /**
   * Cron expression (UTC) for the monthly audit archives `orthid start` writes; undefined when
   * off. Default: on for the embedded database (one node), off for PostgreSQL (replicas would race).
   */
  auditExportSchedule: string | undefined;
  /** Age at which a tenant's signing key is replaced (JWKS keeps the old one for the token overlap); undefined when off. */
  signingKeyRotationMs: number | undefined;
  objectStore: string;
  /**
   * Path of the keystore file: the managed root keys (managed custody) and, with every custody,
   * the deployment id and small secrets. With pkcs11/awskms custody: ORTHID_KEYSTORE_FILE or
   * <data dir>/keystore.
   */
  keystorePath: string;
  /** Who holds the root keys. */
  custody: CustodyConfig;
  masterKey: MasterKeySource;
  publicUrl: string;
  host: string;
  port: number;
  region: string;
  /** Whose X-Forwarded-For is believed for the client address: false, true, or the proxies' addresses/CIDRs. */
  trustProxy: boolean | string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How a client's address appears in the request log (the audit log seals it either way). */
  logClientAddress: LogClientAddress;
  /** What `orthid start` does on SIGTERM or SIGINT. */
  shutdown: ShutdownConfig;
}

/** On SIGTERM: /readyz answers 503 for `drainMs` while serving, then the listener closes and requests in flight get `graceMs`. */
export interface ShutdownConfig {
  /** Time for load balancers to see /readyz fail before the listener closes. */
  drainMs: number;
  /** Time requests in flight may still take once the listener has closed; then their connections are cut. */
  graceMs: number;
}

/** `truncate`: IPv4 /24, IPv6 /48; `omit`: not logged; `full`: as received (personal data). */
export type LogClientAddress = 'truncate' | 'omit' | 'full';

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_CLIENT_ADDRESS = ['truncate', 'omit', 'full'] as const;

/** Every variable OrthID reads, with its meaning; a test checks that the README documents each one. */
export const ENVIRONMENT: Record<string, string> = {
  ORTHID_DATA_DIR: 'Data directory for the embedded defaults (default ./.orthid).',
  ORTHID_DATABASE_URL: 'PostgreSQL URL (>= 15). Unset: embedded PGlite in the data directory.',
  ORTHID_MIGRATION_DATABASE_URL: 'Owner connection used for migrations (default: ORTHID_DATABASE_URL).',
  ORTHID_BACKUP_DATABASE_URL:
    'Connection backups dump from, e.g. a read replica; its role must read every tenant (superuser or BYPASSRLS). Default: ORTHID_MIGRATION_DATABASE_URL.',
  ORTHID_BACKUP_DEST:
    'Where backup sets go: file:///path or s3://bucket/prefix?region=… (default file://<data dir>/backups).',
  ORTHID_BACKUP_KEYSTORE_DEST:
    'Where keystore exports go, ideally under stricter access (default: beside the sets).',
  ORTHID_BACKUP_AGE_RECIPIENTS: 'age recipients (age1…, comma or space separated) backups are encrypted to.',
  ORTHID_BACKUP_AGE_IDENTITY_FILE: 'age identity file that opens backups (verify, restore, drill).',
  ORTHID_BACKUP_MAX_AGE_HOURS: 'backup list warns when the newest complete set is older (default 26).',
  ORTHID_BACKUP_SCHEDULE:
    'Cron expression (UTC) for in-process dumps by `orthid start`, e.g. "0 2 * * *" (single-node deployments; else use the CronJob).',
  ORTHID_DRILL_SCHEDULE: 'Cron expression (UTC) for in-process drills by `orthid start`, e.g. "0 3 1 * *".',
  ORTHID_AUDIT_EXPORT_SCHEDULE:
    'Cron expression (UTC) for the in-process archive of the previous month\'s audit events of every tenant, or "off". Default "0 3 1 * *" on the embedded database, off with PostgreSQL.',
  ORTHID_SIGNING_KEY_ROTATION:
    'Age after which each tenant\'s token signing key is replaced, e.g. "90d" or "12h", or "off". Default "90d".',
  ORTHID_DRILL_DATABASE_URL:
    'PostgreSQL server on which `backup drill` creates (and drops) a throwaway database; its role needs CREATEDB. Unset: an in-memory embedded database (embedded sets only).',
  ORTHID_BACKUP_MAX_DRILL_AGE_DAYS: 'backup list warns when the newest passing drill is older (default 35).',
  ORTHID_BACKUP_JOB_LEASE_SECONDS:
    'Seconds a verify or drill job of the admin API stays running after its server last renewed it; then it is interrupted (default 60).',
  ORTHID_OBJECT_STORE:
    'Object store URL: file:///path or s3://bucket/prefix (default file://<data dir>/objects).',
  ORTHID_KEYSTORE:
    'Key custody: file:///path (managed keystore, default file://<data dir>/keystore), pkcs11:token=…;object=…?module-path=… (HSM, RFC 7512) or awskms:<key id|ARN|alias/…>[?region=…&endpoint=…].',
  ORTHID_KEYSTORE_FILE:
    'Keystore file (deployment id, small secrets) when ORTHID_KEYSTORE is pkcs11: or awskms: (default <data dir>/keystore).',
  ORTHID_PKCS11_PIN: 'User PIN of the PKCS#11 token named by ORTHID_KEYSTORE (never put it in the URI).',
  ORTHID_PKCS11_PIN_FILE: 'File holding the PKCS#11 user PIN (alternative to ORTHID_PKCS11_PIN).',
  ORTHID_MASTER_KEY: 'Secret that seals the managed keystore (at least 32 characters).',
  ORTHID_MASTER_KEY_FILE: 'File holding the master secret (alternative to ORTHID_MASTER_KEY).',
  ORTHID_PUBLIC_URL:
    'External base URL; tenant issuers are <public url>/t/<slug> and every URL handed out is built from it, never from Host or X-Forwarded-*; https adds HSTS (default http://localhost:<port>).',
  ORTHID_HOST: 'Address to listen on (default 127.0.0.1; the container image sets 0.0.0.0).',
  ORTHID_PORT: 'Port to listen on (default 3000).',
  ORTHID_REGION: 'Region this deployment runs in; backups refuse destinations elsewhere (default local).',
  ORTHID_TRUST_PROXY:
    'Believe X-Forwarded-For (the client address) from: false (default), true, or comma-separated proxy addresses/CIDRs; it never changes a URL.',
  ORTHID_LOG_LEVEL: 'fatal, error, warn, info (default), debug, trace or silent.',
  ORTHID_LOG_CLIENT_ADDRESS:
    'Client addresses in the request log: truncate (default; IPv4 /24, IPv6 /48), omit, or full.',
  ORTHID_SHUTDOWN_DRAIN_SECONDS:
    'On SIGTERM, seconds /readyz answers 503 while requests are still served, so load balancers stop sending (default 5 with PostgreSQL, 0 embedded).',
  ORTHID_SHUTDOWN_GRACE_SECONDS:
    'Seconds requests in flight may still take once the listener has closed; then their connections are cut (default 20).',
  ORTHID_SMTP_URL:
    'SMTP relay for outgoing mail: smtp://[user@]host[:587] (STARTTLS required) or smtps://[user@]host[:465] (TLS); never a password in it. Unset: the outbox (embedded) or mail stays queued (PostgreSQL).',
  ORTHID_SMTP_PASSWORD_FILE: 'File holding the SMTP password of the user named in ORTHID_SMTP_URL.',
  ORTHID_SMTP_CA_FILE:
    "PEM file of CA certificates the SMTP server's certificate may chain to, besides the system ones.",
  ORTHID_SMTP_STARTTLS:
    'required (default) or off; off is accepted only for a relay on a loopback address (127.0.0.1, ::1, localhost).',
  ORTHID_MAIL_FROM:
    'Sender of tenants that set none (`orthid tenant configure --mail-from`), "Name <address>" (default "OrthID <no-reply@<public url host>>").',
  ORTHID_MAIL_OUTBOX:
    'Directory where mail is written as .eml files when ORTHID_SMTP_URL is unset (default <data dir>/outbox on the embedded database; unset with PostgreSQL).',
  ORTHID_MAIL_RETENTION:
    'How long sent and failed mail stays in the queue before housekeeping deletes it, e.g. "7d" (default) or "12h".',
};

function isPostgresUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'postgres:' || u.protocol === 'postgresql:';
  } catch {
    return false;
  }
}

function filePath(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'file:' ? decodeURIComponent(u.pathname) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A backup destination as a URL: `file://` and `s3://` URLs pass through, a bare path becomes a
 * file:// URL resolved against `cwd`. Undefined when it is neither (the caller reports it).
 */
export function backupLocation(value: string, cwd: string = process.cwd()): string | undefined {
  if (/^s3:\/\//i.test(value)) return value;
  if (/^file:/i.test(value)) {
    const path = filePath(value);
    return path !== undefined && isAbsolute(path) ? pathToFileURL(path).href : undefined;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return undefined;
  return pathToFileURL(resolve(cwd, value)).href;
}

/** Reads and validates configuration; throws `config.invalid` listing every problem. */
export function loadConfig(env: Env, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const rawDataDir = get('ORTHID_DATA_DIR') ?? '.orthid';
  const dataDir = isAbsolute(rawDataDir) ? rawDataDir : resolve(cwd, rawDataDir);

  const databaseUrl = get('ORTHID_DATABASE_URL');
  const migrationUrl = get('ORTHID_MIGRATION_DATABASE_URL');
  let database: DatabaseConfig = { kind: 'embedded', dir: join(dataDir, 'pgdata') };
  if (databaseUrl !== undefined) {
    if (!isPostgresUrl(databaseUrl)) problems.push('ORTHID_DATABASE_URL must be a postgres:// URL.');
    if (migrationUrl !== undefined && !isPostgresUrl(migrationUrl)) {
      problems.push('ORTHID_MIGRATION_DATABASE_URL must be a postgres:// URL.');
    }
    database = { kind: 'postgres', url: databaseUrl, migrationUrl: migrationUrl ?? databaseUrl };
  } else if (migrationUrl !== undefined) {
    problems.push(
      'ORTHID_MIGRATION_DATABASE_URL is set but ORTHID_DATABASE_URL is not; set both or neither.',
    );
  }

  const backupDatabaseUrl = get('ORTHID_BACKUP_DATABASE_URL');
  if (backupDatabaseUrl !== undefined && !isPostgresUrl(backupDatabaseUrl)) {
    problems.push('ORTHID_BACKUP_DATABASE_URL must be a postgres:// URL.');
  }

  const backup = readBackupConfig(get, dataDir, cwd, problems);

  // Embedded means one process, so exactly one scheduler; with PostgreSQL several replicas may run.
  const auditExport =
    get('ORTHID_AUDIT_EXPORT_SCHEDULE') ?? (database.kind === 'embedded' ? '0 3 1 * *' : 'off');
  const auditExportSchedule =
    auditExport.toLowerCase() === 'off'
      ? undefined
      : cronSchedule('ORTHID_AUDIT_EXPORT_SCHEDULE', auditExport, problems);

  const signingRotation = (get('ORTHID_SIGNING_KEY_ROTATION') ?? '90d').toLowerCase();
  const rotationMatch = /^(\d+)([dh])$/.exec(signingRotation);
  if (signingRotation !== 'off' && (!rotationMatch || Number(rotationMatch[1]) === 0)) {
    problems.push('ORTHID_SIGNING_KEY_ROTATION must be a duration such as "90d" or "12h", or "off".');
  }
  const signingKeyRotationMs = rotationMatch
    ? Number(rotationMatch[1]) * (rotationMatch[2] === 'd' ? 86_400_000 : 3_600_000)
    : undefined;

  const objectStore = get('ORTHID_OBJECT_STORE') ?? pathToFileURL(join(dataDir, 'objects')).href;
  if (!/^(file|s3):\/\//.test(objectStore)) {
    problems.push('ORTHID_OBJECT_STORE must be a file:///path or s3://bucket/prefix URL.');
  }

  const { custody, keystorePath } = readCustody(get, dataDir, cwd, problems);
  const keystoreIsFile = custody.kind === 'managed';

  const masterValue = get('ORTHID_MASTER_KEY');
  const masterFile = get('ORTHID_MASTER_KEY_FILE');
  let masterKey: MasterKeySource = { kind: 'generated', path: join(dataDir, 'master.key') };
  if (masterValue !== undefined && masterFile !== undefined) {
    problems.push('Set ORTHID_MASTER_KEY or ORTHID_MASTER_KEY_FILE, not both.');
  } else if (masterValue !== undefined) {
    if (masterValue.length < 32) problems.push('ORTHID_MASTER_KEY must be at least 32 characters.');
    masterKey = { kind: 'value', value: masterValue };
  } else if (masterFile !== undefined) {
    masterKey = { kind: 'file', path: resolve(cwd, masterFile) };
  } else if (database.kind === 'postgres' && keystoreIsFile) {
    problems.push(
      'A production database needs an operator-held master secret: set ORTHID_MASTER_KEY or ORTHID_MASTER_KEY_FILE (generate one with: openssl rand -base64 48).',
    );
  }

  const portText = get('ORTHID_PORT') ?? '3000';
  const port = Number(portText);
  const portValid = Number.isInteger(port) && port >= 0 && port <= 65535;
  if (!portValid) problems.push('ORTHID_PORT must be a port number (0-65535).');

  const host = get('ORTHID_HOST') ?? '127.0.0.1';
  // The default derives from the port; a bad port is reported once, not twice.
  const publicUrl = (get('ORTHID_PUBLIC_URL') ?? `http://localhost:${portValid ? port : 3000}`).replace(
    /\/+$/,
    '',
  );
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    problems.push('ORTHID_PUBLIC_URL must be an http:// or https:// URL.');
  }

  const region = get('ORTHID_REGION') ?? 'local';
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(region)) {
    problems.push('ORTHID_REGION must be lowercase letters, digits and dashes (e.g. au-syd-1).');
  }

  const trustText = get('ORTHID_TRUST_PROXY') ?? 'false';
  const trustProxy: boolean | string[] =
    trustText === 'true' ? true : trustText === 'false' ? false : trustText.split(',').map((a) => a.trim());

  const mail = readMailConfig(get, dataDir, cwd, database.kind, publicUrl, problems);

  const logLevel = (get('ORTHID_LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`ORTHID_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}.`);
  const logClientAddress = (get('ORTHID_LOG_CLIENT_ADDRESS') ?? 'truncate') as LogClientAddress;
  if (!LOG_CLIENT_ADDRESS.includes(logClientAddress)) {
    problems.push(`ORTHID_LOG_CLIENT_ADDRESS must be one of ${LOG_CLIENT_ADDRESS.join(', ')}.`);
  }

  // Embedded means one node: no load balancer has another replica to send traffic to meanwhile.
  const shutdown: ShutdownConfig = {
    drainMs: seconds('ORTHID_SHUTDOWN_DRAIN_SECONDS', database.kind === 'embedded' ? 0 : 5, get, problems),
    graceMs: seconds('ORTHID_SHUTDOWN_GRACE_SECONDS', 20, get, problems),
  };

  if (problems.length > 0) {
    throw new OrthIdError('config.invalid', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
  return {
    dataDir,
    mail,
    database,
    backupDatabaseUrl,
    backup,
    auditExportSchedule,
    signingKeyRotationMs,
    objectStore,
    keystorePath,
    custody,
    masterKey,
    publicUrl,
    host,
    port,
    region,
    trustProxy,
    logLevel,
    logClientAddress,
    shutdown,
  };
}

/** Longer than any orchestrator waits before it kills a process anyway. */
const MAX_SHUTDOWN_SECONDS = 3600;

/** A duration in seconds (fractions allowed, 0 for none), as milliseconds. */
function seconds(
  name: string,
  fallback: number,
  get: (name: string) => string | undefined,
  problems: string[],
): number {
  const text = get(name);
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(value) || value < 0 || value > MAX_SHUTDOWN_SECONDS) {
    problems.push(`${name} must be a number of seconds from 0 to ${MAX_SHUTDOWN_SECONDS}, e.g. "20".`);
    return fallback * 1000;
  }
  return Math.round(value * 1000);
}

function readCustody(
  get: (name: string) => string | undefined,
  dataDir: string,
  cwd: string,
  problems: string[],
): { custody: CustodyConfig; keystorePath: string } {
  const keystore = get('ORTHID_KEYSTORE') ?? pathToFileURL(join(dataDir, 'keystore')).href;
  const keystoreFile = get('ORTHID_KEYSTORE_FILE');
  const pinValue = get('ORTHID_PKCS11_PIN');
  const pinFile = get('ORTHID_PKCS11_PIN_FILE');
  const externalPath = keystoreFile === undefined ? join(dataDir, 'keystore') : resolve(cwd, keystoreFile);
  const managed = filePath(keystore);
  if (/^pkcs11:/i.test(keystore)) {
    const parsed = parsePkcs11Uri(keystore);
    if (!parsed.ok) problems.push(...parsed.problems.map((p) => `ORTHID_KEYSTORE: ${p}`));
    let pin: SecretSource = { kind: 'value', value: '' };
    if (pinValue !== undefined && pinFile !== undefined) {
      problems.push('Set ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE, not both.');
    } else if (pinValue !== undefined) {
      pin = { kind: 'value', value: pinValue };
    } else if (pinFile !== undefined) {
      pin = { kind: 'file', path: resolve(cwd, pinFile) };
    } else {
      problems.push(
        'ORTHID_KEYSTORE names a PKCS#11 token: set ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE.',
      );
    }
    const uri: Pkcs11Uri = parsed.ok ? parsed.value : { uri: '', token: '', object: '', modulePath: '' };
    return { custody: { kind: 'pkcs11', ...uri, pin }, keystorePath: externalPath };
  }
  if (pinValue !== undefined || pinFile !== undefined) {
    problems.push('ORTHID_PKCS11_PIN(_FILE) is set but ORTHID_KEYSTORE is not a pkcs11: URI.');
  }
  if (/^awskms:/i.test(keystore)) {
    const parsed = parseAwsKmsUri(keystore);
    if (!parsed.ok) problems.push(...parsed.problems.map((p) => `ORTHID_KEYSTORE: ${p}`));
    const uri: AwsKmsUri = parsed.ok ? parsed.value : { uri: '', keyId: '', scopeAliasPrefix: '' };
    return { custody: { kind: 'awskms', ...uri }, keystorePath: externalPath };
  }
  if (managed === undefined || !isAbsolute(managed)) {
    problems.push('ORTHID_KEYSTORE must be a file:///path URL, a pkcs11: URI or an awskms: URI.');
  }
  if (keystoreFile !== undefined) {
    problems.push(
      'ORTHID_KEYSTORE_FILE is only for pkcs11: and awskms: custody; with the managed keystore, ORTHID_KEYSTORE names the file.',
    );
  }
  return { custody: { kind: 'managed' }, keystorePath: managed ?? join(dataDir, 'keystore') };
}

function readBackupConfig(
  get: (name: string) => string | undefined,
  dataDir: string,
  cwd: string,
  problems: string[],
): BackupConfig {
  const location = (name: string): string | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    const url = backupLocation(value, cwd);
    if (url === undefined)
      problems.push(`${name} must be a file:///absolute/path, a path, or an s3://bucket/prefix URL.`);
    return url;
  };
  const dest = location('ORTHID_BACKUP_DEST');
  const keystoreDest = location('ORTHID_BACKUP_KEYSTORE_DEST');

  const ageRecipients = (get('ORTHID_BACKUP_AGE_RECIPIENTS') ?? '').split(/[\s,]+/).filter((r) => r !== '');
  // Only the shape is checked here (config imports nothing but core); the bech32 checksum is
  // checked before a dump writes anything. A recipient is public, so naming its position is safe.
  ageRecipients.forEach((recipient, i) => {
    if (!/^age1[02-9ac-hj-np-z]{58}$/.test(recipient)) {
      problems.push(
        `ORTHID_BACKUP_AGE_RECIPIENTS entry ${i + 1} is not an age recipient (age1… as printed by age-keygen).`,
      );
    }
  });

  const identityFile = get('ORTHID_BACKUP_AGE_IDENTITY_FILE');
  const positive = (name: string, fallback: number): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) {
      problems.push(`${name} must be a positive number.`);
      return fallback;
    }
    return value;
  };
  return {
    dest: dest ?? pathToFileURL(join(dataDir, 'backups')).href,
    destConfigured: dest !== undefined,
    keystoreDest,
    ageRecipients,
    ageIdentityFile: identityFile === undefined ? undefined : resolve(cwd, identityFile),
    maxAgeHours: positive('ORTHID_BACKUP_MAX_AGE_HOURS', 26),
    maxDrillAgeDays: positive('ORTHID_BACKUP_MAX_DRILL_AGE_DAYS', 35),
    drillDatabaseUrl: drillDatabaseUrl(get, problems),
    jobLeaseSeconds: positive('ORTHID_BACKUP_JOB_LEASE_SECONDS', 60),
    schedule: cronSchedule('ORTHID_BACKUP_SCHEDULE', get('ORTHID_BACKUP_SCHEDULE'), problems),
    drillSchedule: cronSchedule('ORTHID_DRILL_SCHEDULE', get('ORTHID_DRILL_SCHEDULE'), problems),
  };
}

/** A cron expression checked by croner, the scheduler `orthid start` runs it with, so a typo is reported here. */
function cronSchedule(name: string, pattern: string | undefined, problems: string[]): string | undefined {
  if (pattern === undefined) return undefined;
  try {
    new Cron(pattern, { timezone: 'UTC', paused: true }).stop();
  } catch {
    problems.push(`${name} "${pattern}" is not a cron expression (e.g. "0 2 * * *").`);
  }
  return pattern;
}

function drillDatabaseUrl(get: (name: string) => string | undefined, problems: string[]): string | undefined {
  const url = get('ORTHID_DRILL_DATABASE_URL');
  if (url !== undefined && !isPostgresUrl(url))
    problems.push('ORTHID_DRILL_DATABASE_URL must be a postgres:// URL.');
  return url;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/** A sender "Name <address>" or "address"; the same shape src/mail/address.ts accepts (config imports only core). */
const SENDER = /^(?:[^<>"\r\n\\]{1,100}<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/;

function readMailConfig(
  get: (name: string) => string | undefined,
  dataDir: string,
  cwd: string,
  databaseKind: DatabaseConfig['kind'],
  publicUrl: string,
  problems: string[],
): MailConfig {
  const url = get('ORTHID_SMTP_URL');
  const passwordFile = get('ORTHID_SMTP_PASSWORD_FILE');
  const caFile = get('ORTHID_SMTP_CA_FILE');
  const starttlsText = (get('ORTHID_SMTP_STARTTLS') ?? 'required').toLowerCase();
  if (starttlsText !== 'required' && starttlsText !== 'off') {
    problems.push('ORTHID_SMTP_STARTTLS must be required or off.');
  }
  let smtp: SmtpConfig | undefined;
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    // The URL is never repeated in a problem: it may carry a password by mistake.
    if (!parsed || (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') || parsed.hostname === '') {
      problems.push('ORTHID_SMTP_URL must be smtp://[user@]host[:port] or smtps://[user@]host[:port].');
    } else {
      const secure = parsed.protocol === 'smtps:';
      const port = parsed.port === '' ? (secure ? 465 : 587) : Number(parsed.port);
      const host = parsed.hostname;
      if (parsed.password !== '') {
        problems.push(
          'ORTHID_SMTP_URL must not contain a password (it would show wherever the URL does): put it in the file named by ORTHID_SMTP_PASSWORD_FILE.',
        );
      }
      const user = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
      if (user !== undefined && passwordFile === undefined) {
        problems.push(
          'ORTHID_SMTP_URL names a user: set ORTHID_SMTP_PASSWORD_FILE to the file holding its password.',
        );
      }
      if (user === undefined && passwordFile !== undefined) {
        problems.push(
          'ORTHID_SMTP_PASSWORD_FILE is set but ORTHID_SMTP_URL names no user (smtp://user@host).',
        );
      }
      const starttls = starttlsText !== 'off';
      if (!secure && !starttls && !LOOPBACK.has(host)) {
        problems.push(
          'ORTHID_SMTP_STARTTLS=off is accepted only for a relay on a loopback address; a remote relay must use STARTTLS or smtps://.',
        );
      }
      smtp = {
        host: host.replace(/^\[|\]$/g, ''),
        port,
        secure,
        starttls,
        user,
        passwordFile: passwordFile === undefined ? undefined : resolve(cwd, passwordFile),
        caFile: caFile === undefined ? undefined : resolve(cwd, caFile),
      };
    }
  } else if (
    passwordFile !== undefined ||
    caFile !== undefined ||
    get('ORTHID_SMTP_STARTTLS') !== undefined
  ) {
    problems.push(
      'ORTHID_SMTP_PASSWORD_FILE, ORTHID_SMTP_CA_FILE and ORTHID_SMTP_STARTTLS need ORTHID_SMTP_URL.',
    );
  }

  const outbox = get('ORTHID_MAIL_OUTBOX');
  if (outbox !== undefined && smtp !== undefined) {
    problems.push('Set ORTHID_SMTP_URL or ORTHID_MAIL_OUTBOX, not both: mail goes to one place.');
  }
  const outboxDir =
    smtp !== undefined
      ? undefined
      : outbox !== undefined
        ? resolve(cwd, outbox)
        : databaseKind === 'embedded'
          ? join(dataDir, 'outbox')
          : undefined;

  let host = 'localhost';
  try {
    host = new URL(publicUrl).hostname || 'localhost';
  } catch {
    // ORTHID_PUBLIC_URL is reported on its own.
  }
  const from = get('ORTHID_MAIL_FROM') ?? `OrthID <no-reply@${host}>`;
  if (!SENDER.test(from)) {
    problems.push('ORTHID_MAIL_FROM must be "Name <address>" or an address, on one line.');
  }

  const retentionText = (get('ORTHID_MAIL_RETENTION') ?? '7d').toLowerCase();
  const retention = /^(\d+)([dh])$/.exec(retentionText);
  if (!retention || Number(retention[1]) === 0) {
    problems.push('ORTHID_MAIL_RETENTION must be a duration such as "7d" or "12h".');
  }
  const retentionMs = retention
    ? Number(retention[1]) * (retention[2] === 'd' ? 86_400_000 : 3_600_000)
    : 7 * 86_400_000;
  return { smtp, outboxDir, from, retentionMs };
}
