// The password hashing threads, one per core, each at a lower CPU priority than the event loop.
// argon2id is meant to take the CPU for tens of milliseconds per attempt; at the priority of
// everything else, a burst of sign-ins (or a credential-stuffing run) would take the cores from
// token issuance, PostgreSQL and the event loop itself. At a lower priority, hashing gets
// whatever CPU is left and queues when there is none. The wiring builds one pool per deployment
// and closes it with the deployment.
import { availableParallelism } from 'node:os';
import type { Options } from '@node-rs/argon2';
import { Piscina } from 'piscina';
import { OrthIdError } from '../core/errors.js';

/** Nice value added to hashing threads: below the event loop's 0, so it always comes first. */
const HASHING_NICE = 10;

const WORKER = new URL('./password-worker.cjs', import.meta.url).href;

type PasswordJob =
  | { op: 'hash'; password: string; options: Options }
  | { op: 'verify'; stored: string; password: string };
type PasswordJobResult = { ok: true; value: string | boolean } | { ok: false; message: string };

export interface PasswordPool {
  /** argon2 `hash` on a hashing thread. */
  hash(password: string, options: Options): Promise<string>;
  /** argon2 `verify` on a hashing thread; throws for a stored value that is not a readable hash. */
  verify(stored: string, password: string): Promise<boolean>;
  /** Stops the threads; hashing after this fails. */
  close(): Promise<void>;
}

export interface PasswordPoolOptions {
  /** Most threads at once (default: one per core). */
  threads?: number;
}

export function createPasswordPool(options: PasswordPoolOptions = {}): PasswordPool {
  const pool = new Piscina<PasswordJob, PasswordJobResult>({
    filename: WORKER,
    // Threads start on first use, so a process that never hashes never pays for them, and stay:
    // starting one costs more than a hash. Idle threads do not keep the process alive.
    minThreads: 0,
    maxThreads: options.threads ?? availableParallelism(),
    idleTimeout: Number.POSITIVE_INFINITY,
    // Applied by each thread to itself (Linux keeps a nice value per thread, through the optional
    // @napi-rs/nice binding); where that is not possible, hashing runs at the process's priority.
    niceIncrement: HASHING_NICE,
  });
  const run = async (job: PasswordJob): Promise<string | boolean> => {
    let result: PasswordJobResult;
    try {
      result = await pool.run(job);
    } catch (cause) {
      throw new OrthIdError(
        'password.hashing_unavailable',
        'A password hashing thread stopped unexpectedly; try again (a new thread starts).',
        { cause },
      );
    }
    if (!result.ok) throw new Error(result.message);
    return result.value;
  };
  return {
    hash: async (password, argon2) => (await run({ op: 'hash', password, options: argon2 })) as string,
    verify: async (stored, password) => (await run({ op: 'verify', stored, password })) as boolean,
    close: () => pool.destroy(),
  };
}
