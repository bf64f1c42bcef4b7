// Invitations and accounts awaiting verification through the admin API, on both drivers: the
// invitation list with its states, revocation (the link is refused at once, on the page and at
// acceptance), the users list's verification filter and sort, the resent verification mail, and
// bad input answered 4xx with stable codes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import { readAudit } from '../../src/audit/audit-log.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { openMail } from '../../src/mail/mail.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const PASSWORD = 'a long enough passphrase for an invitation';

interface Entry {
  id: string;
  email: string;
  organisationId: string | null;
  organisationName: string | null;
  createdBy: string | null;
  status: string;
  endedAt: string | null;
}

for (const driver of DRIVERS) {
  describe(`admin API: invitations and accounts awaiting verification (${driver})`, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let tenant: Tenant;
    let token: string;
    let sales: { id: string; name: string };

    async function call(
      method: 'GET' | 'POST' | 'DELETE',
      path: string,
      body?: unknown,
    ): Promise<LightMyRequestResponse> {
      return app.inject({
        method,
        url: `/api/v1/tenants/${tenant.slug}${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    }
    const codeOf = (response: LightMyRequestResponse) => (response.json() as { code: string }).code;
    const inTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(orthid.db, tenant.id, fn);

    /** The queued mails to an address, opened (no relay is configured: they wait in the queue). */
    const mailsTo = (email: string) =>
      inTenant(async (tx) => {
        const keyring = await orthid.tenantKeys.forTenant(tx, tenant.id);
        const { rows } = await tx.query<{ id: string; recipient: string; content: string; template: string }>(
          'SELECT id, recipient, content, template FROM mail_queue ORDER BY created_at, id',
        );
        return rows
          .map((row) => ({ template: row.template, ...openMail(keyring, row) }))
          .filter((m) => m.to === email);
      });
    const invitationSecret = async (email: string) => {
      const mail = (await mailsTo(email)).find((m) => m.template === 'invitation');
      const link = /(http\S+\/invitation\?token=[A-Za-z0-9_-]+)/.exec(mail?.content.text ?? '')?.[1];
      assert.ok(link, 'the invitation mail carries its link');
      return new URL(link).searchParams.get('token')!;
    };
    const audit = () =>
      inTenant(async (tx) =>
        readAudit(tx, await orthid.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
      );

    before(async () => {
      orthid = await createTestOrthId(driver);
      tenant = await orthid.tenants.create({ slug: 'gamma', displayName: 'Gamma', actor: 'test' });
      app = await buildServer(orthid);
      sales = await inTenant((tx) =>
        orthid.rbac.organisations.create(tx, tenant.id, { name: 'Sales' }, 'test'),
      );
      const key = await inTenant(async (tx) => {
        const keyring = await orthid.tenantKeys.forTenant(tx, tenant.id);
        await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
        return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
      });
      await ensureAdminClient(orthid.db, tenant.id, 'admin-client', orthid.config.publicUrl);
      const now = Math.floor(Date.now() / 1000);
      token = await new SignJWT({ client_id: 'admin-client', scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerFor(orthid.config.publicUrl, tenant.slug))
        .setSubject('admin-client')
        .setAudience(adminResourceIndicator(orthid.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test('invitations are listed with the address, organisation, creator and state, in either order and paged', async () => {
      const first = await call('POST', '/invitations', {
        email: 'lina@gamma.test',
        organisationId: sales.id,
      });
      assert.equal(first.statusCode, 201, first.body);
      const second = await call('POST', '/invitations', { email: 'omar@gamma.test' });
      assert.equal(second.statusCode, 201, second.body);
      const listed = await call('GET', '/invitations');
      assert.equal(listed.statusCode, 200, listed.body);
      const items = (listed.json() as { items: Entry[] }).items;
      const lina = items.find((i) => i.id === first.json().id)!;
      assert.equal(lina.email, 'lina@gamma.test');
      assert.equal(lina.organisationId, sales.id);
      assert.equal(lina.organisationName, 'Sales');
      assert.equal(lina.status, 'pending');
      assert.equal(lina.endedAt, null);
      assert.match(lina.createdBy ?? '', /admin-client/);
      const omar = items.find((i) => i.id === second.json().id)!;
      assert.equal(omar.organisationName, null);

      const newest = (await call('GET', '/invitations?sort=-created&limit=1')).json() as {
        items: Entry[];
        next: string;
      };
      assert.deepEqual(
        newest.items.map((i) => i.id),
        [second.json().id],
      );
      const older = (await call('GET', `/invitations?sort=-created&limit=1&after=${newest.next}`)).json() as {
        items: Entry[];
      };
      assert.deepEqual(
        older.items.map((i) => i.id),
        [first.json().id],
      );
    });

    test('a revoked invitation is refused on its page and at acceptance, audited once, without the address', async () => {
      const created = await call('POST', '/invitations', { email: 'rhea@gamma.test' });
      const id = created.json().id as string;
      const secret = await invitationSecret('rhea@gamma.test');
      const open = await app.inject({ method: 'GET', url: `/t/gamma/invitation?token=${secret}` });
      assert.equal(open.statusCode, 200, 'the link works before it is revoked');

      const revoked = await call('DELETE', `/invitations/${id}`);
      assert.equal(revoked.statusCode, 200, revoked.body);
      assert.equal((revoked.json() as Entry).status, 'revoked');
      assert.ok((revoked.json() as Entry).endedAt);

      const page = await app.inject({ method: 'GET', url: `/t/gamma/invitation?token=${secret}` });
      assert.equal(page.statusCode, 400);
      assert.match(page.body, /account\.link_revoked/);
      assert.match(page.body, /withdrawn/);
      const posted = await app.inject({
        method: 'POST',
        url: '/t/gamma/invitation',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ token: secret, name: 'Rhea', password: PASSWORD }).toString(),
      });
      assert.equal(posted.statusCode, 400);
      assert.match(posted.body, /account\.link_revoked/);
      // Acceptance itself checks the revocation, whatever page came before it.
      await assert.rejects(
        orthid.signUp.acceptInvitation(tenant, secret, { name: 'Rhea', password: PASSWORD }),
        (e: unknown) => isOrthIdError(e, 'account.link_revoked'),
      );
      assert.equal(
        await inTenant(
          async (tx) => (await orthid.users.findByEmail(tx, tenant.id, 'rhea@gamma.test')) ?? null,
        ),
        null,
      );

      const again = await call('DELETE', `/invitations/${id}`);
      assert.equal(again.statusCode, 200);
      const events = (await audit()).filter((e) => e.action === 'invitation.revoked');
      assert.equal(events.length, 1, 'revoking twice is audited once');
      assert.equal(events[0]!.target, `invitation:${id}`);
      assert.doesNotMatch(JSON.stringify(events[0]), /rhea@/);
      const fetched = await call('GET', `/invitations/${id}`);
      assert.equal((fetched.json() as Entry).status, 'revoked');
    });

    test('an accepted invitation cannot be revoked: 409 invitation.already_accepted, and it stays accepted', async () => {
      const created = await call('POST', '/invitations', { email: 'sami@gamma.test' });
      const id = created.json().id as string;
      await orthid.signUp.acceptInvitation(tenant, await invitationSecret('sami@gamma.test'), {
        name: 'Sami',
        password: PASSWORD,
      });
      const refused = await call('DELETE', `/invitations/${id}`);
      assert.equal(refused.statusCode, 409);
      assert.equal(codeOf(refused), 'invitation.already_accepted');
      assert.equal(((await call('GET', `/invitations/${id}`)).json() as Entry).status, 'accepted');
    });

    test('bad invitation input is a 4xx with a stable code and changes nothing', async () => {
      const before = await audit();
      for (const [method, path, status, code] of [
        ['DELETE', '/invitations/not-an-id', 400, 'request.invalid'],
        ['DELETE', `/invitations/${randomUUID()}`, 404, 'invitation.not_found'],
        ['GET', `/invitations/${randomUUID()}`, 404, 'invitation.not_found'],
        ['GET', '/invitations?sort=email', 400, 'request.invalid'],
        ['GET', '/invitations?limit=0', 400, 'request.invalid'],
        ['GET', '/invitations?after=somewhere', 400, 'request.invalid'],
      ] as const) {
        const response = await call(method, path);
        assert.equal(response.statusCode, status, `${method} ${path}: ${response.body}`);
        assert.equal(codeOf(response), code, `${method} ${path}`);
      }
      // A reset token's id is no invitation.
      const reset = await inTenant((tx) =>
        orthid.accountTokens.issue(tx, tenant.id, {
          purpose: 'password_reset',
          email: 'x@gamma.test',
          ttlSeconds: 60,
        }),
      );
      assert.equal(codeOf(await call('DELETE', `/invitations/${reset.id}`)), 'invitation.not_found');
      assert.equal((await audit()).length, before.length);
    });

    test('users awaiting verification are filtered and flagged; the users list sorts by creation both ways', async () => {
      const [waiting, admin] = await inTenant(async (tx) => [
        await orthid.users.create(
          tx,
          tenant.id,
          { email: 'una@gamma.test', password: PASSWORD, awaitingVerification: true },
          'sign-up',
        ),
        await orthid.users.create(tx, tenant.id, { email: 'vic@gamma.test' }, 'test'),
      ]);
      const pending = await call('GET', '/users?verification=pending');
      assert.equal(pending.statusCode, 200, pending.body);
      const items = (
        pending.json() as { items: { id: string; awaitingVerification: boolean; emailVerified: boolean }[] }
      ).items;
      assert.deepEqual(
        items.map((u) => u.id),
        [waiting.id],
      );
      assert.equal(items[0]!.awaitingVerification, true);
      assert.equal(items[0]!.emailVerified, false);
      const byEmail = await call('GET', '/users?verification=pending&email=vic@gamma.test');
      assert.deepEqual(byEmail.json().items, []);
      const vic = (await call('GET', `/users/${admin.id}`)).json();
      assert.equal(vic.awaitingVerification, false);

      const ascending = ((await call('GET', '/users?sort=created')).json() as { items: { id: string }[] })
        .items;
      const descending = ((await call('GET', '/users?sort=-created')).json() as { items: { id: string }[] })
        .items;
      assert.ok(ascending.length >= 3);
      assert.deepEqual(
        descending.map((u) => u.id),
        ascending.map((u) => u.id).reverse(),
      );
      const page1 = (await call('GET', '/users?sort=-created&limit=2')).json() as {
        items: { id: string }[];
        next: string;
      };
      const page2 = (await call('GET', `/users?sort=-created&limit=2&after=${page1.next}`)).json() as {
        items: { id: string }[];
      };
      assert.deepEqual(
        [...page1.items, ...page2.items].map((u) => u.id),
        descending.slice(0, page1.items.length + page2.items.length).map((u) => u.id),
      );
      for (const bad of ['sort=name', 'sort=created,-created', 'verification=done', 'sort=']) {
        const response = await call('GET', `/users?${bad}`);
        assert.equal(response.statusCode, 400, bad);
        assert.equal(codeOf(response), 'request.invalid', bad);
      }
    });

    test('an administrator resends the verification mail to a pending account only, audited, within the per-address limit', async () => {
      const [waiting, verified] = await inTenant(async (tx) => [
        await orthid.users.create(
          tx,
          tenant.id,
          { email: 'wren@gamma.test', password: PASSWORD, awaitingVerification: true },
          'sign-up',
        ),
        await orthid.users.create(tx, tenant.id, { email: 'xan@gamma.test', emailVerified: true }, 'test'),
      ]);
      const sent = await call('POST', `/users/${waiting.id}/verification`);
      assert.equal(sent.statusCode, 202, sent.body);
      assert.equal(sent.json().userId, waiting.id);
      const mails = await mailsTo('wren@gamma.test');
      assert.equal(mails.length, 1);
      assert.equal(mails[0]!.template, 'verify-email');
      const event = (await audit()).find((e) => e.action === 'user.verification_sent');
      assert.equal(event?.target, `user:${waiting.id}`);
      assert.doesNotMatch(JSON.stringify(event), /wren@/);

      const notWaiting = await call('POST', `/users/${verified.id}/verification`);
      assert.equal(notWaiting.statusCode, 409);
      assert.equal(codeOf(notWaiting), 'user.not_awaiting_verification');
      assert.equal(codeOf(await call('POST', `/users/${randomUUID()}/verification`)), 'user.not_found');
      assert.equal((await call('POST', '/users/nobody/verification')).statusCode, 400);

      assert.equal((await call('POST', `/users/${waiting.id}/verification`)).statusCode, 202);
      assert.equal((await call('POST', `/users/${waiting.id}/verification`)).statusCode, 202);
      const throttled = await call('POST', `/users/${waiting.id}/verification`);
      assert.equal(throttled.statusCode, 429);
      assert.equal(codeOf(throttled), 'signup.throttled');
      assert.equal((await mailsTo('wren@gamma.test')).length, 3);

      // The pending account is removed with the existing delete.
      assert.equal((await call('DELETE', `/users/${waiting.id}`)).statusCode, 204);
      assert.equal((await call('GET', `/users/${waiting.id}`)).statusCode, 404);
    });
  });
}
