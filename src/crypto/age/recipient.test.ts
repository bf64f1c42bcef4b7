import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ageKeygen, requireAgeCli, tempDir } from '../../../test/helpers/age-cli.js';
import { isOrthIdError } from '../../core/errors.js';
import { encodeBech32 } from './bech32.js';
import { parseRecipient, recipientFingerprint } from './recipient.js';

const isInvalid = (pattern: RegExp) => (error: unknown) =>
  isOrthIdError(error, 'age.recipient_invalid') && pattern.test(error.message);

describe('parseRecipient', () => {
  const tmp = tempDir();
  let cli: ReturnType<typeof ageKeygen>;
  before(() => {
    requireAgeCli();
    cli = ageKeygen(tmp.dir);
  });
  after(() => tmp.cleanup());

  test('accepts a recipient printed by age-keygen and returns its 32-byte key', () => {
    const parsed = parseRecipient(`  ${cli.recipient}\n`);
    assert.equal(parsed.recipient, cli.recipient);
    assert.equal(parsed.rawPublicKey.length, 32);
  });

  test('rejects a mistyped recipient because its checksum fails', () => {
    const typo = `${cli.recipient.slice(0, 20)}${cli.recipient[20] === 'x' ? 'y' : 'x'}${cli.recipient.slice(21)}`;
    assert.throws(() => parseRecipient(typo), isInvalid(/checksum/));
  });

  test('rejects an upper-case recipient, as the age CLI does', () => {
    assert.throws(() => parseRecipient(cli.recipient.toUpperCase()), isInvalid(/lower case/));
  });

  test('rejects a secret identity without repeating it', () => {
    const identity = encodeBech32('AGE-SECRET-KEY-', randomBytes(32));
    assert.throws(
      () => parseRecipient(identity),
      (error) =>
        isInvalid(/secret identity/)(error) && !(error as Error).message.includes(identity.slice(16)),
    );
  });

  test('rejects SSH keys and plugin recipients with a message naming what is supported', () => {
    assert.throws(() => parseRecipient('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB'), isInvalid(/SSH/));
    assert.throws(() => parseRecipient('age1yubikey1q2w3e4r5t6y7u8i9o0p'), isInvalid(/plugin/));
  });

  test('rejects keys of the wrong length and low-order points', () => {
    assert.throws(() => parseRecipient(encodeBech32('age', randomBytes(31))), isInvalid(/31 bytes/));
    assert.throws(() => parseRecipient(encodeBech32('age', Buffer.alloc(32))), isInvalid(/low-order/));
  });

  test('names the recipient in the message by position when given a label', () => {
    assert.throws(() => parseRecipient('age1', 'Recipient 3 of 4'), isInvalid(/^Recipient 3 of 4 /));
  });
});

describe('recipientFingerprint', () => {
  test('is sha256: and the first 16 hex digits of SHA-256 of the recipient text', () => {
    const recipient = encodeBech32('age', randomBytes(32));
    const expected = createHash('sha256').update(recipient).digest('hex').slice(0, 16);
    assert.equal(recipientFingerprint(recipient), `sha256:${expected}`);
    assert.match(recipientFingerprint(recipient), /^sha256:[0-9a-f]{16}$/);
  });

  test('differs between recipients and ignores surrounding whitespace', () => {
    const a = encodeBech32('age', randomBytes(32));
    const b = encodeBech32('age', randomBytes(32));
    assert.notEqual(recipientFingerprint(a), recipientFingerprint(b));
    assert.equal(recipientFingerprint(` ${a}\n`), recipientFingerprint(a));
  });

  test('refuses to fingerprint something that is not a recipient', () => {
    assert.throws(
      () => recipientFingerprint('not-a-recipient'),
      (error) => isOrthIdError(error, 'age.recipient_invalid'),
    );
  });
});
