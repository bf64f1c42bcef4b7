// Password reset on both database drivers: a link goes only to an active account's address and
// only within the throttles (per address, per account, per client address), every refusal is
// audited and answered the same; using a link sets the password under the policy, works once,
// expires, lifts a sign-in lock, queues the notice, and a refused password leaves it usable.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import type { ResetRequest } from '../../src/identity/password-reset.js';
import { createUsersQueries } from '../../src/identity/users.queries.js';
import { openMail } from '../../src/mail/mail.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const OLD = 'correct horse battery staple 42';
const NEW = 'a brand new passphrase of many words';
const text = (subject: string) => ({ subject, text: `${subject}\n`, html: `<p>${subject}</p>` });

for (const driver of DRIVERS) {
  describe(`password reset (${driver})`, { timeout: 180_000 }, () => {
    let app: TestOrthId;
    let acme: Tenant;
    const clock = fixedClock(new Date('2026-06-01T09:00:00Z'));
    let address = 0;
    /** Each test asks from its own client address, so one test's requests never throttle another's. */
    const nextIp = () => `203.0.113.${++address}`;

    before(async () => {
      app = await createTestOrthId(driver, { clock });
      acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
    });

    after(async () => {
      await app?.close();
    });

    const inAcme = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(app.db, acme.id, fn);
    const createUser = (email: string) =>
      inAcme((tx) => app.users.create(tx, acme.id, { email, password: OLD }, 'test'));

    /** Asks for a link; returns the secrets of the mails that went. */
    async function ask(email: string, ip = nextIp(), extra: Partial<ResetRequest> = {}) {
      const secrets: string[] = [];
      await app.passwordReset.request({
        tenantId: acme.id,
        email,
        ip,
        composeLink: ({ secret }) => {
          secrets.push(secret);
          return text(`Reset: ${secret}`);
        },
        ...extra,
      });
      return secrets;
    }

    const complete = (secret: string, password = NEW) =>
      app.passwordReset.complete({
        tenantId: acme.id,
        secret,
        password,
        ip: nextIp(),
        composeChanged: () => text('Your password was changed'),
      });

    /** The queued mails of one template, opened. */
    const queued = (template: string) =>
      inAcme(async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, acme.id);
        const { rows } = await tx.query<{ id: string; recipient: string; content: string }>(
          'SELECT id, recipient, content FROM mail_queue WHERE template = $1 ORDER BY created_at, id',
          [template],
        );
        return rows.map((row) => openMail(keyring, row));
      });

    const audit = (action: string, target?: string) =>
      inAcme(async (tx) =>
        (await readAudit(tx, await app.tenantKeys.forTenant(tx, acme.id), { limit: 1000 }))
          .filter((e) => e.action === action && (target === undefined || e.target === target))
          .sort((a, b) => a.seq - b.seq),
      );

    const signIn = (email: string, password: string) =>
      app.signInWithPassword({ tenantId: acme.id, email, password, ip: nextIp() });

    const rejects = (promise: Promise<unknown>, code: string) =>
      assert.rejects(promise, (e) => isOrthIdError(e) && e.code === code);

    test('a known address gets one link; using it sets the password, and it works once', async () => {
      const user = await createUser('ada@acme.test');
      const before = (await queued('password-reset')).length;
      const [secret] = await ask('  Ada@Acme.test ');
      assert.ok(secret);
      const mails = await queued('password-reset');
      assert.equal(mails.length, before + 1);
      assert.equal(mails.at(-1)!.to, 'ada@acme.test');
      const requested = await audit('user.password_reset_requested', `user:${user.id}`);
      assert.equal(requested.at(-1)?.outcome, 'success');
      // The audit names the token, never its secret or the address.
      assert.ok(!JSON.stringify(requested).includes(secret));
      assert.ok(!JSON.stringify(requested).includes('ada@acme.test'));

      const done = await complete(secret);
      assert.equal(done.userId, user.id);
      await signIn('ada@acme.test', NEW);
      await rejects(signIn('ada@acme.test', OLD), 'auth.invalid_credentials');
      const reset = await audit('user.password_reset', `user:${user.id}`);
      assert.equal(reset.length, 1);
      assert.equal(reset[0]!.actor, `user:${user.id}`);
      assert.equal(reset[0]!.outcome, 'success');
      const notices = (await queued('password-changed')).filter((m) => m.to === 'ada@acme.test');
      assert.equal(notices.length, 1);

      await rejects(complete(secret, 'yet another long passphrase here'), 'account.link_used');
      await signIn('ada@acme.test', NEW);
    });

    test('an unknown address gets nothing, and the refusal is audited without the address', async () => {
      const before = (await queued('password-reset')).length;
      assert.deepEqual(await ask('nobody@acme.test'), []);
      assert.equal((await queued('password-reset')).length, before);
      const refused = (await audit('user.password_reset_requested')).filter(
        (e) => e.details?.reason === 'unknown_account',
      );
      assert.ok(refused.length >= 1);
      assert.ok(!JSON.stringify(refused).includes('nobody@acme.test'));
    });

    test('something that is no address is refused with request.invalid', async () => {
      await rejects(ask('not an address'), 'request.invalid');
      await rejects(ask(''), 'request.invalid');
    });

    test('a disabled user gets no link, and a link sent before the disabling opens nothing', async () => {
      const user = await createUser('dis@acme.test');
      const [early] = await ask('dis@acme.test');
      assert.ok(early);
      await inAcme((tx) => app.users.disable(tx, acme.id, user.id, 'test'));
      assert.deepEqual(await ask('dis@acme.test'), []);
      const refused = await audit('user.password_reset_requested', `user:${user.id}`);
      assert.equal(refused.at(-1)?.details?.reason, 'disabled');
      await rejects(complete(early), 'account.link_invalid');
      await inAcme((tx) => app.users.enable(tx, acme.id, user.id, 'test'));
      await signIn('dis@acme.test', OLD);
    });

    test('only the newest link works', async () => {
      await createUser('newest@acme.test');
      const [first] = await ask('newest@acme.test');
      const [second] = await ask('newest@acme.test');
      await rejects(complete(first!), 'account.link_used');
      await complete(second!);
      await signIn('newest@acme.test', NEW);
    });

    test('an address is sent at most three links an hour; the fourth request sends none', async () => {
      const user = await createUser('flood@acme.test');
      for (let i = 0; i < app.passwordReset.options.perAddress; i++) {
        assert.equal((await ask('flood@acme.test')).length, 1);
      }
      assert.deepEqual(await ask('flood@acme.test'), []);
      const refused = await audit('user.password_reset_requested', `user:${user.id}`);
      assert.equal(refused.at(-1)?.details?.reason, 'throttled_address');
      assert.equal(refused.at(-1)?.outcome, 'failure');
    });

    test('a client address asking again and again is stopped, whatever addresses it names', async () => {
      await createUser('victim@acme.test');
      const ip = nextIp();
      // Five requests are free, the sixth sets a block; from then on nothing is sent.
      for (let i = 0; i < 6; i++) await ask(`spray${i}@acme.test`, ip);
      assert.deepEqual(await ask('victim@acme.test', ip), []);
      const refused = await audit('user.password_reset_requested');
      assert.equal(refused.at(-1)?.details?.reason, 'throttled_client');
      // Another client address may still ask for the same account.
      assert.equal((await ask('victim@acme.test')).length, 1);
    });

    test('a password the policy refuses changes nothing and leaves the link usable', async () => {
      await createUser('policy@acme.test');
      const [secret] = await ask('policy@acme.test');
      await rejects(complete(secret!, 'short'), 'password.too_short');
      await rejects(complete(secret!, 'qwerty123456789'), 'password.common');
      await signIn('policy@acme.test', OLD);
      await complete(secret!);
      await signIn('policy@acme.test', NEW);
    });

    test('a link expires after an hour', async () => {
      await createUser('late@acme.test');
      const [secret] = await ask('late@acme.test');
      const now = clock.now();
      clock.set(new Date(now.getTime() + app.passwordReset.options.ttlSeconds * 1000 + 1000));
      try {
        await rejects(complete(secret!), 'account.link_expired');
        await rejects(app.passwordReset.check(acme.id, secret!), 'account.link_expired');
      } finally {
        clock.set(now);
      }
      await signIn('late@acme.test', OLD);
    });

    test('a forged or malformed link is not valid', async () => {
      await createUser('forge@acme.test');
      const [secret] = await ask('forge@acme.test');
      const forged = `${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
      await rejects(complete(forged), 'account.link_invalid');
      await rejects(complete('not a token'), 'account.link_invalid');
      await rejects(app.passwordReset.check(acme.id, ''), 'account.link_invalid');
    });

    test('a reset lifts a sign-in lock', async () => {
      const user = await createUser('locked@acme.test');
      await inAcme((tx) => createUsersQueries(tx).recordFailedSignIn(user.id, 1, clock.now()));
      await rejects(signIn('locked@acme.test', OLD), 'auth.account_locked');
      const [secret] = await ask('locked@acme.test');
      await complete(secret!);
      await signIn('locked@acme.test', NEW);
      const reset = await audit('user.password_reset', `user:${user.id}`);
      assert.equal(reset.at(-1)?.details?.unlocked, true);
    });
  });
}
