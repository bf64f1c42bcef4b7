import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditRow } from '../../src/audit/audit.queries.js';
import { GENESIS_HASH, hashEvent } from '../../src/audit/audit-chain.js';
import { verifyAuditChain } from '../../src/audit/audit-log.js';
import { newId } from '../../src/core/ids.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const COLUMNS =
  'tenant_id, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash';

/** PostgreSQL's own form, which (unlike JSON's +YYYYYY) both drivers take for years past 9999. */
const pgTimestamp = (at: Date) => at.toISOString().replace(/^\+0*/, '').replace('T', ' ').replace('Z', '+00');

type Fields = Partial<Omit<AuditRow, 'tenant_id' | 'seq' | 'id' | 'prev_hash' | 'hash'>>;

/** Events whose contents the writer never produces itself (it seals ip, user agent and details). */
const AWKWARD: Fields[] = [
  { actor: 'user:"quoted"', action: 'back\\slash\\"', target: null },
  { actor: 'tab\there', action: 'lines\r\n\b\f', target: 'ctl\u0001\u001f\u007f', details: '{"a":[1,"b"]}' },
  {
    actor: 'Ünïcødé',
    action: 'emoji 🎉 and \u2028\u2029',
    target: '中文',
    ip: '203.0.113.7',
    user_agent: '',
  },
  { occurred_at: new Date('1970-01-01T00:00:00.000Z'), outcome: 'failure' },
  { occurred_at: new Date('2099-12-31T23:59:59.999Z'), details: 'null' },
  { occurred_at: new Date('0001-01-01T00:00:00.001Z') },
];

for (const driver of DRIVERS) {
  describe(`the audit chain check (${driver})`, () => {
    let app: TestOrthId;

    before(async () => {
      app = await createTestOrthId(driver);
    });
    after(() => app.close());

    /** Appends events with valid links and hashes made by audit-chain.ts, as the writer would. */
    async function append(tenantId: string, events: Fields[]): Promise<AuditRow[]> {
      return app.db.ownerTransaction(async (tx) => {
        const { rows } = await tx.query<AuditRow>(
          `SELECT ${COLUMNS} FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`,
          [tenantId],
        );
        let seq = rows[0] ? BigInt(rows[0].seq) : 0n;
        let prev = rows[0]?.hash ?? GENESIS_HASH;
        const written: AuditRow[] = [];
        for (const fields of events) {
          seq += 1n;
          const row: Omit<AuditRow, 'hash'> = {
            tenant_id: tenantId,
            seq: String(seq),
            id: newId(),
            occurred_at: new Date(),
            actor: 'system',
            action: 'test.event',
            target: null,
            ip: null,
            user_agent: null,
            outcome: 'success',
            details: null,
            ...fields,
            prev_hash: prev,
          };
          const full = { ...row, hash: hashEvent(row) };
          await tx.query(
            `INSERT INTO audit_events (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
            [
              full.tenant_id,
              full.seq,
              full.id,
              pgTimestamp(full.occurred_at),
              full.actor,
              full.action,
              full.target,
              full.ip,
              full.user_agent,
              full.outcome,
              full.details,
              full.prev_hash,
              full.hash,
            ],
          );
          written.push(full);
          prev = full.hash;
        }
        return written;
      });
    }

    /** Changes stored events the way an intruder with the owner's rights could. */
    async function tamper(sql: string, params: unknown[]): Promise<void> {
      await app.db.ownerTransaction(async (tx) => {
        await tx.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
        await tx.query(sql, params);
        await tx.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
      });
    }

    /** A tenant whose chain is all unkeyed (v1) events, as written before the chain was keyed. */
    async function tenantWith(events: Fields[]): Promise<{ id: string; rows: AuditRow[] }> {
      const tenant = await app.tenants.create({ slug: `t${newId().slice(-12)}`, actor: 'test' });
      await tamper('DELETE FROM audit_events WHERE tenant_id = $1', [tenant.id]);
      const rows = await append(tenant.id, events);
      return { id: tenant.id, rows };
    }

    const verify = (tenantId: string) =>
      withTenant(app.db, tenantId, async (tx) =>
        verifyAuditChain(tx, await app.tenantKeys.forTenant(tx, tenantId)),
      );

    test('a chain of events with quotes, backslashes, control characters and any text verifies to its head', async () => {
      const { id, rows } = await tenantWith([...AWKWARD, {}, {}]);
      const report = await verify(id);
      assert.deepEqual(report, { ok: true, events: Number(rows.at(-1)!.seq), headHash: rows.at(-1)!.hash });
    });

    test('an event dated after year 9999 verifies too', async () => {
      const { id, rows } = await tenantWith([
        {},
        { occurred_at: new Date('+010000-01-01T00:00:00.000Z') },
        {},
      ]);
      assert.deepEqual(await verify(id), {
        ok: true,
        events: Number(rows.at(-1)!.seq),
        headHash: rows.at(-1)!.hash,
      });
    });

    test('an edited event is named, with the events before it counted', async () => {
      const { id, rows } = await tenantWith([{}, {}, {}, {}]);
      const target = rows[1]!;
      await tamper(`UPDATE audit_events SET target = 'edited' WHERE tenant_id = $1 AND seq = $2`, [
        id,
        target.seq,
      ]);
      const report = await verify(id);
      assert.equal(report.ok, false);
      assert.equal(report.broken?.seq, target.seq);
      assert.match(report.broken!.reason, /altered/);
      assert.equal(report.events, Number(target.seq) - 1);
      assert.equal(report.headHash, rows[0]!.hash);
    });

    test('an edited last event, which no later event points at, is named', async () => {
      const { id, rows } = await tenantWith([{}, {}, { details: 'x' }]);
      const last = rows.at(-1)!;
      await tamper(`UPDATE audit_events SET details = 'y' WHERE tenant_id = $1 AND seq = $2`, [id, last.seq]);
      const report = await verify(id);
      assert.equal(report.ok, false);
      assert.equal(report.broken?.seq, last.seq);
    });

    test('an event rewritten with a fresh hash breaks the link from the next one', async () => {
      const { id, rows } = await tenantWith([{}, {}, {}]);
      const edited = { ...rows[1]!, actor: 'mallory' };
      await tamper(`UPDATE audit_events SET actor = $3, hash = $4 WHERE tenant_id = $1 AND seq = $2`, [
        id,
        edited.seq,
        edited.actor,
        hashEvent(edited),
      ]);
      const report = await verify(id);
      assert.equal(report.broken?.seq, rows[2]!.seq);
      assert.match(report.broken!.reason, /previous-hash/);
    });

    test('a removed event is named as missing', async () => {
      const { id, rows } = await tenantWith([{}, {}, {}, {}]);
      const removed = rows[2]!;
      await tamper('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = $2', [id, removed.seq]);
      const report = await verify(id);
      assert.equal(report.ok, false);
      assert.equal(report.broken?.seq, rows[3]!.seq);
      assert.match(report.broken!.reason, /missing/);
    });

    test('two events swapped in order are named', async () => {
      const { id, rows } = await tenantWith([{}, {}, {}, {}]);
      const [a, b] = [rows[1]!.seq, rows[2]!.seq];
      // Through a free seq: the primary key is checked row by row.
      const move = 'UPDATE audit_events SET seq = $3 WHERE tenant_id = $1 AND seq = $2';
      await tamper(move, [id, a, '1000000']);
      await tamper(move, [id, b, a]);
      await tamper(move, [id, '1000000', b]);
      const report = await verify(id);
      assert.equal(report.ok, false);
      assert.equal(report.broken?.seq, a);
    });
  });
}
