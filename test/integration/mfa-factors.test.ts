// Second factors at rest and under administration, on both database drivers: TOTP secrets sealed
// and bound to their row, recovery codes only as keyed hashes, tenant isolation, key rotation and
// shredding, the admin API (list, remove, re-enrol, new recovery codes, policy) with its audit
// trail, the policy's scope by organisation and role, and the password minimum it relaxes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { TOTP_PERIOD_SECONDS, totpCode } from '../../src/identity/totp.js';
import { rotateDataKey, shredTenant } from '../../src/ops/key-rotation.js';
import { configureMfaPolicy } from '../../src/ops/mfa-policy.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import {
  ADMIN_PERMISSION,
  adminResourceIndicator,
  SYSTEM_TENANT_SLUG,
} from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const STEP_MS = TOTP_PERIOD_SECONDS * 1000;

for (const driver of DRIVERS) {
  describe(`second factors at rest and under administration (${driver})`, { timeout: 240_000 }, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let acme: Tenant;
    let globex: Tenant;
    const start = Math.floor(Date.now() / STEP_MS) * STEP_MS + 1000;
    const clock = fixedClock(new Date(start));
    let stepNo = 0;
    /** Moves the clock to the next time step, so each verification below has a fresh code. */
    const nextStep = () => {
      stepNo += 1;
      clock.set(new Date(start + stepNo * STEP_MS));
      return clock.now();
    };

    before(async () => {
      app = await createTestOrthId(driver, { clock });
      server = await buildServer(app);
      acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
      globex = await app.tenants.create({ slug: 'globex', actor: 'test' });
      // Shredding records itself in the system tenant's audit log.
      await app.tenants.create({ slug: SYSTEM_TENANT_SLUG, actor: 'test' });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    const inAcme = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(app.db, acme.id, fn);

    async function newUser(tenant: Tenant, email: string) {
      return withTenant(app.db, tenant.id, (tx) => app.users.create(tx, tenant.id, { email }, 'test'));
    }

    /** Enrols an authenticator app for the user, as the hosted sign-in does; returns its secret. */
    async function enrol(tenant: Tenant, userId: string) {
      const interactionUid = randomUUID();
      const enrolment = await app.mfa.beginTotpEnrolment({
        tenantId: tenant.id,
        userId,
        interactionUid,
        issuer: tenant.displayName,
        account: 'someone',
      });
      const { recoveryCodes } = await app.mfa.confirmTotpEnrolment({
        tenantId: tenant.id,
        userId,
        ip: '192.0.2.1',
        factorId: enrolment.factorId,
        interactionUid,
        code: totpCode(enrolment.secret, clock.now()),
      });
      // Each user here enrols with no recovery codes left, so every enrolment brings a new set.
      assert.ok(recoveryCodes, 'an enrolment without unused codes issues them');
      return { secret: enrolment.secret, factorId: enrolment.factorId, recoveryCodes };
    }

    const verify = (tenant: Tenant, userId: string, secret: string) =>
      app.mfa.verifyTotp({
        tenantId: tenant.id,
        userId,
        ip: '192.0.2.1',
        code: totpCode(secret, nextStep()),
      });

    async function call(
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      path: string,
      body?: unknown,
    ): Promise<LightMyRequestResponse> {
      const key = await withTenant(app.db, acme.id, async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, acme.id);
        if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
          await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
        }
        return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
      });
      await ensureAdminClient(app.db, acme.id, 'admin-client', app.config.publicUrl);
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ client_id: 'admin-client', scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerFor(app.config.publicUrl, acme.slug))
        .setSubject('admin-client')
        .setAudience(adminResourceIndicator(app.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
      return server.inject({
        method,
        url: `/api/v1/tenants/acme${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    }

    const auditActions = async (tenant: Tenant) =>
      withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 200 }),
      );

    test('a TOTP secret is sealed under the tenant data key and bound to its row; recovery codes are kept only as keyed hashes', async () => {
      const ann = await newUser(acme, 'ann@acme.test');
      const bob = await newUser(acme, 'bob@acme.test');
      const a = await enrol(acme, ann.id);
      const b = await enrol(acme, bob.id);
      const { rows } = await app.db.ownerQuery<{ id: string; secret: string }>(
        'SELECT id, secret FROM user_factors WHERE tenant_id = $1 ORDER BY id',
        [acme.id],
      );
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.match(row.secret, /^enc1\./);
        assert.ok(!row.secret.includes(a.secret) && !row.secret.includes(b.secret));
      }
      const codes = await app.db.ownerQuery<{ code_hash: string }>(
        'SELECT code_hash FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2',
        [acme.id, ann.id],
      );
      assert.equal(codes.rows.length, 10);
      for (const { code_hash } of codes.rows) {
        assert.match(code_hash, /^[\w-]{43}$/, 'an HMAC-SHA-256');
        assert.ok(a.recoveryCodes.every((c) => !code_hash.includes(c.replace('-', ''))));
      }

      // Ann's sealed secret copied into Bob's row does not open there.
      await app.db.ownerQuery('UPDATE user_factors SET secret = $1 WHERE tenant_id = $2 AND id = $3', [
        rows.find((r) => r.id === a.factorId)!.secret,
        acme.id,
        b.factorId,
      ]);
      await assert.rejects(verify(acme, bob.id, a.secret), (e) => isOrthIdError(e, 'crypto.decrypt_failed'));
      await app.db.ownerQuery('UPDATE user_factors SET secret = $1 WHERE tenant_id = $2 AND id = $3', [
        rows.find((r) => r.id === b.factorId)!.secret,
        acme.id,
        b.factorId,
      ]);
      assert.equal((await verify(acme, bob.id, b.secret)).factorId, b.factorId);

      const inGlobex = await withTenant(app.db, globex.id, async (tx) => ({
        factors: (await tx.query('SELECT 1 FROM user_factors')).rows.length,
        codes: (await tx.query('SELECT 1 FROM user_recovery_codes')).rows.length,
      }));
      assert.deepEqual(inGlobex, { factors: 0, codes: 0 }, 'row-level security keeps them to their tenant');
    });

    test("the admin API lists a user's factors without secrets, removes a lost one and requires re-enrolment, each audited", async () => {
      const carl = await newUser(acme, 'carl@acme.test');
      const { secret, factorId, recoveryCodes } = await enrol(acme, carl.id);
      const listed = await call('GET', `/users/${carl.id}/factors`);
      assert.equal(listed.statusCode, 200);
      const body = listed.json();
      assert.deepEqual(Object.keys(body.factors[0]).sort(), [
        'createdAt',
        'id',
        'kind',
        'lastUsedAt',
        'name',
      ]);
      assert.equal(body.factors[0].kind, 'totp');
      assert.equal(body.recoveryCodesLeft, 10);
      assert.equal(body.mustReenrol, false);
      assert.ok(!listed.body.includes(secret));

      const regenerated = await call('POST', `/users/${carl.id}/recovery-codes`);
      assert.equal(regenerated.statusCode, 200);
      const fresh = regenerated.json().codes as string[];
      assert.equal(fresh.length, 10);
      const attempt = { tenantId: acme.id, userId: carl.id, ip: '192.0.2.7' };
      await assert.rejects(app.mfa.useRecoveryCode({ ...attempt, code: recoveryCodes[0]! }), (e) =>
        isOrthIdError(e, 'mfa.code_invalid'),
      );
      assert.equal((await app.mfa.useRecoveryCode({ ...attempt, code: fresh[0]! })).remaining, 9);

      const removed = await call('DELETE', `/users/${carl.id}/factors/${factorId}`);
      assert.equal(removed.statusCode, 204);
      const again = await call('DELETE', `/users/${carl.id}/factors/${factorId}`);
      assert.equal(again.statusCode, 404);
      assert.equal(again.json().code, 'mfa.factor_not_found');
      const after = (await call('GET', `/users/${carl.id}/factors`)).json();
      assert.deepEqual(
        [after.factors, after.recoveryCodesLeft],
        [[], 0],
        'the last factor takes the codes along',
      );
      await assert.rejects(verify(acme, carl.id, secret), (e) => isOrthIdError(e, 'mfa.code_invalid'));

      const second = await enrol(acme, carl.id);
      const reenrol = await call('POST', `/users/${carl.id}/mfa/reenrol`);
      assert.deepEqual(reenrol.json(), { mustReenrol: true, factorsRemoved: 1 });
      assert.equal((await call('GET', `/users/${carl.id}/factors`)).json().mustReenrol, true);
      const requirement = await inAcme((tx) => app.mfa.requirement(tx, acme.id, carl.id));
      assert.equal(requirement, 'required', 'walked through enrolment whatever the policy');
      await assert.rejects(verify(acme, carl.id, second.secret), (e) => isOrthIdError(e, 'mfa.code_invalid'));
      await enrol(acme, carl.id);
      assert.equal((await call('GET', `/users/${carl.id}/factors`)).json().mustReenrol, false);

      const trail = (await auditActions(acme))
        .filter((e) => e.target === `user:${carl.id}` && e.action.startsWith('user.mfa_'))
        .map((e) => [e.action, e.outcome, e.actor, e.details?.factor ?? e.details?.reason ?? null])
        .reverse();
      assert.deepEqual(trail, [
        ['user.mfa_enrolment_started', 'success', `user:${carl.id}`, 'totp'],
        ['user.mfa_enrolled', 'success', `user:${carl.id}`, 'totp'],
        ['user.mfa_recovery_codes_regenerated', 'success', 'client:admin-client', 'recovery_code'],
        ['user.mfa_recovery_code_used', 'failure', `user:${carl.id}`, 'recovery_code'],
        ['user.mfa_recovery_code_used', 'success', `user:${carl.id}`, 'recovery_code'],
        ['user.mfa_factor_removed', 'success', 'client:admin-client', 'totp'],
        ['user.mfa_verified', 'failure', `user:${carl.id}`, 'totp'],
        ['user.mfa_enrolment_started', 'success', `user:${carl.id}`, 'totp'],
        ['user.mfa_enrolled', 'success', `user:${carl.id}`, 'totp'],
        ['user.mfa_reenrolment_required', 'success', 'client:admin-client', null],
        ['user.mfa_verified', 'failure', `user:${carl.id}`, 'totp'],
        ['user.mfa_enrolment_started', 'success', `user:${carl.id}`, 'totp'],
        ['user.mfa_enrolled', 'success', `user:${carl.id}`, 'totp'],
      ]);
    });

    test('the MFA policy is set by name, refuses unknown organisations without changing anything, and scopes "required" to members and role holders', async () => {
      const dora = await newUser(acme, 'dora@acme.test');
      const erin = await newUser(acme, 'erin@acme.test');
      const fay = await newUser(acme, 'fay@acme.test');
      await inAcme(async (tx) => {
        const org = await app.rbac.organisations.create(tx, acme.id, { name: 'Finance' }, 'test');
        await app.rbac.memberships.add(tx, acme.id, org.id, dora.id, 'test');
        const other = await app.rbac.organisations.create(tx, acme.id, { name: 'Sales' }, 'test');
        const membership = await app.rbac.memberships.add(tx, acme.id, other.id, erin.id, 'test');
        const role = await app.rbac.roles.create(tx, acme.id, { name: 'auditor' }, 'test');
        await app.rbac.memberships.grantRole(tx, acme.id, membership.id, role.id, 'test');
        await app.rbac.memberships.add(tx, acme.id, other.id, fay.id, 'test');
      });

      const refused = await call('PUT', '/mfa-policy', { mode: 'required', organisations: ['Nowhere'] });
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().code, 'mfa.policy_invalid');
      assert.equal((await call('GET', '/mfa-policy')).json().mode, 'off', 'nothing changed');

      const set = await call('PUT', '/mfa-policy', {
        mode: 'required',
        organisations: ['Finance'],
        roles: ['auditor'],
      });
      assert.equal(set.statusCode, 200);
      assert.equal(set.json().organisations.length, 1);
      const of = (id: string) => inAcme((tx) => app.mfa.requirement(tx, acme.id, id));
      assert.equal(await of(dora.id), 'required', 'a member of Finance');
      assert.equal(await of(erin.id), 'required', 'an auditor');
      assert.equal(await of(fay.id), 'off', 'neither');
      const event = (await auditActions(acme)).find((e) => e.action === 'tenant.mfa_policy_set');
      assert.equal(event?.actor, 'client:admin-client');
      assert.equal(event?.details?.mode, 'required');

      await configureMfaPolicy(
        app,
        await app.tenants.get('acme'),
        { mode: 'optional', organisations: [], roles: [] },
        'test',
      );
      assert.equal(await of(dora.id), 'optional');
    });

    test('passwords of 8 characters are accepted where the tenant requires MFA of everyone, and refused where it does not', async () => {
      await configureMfaPolicy(app, await app.tenants.get('acme'), { mode: 'off' }, 'test');
      const short = { email: 'gus@acme.test', password: 'qy7-Lumo!' };
      const refused = await call('POST', '/users', short);
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().code, 'password.too_short');
      await configureMfaPolicy(app, await app.tenants.get('acme'), { mode: 'required' }, 'test');
      const created = await call('POST', '/users', short);
      assert.equal(created.statusCode, 201, created.body);
      const changed = await call('PUT', `/users/${created.json().id}/password`, { password: 'vexo-42Kp' });
      assert.equal(changed.statusCode, 200, changed.body);
      await configureMfaPolicy(app, await app.tenants.get('acme'), { mode: 'off' }, 'test');
    });

    test('data-key rotation re-encrypts TOTP secrets, which keep verifying; shredding makes them unreadable', async () => {
      const hal = await newUser(globex, 'hal@globex.test');
      const { secret, factorId } = await enrol(globex, hal.id);
      const before = await app.db.ownerQuery<{ secret: string }>(
        'SELECT secret FROM user_factors WHERE tenant_id = $1 AND id = $2',
        [globex.id, factorId],
      );
      const rotation = await rotateDataKey(app, globex, 'test');
      const afterRotation = await app.db.ownerQuery<{ secret: string }>(
        'SELECT secret FROM user_factors WHERE tenant_id = $1 AND id = $2',
        [globex.id, factorId],
      );
      assert.notEqual(afterRotation.rows[0]!.secret, before.rows[0]!.secret);
      assert.ok(afterRotation.rows[0]!.secret.startsWith(`enc1.${rotation.targetKeyId}.`));
      assert.equal((await verify(globex, hal.id, secret)).factorId, factorId);

      await shredTenant(app, globex, 'test');
      await assert.rejects(verify(globex, hal.id, secret), (e) => isOrthIdError(e, 'crypto.shredded'));
      const sealed = await app.db.ownerQuery<{ secret: string }>(
        'SELECT secret FROM user_factors WHERE tenant_id = $1 AND id = $2',
        [globex.id, factorId],
      );
      assert.ok(!sealed.rows[0]!.secret.includes(secret), 'only ciphertext is left, and its keys are gone');
    });
  });
}
