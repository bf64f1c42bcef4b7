import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type AuditEvent, readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { type ErrorCode, isOrthIdError, type OrthIdError } from '../../src/core/errors.js';
import { type PasswordSignInDeps, signInWithPassword } from '../../src/identity/password-sign-in.js';
import { createPasswordHasher, type PasswordHasher } from '../../src/identity/passwords.js';
import {
  accountThrottleKey,
  createSignInThrottle,
  type SignInThrottleOptions,
} from '../../src/identity/sign-in-throttle.js';
import { createSignInThrottleQueries } from '../../src/identity/sign-in-throttle.queries.js';
import { createUsers, type Users } from '../../src/identity/users.js';
import { createUsersQueries } from '../../src/identity/users.queries.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

// Cheap argon2 keeps the loops fast; the OWASP parameters are tested in identity-passwords.
const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const PASSWORD = 'violet harbour lanterns at dusk';
const WRONG = 'violet harbour lanterns at dawn';

let nextIp = 1;
/**
 * A fresh client address per test, so address counters never leak between tests; always a valid
 * address (whatever names no address shares one counter).
 */
const freshIp = () => {
  const n = nextIp++;
  return `198.51.${100 + (n >> 8)}.${n & 255}`;
};

async function rejection(promise: Promise<unknown>): Promise<OrthIdError> {
  try {
    await promise;
  } catch (error) {
    if (isOrthIdError(error)) return error;
    throw error;
  }
  assert.fail('expected the sign-in to be refused');
}

