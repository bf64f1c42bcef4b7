import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { ageKeygen, requireAgeCli, tempDir } from '../../../test/helpers/age-cli.js';
import { isOrthIdError } from '../../core/errors.js';
import { encodeBech32 } from './bech32.js';
import { generateIdentity, parseIdentity, recipientOf } from './identity.js';

describe('age identities', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('generateIdentity returns an identity and recipient in age-keygen form', () => {
    const { identity, recipient } = generateIdentity();
    assert.match(identity, /^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$/);
    assert.match(recipient, /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/);
    assert.notEqual(generateIdentity().identity, identity);
  });

  test('age-keygen -y derives the same recipient from an identity we generate', () => {
    requireAgeCli();
    const { identity, recipient } = generateIdentity();
    const file = tmp.write('ours.txt', `${identity}\n`);
    assert.equal(execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim(), recipient);
  });

  test('recipientOf derives the recipient age-keygen printed for its own identity', () => {
    const cli = ageKeygen(tmp.dir);
    assert.equal(recipientOf(cli.identity), cli.recipient);
  });

  test('a recipient given where an identity is expected is rejected with an explanation', () => {
    const { recipient } = generateIdentity();
    assert.throws(
      () => parseIdentity(recipient),
      (error) =>
        isOrthIdError(error, 'age.identity_invalid') && /recipient \(public key\)/.test(error.message),
    );
  });

  test('a lower-case or mistyped identity is rejected without the secret in the message', () => {
    const { identity } = generateIdentity();
    const typo = `${identity.slice(0, 30)}${identity[30] === 'Q' ? 'P' : 'Q'}${identity.slice(31)}`;
    for (const bad of [identity.toLowerCase(), typo]) {
      assert.throws(
        () => parseIdentity(bad, 'The backup identity'),
        (error) =>
          isOrthIdError(error, 'age.identity_invalid') &&
          error.message.startsWith('The backup identity') &&
          !error.message.toUpperCase().includes(identity.slice(16, 40)),
      );
    }
  });

  test('an identity of the wrong length is rejected', () => {
    assert.throws(
      () => parseIdentity(encodeBech32('AGE-SECRET-KEY-', randomBytes(16))),
      (error) => isOrthIdError(error, 'age.identity_invalid') && /16 bytes/.test(error.message),
    );
  });
});
