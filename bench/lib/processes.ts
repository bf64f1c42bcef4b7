// Child processes for benches: the load generator (bench/lib/load.ts in its own process), a
// spawner that times commands (bench/lib/spawner.ts), and servers polled until ready and
// stopped with SIGTERM.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, startCluster } from '../../test/helpers/postgres.js';
import type { LoadResult, LoadSpec } from './load.js';

const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url));
const SPAWNER = fileURLToPath(new URL('./spawner.ts', import.meta.url));

/**
 * Extra node flags for a server under measurement, from ORTHID_BENCH_NODE_ARGS, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
export function serverNodeArgs(): string[] {
  return process.env.ORTHID_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}

/** Everything the child writes, for error messages. */
export function collect(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  return () => output;
}

export async function waitFor(url: string, child: ChildProcess, output: () => string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

/**
 * Times commands run from a helper process (bench/lib/spawner.ts), for benches that measure
 * in-process work between runs of a command. After a fork every page the forking process writes
 * is copy-on-write until it faults once: a 256 MiB stream right after a spawn paid 6 000–19 000
 * faults and up to half its speed here, which a dump (forking pg_dump once, before streaming)
 * does not pay per run. Start it before allocating much; close it when done.
 */
export function startSpawner(): { time(command: string, args: string[]): Promise<number>; close(): void } {
  const helper = fork(SPAWNER, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(ms: number): void; reject(error: Error): void }>();
  let next = 0;
  helper.on('message', ({ id, ms, error }: { id: number; ms?: number; error?: string }) => {
    const waiter = pending.get(id)!;
    pending.delete(id);
    if (error === undefined) waiter.resolve(ms!);
    else waiter.reject(new Error(error));
  });
  helper.once('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`the spawner exited with ${code}`));
    pending.clear();
  });
  return {
    time(command, args) {
      return new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        helper.send({ id, command, args });
      });
    },
    close: () => helper.kill(),
  };
}

/** Runs one load spec in its own process. */
export function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LOAD, '-'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin!.end(JSON.stringify(spec));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult);
    });
  });
}

/**
 * A throwaway PostgreSQL cluster with an empty `bench` database, and the environment of an
 * OrthID over it on a free port. The caller stops the cluster and removes `scratch`.
 */
export async function benchDeployment(name: string, masterKey: string) {
  const scratch = mkdtempSync(join(tmpdir(), `orthid-bench-${name}-`));
  const cluster = await startCluster();
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const dbUrl = new URL(cluster.url);
  dbUrl.pathname = '/bench';
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const env = {
    ORTHID_DATA_DIR: join(scratch, 'data'),
    ORTHID_DATABASE_URL: dbUrl.toString(),
    ORTHID_MASTER_KEY: masterKey,
    ORTHID_PUBLIC_URL: publicUrl,
    ORTHID_PORT: String(port),
    ORTHID_LOG_LEVEL: 'warn',
  };
  return { scratch, cluster, dbUrl, publicUrl, env };
}
