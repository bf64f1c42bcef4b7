import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { decodeKeystoreExport, encodeKeystoreExport } from './keystore-export.js';
import type { KeystoreContents } from './keystore-format.js';

const contents: KeystoreContents = {
  deploymentId: '0190c1d2-aaaa-7000-8000-00000000dep1',
  createdAt: '2025-01-02T03:04:05.000Z',
  rootKeys: [
    {
      id: 'mk_1',
      key: Buffer.alloc(32, 1).toString('base64'),
      createdAt: '2025-01-02T03:04:05.000Z',
      status: 'active',
    },
  ],
  secrets: { canary: 'x' },
};

function corruptNaming(body: unknown, pattern: RegExp) {
  assert.throws(
    () => decodeKeystoreExport(Buffer.from(JSON.stringify(body))),
    (error: unknown) => {
      assert.ok(isOrthIdError(error, 'keystore.corrupt'), String(error));
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('the keystore export format (what restore, import and backup verify read)', () => {
  const body = JSON.parse(
    encodeKeystoreExport(contents, new Date('2025-06-07T08:09:10.000Z')).toString('utf8'),
  );

  test('an export reads back as the contents it was written from', () => {
    assert.deepEqual(decodeKeystoreExport(Buffer.from(JSON.stringify(body))), contents);
  });

  test('another format version, or a damaged key, is keystore.corrupt naming the field', () => {
    corruptNaming({ ...body, version: 2 }, /field version/);
    corruptNaming(
      { ...body, keystore: { ...body.keystore, rootKeys: [{ ...contents.rootKeys[0], status: 'lost' }] } },
      /keystore\.rootKeys\[0\]\.status/,
    );
    corruptNaming(
      { ...body, keystore: { ...body.keystore, deploymentId: undefined } },
      /keystore\.deploymentId/,
    );
  });
});
