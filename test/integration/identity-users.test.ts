import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { createPasswordHasher } from '../../src/identity/passwords.js';
import { createUsers, type Users } from '../../src/identity/users.js';
import { createUsersQueries } from '../../src/identity/users.queries.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const PASSWORD = 'quiet rivers carry old songs';

for (const driver of DRIVERS) {
  describe(`users (${driver})`, () => {
    let app: TestOrthId;
    let tenantId: string;
    let users: Users;
    const clock = fixedClock('2031-05-01T12:00:00Z');
    const passwords = createPasswordHasher(CHEAP);
    const inTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(app.db, tenantId, fn);
    const row = async (id: string) => (await inTenant((tx) => createUsersQueries(tx).byId(id)))!;
    const lastEvent = async () =>
      inTenant(
        async (tx) => (await readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 1 }))[0]!,
      );

    before(async () => {
      app = await createTestOrthId(driver);
      tenantId = (await app.tenants.create({ slug: 'rivers', actor: 'test' })).id;
      users = createUsers({ tenantKeys: app.tenantKeys, clock, passwords });
    });
    after(() => app.close());

    test('a user created with a password stores only its argon2id hash', async () => {
      const user = await inTenant((tx) =>
        users.create(tx, tenantId, { email: 'ann@rivers.test', password: PASSWORD }, 'test'),
      );
      assert.equal(user.hasPassword, true);
      assert.equal(JSON.stringify(user).includes(PASSWORD), false);
      const stored = await row(user.id);
      assert.match(stored.password_hash!, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
      assert.equal(await passwords.verify(stored.password_hash!, PASSWORD), true);
      assert.equal(stored.password_changed_at?.toISOString(), clock.now().toISOString());
    });

    test('creating a user with a password the policy refuses creates nothing', async () => {
      await assert.rejects(
        inTenant((tx) =>
          users.create(tx, tenantId, { email: 'short@rivers.test', password: 'too short' }, 'test'),
        ),
        (e) => isOrthIdError(e, 'password.too_short'),
      );
      assert.equal(await inTenant((tx) => users.findByEmail(tx, tenantId, 'short@rivers.test')), undefined);
    });

    test('setPassword checks the policy for the tenant, stores a new hash and audits user.password_changed', async () => {
      const { id } = await inTenant((tx) => users.create(tx, tenantId, { email: 'bea@rivers.test' }, 'test'));
      assert.equal((await row(id)).password_hash, null);
      await assert.rejects(
        inTenant((tx) => users.setPassword(tx, tenantId, id, 'eight ch', { mfaEnforced: false })),
        (e) => isOrthIdError(e, 'password.too_short'),
      );
      const updated = await inTenant((tx) =>
        users.setPassword(tx, tenantId, id, 'eight ch', { mfaEnforced: true, actor: 'cli' }),
      );
      assert.equal(updated.hasPassword, true);
      assert.equal(await passwords.verify((await row(id)).password_hash!, 'eight ch'), true);
      const event = await lastEvent();
      assert.equal(event.action, 'user.password_changed');
      assert.equal(event.actor, 'cli');
      assert.equal(event.target, `user:${id}`);
      assert.equal(JSON.stringify(event).includes('eight ch'), false);
    });

    test('update changes name and phone, and a new email gets a new blind index and must be verified again', async () => {
      const { id } = await inTenant((tx) =>
        users.create(tx, tenantId, { email: 'cleo@rivers.test', name: 'Cleo', emailVerified: true }, 'test'),
      );
      const updated = await inTenant((tx) =>
        users.update(
          tx,
          tenantId,
          id,
          { email: 'Cleo.New@Rivers.test', name: null, phone: '+61 2 5550 1234' },
          'test',
        ),
      );
      assert.equal(updated.email, 'cleo.new@rivers.test');
      assert.equal(updated.emailVerified, false);
      assert.equal(updated.name, null);
      assert.equal(updated.phone, '+61 2 5550 1234');
      assert.equal((await inTenant((tx) => users.findByEmail(tx, tenantId, 'cleo.new@rivers.test')))?.id, id);
      assert.equal(await inTenant((tx) => users.findByEmail(tx, tenantId, 'cleo@rivers.test')), undefined);
      const event = await lastEvent();
      assert.equal(event.action, 'user.updated');
      assert.deepEqual(event.details, { fields: ['email', 'name', 'phone'] });
    });

    test("update refuses another user's email with user.email_taken and changes nothing", async () => {
      const { id } = await inTenant((tx) =>
        users.create(tx, tenantId, { email: 'dan@rivers.test', name: 'Dan' }, 'test'),
      );
      await assert.rejects(
        inTenant((tx) =>
          users.update(tx, tenantId, id, { email: 'ann@rivers.test', name: 'Changed' }, 'test'),
        ),
        (e) => isOrthIdError(e, 'user.email_taken'),
      );
      const user = await inTenant((tx) => users.get(tx, tenantId, id));
      assert.equal(user.email, 'dan@rivers.test');
      assert.equal(user.name, 'Dan');
    });

    test('disable and enable change the status and are audited', async () => {
      const { id } = await inTenant((tx) => users.create(tx, tenantId, { email: 'eve@rivers.test' }, 'test'));
      assert.equal((await inTenant((tx) => users.disable(tx, tenantId, id, 'test'))).status, 'disabled');
      assert.equal((await lastEvent()).action, 'user.disabled');
      assert.equal((await inTenant((tx) => users.enable(tx, tenantId, id, 'test'))).status, 'active');
      assert.equal((await lastEvent()).action, 'user.enabled');
    });

    test('unlock clears a lock and the failure count', async () => {
      const { id } = await inTenant((tx) =>
        users.create(tx, tenantId, { email: 'fay@rivers.test', password: PASSWORD }, 'test'),
      );
      await inTenant((tx) => createUsersQueries(tx).recordFailedSignIn(id, 1, clock.now()));
      assert.equal((await inTenant((tx) => users.get(tx, tenantId, id))).lockedAt, clock.now().toISOString());
      const unlocked = await inTenant((tx) => users.unlock(tx, tenantId, id, 'test'));
      assert.equal(unlocked.lockedAt, null);
      assert.equal((await row(id)).failed_sign_ins, 0);
      assert.equal((await lastEvent()).action, 'user.unlocked');
    });

    test('delete removes the user and leaves an audit event naming only the id', async () => {
      const { id } = await inTenant((tx) =>
        users.create(tx, tenantId, { email: 'gil@rivers.test', name: 'Gil' }, 'test'),
      );
      await inTenant((tx) => users.delete(tx, tenantId, id, 'test'));
      await assert.rejects(
        inTenant((tx) => users.get(tx, tenantId, id)),
        (e) => isOrthIdError(e, 'user.not_found'),
      );
      const event = await lastEvent();
      assert.equal(event.action, 'user.deleted');
      assert.equal(event.target, `user:${id}`);
      await assert.rejects(
        inTenant((tx) => users.delete(tx, tenantId, id, 'test')),
        (e) => isOrthIdError(e, 'user.not_found'),
      );
    });

    test('changes to a user that does not exist are refused with user.not_found', async () => {
      for (const id of ['01890000-0000-7000-8000-000000000000', 'not-a-uuid']) {
        await assert.rejects(
          inTenant((tx) => users.disable(tx, tenantId, id, 'test')),
          (e) => isOrthIdError(e, 'user.not_found'),
        );
      }
    });

    test('list pages through every user once, in creation order, with an after cursor', async () => {
      const all = (await inTenant((tx) => users.list(tx, tenantId, { limit: 1000 }))).users;
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await inTenant((tx) => users.list(tx, tenantId, { after, limit: 2 }));
        assert.ok(page.users.length <= 2);
        seen.push(...page.users.map((u) => u.id));
        if (page.next === null) break;
        after = page.next;
      }
      assert.deepEqual(
        seen,
        all.map((u) => u.id),
      );
      assert.ok(all.length >= 6);
      assert.deepEqual([...seen].sort(), seen);
      await assert.rejects(
        inTenant((tx) => users.list(tx, tenantId, { limit: 0 })),
        (e) => isOrthIdError(e, 'request.invalid'),
      );
      await assert.rejects(
        inTenant((tx) => users.list(tx, tenantId, { after: 'nope' })),
        (e) => isOrthIdError(e, 'request.invalid'),
      );
    });
  });
}
