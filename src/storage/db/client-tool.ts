// The one runner for PostgreSQL's client tools (pg_dump, pg_restore, psql) as child processes:
// how each is probed for its version, which error says it is missing, how much of its stderr is
// kept for the message, and how a dump is fed to its stdin. Dumps, restores and `backup verify`
// all start their tools here, so they fail alike.
import { spawn, spawnSync } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { OrthIdError } from '../../core/errors.js';

export type ClientTool = 'pg_dump' | 'pg_restore' | 'psql';

/** What the end of a tool's stderr is cut to: enough for the last error and its DETAIL lines. */
const STDERR_TAIL = 4096;

/** `backup.pg_dump_missing` for the dump tool, `backup.tool_missing` for the restore tools. */
function missing(tool: ClientTool, binary: string, cause?: Error): OrthIdError {
  if (tool === 'pg_dump') {
    return new OrthIdError(
      'backup.pg_dump_missing',
      `${binary} is not installed or does not run${cause ? ` (${cause.message})` : ''}. Install the PostgreSQL client of the server's major version or newer (Debian: apt-get install -y postgresql-client-NN from apt.postgresql.org).`,
      cause ? { cause } : {},
    );
  }
  return new OrthIdError(
    'backup.tool_missing',
    `${binary} is not installed or does not run${cause ? ` (${cause.message})` : ''}, and the restore needs it. Install the PostgreSQL client tools (Debian: apt-get install -y postgresql-client). Nothing was restored.`,
    cause ? { cause } : {},
  );
}

/**
 * `<tool> --version`: its text (e.g. "pg_dump (PostgreSQL) 15.18") and major version (9.6 before
 * 10); throws the tool's "missing" error when it does not run.
 */
export function clientToolVersion(tool: ClientTool, binary: string = tool): { text: string; major: number } {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  const text = (probe.stdout ?? '').trim();
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text);
  if (probe.error || probe.status !== 0 || !match) throw missing(tool, binary);
  const major = Number(match[1]);
  return { text, major: major >= 10 ? major : Number(`${match[1]}.${match[2] ?? 0}`) };
}

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ToolProcess {
  readonly binary: string;
  /** The tool's stdin; when started with `stdin: true`. */
  readonly stdin: Writable | null;
  /** The tool's stdout; when started with `stdout: true`. */
  readonly stdout: Readable | null;
  /** The end of what the tool wrote to stderr, trimmed. */
  stderr(): string;
  /** Settles when the tool has exited; rejects with the tool's "missing" error when it could not start. */
  readonly exit: Promise<ToolExit>;
  running(): boolean;
  /** Stops the tool when it still runs. */
  kill(signal?: NodeJS.Signals): void;
}

export interface StartOptions {
  /** The binary to run instead of the tool's name on PATH. */
  binary?: string;
  /** libpq's environment (PGPASSWORD and friends), see libpq.ts. */
  env?: NodeJS.ProcessEnv;
  stdin?: boolean;
  stdout?: boolean;
}

export function startClientTool(tool: ClientTool, args: string[], options: StartOptions = {}): ToolProcess {
  const binary = options.binary ?? tool;
  const child = spawn(binary, args, {
    ...(options.env ? { env: options.env } : {}),
    stdio: [options.stdin ? 'pipe' : 'ignore', options.stdout ? 'pipe' : 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  // A tool that exits before reading all of its input closes its stdin: EPIPE on the next write.
  // Its exit code says why, so the write error itself is not what the caller should see.
  child.stdin?.on('error', () => {});
  const exit = new Promise<ToolExit>((resolve, reject) => {
    child.once('error', (cause) => reject(missing(tool, binary, cause)));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // Awaited by the caller, possibly only after feeding the input.
  exit.catch(() => {});
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    binary,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: () => stderr.trim(),
    exit,
    running,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (running()) child.kill(signal);
    },
  };
}

/** Resolves once `stream` can take more, or has closed (the reader went away). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/**
 * Writes `input` to the tool's stdin with back-pressure, then closes it. With `readToEnd`, the
 * input is read to its end even after the tool stopped reading (a caller decrypting it still
 * authenticates every byte); otherwise feeding stops when the tool has exited. An input that
 * fails kills the tool and the error is thrown.
 */
export async function feedClientTool(
  tool: ToolProcess,
  input: AsyncIterable<Buffer>,
  options: { readToEnd?: boolean } = {},
): Promise<void> {
  const stdin = tool.stdin;
  if (!stdin) throw new OrthIdError('internal.unexpected', `${tool.binary} was started without stdin.`);
  try {
    for await (const chunk of input) {
      if (stdin.writable && !stdin.destroyed) {
        if (!stdin.write(chunk)) await drained(stdin);
      } else if (!options.readToEnd) {
        break;
      }
    }
  } catch (error) {
    tool.kill('SIGKILL');
    throw error;
  }
  stdin.end();
}

/**
 * Runs a tool over `input` to its exit; `backup.restore_failed` naming `what` and the end of its
 * stderr when it exits non-zero.
 */
export async function runClientToolOn(
  tool: ClientTool,
  args: string[],
  input: Readable,
  options: StartOptions & { what: string },
): Promise<void> {
  // The input's failure is also seen by the feeding loop below; this keeps a failure that comes
  // after the loop stopped (the tool exited first) from going unheard.
  input.on('error', () => {});
  const run = startClientTool(tool, args, { ...options, stdin: true });
  // A tool that cannot start fails the restore with its own error, not the input's.
  const fed = feedClientTool(run, input);
  fed.catch(() => {}); // a tool that exits first says why; the input's later failure is moot
  // The input failing first (a damaged or undecryptable part) is the error to report.
  await Promise.race([fed, run.exit]);
  const { code, signal } = await run.exit;
  if (code === 0) return fed;
  throw new OrthIdError(
    'backup.restore_failed',
    `${options.what} failed (${signal ?? `exit ${code}`}): ${run.stderr().slice(-2000) || 'no message'}`,
  );
}
