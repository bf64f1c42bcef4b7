// Loaded into every test process by scripts/test.ts (--import). A child process run
// synchronously (spawnSync, execFileSync, execSync) that sets no timeout of its own gets
// ORTHID_TEST_CHILD_TIMEOUT_MS (default 3 min): past it, it is killed and the call throws an
// error naming the command. A synchronous child blocks the event loop, so nothing else in the
// test process (a test's own timeout included) could stop it. Asynchronous children are bounded
// by their test's or file's timeout and killed with the runner's process group when the run ends.
import childProcess, {
  type ExecFileSyncOptions,
  type ExecSyncOptions,
  type SpawnSyncOptions,
} from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const configured = Number(process.env.ORTHID_TEST_CHILD_TIMEOUT_MS);
export const CHILD_TIMEOUT_MS = Number.isInteger(configured) && configured > 0 ? configured : 180_000;

type Options = SpawnSyncOptions | ExecFileSyncOptions | ExecSyncOptions | undefined;

/** The command as a reader can recognise it, with any password in a URL masked. */
function describe(command: string, args: readonly unknown[]): string {
  const text = [command, ...args.map(String)].join(' ').replace(/(\/\/[^:/@\s]+):[^@\s]+@/g, '$1:***@');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function timedOut(command: string, args: readonly unknown[]): Error {
  return new Error(
    `Child process \`${describe(command, args)}\` was still running after ${CHILD_TIMEOUT_MS / 1000} s and was killed (the test suite's limit for a synchronous child; give the call a timeout of its own if it needs longer).`,
  );
}

/** Splits `(command, args?, options?)` the way child_process does. */
function split(rest: unknown[]): { args: unknown[]; options: Options } {
  if (Array.isArray(rest[0])) return { args: rest[0], options: rest[1] as Options };
  return { args: [], options: rest[0] as Options };
}

const withDeadline = (options: Options): { options: Options; ours: boolean } =>
  options?.timeout
    ? { options, ours: false }
    : { options: { ...options, timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL' }, ours: true };

const isTimeout = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';

const original = {
  spawnSync: childProcess.spawnSync,
  execFileSync: childProcess.execFileSync,
  execSync: childProcess.execSync,
};

const spawnSync = (command: string, ...rest: unknown[]) => {
  const { args, options } = split(rest);
  const deadline = withDeadline(options);
  const result = original.spawnSync(command, args as string[], deadline.options as SpawnSyncOptions);
  if (deadline.ours && isTimeout(result.error)) throw timedOut(command, args);
  return result;
};

const execFileSync = (file: string, ...rest: unknown[]) => {
  const { args, options } = split(rest);
  const deadline = withDeadline(options);
  try {
    return original.execFileSync(file, args as string[], deadline.options as ExecFileSyncOptions);
  } catch (error) {
    if (deadline.ours && isTimeout(error)) throw timedOut(file, args);
    throw error;
  }
};

const execSync = (command: string, options?: ExecSyncOptions) => {
  const deadline = withDeadline(options);
  try {
    return original.execSync(command, deadline.options as ExecSyncOptions);
  } catch (error) {
    if (deadline.ours && isTimeout(error)) throw timedOut(command, []);
    throw error;
  }
};

Object.assign(childProcess, { spawnSync, execFileSync, execSync });
// `import { spawnSync } from 'node:child_process'` reads these from now on.
syncBuiltinESMExports();
