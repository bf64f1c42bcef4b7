import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OrthIdError } from '../../core/errors.js';
import { asConnectionLoss, isConnectionLoss } from './pg-errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('connection loss, as node-postgres reports it', () => {
  test('a shutdown, a crash, a server not accepting yet and a broken socket are connection loss', () => {
    for (const error of [
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('terminating connection because of crash of another server process', '57P02'),
      withCode('the database system is starting up', '57P03'),
      withCode('connection failure', '08006'),
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      withCode('read ECONNRESET', 'ECONNRESET'),
      withCode('write EPIPE', 'EPIPE'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Client has encountered a connection error and is not queryable'),
      new Error('wrapped', { cause: withCode('read ECONNRESET', 'ECONNRESET') }),
    ]) {
      assert.equal(isConnectionLoss(error), true, error.message);
    }
  });

  test('an error the statement itself caused is not connection loss', () => {
    for (const error of [
      withCode('duplicate key value violates unique constraint', '23505'),
      withCode('permission denied for table tenants', '42501'),
      withCode('canceling statement due to conflict with recovery', '40001'),
      new Error('something else'),
      new OrthIdError('tenant.not_found', 'No tenant'),
    ]) {
      assert.equal(isConnectionLoss(error), false, error.message);
    }
  });

  test('becomes db.unavailable (503) without repeating the cause, and leaves other errors alone', () => {
    const mapped = asConnectionLoss(
      withCode('connect ECONNREFUSED postgres://u:secret@db/x', 'ECONNREFUSED'),
    );
    assert.ok(mapped instanceof OrthIdError);
    assert.equal(mapped.code, 'db.unavailable');
    assert.equal(mapped.httpStatus, 503);
    assert.doesNotMatch(mapped.message, /secret/);
    const other = withCode('duplicate key', '23505');
    assert.equal(asConnectionLoss(other), other);
  });
});
