// A PostgreSQL connection lost under a request (terminated by the server, cut mid-statement, or
// never answered) fails that request with db.unavailable; the process and the pool carry on.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import type { Database } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { createTestDatabase } from '../helpers/postgres.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unavailable = (error: unknown) => {
  assert.ok(isOrthIdError(error, 'db.unavailable'), `expected db.unavailable, got ${String(error)}`);
  assert.equal(error.httpStatus, 503);
  return true;
};

describe('a lost PostgreSQL connection', () => {
  let db: Database;

  before(async () => {
    db = await openPostgres(await createTestDatabase(), { max: 3 });
  });
  after(() => db.close());

  async function gone(pid: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.ownerQuery('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
      if (rows.length === 0) break;
      await sleep(20);
    }
    // The client reads the server's goodbye in the event loop's next I/O turn.
    await sleep(100);
  }

  test('terminated between two statements of a transaction, fails that transaction with db.unavailable and not the process', {
    timeout: 20_000,
  }, async () => {
    await assert.rejects(
      db.ownerTransaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        const pid = rows[0]!.pid;
        // The administrator's (or a restart's) 57P01 reaches a checked-out, idle client.
        await db.ownerQuery('SELECT pg_terminate_backend($1)', [pid]);
        await gone(pid);
        await tx.query('SELECT 1');
      }),
      unavailable,
    );
    // The broken connection left the pool; the next request gets a working one.
    const { rows } = await db.ownerQuery<{ one: number }>('SELECT 1 AS one');
    assert.equal(rows[0]!.one, 1);
  });

  test('terminated while a pipelined statement runs, fails that statement with db.unavailable', {
    timeout: 20_000,
  }, async () => {
    const q = db.statements({ sql: `SELECT set_config('application_name', $1, true)`, params: ['sleeper'] });
    const sleeping = q.query('SELECT pg_sleep(30)').then(
      () => assert.fail('the statement was not cut off'),
      (error: unknown) => error,
    );
    let killed = false;
    for (let i = 0; !killed && i < 100; i++) {
      const { rows } = await db.ownerQuery<{ killed: boolean }>(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event = 'PgSleep'`,
      );
      killed = rows.some((r) => r.killed);
      if (!killed) await sleep(20);
    }
    assert.ok(killed);
    unavailable(await sleeping);
    assert.equal((await q.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
  });
});

describe('a PostgreSQL that accepts connections and never answers', () => {
  let server: Server;
  const sockets: Socket[] = [];
  let port: number;

  before(async () => {
    server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  test('is given up after the connect timeout with db.unavailable, not waited for forever', {
    timeout: 20_000,
  }, async () => {
    const started = Date.now();
    await assert.rejects(
      openPostgres(`postgres://orthid@127.0.0.1:${port}/orthid`, { connectTimeoutMs: 500 }),
      unavailable,
    );
    assert.ok(Date.now() - started < 10_000);
  });
});
