// Asserts a promise rejects with one OrthIdError code, and hands the error back for more checks
// (e.g. that a PIN or key never appears in its message).
import assert from 'node:assert/strict';
import { type ErrorCode, isOrthIdError } from '../../src/core/errors.js';

export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isOrthIdError(error), `expected an OrthIdError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}
