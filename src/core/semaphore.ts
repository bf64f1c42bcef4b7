// A counting semaphore with a bounded waiting line: at most `limit` holders at once, at most
// `maxWaiting` callers queued behind them. Built per use by a factory, never shared module-wide.

export interface SemaphoreState {
  /** Holders right now. */
  active: number;
  /** Callers queued for a slot right now. */
  waiting: number;
  /** The most holders there have ever been at once. */
  peakActive: number;
}

export interface Semaphore {
  /**
   * Runs `fn` once a slot is free. Returns undefined without running it when `maxWaiting`
   * callers are already queued: the caller decides how to refuse.
   */
  run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined>;
  state(): SemaphoreState;
}

export function createSemaphore(limit: number, maxWaiting: number): Semaphore {
  if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(maxWaiting) || maxWaiting < 0) {
    throw new RangeError(
      'A semaphore needs a whole limit of at least 1 and a whole queue bound of at least 0.',
    );
  }
  let active = 0;
  let peakActive = 0;
  const queue: (() => void)[] = [];

  const release = () => {
    const next = queue.shift();
    // The slot passes straight to the next in line, so `active` never dips below a waiting caller.
    if (next) next();
    else active--;
  };

  return {
    async run(fn) {
      if (active >= limit) {
        if (queue.length >= maxWaiting) return undefined;
        await new Promise<void>((resolve) => queue.push(resolve));
      } else {
        active++;
      }
      peakActive = Math.max(peakActive, active);
      try {
        return { value: await fn() };
      } finally {
        release();
      }
    },
    state: () => ({ active, waiting: queue.length, peakActive }),
  };
}
