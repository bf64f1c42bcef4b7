// The retention policy of backup sets, as a pure function over dates: nightly sets kept for
// `keepDaily` days, the newest set of each UTC week (Monday-based) for `keepWeekly` weeks; the
// newest complete, newest verified and newest drilled sets are always kept; sets that never got
// their manifest are removed once a day old (younger ones may still be being written); damaged
// sets age out like nightly ones.

export interface RetentionSet {
  id: string;
  time: Date;
  status: 'complete' | 'incomplete' | 'damaged';
  /** A verify report beside the set says it passed. */
  verified?: boolean;
  /** A drill report beside the set says the restore drill passed. */
  drillPassed?: boolean;
}

export interface RetentionPolicy {
  keepDaily: number;
  keepWeekly: number;
  /** Incomplete sets younger than this may still be being written (default 24). */
  incompleteGraceHours?: number;
}

export type KeepReason =
  | 'daily'
  | 'weekly'
  | 'newest-complete'
  | 'newest-verified'
  | 'newest-drilled'
  | 'in-progress'
  | 'future';
export type DeleteReason = 'expired' | 'incomplete' | 'damaged';

export interface RetentionDecision {
  id: string;
  keep: boolean;
  /** Why it is kept (every reason that applies), or why it goes (one). */
  reasons: (KeepReason | DeleteReason)[];
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepDaily: 30, keepWeekly: 52, incompleteGraceHours: 24 };

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Start (Monday 00:00 UTC) of the week holding `t`. */
export function weekStart(t: Date): number {
  const day = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const weekday = (new Date(day).getUTCDay() + 6) % 7;
  return day - weekday * DAY;
}

const newest = (sets: RetentionSet[]): RetentionSet | undefined =>
  sets.reduce<RetentionSet | undefined>(
    (best, s) => (best === undefined || s.time > best.time ? s : best),
    undefined,
  );

/** Decides, for every set, whether it is kept, and why. Order of the result follows the input. */
export function applyRetention(
  sets: readonly RetentionSet[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision[] {
  const grace = (policy.incompleteGraceHours ?? 24) * HOUR;
  const complete = sets.filter((s) => s.status === 'complete');
  const pinned = new Map<string, KeepReason[]>();
  const pin = (set: RetentionSet | undefined, reason: KeepReason) => {
    if (set) pinned.set(set.id, [...(pinned.get(set.id) ?? []), reason]);
  };
  pin(newest(complete), 'newest-complete');
  pin(newest(complete.filter((s) => s.verified)), 'newest-verified');
  pin(newest(complete.filter((s) => s.drillPassed)), 'newest-drilled');

  const thisWeek = weekStart(now);
  const weekly = new Map<number, RetentionSet>();
  for (const set of complete) {
    const week = weekStart(set.time);
    if (thisWeek - week >= policy.keepWeekly * WEEK) continue;
    const current = weekly.get(week);
    if (current === undefined || set.time > current.time) weekly.set(week, set);
  }
  for (const set of weekly.values()) pin(set, 'weekly');

  return sets.map((set) => {
    const age = now.getTime() - set.time.getTime();
    const reasons: KeepReason[] = [...(pinned.get(set.id) ?? [])];
    if (age < 0) reasons.push('future');
    if (set.status === 'incomplete') {
      if (age < grace) reasons.push('in-progress');
      return reasons.length > 0
        ? { id: set.id, keep: true, reasons }
        : { id: set.id, keep: false, reasons: ['incomplete'] };
    }
    // A damaged set (a part gone missing) may still hold a usable dump: it ages out like a
    // nightly set, but never counts as the newest or the weekly copy.
    if (set.status === 'damaged') {
      if (age >= 0 && age < policy.keepDaily * DAY) reasons.push('daily');
      return reasons.length > 0
        ? { id: set.id, keep: true, reasons }
        : { id: set.id, keep: false, reasons: ['damaged'] };
    }
    if (age >= 0 && age < policy.keepDaily * DAY) reasons.unshift('daily');
    return reasons.length > 0
      ? { id: set.id, keep: true, reasons }
      : { id: set.id, keep: false, reasons: ['expired'] };
  });
}
