// The bundled list of common and breached passwords (zxcvbn-ts's "passwords-common", MIT, about
// 49,000 entries), read lazily once into a Set. Nothing else here; the policy decides what to do.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

let loading: Promise<ReadonlySet<string>> | undefined;

/** How entries and candidates are compared: NFKC, then case-insensitively. */
export function commonPasswordKey(password: string): string {
  return password.normalize('NFKC').toLowerCase();
}

async function load(): Promise<ReadonlySet<string>> {
  // The package also ships the list compressed for browsers; the plain JSON needs no decoder.
  const path = require.resolve('@zxcvbn-ts/language-common/src/passwords.json');
  const entries = JSON.parse(await readFile(path, 'utf8')) as unknown;
  if (!Array.isArray(entries) || entries.length < 1000) {
    throw new Error(`The common-password list at ${path} is not a list of passwords.`);
  }
  return new Set(entries.filter((e): e is string => typeof e === 'string').map(commonPasswordKey));
}

/** The list, loaded on first use and shared by every tenant (it is immutable). */
export function commonPasswords(): Promise<ReadonlySet<string>> {
  loading ??= load().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}
