// Reads the text of an age identity file (the format `age-keygen` writes): one identity per
// line, `#` comments and blank lines ignored. Validates every line; never echoes one.
import { readFile } from 'node:fs/promises';
import { OrthIdError } from '../../core/errors.js';
import { parseIdentity } from './identity.js';

/**
 * The identities in an identity file, each validated.
 *
 * @example
 * const identities = parseIdentityFile(readFileSync('backup-key.txt', 'utf8'));
 */
export function parseIdentityFile(text: string, fileName = 'the identity file'): string[] {
  const identities: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    parseIdentity(line, `Line ${index + 1} of ${fileName}`);
    identities.push(line);
  });
  if (identities.length === 0) {
    throw new OrthIdError(
      'age.identity_invalid',
      `No identities found in ${fileName}: it holds only comments or blank lines. Point to the file \`age-keygen -o FILE\` wrote.`,
    );
  }
  return identities;
}

/** Reads and parses the identity file at `path` (errors name the file, never a line's content). */
export async function readIdentityFile(path: string): Promise<string[]> {
  return parseIdentityFile(await readFile(path, 'utf8'), path);
}
