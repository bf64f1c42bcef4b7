// Where a backup set's files live: `<YYYY>/<MM>/<DD>/<set id>/<part>` under the destination (the
// page's `$(date +%Y/%m/%d)/` layout), the set id being the deployment id and the UTC start time.

/** Part and report file names inside a set's directory. */
export const FILES = {
  dbCustom: 'db.dump',
  dbPlain: 'db.sql',
  objects: 'objects.tar',
  /** Only ever written encrypted: a keystore export in plaintext would be the root keys themselves. */
  keystore: 'keystore.age',
  manifest: 'manifest.json',
  verifyReport: 'verify-report.json',
  /** Written by `orthid backup drill`. */
  drillReport: 'drill-report.json',
} as const;

/** The stored name of a part: `.age` appended when it is encrypted. */
export function partFileName(base: string, encrypted: boolean): string {
  return encrypted && !base.endsWith('.age') ? `${base}.age` : base;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `20260622T020000Z`: sortable, and safe in object keys and file names. */
export function compactTime(at: Date): string {
  return `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}T${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}Z`;
}

export function setIdFor(deploymentId: string, at: Date): string {
  return `${deploymentId}-${compactTime(at)}`;
}

/** The set's directory (key prefix without the trailing slash) inside a destination. */
export function setPathFor(setId: string, at: Date): string {
  return `${at.getUTCFullYear()}/${pad(at.getUTCMonth() + 1)}/${pad(at.getUTCDate())}/${setId}`;
}

const SET_ID = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SET_KEY = /^(\d{4})\/(\d{2})\/(\d{2})\/([^/]+)\/([^/]+)$/;

/** The deployment and start time a set id names, or undefined when it is not a set id. */
export function parseSetId(id: string): { deploymentId: string; time: Date } | undefined {
  const m = SET_ID.exec(id);
  if (!m) return undefined;
  const time = new Date(Date.UTC(+m[2]!, +m[3]! - 1, +m[4]!, +m[5]!, +m[6]!, +m[7]!));
  return Number.isNaN(time.getTime()) ? undefined : { deploymentId: m[1]!, time };
}

/** Splits an object key of a destination into its set and file; undefined for keys that are not. */
export function parseSetKey(key: string): { path: string; id: string; file: string; time: Date } | undefined {
  const m = SET_KEY.exec(key);
  if (!m) return undefined;
  const parsed = parseSetId(m[4]!);
  if (!parsed) return undefined;
  return { path: `${m[1]}/${m[2]}/${m[3]}/${m[4]}`, id: m[4]!, file: m[5]!, time: parsed.time };
}
