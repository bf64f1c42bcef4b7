// Tampering with a tenant's audit log as the database superuser — who can rewrite every row but
// holds neither the key custody nor the object store's past checkpoints — and what
// `orthid audit verify` then says: which event, and since which checkpoint the chain still holds.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import type { AuditRow } from '../../src/audit/audit.queries.js';
import { GENESIS_HASH, hashEvent } from '../../src/audit/audit-chain.js';
import { type AnchoredReport, checkpointPrefix } from '../../src/audit/audit-checkpoints.js';
import { appendAudit } from '../../src/audit/audit-log.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { newId } from '../../src/core/ids.js';
import { checkpointTenants, runOperation } from '../../src/ops/operations.js';
import { runVerificationChecks } from '../../src/ops/verification-checks.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const COLUMNS =
  'tenant_id, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash';

type Report = AnchoredReport & { tenant: string };

for (const driver of DRIVERS) {
  describe(`audit verify against tampering by the database superuser (${driver})`, {
    timeout: 240_000,
  }, () => {
    let app: TestOrthId;

    before(async () => {
      app = await createTestOrthId(driver);
    });
    after(() => app.close());

    const verify = async (tenant: Tenant) =>
      (await runOperation(app, 'audit.verify', { tenant: tenant.slug })) as Report;

    async function append(tenant: Tenant, count: number): Promise<void> {
      await withTenant(app.db, tenant.id, async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
        for (let i = 0; i < count; i++) {
          await appendAudit(tx, keyring, {
            actor: `user:${newId()}`,
            action: 'user.signed_in',
            target: `client:${newId()}`,
            outcome: i % 2 === 0 ? 'success' : 'failure',
            ip: `203.0.113.${i + 1}`,
            userAgent: 'test-agent',
            details: { n: i },
          });
        }
      });
    }

    /**
     * A tenant with events #1–#7 and two checkpoints, written by `audit verify`: one of #4, one
     * of #7. Returns the checkpoints' times as verify reported them.
     */
    async function anchoredTenant(): Promise<{ tenant: Tenant; first: string; second: string }> {
      const tenant = await app.tenants.create({ slug: `t${newId().slice(-12)}`, actor: 'test' });
      await append(tenant, 3);
      const one = await verify(tenant);
      assert.equal(one.ok, true, JSON.stringify(one));
      await append(tenant, 3);
      const two = await verify(tenant);
      assert.equal(two.ok, true, JSON.stringify(two));
      assert.equal(two.checkpoint?.seq, '4');
      return {
        tenant,
        first: (one as Report & { written: { at: string } }).written.at,
        second: (two as Report & { written: { at: string } }).written.at,
      };
    }

    /** Changes stored events the way an intruder with the owner's rights could. */
    async function tamper(...statements: [string, unknown[]][]): Promise<void> {
      await app.db.ownerTransaction(async (tx) => {
        await tx.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
        for (const [sql, params] of statements) await tx.query(sql, params);
        await tx.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
      });
    }

    const rowsOf = (tenantId: string) =>
      app.db.ownerTransaction(async (tx) => {
        const { rows } = await tx.query<AuditRow & { occurred_us: string }>(
          `SELECT ${COLUMNS}, (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS occurred_us
             FROM audit_events WHERE tenant_id = $1 ORDER BY seq`,
          [tenantId],
        );
        return rows;
      });

    /** What a keyed link would be without the key: the public v2 encoding, hashed. */
    const unkeyedV2 = (row: Omit<AuditRow, 'hash'> & { occurred_us: string }) =>
      `v2:${createHash('sha256')
        .update(
          JSON.stringify([
            'orthid-audit/v2',
            row.tenant_id,
            String(row.seq),
            row.id,
            row.occurred_us,
            row.actor,
            row.action,
            row.target,
            row.ip,
            row.user_agent,
            row.outcome,
            row.details,
            row.prev_hash,
          ]),
        )
        .digest('hex')}`;

    /**
     * Recomputes every link from `fromSeq` on, the only ways one can without the audit key: as
     * unkeyed (v1) SHA-256 hashes, or as `v2:` links with a plain SHA-256 of the v2 encoding where
     * the MAC should be.
     */
    async function recompute(
      tenantId: string,
      fromSeq: number,
      style: 'v1' | 'fake-v2' = 'v1',
    ): Promise<void> {
      const rows = await rowsOf(tenantId);
      let prev = rows.find((r) => Number(r.seq) === fromSeq - 1)?.hash ?? GENESIS_HASH;
      const statements: [string, unknown[]][] = [];
      for (const row of rows.filter((r) => Number(r.seq) >= fromSeq)) {
        const relinked = { ...row, prev_hash: prev };
        const hash = style === 'v1' ? hashEvent(relinked) : unkeyedV2(relinked);
        statements.push([
          'UPDATE audit_events SET prev_hash = $3, hash = $4 WHERE tenant_id = $1 AND seq = $2',
          [tenantId, row.seq, prev, hash],
        ]);
        prev = hash;
      }
      await tamper(...statements);
    }

    function assertBroken(
      report: Report,
      expected: { seq: string; reason: RegExp; since?: string | undefined },
    ): void {
      assert.equal(report.ok, false, JSON.stringify(report));
      assert.equal(report.code, 'audit.chain_broken');
      assert.equal(report.broken?.seq, expected.seq, report.broken?.reason);
      assert.match(report.broken!.reason, expected.reason);
      assert.equal(report.checkpoint?.seq, expected.since, report.broken?.reason);
      if (expected.since === undefined) assert.match(report.message!, /no earlier checkpoint/);
      else assert.match(report.message!, new RegExp(`checkpoint of .* \\(event #${expected.since}\\)`));
    }

    const one = (sql: string, params: unknown[]): [string, unknown[]] => [sql, params];

    test('an intact keyed chain verifies, names its newest checkpoint and writes a new one', async () => {
      const { tenant, second } = await anchoredTenant();
      const report = await verify(tenant);
      assert.equal(report.ok, true);
      assert.equal(report.events, 7);
      assert.equal(report.checkpoint?.seq, '7');
      assert.equal(report.checkpoint?.at, second);
      assert.match(report.headHash, /^v2:[0-9a-f]{64}$/);
      const listed = await app.objects.list(checkpointPrefix(tenant.id));
      assert.equal(listed.items.length, 3);
    });

    test('1. the last event deleted', async () => {
      const { tenant, second } = await anchoredTenant();
      await tamper(one('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 7', [tenant.id]));
      const report = await verify(tenant);
      assertBroken(report, { seq: '7', reason: /events after #6 are missing/, since: '4' });
      assert.ok(report.broken!.reason.includes(`checkpoint of ${second} names #7`));
    });

    test('2. the last three events deleted', async () => {
      const { tenant } = await anchoredTenant();
      await tamper(one('DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 4', [tenant.id]));
      assertBroken(await verify(tenant), { seq: '5', reason: /events after #4 are missing/, since: '4' });
    });

    test("3. all of a tenant's events deleted", async () => {
      const { tenant } = await anchoredTenant();
      await tamper(one('DELETE FROM audit_events WHERE tenant_id = $1', [tenant.id]));
      assertBroken(await verify(tenant), { seq: '1', reason: /events after #0 are missing/ });
    });

    const FIELDS: [string, string][] = [
      ['actor', `'user:mallory'`],
      ['action', `'user.deleted'`],
      ['target', `'client:other'`],
      [
        'details',
        `(SELECT details FROM audit_events e WHERE e.tenant_id = audit_events.tenant_id AND e.seq = 5)`,
      ],
      ['outcome', `CASE outcome WHEN 'success' THEN 'failure' ELSE 'success' END`],
      ['ip', `(SELECT ip FROM audit_events e WHERE e.tenant_id = audit_events.tenant_id AND e.seq = 5)`],
    ];
    FIELDS.forEach(([column, value], i) => {
      test(`${4 + i}. ${column} of an event edited`, async () => {
        const { tenant } = await anchoredTenant();
        await tamper(
          one(`UPDATE audit_events SET ${column} = ${value} WHERE tenant_id = $1 AND seq = 6`, [tenant.id]),
        );
        assertBroken(await verify(tenant), { seq: '6', reason: /do not match its MAC/, since: '4' });
      });
      test(`${10 + i}. ${column} of an event edited and every hash after it recomputed`, async () => {
        const { tenant } = await anchoredTenant();
        await tamper(
          one(`UPDATE audit_events SET ${column} = ${value} WHERE tenant_id = $1 AND seq = 6`, [tenant.id]),
        );
        await recompute(tenant.id, 6, i % 2 === 0 ? 'v1' : 'fake-v2');
        assertBroken(await verify(tenant), {
          seq: '6',
          reason: i % 2 === 0 ? /unkeyed \(v1\) event follows keyed ones/ : /do not match its MAC/,
          since: '4',
        });
      });
    });

    test('16. an event deleted and the later ones renumbered, links recomputed', async () => {
      const { tenant } = await anchoredTenant();
      await tamper(
        one('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 5', [tenant.id]),
        one('UPDATE audit_events SET seq = seq - 1 WHERE tenant_id = $1 AND seq = 6', [tenant.id]),
        one('UPDATE audit_events SET seq = seq - 1 WHERE tenant_id = $1 AND seq = 7', [tenant.id]),
      );
      await recompute(tenant.id, 5, 'fake-v2');
      assertBroken(await verify(tenant), { seq: '5', reason: /do not match its MAC/, since: '4' });
    });

    test('17. a forged event appended with an unkeyed hash', async () => {
      const { tenant } = await anchoredTenant();
      const [last] = (await rowsOf(tenant.id)).slice(-1);
      const { occurred_us: _, ...head } = last!;
      const forged = {
        ...head,
        seq: '8',
        id: newId(),
        action: 'user.password_changed',
        prev_hash: head.hash,
      };
      await tamper(
        one(`INSERT INTO audit_events (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`, [
          ...Object.values({ ...forged, hash: hashEvent(forged) }),
        ]),
      );
      assertBroken(await verify(tenant), {
        seq: '8',
        reason: /unkeyed \(v1\) event follows keyed ones/,
        since: '7',
      });
    });

    test('18. a forged event appended with a keyed-format link computed without the key', async () => {
      const { tenant } = await anchoredTenant();
      const [last] = (await rowsOf(tenant.id)).slice(-1);
      const unlinked = {
        ...last!,
        seq: '8',
        id: newId(),
        action: 'user.password_changed',
        prev_hash: last!.hash,
      };
      const { occurred_us: _, ...forged } = { ...unlinked, hash: unkeyedV2(unlinked) };
      await tamper(
        one(`INSERT INTO audit_events (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`, [
          ...Object.values(forged),
        ]),
      );
      assertBroken(await verify(tenant), { seq: '8', reason: /do not match its MAC/, since: '7' });
    });

    test("19. another tenant's events replayed into a tenant", async () => {
      const { tenant: a } = await anchoredTenant();
      const { tenant: b } = await anchoredTenant();
      await tamper(
        one('DELETE FROM audit_events WHERE tenant_id = $1', [b.id]),
        one(
          `INSERT INTO audit_events (${COLUMNS}) SELECT $2, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash FROM audit_events WHERE tenant_id = $1`,
          [a.id, b.id],
        ),
      );
      assertBroken(await verify(b), { seq: '1', reason: /do not match its MAC/ });
    });

    test("25. another tenant's events replayed into a tenant and relinked under its tenant id", async () => {
      const { tenant: a } = await anchoredTenant();
      const { tenant: b } = await anchoredTenant();
      await tamper(
        one('DELETE FROM audit_events WHERE tenant_id = $1', [b.id]),
        one(
          `INSERT INTO audit_events (${COLUMNS}) SELECT $2, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash FROM audit_events WHERE tenant_id = $1`,
          [a.id, b.id],
        ),
      );
      await recompute(b.id, 1, 'fake-v2');
      assertBroken(await verify(b), { seq: '1', reason: /do not match its MAC/ });
    });

    test("20. an event's time moved by half a millisecond", async () => {
      const { tenant } = await anchoredTenant();
      await tamper(
        one(
          `UPDATE audit_events SET occurred_at = occurred_at + interval '500 microseconds' WHERE tenant_id = $1 AND seq = 6`,
          [tenant.id],
        ),
      );
      assertBroken(await verify(tenant), { seq: '6', reason: /do not match its MAC/, since: '4' });
    });

    test("21. an event's time moved by a second", async () => {
      const { tenant } = await anchoredTenant();
      await tamper(
        one(
          `UPDATE audit_events SET occurred_at = occurred_at - interval '1 second' WHERE tenant_id = $1 AND seq = 6`,
          [tenant.id],
        ),
      );
      assertBroken(await verify(tenant), { seq: '6', reason: /do not match its MAC/, since: '4' });
    });

    test('22. two events swapped in order', async () => {
      const { tenant } = await anchoredTenant();
      const move = 'UPDATE audit_events SET seq = $3 WHERE tenant_id = $1 AND seq = $2';
      await tamper(
        one(move, [tenant.id, 5, 1000]),
        one(move, [tenant.id, 6, 5]),
        one(move, [tenant.id, 1000, 6]),
      );
      assertBroken(await verify(tenant), { seq: '5', reason: /previous-hash/, since: '4' });
    });

    test('23. an event in the middle deleted', async () => {
      const { tenant } = await anchoredTenant();
      await tamper(one('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 5', [tenant.id]));
      assertBroken(await verify(tenant), { seq: '6', reason: /expected event #5 but found #6/, since: '4' });
    });

    test('24. the whole chain rewritten from the first event as a valid unkeyed chain', async () => {
      const { tenant } = await anchoredTenant();
      await tamper(
        one(`UPDATE audit_events SET actor = 'user:mallory' WHERE tenant_id = $1 AND seq = 3`, [tenant.id]),
      );
      await recompute(tenant.id, 1, 'v1');
      // Every link holds on its own: only the checkpoints know the chain had another head.
      assertBroken(await verify(tenant), { seq: '4', reason: /not the one the checkpoint of .* names/ });
    });

    test('a checkpoint written into the object store without the audit key is refused', async () => {
      const { tenant } = await anchoredTenant();
      const [key] = (await app.objects.list(checkpointPrefix(tenant.id))).items.map((i) => i.key);
      const { body } = await app.objects.get(key!);
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      // Same signature, another tenant's prefix: the MAC names the tenant, so it does not open there.
      const { tenant: other } = await anchoredTenant();
      await app.objects.put(`${checkpointPrefix(other.id)}99999999999999999999_x.jws`, Buffer.concat(chunks));
      const report = await verify(other);
      assert.equal(report.ok, false);
      assert.equal(report.code, 'audit.chain_broken');
      assert.match(report.broken!.reason, /cannot be trusted: it is another tenant's checkpoint/);
    });

    test('a checkpoint forged by someone without the audit key is refused, however well signed', async () => {
      const { tenant } = await anchoredTenant();
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      // Claims the chain ended at #2, to hide every event after it.
      const body = {
        format: 'orthid-audit-checkpoint',
        version: 1,
        tenantId: tenant.id,
        seq: '2',
        head: (await rowsOf(tenant.id))[1]!.hash,
        at: new Date().toISOString(),
      };
      // The MAC's input is public; only the key is not: a plain hash of it stands in.
      const input = `orthid-audit-checkpoint/v1\u0000${JSON.stringify([body.tenantId, body.seq, body.head, body.at])}`;
      const forged = { ...body, mac: createHash('sha256').update(input).digest('hex') };
      const jws = await new CompactSign(Buffer.from(JSON.stringify(forged)))
        .setProtectedHeader({
          alg: 'EdDSA',
          typ: 'orthid-audit-checkpoint+jws',
          jwk: await exportJWK(publicKey),
        })
        .sign(privateKey);
      await app.objects.put(
        `${checkpointPrefix(tenant.id)}00000000000000000002_forged.jws`,
        Buffer.from(jws),
      );
      const report = await verify(tenant);
      assert.equal(report.ok, false);
      assert.equal(report.code, 'audit.chain_broken');
      assert.match(report.broken!.reason, /cannot be trusted: its MAC does not match the tenant's audit key/);
    });

    test('unkeyed (v1) events written before the chain was keyed still verify, followed by keyed ones', async () => {
      const tenant = await app.tenants.create({ slug: `t${newId().slice(-12)}`, actor: 'test' });
      await tamper(one('DELETE FROM audit_events WHERE tenant_id = $1', [tenant.id]));
      let prev = GENESIS_HASH;
      const statements: [string, unknown[]][] = [];
      for (let seq = 1; seq <= 3; seq++) {
        const row = {
          tenant_id: tenant.id,
          seq: String(seq),
          id: newId(),
          occurred_at: new Date(Date.UTC(2024, 0, seq, 12, 0, 0, 123)),
          actor: 'system',
          action: 'legacy.event',
          target: null,
          ip: null,
          user_agent: null,
          outcome: 'success' as const,
          details: null,
          prev_hash: prev,
        };
        const hash = hashEvent(row);
        statements.push([
          `INSERT INTO audit_events (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
          [...Object.values(row), hash],
        ]);
        prev = hash;
      }
      await tamper(...statements);
      await append(tenant, 2);
      const report = await verify(tenant);
      assert.equal(report.ok, true, JSON.stringify(report));
      assert.equal(report.events, 5);
      assert.match(report.headHash, /^v2:/);
      // A sub-millisecond edit of a v1 event shows too, though its encoding has milliseconds.
      await tamper(
        one(
          `UPDATE audit_events SET occurred_at = occurred_at + interval '1 microsecond' WHERE tenant_id = $1 AND seq = 2`,
          [tenant.id],
        ),
      );
      assertBroken(await verify(tenant), { seq: '2', reason: /below a millisecond/ });
    });
  });

  describe(`backups name each tenant's audit checkpoint (${driver})`, { timeout: 120_000 }, () => {
    let app: TestOrthId;
    let work: string;

    before(async () => {
      app = await createTestOrthId(driver);
      work = await mkdtemp(join(tmpdir(), 'orthid-audit-backup-'));
    });
    after(async () => {
      await app.close();
      await rm(work, { recursive: true, force: true });
    });

    test('the manifest names the checkpoint written before the dump; the audit-log check finds the chain cut behind it', async () => {
      const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      await withTenant(app.db, tenant.id, async (tx) =>
        appendAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), {
          actor: 'system',
          action: 'test.event',
          outcome: 'success',
        }),
      );
      const manifest = await runBackupDump(
        {
          config: app.config,
          db: app.db,
          objects: app.objects,
          keystore: app.keystore,
          clock: app.clock,
          auditCheckpoints: () => checkpointTenants(app),
        },
        {
          encrypt: false,
          upload: false,
          recipients: [],
          dest: pathToFileURL(join(work, 'sets')).href,
          destConfigured: true,
        },
      );
      const named = manifest.audit?.checkpoints.find((c) => c.tenantId === tenant.id);
      assert.equal(named?.tenant, 'acme');
      assert.equal(named?.seq, '2');
      assert.ok(named && (await app.objects.head(named.key)), 'the named checkpoint is in the object store');
      const audit = async () => (await runVerificationChecks(app)).find((r) => r.name === 'audit-log')!;
      const intact = await audit();
      assert.equal(intact.ok, true, intact.detail);
      assert.match(intact.detail, /held against a checkpoint/);

      await app.db.ownerTransaction(async (tx) => {
        await tx.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
        await tx.query('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 2', [tenant.id]);
        await tx.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
      });
      const cut = await audit();
      assert.equal(cut.ok, false);
      assert.match(
        cut.detail,
        new RegExp(
          `acme is broken at event #2: events after #1 are missing: the checkpoint of ${named!.at} names #2`,
        ),
      );
    });
  });
}
