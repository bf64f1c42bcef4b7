// The control socket of a running embedded server, called as the CLI calls it: what an operation
// changes through it is audited as `cli:control`, what the CLI runs in its own process as `cli`,
// and the chain verifies with both.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../src/audit/audit-log.js';
import { callControlSocket } from '../../src/cli/control-client.js';
import { createLogger } from '../../src/core/logger.js';
import { runOperation } from '../../src/ops/operations.js';
import { startControlSocket } from '../../src/server/control-socket.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { blackPng } from '../helpers/png.js';

describe('operations through the control socket', { timeout: 120_000 }, () => {
  let app: TestOrthId;
  let control: FastifyInstance;
  let dir: string;
  let socket: string;

  before(async () => {
    app = await createTestOrthId('pglite');
    dir = await mkdtemp(join(tmpdir(), 'orthid-control-'));
    socket = join(dir, 'control.sock');
    control = await startControlSocket(app, socket, createLogger('silent'));
  });

  after(async () => {
    await control?.close();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const eventsOf = async (slug: string) => {
    const tenant = await app.tenants.get(slug);
    return withTenant(app.db, tenant.id, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
    );
  };

  test('what the running server runs for the CLI is audited as cli:control, in every operation that changes something', async () => {
    await callControlSocket(socket, 'tenant.create', { slug: 'acme', displayName: 'Acme' });
    const user = (await callControlSocket(socket, 'user.create', {
      tenant: 'acme',
      email: 'ada@acme.test',
    })) as { id: string };
    await callControlSocket(socket, 'keystore.rotateSigning', { tenant: 'acme' });
    await callControlSocket(socket, 'tenant.logo-set', {
      tenant: 'acme',
      imageBase64: blackPng(32, 32).toString('base64'),
    });
    await callControlSocket(socket, 'user.reenrol', { tenant: 'acme', id: user.id });
    const events = await eventsOf('acme');
    for (const action of [
      'tenant.created',
      'user.created',
      'signing_key.rotated',
      'tenant.logo_set',
      'user.mfa_reenrolment_required',
    ]) {
      const event = events.find((e) => e.action === action);
      assert.ok(event, `${action} was audited`);
      assert.equal(event.actor, 'cli:control', action);
    }
    assert.ok(!events.some((e) => e.actor === 'cli'), 'nothing through the socket reads as the bare cli');
  });

  test('the CLI in its own process is still cli, and the chain verifies over both actors', async () => {
    await runOperation(app, 'user.create', { tenant: 'acme', email: 'grace@acme.test' });
    const created = (await eventsOf('acme')).filter((e) => e.action === 'user.created');
    assert.deepEqual(
      created.map((e) => e.actor),
      ['cli', 'cli:control'],
    );
    const report = (await callControlSocket(socket, 'audit.verify', { tenant: 'acme' })) as {
      ok: boolean;
      events: number;
    };
    assert.equal(report.ok, true);
    assert.ok(report.events >= 6);
  });
});
