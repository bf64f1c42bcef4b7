// Runs the real `orthid` command as a child process, from source, with an explicit environment.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { builtCliEntry } from './cli-build.js';

export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command line of `orthid …`: the runner's compiled copy of src/ when there is one (cli-build.ts). */
export function cliArgs(args: readonly string[]): string[] {
  const built = builtCliEntry();
  return built ? [built, ...args] : ['--import', 'tsx', CLI_ENTRY, ...args];
}

/** Environment for a child: PATH and HOME only, plus what the test names. */
export function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ORTHID_LOG_LEVEL: 'warn', ...env };
}

/** How long one CLI command may run before the test kills it and fails. */
export const CLI_TIMEOUT_MS = 120_000;

/** The command's name for messages: its subcommands, never the values that follow them. */
export function commandName(args: readonly string[]): string {
  const words: string[] = [];
  for (const arg of args) {
    if (arg.startsWith('-') || words.length === 3) break;
    words.push(arg);
  }
  return ['orthid', ...words].join(' ');
}

export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  input?: string,
  timeoutMs = CLI_TIMEOUT_MS,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(args), { env: cliEnv(env) });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${commandName(args)} did not finish within ${timeoutMs / 1000} s and was killed. Its stderr so far:\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