for (const driver of DRIVERS) {
  describe(`password sign-in (${driver})`, () => {
    let app: TestOrthId;
    let tenantId: string;
    const clock = fixedClock('2031-03-01T09:00:00Z');
    const passwords = createPasswordHasher(CHEAP);
    let users: Users;

    const deps = (
      overrides: { throttle?: SignInThrottleOptions; passwords?: PasswordHasher } = {},
    ): PasswordSignInDeps => ({
      db: app.db,
      tenantKeys: app.tenantKeys,
      passwords: overrides.passwords ?? passwords,
      throttle: createSignInThrottle(overrides.throttle),
      clock,
    });
    const signIn = (email: string, password: string, ip: string, d = deps()) =>
      signInWithPassword(d, { tenantId, email, password, ip, userAgent: 'test-agent/1.0', clientId: 'web' });
    const inTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(app.db, tenantId, fn);
    const createUser = async (email: string, password = PASSWORD) =>
      (await inTenant((tx) => users.create(tx, tenantId, { email, password }, 'test'))).id;
    const advance = (seconds: number) => clock.set(new Date(clock.now().getTime() + seconds * 1000));
    const userRow = async (id: string) => (await inTenant((tx) => createUsersQueries(tx).byId(id)))!;
    const counter = async (key: string) =>
      (await inTenant((tx) => createSignInThrottleQueries(tx).get([key])))[0];
    const signInEvents = async (userId: string): Promise<AuditEvent[]> =>
      inTenant(async (tx) =>
        (await readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 1000 })).filter(
          (e) => e.action === 'user.sign_in' && e.target === `user:${userId}`,
        ),
      );

    before(async () => {
      app = await createTestOrthId(driver);
      tenantId = (await app.tenants.create({ slug: 'harbour', actor: 'test' })).id;
      users = createUsers({ tenantKeys: app.tenantKeys, clock, passwords });
    });
    after(() => app.close());

    test('the right password signs the user in, records the time and appends a success event', async () => {
      const id = await createUser('ada@harbour.test');
      assert.equal((await signIn('ADA@harbour.test', PASSWORD, freshIp())).userId, id);
      assert.equal((await userRow(id)).last_sign_in_at?.toISOString(), clock.now().toISOString());
      const [event] = await signInEvents(id);
      assert.equal(event?.outcome, 'success');
      assert.equal(event?.actor, `user:${id}`);
      assert.equal(event?.userAgent, 'test-agent/1.0');
      assert.deepEqual(event?.details, { method: 'password', clientId: 'web' });
    });

    test('a correct password that a second step must follow is audited as verified, not as a sign-in', async () => {
      const id = await createUser('hedy@harbour.test');
      const asked: string[] = [];
      const result = await signInWithPassword(deps(), {
        tenantId,
        email: 'hedy@harbour.test',
        password: PASSWORD,
        ip: freshIp(),
        clientId: 'web',
        secondStep: async (tx, userId) => {
          // Asked inside the transaction that records the outcome, for the user it signs in.
          asked.push(userId, (await createUsersQueries(tx).byId(userId))!.id);
          return true;
        },
      });
      assert.equal(result.userId, id);
      assert.deepEqual(asked, [id, id]);
      assert.deepEqual(await signInEvents(id), [], 'no sign-in recorded yet');
      const verified = await inTenant(async (tx) =>
        (await readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 1000 })).filter(
          (e) => e.action === 'user.password_verified' && e.target === `user:${id}`,
        ),
      );
      assert.equal(verified.length, 1);
      assert.equal(verified[0]!.outcome, 'success');
      assert.deepEqual(verified[0]!.details, { method: 'password', clientId: 'web' });
      // A wrong password is still a failed sign-in, and the question is never asked.
      await rejection(
        signInWithPassword(deps(), {
          tenantId,
          email: 'hedy@harbour.test',
          password: WRONG,
          ip: freshIp(),
          secondStep: async () => assert.fail('asked after a wrong password'),
        }),
      );
      assert.deepEqual(
        (await signInEvents(id)).map((e) => [e.outcome, e.details?.reason]),
        [['failure', 'invalid_credentials']],
      );
    });

    test('an unknown email and a wrong password are refused with the same code and message', async () => {
      await createUser('grace@harbour.test');
      const unknown = await rejection(signIn('nobody@harbour.test', PASSWORD, freshIp()));
      const wrong = await rejection(signIn('grace@harbour.test', WRONG, freshIp()));
      assert.equal(unknown.code, 'auth.invalid_credentials');
      assert.equal(wrong.code, 'auth.invalid_credentials');
      assert.equal(unknown.message, 'The email or password is incorrect.');
      assert.equal(wrong.message, unknown.message);
      assert.deepEqual(wrong.details, unknown.details);
    });

    test('an unknown email costs one argon2 verification, like a known one', async () => {
      await createUser('alan@harbour.test');
      let verifications = 0;
      const counting: PasswordHasher = {
        ...passwords,
        verify(stored, password) {
          verifications++;
          return passwords.verify(stored, password);
        },
        verifyDummy(password) {
          verifications++;
          return passwords.verifyDummy(password);
        },
      };
      await rejection(signIn('alan@harbour.test', WRONG, freshIp(), deps({ passwords: counting })));
      assert.equal(verifications, 1);
      await rejection(signIn('not-alan@harbour.test', WRONG, freshIp(), deps({ passwords: counting })));
      assert.equal(verifications, 2);
    });

    test('a disabled user gets the generic error even with the right password, and the audit log says why', async () => {
      const id = await createUser('dora@harbour.test');
      await inTenant((tx) => users.disable(tx, tenantId, id, 'test'));
      const error = await rejection(signIn('dora@harbour.test', PASSWORD, freshIp()));
      assert.equal(error.code, 'auth.invalid_credentials');
      const [event] = await signInEvents(id);
      assert.equal(event?.outcome, 'failure');
      assert.equal(event?.details?.reason, 'disabled');
      await inTenant((tx) => users.enable(tx, tenantId, id, 'test'));
      assert.equal((await signIn('dora@harbour.test', PASSWORD, freshIp())).userId, id);
    });

    test('after five free failures the delays grow, the audit log has every attempt, and waiting them out works', async () => {
      const id = await createUser('ines@harbour.test');
      const ip = freshIp();
      const codes: ErrorCode[] = [];
      for (let i = 0; i < 6; i++) codes.push((await rejection(signIn('ines@harbour.test', WRONG, ip))).code);
      assert.deepEqual(
        codes,
        Array(6).fill('auth.invalid_credentials'),
        'five free failures, the sixth sets a block',
      );

      const first = await rejection(signIn('ines@harbour.test', PASSWORD, ip));
      assert.equal(first.code, 'auth.throttled');
      assert.equal(first.kind, 'rate_limited');
      assert.equal(first.httpStatus, 429);
      assert.equal(first.details?.retryAfterSeconds, 2);

      advance(2);
      assert.equal(
        (await rejection(signIn('ines@harbour.test', WRONG, ip))).code,
        'auth.invalid_credentials',
      );
      const second = await rejection(signIn('ines@harbour.test', WRONG, ip));
      assert.equal(second.code, 'auth.throttled');
      assert.equal(second.details?.retryAfterSeconds, 4, 'the delay doubles');

      const failures = (await signInEvents(id)).filter((e) => e.outcome === 'failure');
      assert.equal(failures.length, 9);
      assert.deepEqual(failures.map((e) => e.details?.reason).reverse(), [
        ...Array(6).fill('invalid_credentials'),
        'throttled',
        'invalid_credentials',
        'throttled',
      ]);
      assert.ok(failures.every((e) => e.ip === ip && e.actor === 'anonymous'));
      assert.equal(
        (await counter(accountThrottleKey(id)))?.failures,
        7,
        'refused attempts check no password and count nothing',
      );

      advance(4);
      assert.equal((await signIn('ines@harbour.test', PASSWORD, ip)).userId, id);
      assert.equal(await counter(accountThrottleKey(id)), undefined, 'a success resets the account counter');
      assert.equal((await userRow(id)).failed_sign_ins, 0);
    });

    test('failures from one address throttle it for every account, and its counter decays after 15 quiet minutes', async () => {
      const ip = freshIp();
      for (let i = 0; i < 6; i++) {
        assert.equal(
          (await rejection(signIn(`guess${i}@harbour.test`, WRONG, ip))).code,
          'auth.invalid_credentials',
        );
      }
      const id = await createUser('olga@harbour.test');
      assert.equal((await rejection(signIn('olga@harbour.test', PASSWORD, ip))).code, 'auth.throttled');
      assert.equal(
        (await signIn('olga@harbour.test', PASSWORD, freshIp())).userId,
        id,
        'other addresses are unaffected',
      );

      advance(15 * 60 + 1);
      assert.equal((await signIn('olga@harbour.test', PASSWORD, ip)).userId, id);
      assert.equal(
        (await rejection(signIn('guess9@harbour.test', WRONG, ip))).code,
        'auth.invalid_credentials',
      );
      const [row] = await inTenant(async (tx) =>
        createSignInThrottleQueries(tx).get([
          createSignInThrottle().keys(await app.tenantKeys.forTenant(tx, tenantId), { userId: id }, ip).ip,
        ]),
      );
      assert.equal(row?.failures, 1, 'the address counter started again');
    });

    test('concurrent failures are all counted', async () => {
      const id = await createUser('concurrent@harbour.test');
      // No free-failure limit in reach, so every attempt is verified and counted.
      const d = deps({ throttle: { freeFailures: 50 } });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => signIn('concurrent@harbour.test', WRONG, freshIp(), d)),
      );
      for (const r of results) {
        assert.ok(
          r.status === 'rejected' && isOrthIdError(r.reason, 'auth.invalid_credentials'),
          String(r.status === 'rejected' ? r.reason : r.status),
        );
      }
      assert.equal((await counter(accountThrottleKey(id)))?.failures, 10);
      assert.equal((await userRow(id)).failed_sign_ins, 10);
    });

    test('concurrent sign-ins, unlocks and password changes on shared accounts and addresses never deadlock', async () => {
      const ids = await Promise.all([0, 1, 2].map((i) => createUser(`mix${i}@harbour.test`)));
      const d = deps({ throttle: { freeFailures: 3, lockAfterFailures: 20 } });
      for (let round = 0; round < 3; round++) {
        const jobs: Promise<unknown>[] = [];
        for (let i = 0; i < 40; i++) {
          const email = i % 5 === 4 ? `mix-ghost${i % 2}@harbour.test` : `mix${i % 3}@harbour.test`;
          jobs.push(signIn(email, i % 7 === 0 ? PASSWORD : WRONG, `192.0.2.${i % 3}`, d));
          if (i % 15 === 0) jobs.push(inTenant((tx) => users.unlock(tx, tenantId, ids[i % 3]!, 'test')));
          if (i % 20 === 0) {
            jobs.push(
              inTenant((tx) =>
                users.setPassword(tx, tenantId, ids[(i + 1) % 3]!, PASSWORD, { mfaEnforced: false }),
              ),
            );
          }
        }
        for (const result of await Promise.allSettled(jobs)) {
          if (result.status === 'rejected') {
            assert.ok(
              isOrthIdError(result.reason) && result.reason.kind !== 'internal',
              String(result.reason),
            );
          }
        }
        advance(15 * 60 + 1);
      }
    });

    test('100 consecutive failures lock the account until an administrator unlocks it', async () => {
      const id = await createUser('lock@harbour.test');
      for (let i = 0; i < 100; i++) {
        advance(15 * 60 + 1); // past any block, so each attempt is verified
        assert.equal(
          (await rejection(signIn('lock@harbour.test', WRONG, freshIp()))).code,
          'auth.invalid_credentials',
        );
      }
      assert.ok((await userRow(id)).locked_at, 'locked_at is set');
      advance(15 * 60 + 1);
      const refused = await rejection(signIn('lock@harbour.test', PASSWORD, freshIp()));
      assert.equal(refused.code, 'auth.account_locked');
      assert.match(refused.message, /Reset the password/);

      const locks = await inTenant(async (tx) =>
        (await readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 20 })).filter(
          (e) => e.action === 'user.locked' && e.target === `user:${id}`,
        ),
      );
      assert.equal(locks.length, 1);

      await inTenant((tx) => users.unlock(tx, tenantId, id, 'test'));
      assert.equal((await signIn('lock@harbour.test', PASSWORD, freshIp())).userId, id);
    });

    test('an unknown email locks like a real account, so a lock reveals nothing', async () => {
      const d = deps({ throttle: { lockAfterFailures: 3 } });
      for (let i = 0; i < 3; i++) await rejection(signIn('ghost@harbour.test', WRONG, freshIp(), d));
      assert.equal(
        (await rejection(signIn('ghost@harbour.test', WRONG, freshIp(), d))).code,
        'auth.account_locked',
      );
    });

    test('a new password lifts a lock', async () => {
      const id = await createUser('reset@harbour.test');
      const d = deps({ throttle: { lockAfterFailures: 3 } });
      for (let i = 0; i < 3; i++) await rejection(signIn('reset@harbour.test', WRONG, freshIp(), d));
      assert.equal(
        (await rejection(signIn('reset@harbour.test', PASSWORD, freshIp(), d))).code,
        'auth.account_locked',
      );
      const next = 'seven amber kites over the marsh';
      await inTenant((tx) => users.setPassword(tx, tenantId, id, next, { mfaEnforced: false }));
      assert.equal((await signIn('reset@harbour.test', next, freshIp(), d)).userId, id);
    });

    test('signing in with a hash made at other parameters re-hashes it at the current ones', async () => {
      const id = await createUser('rehash@harbour.test');
      assert.match((await userRow(id)).password_hash!, /\$m=1024,t=1,p=1\$/);
      const stronger = createPasswordHasher({ memoryCost: 2048, timeCost: 2, parallelism: 1 });
      assert.equal(
        (await signIn('rehash@harbour.test', PASSWORD, freshIp(), deps({ passwords: stronger }))).userId,
        id,
      );
      const stored = (await userRow(id)).password_hash!;
      assert.match(stored, /^\$argon2id\$v=19\$m=2048,t=2,p=1\$/);
      assert.equal(await stronger.verify(stored, PASSWORD), true);
      const [latest] = (await signInEvents(id)).slice(0, 1);
      assert.equal(latest?.details?.rehashed, true);
      // The next sign-in finds nothing to re-hash.
      await signIn('rehash@harbour.test', PASSWORD, freshIp(), deps({ passwords: stronger }));
      assert.equal((await userRow(id)).password_hash, stored);
    });

    test('no audit event holds the password or the email in clear', async () => {
      const ip = freshIp();
      await rejection(signIn('secret-holder@harbour.test', WRONG, ip));
      const rows = await app.db.ownerTransaction((tx) =>
        tx.query<Record<string, unknown>>('SELECT * FROM audit_events WHERE tenant_id = $1', [tenantId]),
      );
      const dump = JSON.stringify(rows.rows);
      for (const needle of [WRONG, PASSWORD, 'secret-holder', ip])
        assert.equal(dump.includes(needle), false, needle);
    });
  });
}
