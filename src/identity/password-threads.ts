// Password hashing threads shared by the whole process, one per core, each at a lower CPU
// priority than the event loop. argon2id is meant to take the CPU for tens of milliseconds per
// attempt; at the priority of everything else, a burst of sign-ins (or a credential-stuffing
// run) would take the cores from token issuance, PostgreSQL and the event loop itself. At a
// lower priority, hashing gets whatever CPU is left and queues when there is none.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Options } from '@node-rs/argon2';
import { OrthIdError } from '../core/errors.js';

/** Nice value of hashing threads: below the event loop's 0, so it always comes first. */
const HASHING_NICE = 10;

type PasswordJobInput =
  | { op: 'hash'; password: string; options: Options }
  | { op: 'verify'; stored: string; password: string };
type PasswordJob = PasswordJobInput & { id: number };
type PasswordJobResult =
  | { id: number; ok: true; value: string | boolean }
  | { id: number; ok: false; message: string };

// A thread's body, evaluated as plain JavaScript so it is the same in the build and when running
// from TypeScript sources (a worker does not inherit the loader that reads .ts). It lowers its
// own priority (Linux keeps a nice value per thread), then hashes one job at a time.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { hashSync, verifySync } = require(workerData.argon2);
try {
  require('node:os').setPriority(0, workerData.nice);
} catch {
  // Not permitted here: hash at the process's own priority.
}
parentPort.on('message', (job) => {
  try {
    const value = job.op === 'hash' ? hashSync(job.password, job.options) : verifySync(job.stored, job.password);
    parentPort.postMessage({ id: job.id, ok: true, value });
  } catch (error) {
    parentPort.postMessage({ id: job.id, ok: false, message: String(error?.message ?? error) });
  }
});
`;
const ARGON2 = createRequire(import.meta.url).resolve('@node-rs/argon2');

type Pending = { job: PasswordJob; resolve: (value: string | boolean) => void; reject: (e: Error) => void };

interface Thread {
  worker: Worker;
  current?: Pending;
}

class PasswordThreads {
  readonly #size = availableParallelism();
  readonly #threads: Thread[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 0;

  run(job: PasswordJobInput): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job: { ...job, id: this.#nextId++ }, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let thread = this.#threads.find((t) => !t.current);
      if (!thread) {
        // Threads start on first use, so a process that never hashes never pays for them.
        if (this.#threads.length >= this.#size) return;
        thread = this.#start();
      }
      const pending = this.#queue.shift()!;
      thread.current = pending;
      // A busy thread keeps the process alive until its answer arrives; an idle one does not.
      thread.worker.ref();
      thread.worker.postMessage(pending.job);
    }
  }

  #start(): Thread {
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { argon2: ARGON2, nice: HASHING_NICE },
    });
    const thread: Thread = { worker };
    worker.unref();
    worker.on('message', (result: PasswordJobResult) => {
      const pending = thread.current!;
      thread.current = undefined;
      worker.unref();
      if (result.ok) pending.resolve(result.value);
      else pending.reject(new Error(result.message));
      this.#dispatch();
    });
    const lost = (cause: unknown) => {
      const index = this.#threads.indexOf(thread);
      if (index < 0) return;
      this.#threads.splice(index, 1);
      thread.current?.reject(
        new OrthIdError(
          'password.hashing_unavailable',
          'A password hashing thread stopped unexpectedly; try again (a new thread starts).',
          { cause },
        ),
      );
      this.#dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
    this.#threads.push(thread);
    return thread;
  }
}

let shared: PasswordThreads | undefined;

function threads(): PasswordThreads {
  shared ??= new PasswordThreads();
  return shared;
}

/** argon2 `hash` on a hashing thread. */
export async function hashOnThread(password: string, options: Options): Promise<string> {
  return (await threads().run({ op: 'hash', password, options })) as string;
}

/** argon2 `verify` on a hashing thread; throws for a stored value that is not a readable hash. */
export async function verifyOnThread(stored: string, password: string): Promise<boolean> {
  return (await threads().run({ op: 'verify', stored, password })) as boolean;
}
