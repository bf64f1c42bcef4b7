import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { checkOutput } from './operation.js';
import { operations } from './operations.js';

const tenant = {
  id: '0190c1d2-aaaa-7000-8000-000000000001',
  slug: 'acme',
  displayName: 'Acme',
  status: 'active',
  settings: {},
  createdAt: '2026-06-22T02:00:00.000Z',
  issuer: 'https://id.example.com/t/acme',
};

describe('operation results at the control socket', () => {
  test('a result that matches its schema passes unchanged', () => {
    const answer = [tenant];
    assert.equal(checkOutput(operations['tenant.list'], answer, 'received'), answer);
  });

  test('an answer of another shape is refused as control.unavailable, naming the field', () => {
    const { issuer: _issuer, ...withoutIssuer } = tenant;
    assert.throws(
      () => checkOutput(operations['tenant.list'], [withoutIssuer], 'received'),
      (e: unknown) =>
        isOrthIdError(e, 'control.unavailable') &&
        e.details?.field === '0.issuer' &&
        /tenant\.list/.test(e.message),
    );
    assert.throws(
      () => checkOutput(operations['backup.recordDrill'], { recorded: 'yes' }, 'received'),
      (e: unknown) => isOrthIdError(e, 'control.unavailable') && e.details?.field === 'recorded',
    );
  });

  test('a server whose result does not match its own schema fails as internal.unexpected', () => {
    assert.throws(
      () =>
        checkOutput(
          operations['tenant.configure'],
          {
            tenant: 'acme',
            idTokenClaims: 'maybe',
            defaultLocale: 'en',
            mailFrom: 'OrthID <no-reply@example.org>',
            mfa: { mode: 'off', organisations: [], roles: [] },
            signUp: 'off',
            signUpDomains: [],
            displayName: 'Acme',
            brandColour: 'default',
            supportContact: 'none',
            selfDelete: 'off',
          },
          'sent',
        ),
      (e: unknown) => isOrthIdError(e, 'internal.unexpected') && e.details?.field === 'idTokenClaims',
    );
  });

  test('every operation declares an output schema', () => {
    for (const operation of Object.values(operations)) {
      assert.equal(typeof operation.output, 'object', operation.name);
      assert.ok(
        Object.hasOwn(operation.output, 'type') || Object.hasOwn(operation.output, 'anyOf'),
        operation.name,
      );
    }
  });
});
