// CPU time of processes from /proc (Linux): the server under load and the PostgreSQL cluster
// behind it, so a row can report CPU milliseconds per request, a figure far less disturbed by
// other work on a shared machine than requests per second.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

function stat(pid: number, tid?: number): string[] | undefined {
  try {
    const text = readFileSync(
      tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`,
      'utf8',
    );
    // The command name (field 2) may contain spaces; fields after its closing parenthesis.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14). */
function ownSeconds(f: string[]): number {
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

/** User + system CPU seconds of `pid`, plus its reaped children's when `withChildren`. */
export function cpuSeconds(pid: number, withChildren = false): number {
  const f = stat(pid);
  if (!f) return 0;
  return ownSeconds(f) + (withChildren ? (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND : 0);
}

/** User + system CPU seconds of the main thread of `pid` alone (Node: the event loop). */
export function mainThreadCpuSeconds(pid: number): number {
  const f = stat(pid, pid);
  return f ? ownSeconds(f) : 0;
}

/** The postmaster listening on `port` (its command line names `-p PORT`). */
export function postmasterPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf('-p');
      if (at >= 0 && argv[at + 1] === String(port) && argv[0]!.endsWith('postgres')) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** CPU seconds of a PostgreSQL cluster: the postmaster, its live backends and reaped ones. */
export function clusterCpuSeconds(postmaster: number): number {
  let total = cpuSeconds(postmaster, true);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = stat(Number(entry));
    if (f && Number(f[1]) === postmaster) total += cpuSeconds(Number(entry), true);
  }
  return total;
}
