// Shared by every bench: min / median / max over repeated runs, and the one table row per
// measurement that `npm run bench` prints (name, baseline, OrthID, ratio, target, result).
import { availableParallelism, loadavg } from 'node:os';

export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** Median of the sorted values (the upper one of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: median(sorted), max: sorted.at(-1)! };
}

function fmt(value: number, digits: number): string {
  return value.toFixed(digits);
}

/** "min / median / max unit", e.g. "41 020 / 42 310 / 43 002 ops/s". */
export function formatSpread(values: readonly number[], unit: string, digits = 0): string {
  const s = spread(values);
  return `${fmt(s.min, digits)} / ${fmt(s.median, digits)} / ${fmt(s.max, digits)} ${unit}`;
}

export interface Row {
  name: string;
  /** Per-run figures of the baseline (empty when a row has no baseline). */
  baseline: readonly number[];
  /** Per-run figures of OrthID. */
  orthid: readonly number[];
  unit: string;
  digits?: number;
  /**
   * How the row passes. `ratio-at-least`: median(orthid) / median(baseline) ≥ value (higher is
   * better, e.g. ops/s). `ratio-at-most`: the same ratio ≤ value (lower is better, e.g. seconds).
   * `absolute-below`: median(orthid) < value, the baseline shown for scale only.
   */
  target: { kind: 'ratio-at-least' | 'ratio-at-most' | 'absolute-below'; value: number };
  /** Extra conditions (e.g. p99) already decided by the bench, shown after the result. */
  notes?: string;
  extraPass?: boolean;
}

export interface Verdict {
  ratio: number;
  pass: boolean;
}

export function judge(row: Row): Verdict {
  const ours = median(row.orthid);
  const base = row.baseline.length > 0 ? median(row.baseline) : Number.NaN;
  const ratio = ours / base;
  let pass: boolean;
  switch (row.target.kind) {
    case 'ratio-at-least':
      pass = ratio >= row.target.value;
      break;
    case 'ratio-at-most':
      pass = ratio <= row.target.value;
      break;
    case 'absolute-below':
      pass = ours < row.target.value;
      break;
  }
  return { ratio, pass: pass && row.extraPass !== false };
}

function targetText(row: Row): string {
  switch (row.target.kind) {
    case 'ratio-at-least':
      return `ratio ≥ ${row.target.value}`;
    case 'ratio-at-most':
      return `ratio ≤ ${row.target.value}`;
    case 'absolute-below':
      return `< ${row.target.value} ${row.unit}`;
  }
}

/** Prints the table header once per bench process. */
export function printHeader(title: string, runs: number): void {
  console.log(`\n${title} — ${runs} runs each, figures as min / median / max; ratio of medians`);
  console.log(
    `load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} on ${availableParallelism()} CPUs`,
  );
}

/** Prints one row as `name | baseline | OrthID | ratio | target | PASS/FAIL [notes]`. */
export function printRow(row: Row): Verdict {
  const verdict = judge(row);
  const digits = row.digits ?? 0;
  const cells = [
    row.name,
    row.baseline.length > 0 ? formatSpread(row.baseline, row.unit, digits) : '—',
    formatSpread(row.orthid, row.unit, digits),
    Number.isFinite(verdict.ratio) ? verdict.ratio.toFixed(2) : '—',
    targetText(row),
    verdict.pass ? 'PASS' : 'FAIL',
  ];
  console.log(`| ${cells.join(' | ')} |${row.notes ? ` ${row.notes}` : ''}`);
  return verdict;
}

/** Runs `fn` `runs` times after `warmup` untimed calls and collects its results. */
export async function repeat<T>(runs: number, fn: (run: number) => Promise<T>, warmup = 0): Promise<T[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: T[] = [];
  for (let run = 0; run < runs; run++) out.push(await fn(run));
  return out;
}

/** Exit code of a bench that ran to the end but missed a target (errors exit 1 or 2). */
export const MISSED_TARGET_EXIT = 3;

/** Sets exit code 3 when any row failed, so `npm run bench` can tell a miss from an error. */
export function exitOnVerdicts(verdicts: readonly Verdict[]): void {
  if (verdicts.some((v) => !v.pass)) process.exitCode = MISSED_TARGET_EXIT;
}
