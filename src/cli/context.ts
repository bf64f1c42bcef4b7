// What every CLI command shares: configuration read once from the environment, output as text
// or JSON, typed errors turned into a message and a documented exit code, and where an operation runs.
import { join } from 'node:path';
import { type Config, loadConfig } from '../config/config.js';
import { exitCodes, isOrthIdError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { type OpenOptions, openOrthId } from '../main.js';
import { checkOutput } from '../ops/operation.js';
import {
  type OperationInput,
  type OperationName,
  type OperationOutput,
  operationNamed,
  runOperation,
} from '../ops/operations.js';
import type { OrthId } from '../ops/orthid.js';
import { explainError } from '../storage/db/database-errors.js';
import { callControlSocket } from './control-client.js';

let config: Config | undefined;

/** Configuration for this invocation; the CLI entry is the one place that hands process.env over. */
export function cliConfig(): Config {
  config ??= loadConfig(process.env);
  return config;
}

export function controlSocketPath(c: Config): string {
  return join(c.dataDir, 'control.sock');
}

/** Opens OrthID for one command (logging to stderr, so stdout stays machine-readable) and closes it after. */
export async function withOrthId<T>(fn: (app: OrthId) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const c = cliConfig();
  const app = await openOrthId(c, {
    log: createLogger(c.logLevel === 'info' ? 'warn' : c.logLevel, process.stderr),
    ...options,
  });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/**
 * Runs an operation in this process, or, when a running embedded server holds the database,
 * asks that server to run it. Input and output are the operation's own types.
 */
export function operation<N extends OperationName>(
  name: N,
  input: OperationInput<N>,
): Promise<OperationOutput<N>> {
  return hereOrOnServer(name, input, () => withOrthId((app) => runOperation(app, name, input)));
}

/**
 * The CLI's one fallback between this process and the control socket: runs `here`, and when it
 * finds the embedded database held by a running server (`db.locked`), sends the same operation and
 * input to that server instead. `onServer` is told before the call (e.g. to say where progress goes).
 */
export async function hereOrOnServer<N extends OperationName>(
  name: N,
  input: OperationInput<N>,
  here: () => Promise<OperationOutput<N>>,
  onServer?: () => void,
): Promise<OperationOutput<N>> {
  try {
    return await here();
  } catch (error) {
    const c = cliConfig();
    if (c.database.kind === 'embedded' && isOrthIdError(error, 'db.locked')) {
      onServer?.();
      const answer = await callControlSocket(controlSocketPath(c), name, input);
      return checkOutput(operationNamed(name), answer, 'received') as OperationOutput<N>;
    }
    throw error;
  }
}

export function print(value: unknown, json: boolean, human: (value: never) => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human(value as never)}\n`);
}

/**
 * Where a CLI user finds the cause of an unexpected error: failures a running server reports
 * name its log, but a command that ran alone has no server whose log could hold it.
 */
export const CAUSE_HINT = 'run the command again with ORTHID_LOG_LEVEL=debug to print its cause';

/** Wraps a command action: typed errors become `error[code]: message` and the kind's exit code. */
// biome-ignore lint/suspicious/noConfusingVoidType: command actions either return an exit code or nothing.
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | undefined | void>) {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : exitCodes.ok;
    } catch (error) {
      const e = explainError(error, CAUSE_HINT);
      process.stderr.write(`error[${e.code}]: ${e.message}\n`);
      if (e.kind === 'internal' && e.cause && /^(debug|trace)$/.test(process.env.ORTHID_LOG_LEVEL ?? '')) {
        process.stderr.write(`${String((e.cause as Error).stack ?? e.cause)}\n`);
      }
      process.exitCode = e.exitCode;
    }
  };
}

/** Streams to a file through a temporary name (mode 0600), so a failure leaves no partial file. */
export { writeFileAtomically } from '../core/atomic-file.js';
