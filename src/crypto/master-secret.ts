// Resolves the master secret that seals the managed keystore from the configured source. On the
// embedded default a random one is generated once into the data directory (mode 0600).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MasterKeySource } from '../config/config.js';
import { OrthIdError } from '../core/errors.js';

export interface MasterSecret {
  value: string;
  /** True when this call generated it: the caller warns the operator to back it up. */
  generated: boolean;
}

async function readSecretFile(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function resolveMasterSecret(source: MasterKeySource): Promise<MasterSecret> {
  switch (source.kind) {
    case 'value':
      return { value: source.value, generated: false };
    case 'file': {
      const value = await readSecretFile(source.path);
      if (!value || value.length < 32) {
        throw new OrthIdError(
          'keystore.master_key_missing',
          `ORTHID_MASTER_KEY_FILE (${source.path}) is missing or shorter than 32 characters.`,
        );
      }
      return { value, generated: false };
    }
    case 'generated': {
      const existing = await readSecretFile(source.path);
      if (existing) return { value: existing, generated: false };
      const value = randomBytes(48).toString('base64');
      await mkdir(dirname(source.path), { recursive: true, mode: 0o700 });
      await writeFile(source.path, `${value}\n`, { mode: 0o600, flag: 'wx' });
      return { value, generated: true };
    }
  }
}
