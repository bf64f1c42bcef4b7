// Mailed account links at rest and in use, on both database drivers: only hashes of the secret
// and the code are stored, the address is sealed, a link works once and only for its purpose and
// tenant, expires, and a code stops being accepted after five wrong tries.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { CODE_ATTEMPTS, wrongCode } from '../../src/identity/account-tokens.js';
import { purgeExpired } from '../../src/ops/housekeeping.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const EMAIL = 'ada@example.com';

for (const driver of DRIVERS) {
  describe(`account links (${driver})`, { timeout: 120_000 }, () => {
    let app: TestOrthId;
    let acme: Tenant;
    let globex: Tenant;
    const clock = fixedClock(new Date('2026-05-01T10:00:00Z'));

    before(async () => {
      app = await createTestOrthId(driver, { clock });
      acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
      globex = await app.tenants.create({ slug: 'globex', actor: 'test' });
    });

    after(async () => {
      await app?.close();
    });

    const inAcme = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(app.db, acme.id, fn);
    const issue = (input: Partial<Parameters<TestOrthId['accountTokens']['issue']>[2]> = {}) =>
      inAcme((tx) =>
        app.accountTokens.issue(tx, acme.id, {
          purpose: 'password_reset',
          email: EMAIL,
          ttlSeconds: 3600,
          ...input,
        }),
      );
    const rejects = (promise: Promise<unknown>, code: string) =>
      assert.rejects(promise, (e) => isOrthIdError(e) && e.code === code);

    test('the table holds a hash of the secret and the code and the address only sealed', async () => {
      const issued = await issue({ withCode: true, data: { organisation: 'sales' } });
      assert.match(issued.secret, /^[A-Za-z0-9_-]{43}$/);
      assert.match(issued.code ?? '', /^\d{6}$/);
      const row = await inAcme(async (tx) => {
        const { rows } = await tx.query<Record<string, unknown>>(
          'SELECT * FROM account_tokens WHERE id = $1',
          [issued.id],
        );
        return rows[0]!;
      });
      const stored = JSON.stringify(row);
      for (const secret of [issued.secret, issued.code!, EMAIL, 'sales']) assert.ok(!stored.includes(secret));
      assert.deepEqual(
        Buffer.from(row.secret_hash as Uint8Array),
        createHash('sha256').update(issued.secret).digest(),
      );
      // The code's hash is keyed: the plain hash a dump would let anyone test guesses against is not it.
      assert.equal(Buffer.from(row.code_hash as Uint8Array).length, 32);
      assert.notDeepEqual(
        Buffer.from(row.code_hash as Uint8Array),
        createHash('sha256').update(`${issued.id}:${issued.code}`).digest(),
      );
      const token = await inAcme((tx) =>
        app.accountTokens.check(tx, acme.id, 'password_reset', issued.secret),
      );
      assert.equal(token.email, EMAIL);
      assert.deepEqual(token.data, { organisation: 'sales' });
    });

    test('a link works once', async () => {
      const { secret } = await issue();
      await inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', secret));
      await rejects(
        inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', secret)),
        'account.link_used',
      );
    });

    test('a link of another purpose, another tenant, or a forged one is not valid', async () => {
      const { secret } = await issue();
      await rejects(
        inAcme((tx) => app.accountTokens.use(tx, acme.id, 'email_verification', secret)),
        'account.link_invalid',
      );
      await rejects(
        withTenant(app.db, globex.id, (tx) => app.accountTokens.use(tx, globex.id, 'password_reset', secret)),
        'account.link_invalid',
      );
      const forged = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
      await rejects(
        inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', forged)),
        'account.link_invalid',
      );
      await rejects(
        inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', 'not a token')),
        'account.link_invalid',
      );
      // Still unused after all of that.
      await inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', secret));
    });

    test('a link expires', async () => {
      const { secret } = await issue({ ttlSeconds: 60 });
      clock.set(new Date(clock.now().getTime() + 61_000));
      await rejects(
        inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', secret)),
        'account.link_expired',
      );
    });

    test('a code is accepted once, and no more after five wrong tries, even the right one', async () => {
      const good = await issue({ withCode: true });
      const token = await inAcme((tx) =>
        app.accountTokens.useCode(
          tx,
          acme.id,
          'password_reset',
          good.id,
          ` ${good.code!.slice(0, 3)} ${good.code!.slice(3)}`,
        ),
      );
      assert.equal(token?.email, EMAIL);
      await rejects(
        inAcme((tx) => app.accountTokens.useCode(tx, acme.id, 'password_reset', good.id, good.code!)),
        'account.link_used',
      );

      const guessed = await issue({ withCode: true });
      const wrong = String((Number(guessed.code) + 1) % 1_000_000).padStart(6, '0');
      for (let i = 0; i < CODE_ATTEMPTS; i++) {
        // Each wrong code commits its count; the caller reports it afterwards.
        const result = await inAcme((tx) =>
          app.accountTokens.useCode(tx, acme.id, 'password_reset', guessed.id, wrong),
        );
        assert.equal(result, undefined);
      }
      assert.equal(
        await inAcme((tx) =>
          app.accountTokens.useCode(tx, acme.id, 'password_reset', guessed.id, guessed.code!),
        ),
        undefined,
      );
      assert.equal(wrongCode().code, 'account.code_invalid');
      // The link itself still works: the code limit is about guessing, not about the mail.
      await inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', guessed.secret));
    });

    test('outstanding links of a user end together, and the issued count per address is known', async () => {
      const user = await inAcme((tx) =>
        app.users.create(tx, acme.id, { email: 'grace@example.com' }, 'test'),
      );
      const first = await issue({ userId: user.id, email: 'grace@example.com' });
      const second = await issue({ userId: user.id, email: 'GRACE@example.com' });
      assert.equal(
        await inAcme((tx) =>
          app.accountTokens.issuedFor(tx, acme.id, 'password_reset', 'grace@EXAMPLE.com', 3600),
        ),
        2,
      );
      assert.equal(
        await inAcme((tx) => app.accountTokens.revokeForUser(tx, acme.id, user.id, 'password_reset')),
        2,
      );
      for (const { secret } of [first, second]) {
        await rejects(
          inAcme((tx) => app.accountTokens.use(tx, acme.id, 'password_reset', secret)),
          'account.link_used',
        );
      }
    });

    test('housekeeping deletes links a day after they expired', async () => {
      await issue({ ttlSeconds: 60 });
      clock.set(new Date(clock.now().getTime() + 25 * 3600 * 1000));
      const counts = await purgeExpired(app);
      assert.ok((counts.find((c) => c.tenant === 'acme')?.accountTokens ?? 0) > 0);
      const left = await inAcme(async (tx) => {
        const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM account_tokens');
        return rows[0]!.n;
      });
      assert.equal(left, 0);
    });
  });
}
