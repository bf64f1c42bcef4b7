import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import { createPasswordHasher, OWASP_PASSWORD_HASHING } from '../../src/identity/passwords.js';

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const PASSPHRASE = 'correct horse battery staple';

describe('password hashing', () => {
  test('the default hasher stores argon2id at the OWASP parameters m=19456, t=2, p=1, and verifies', async () => {
    const passwords = createPasswordHasher();
    assert.deepEqual(passwords.parameters, OWASP_PASSWORD_HASHING);
    const stored = await passwords.hash(PASSPHRASE);
    assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[^$]+\$[^$]+$/);
    assert.equal(await passwords.verify(stored, PASSPHRASE), true);
    assert.equal(await passwords.verify(stored, `${PASSPHRASE}!`), false);
    assert.equal(passwords.needsRehash(stored), false);
  });

  test('hashing runs on threads other than the event loop, at a lower CPU priority than it', async () => {
    const passwords = createPasswordHasher(CHEAP);
    const niceOf = (tid: string) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command name: state(0) … nice(16).
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    };
    await passwords.hash(PASSPHRASE);
    const threads = readdirSync('/proc/self/task').map((tid) => ({ tid, nice: niceOf(tid) }));
    const eventLoop = threads.find((t) => t.tid === String(process.pid))!;
    assert.equal(eventLoop.nice, 0);
    assert.ok(
      threads.some((t) => t.nice > eventLoop.nice),
      `no thread below the event loop's priority: ${JSON.stringify(threads)}`,
    );
    // Many at once: all answered, each right.
    const stored = await Promise.all(
      Array.from({ length: 8 }, (_, i) => passwords.hash(`${PASSPHRASE} ${i}`)),
    );
    const checks = await Promise.all(stored.map((s, i) => passwords.verify(s, `${PASSPHRASE} ${i}`)));
    assert.deepEqual(checks, Array(8).fill(true));
  });

  test('two hashes of the same password differ (each has its own salt)', async () => {
    const passwords = createPasswordHasher(CHEAP);
    assert.notEqual(await passwords.hash(PASSPHRASE), await passwords.hash(PASSPHRASE));
  });

  test('a password typed in another Unicode form still verifies (NFKC before hashing)', async () => {
    const passwords = createPasswordHasher(CHEAP);
    const stored = await passwords.hash('caf\u00e9 au lait, s\u2019il vous pla\u00eet');
    assert.equal(await passwords.verify(stored, 'cafe\u0301 au lait, s\u2019il vous pla\u00eet'), true);
  });

  test('a hash made with other parameters needs a rehash; one made with the current ones does not', async () => {
    const old = createPasswordHasher(CHEAP);
    const current = createPasswordHasher({ ...CHEAP, memoryCost: 2048 });
    const stored = await old.hash(PASSPHRASE);
    assert.equal(current.needsRehash(stored), true);
    assert.equal(old.needsRehash(stored), false);
    assert.equal(await current.verify(stored, PASSPHRASE), true, 'old hashes keep verifying');
  });

  test('an unreadable stored value verifies as false and needs a rehash, instead of throwing', async () => {
    const passwords = createPasswordHasher(CHEAP);
    assert.equal(await passwords.verify('not a hash', PASSPHRASE), false);
    assert.equal(passwords.needsRehash('$2b$10$bcryptlookingvalue'), true);
  });

  test('the dummy verification never succeeds', async () => {
    assert.equal(await createPasswordHasher(CHEAP).verifyDummy(PASSPHRASE), false);
  });

  test('impossible parameters are refused with config.invalid', () => {
    assert.throws(
      () => createPasswordHasher({ memoryCost: 4, timeCost: 0, parallelism: 1 }),
      (e) => isOrthIdError(e, 'config.invalid'),
    );
  });
});
