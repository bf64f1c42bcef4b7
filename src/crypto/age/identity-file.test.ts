import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ageKeygen, tempDir } from '../../../test/helpers/age-cli.js';
import { isOrthIdError } from '../../core/errors.js';
import { generateIdentity } from './identity.js';
import { parseIdentityFile } from './identity-file.js';

describe('parseIdentityFile', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('reads the identity from a file written by age-keygen, skipping its comments', () => {
    const cli = ageKeygen(tmp.dir);
    assert.deepEqual(parseIdentityFile(readFileSync(cli.file, 'utf8')), [cli.identity]);
  });

  test('returns every identity, ignoring blank lines, indentation and CRLF line ends', () => {
    const a = generateIdentity().identity;
    const b = generateIdentity().identity;
    assert.deepEqual(parseIdentityFile(`# keys\r\n\r\n  ${a}\r\n#${b}\r\n${b}\r\n\r\n`), [a, b]);
  });

  test('names the line of an invalid identity without repeating it', () => {
    const { identity } = generateIdentity();
    const broken = identity.slice(0, -1);
    assert.throws(
      () => parseIdentityFile(`# key\n${identity}\n${broken}\n`, 'keys.txt'),
      (error) =>
        isOrthIdError(error, 'age.identity_invalid') &&
        /Line 3 of keys\.txt/.test(error.message) &&
        !error.message.includes(broken.slice(16)),
    );
  });

  test('a file with only comments is rejected as holding no identities', () => {
    assert.throws(
      () => parseIdentityFile('# created: today\n\n# nothing here\n'),
      (error) => isOrthIdError(error, 'age.identity_invalid') && /No identities/.test(error.message),
    );
  });
});
