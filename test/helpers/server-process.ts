// Starts `orthid start` as a real child process and waits until /readyz answers 200.
import { type ChildProcess, spawn } from 'node:child_process';
import { cliArgs, cliEnv } from './cli.js';
import { freePort } from './postgres.js';

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output(): string;
  /**
   * Resolves once the output matches `pattern`: a response can reach the test before the
   * server's log line for it has crossed the pipe.
   */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** How long a server may take to shut down after SIGTERM before it is killed and the test fails. */
const STOP_TIMEOUT_MS = 30_000;

export async function startServer(
  env: Record<string, string>,
  timeoutMs = 60_000,
  port?: number,
): Promise<ServerProcess> {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, cliArgs(['start']), {
    env: cliEnv({ ORTHID_PORT: String(port), ORTHID_PUBLIC_URL: url, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`orthid start exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) })).status === 200) break;
    } catch {
      // not listening yet, or not answering yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`orthid start did not become ready within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    child,
    output: () => output,
    async waitForOutput(pattern, waitMs = 10_000) {
      const until = Date.now() + waitMs;
      while (!pattern.test(output)) {
        if (Date.now() > until) {
          throw new Error(`orthid start printed nothing matching ${pattern} within ${waitMs} ms:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<'killed'>((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve('killed');
        }, STOP_TIMEOUT_MS);
      });
      const outcome = await Promise.race([exited, killed]);
      clearTimeout(timer);
      if (outcome === 'killed') {
        throw new Error(
          `orthid start on ${url} did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM and was killed:\n${output}`,
        );
      }
      return outcome;
    },
  };
}
