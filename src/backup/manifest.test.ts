import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { parseManifest } from './manifest.js';

const manifest = {
  format: 'orthid-backup-manifest',
  formatVersion: 1,
  setId: '0190-20260622T020000Z',
  deploymentId: '0190c1d2-aaaa-7000-8000-00000000dep1',
  orthidVersion: '0.1.0',
  schemaVersion: 8,
  region: 'local',
  startedAt: '2026-06-22T02:00:00.000Z',
  finishedAt: '2026-06-22T02:00:05.000Z',
  encrypted: true,
  recipients: ['sha256:ab'],
  database: {
    engine: 'postgres',
    serverVersion: '15.8',
    serverVersionNum: 150008,
    format: 'custom',
    dumpTool: 'pg_dump (PostgreSQL) 15.8',
    compression: 'zstd',
  },
  keys: { custody: 'managed', rootKeyIds: ['mk_1'], keystoreRootKeyIds: ['mk_1'], keystoreIncluded: true },
  objects: { count: 0, bytes: 0 },
  parts: [
    {
      name: 'db.dump.age',
      kind: 'database',
      location: 'dest',
      key: '2026/06/22/x/db.dump.age',
      encrypted: true,
      size: 10,
      sha256: 'a'.repeat(64),
    },
  ],
};

function refusedNaming(text: string, pattern: RegExp) {
  assert.throws(
    () => parseManifest(text),
    (error: unknown) => {
      assert.ok(isOrthIdError(error, 'backup.manifest_invalid'), String(error));
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('the backup manifest format', () => {
  test('a manifest as dump writes it reads back unchanged', () => {
    assert.deepEqual(parseManifest(JSON.stringify(manifest)), manifest);
  });

  test('a damaged field is refused with backup.manifest_invalid naming the field', () => {
    const part = { ...manifest.parts[0]!, sha256: 'not hex' };
    refusedNaming(JSON.stringify({ ...manifest, parts: [part] }), /parts\[0\]\.sha256/);
    refusedNaming(JSON.stringify({ ...manifest, parts: [] }), /field parts/);
    refusedNaming(
      JSON.stringify({ ...manifest, database: { ...manifest.database, format: 'tar' } }),
      /database\.format/,
    );
    const { schemaVersion: _, ...noSchema } = manifest;
    refusedNaming(JSON.stringify(noSchema), /schemaVersion/);
    refusedNaming('{"format": ', /not JSON/);
  });

  test('a later format version asks for a newer OrthID', () => {
    refusedNaming(JSON.stringify({ ...manifest, formatVersion: 2 }), /format version 2.*use a newer OrthID/);
  });
});
