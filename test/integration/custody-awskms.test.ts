// AWS KMS key custody against moto's server: a KMS-protocol emulator (the real JSON 1.1 protocol,
// encryption contexts enforced), not AWS itself — no real KMS can run here.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import { parseAwsKmsUri } from '../../src/config/awskms-uri.js';
import { AwsKmsCustody, openAwsKmsCustody, unwrapFailure } from '../../src/crypto/custody/awskms.js';
import { rejectsWith } from '../helpers/errors.js';
import { type KmsTestServer, startKmsServer } from '../helpers/kms-server.js';
import { freePort } from '../helpers/postgres.js';

const TENANT_A = '0193a5f0-0000-7000-8000-00000000000a';
const TENANT_B = '0193a5f0-0000-7000-8000-00000000000b';

function uri(text: string) {
  const parsed = parseAwsKmsUri(text);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join(' '));
  return parsed.value;
}

describe('awskms custody (tests against moto_server, a stand-in KMS-protocol server)', () => {
  let server: KmsTestServer;
  let custody: AwsKmsCustody;

  before(async () => {
    server = await startKmsServer();
    custody = await openAwsKmsCustody({
      uri: uri(`awskms:${server.alias}?region=${server.region}&endpoint=${server.endpoint}`),
    });
  });
  after(async () => {
    await custody?.close();
    await server?.stop();
  });

  test('init checks the operator’s key and names it by ARN; it never creates one', async () => {
    assert.deepEqual(await custody.init(), { rootKeyId: server.keyArn, created: false });
    await custody.check();
  });

  test('a data key wrapped by KMS unwraps to the same bytes; the root key id is the key’s ARN', async () => {
    const dataKey = randomBytes(32);
    const wrapped = await custody.wrap(dataKey, 'tenant-key:one', 'deployment');
    assert.equal(wrapped.custody, 'awskms');
    assert.equal(wrapped.rootKeyId, server.keyArn);
    assert.ok(!Buffer.from(wrapped.wrapped, 'base64url').includes(dataKey));
    assert.deepEqual(await custody.unwrap(wrapped, 'tenant-key:one'), dataKey);
  });

  test('the encryption context binds a wrapped key to its owner and scope', async () => {
    const wrapped = await custody.wrap(randomBytes(32), 'tenant-key:a', 'deployment');
    await rejectsWith(custody.unwrap(wrapped, 'tenant-key:b'), 'crypto.decrypt_failed');
    // Claiming another scope for the same ciphertext changes the context KMS checks.
    const blob = Buffer.from(wrapped.wrapped, 'base64url');
    const scope = Buffer.from('deployment');
    const forged = Buffer.concat([
      Buffer.from([1, scope.length]),
      Buffer.from('deploymenX'),
      blob.subarray(2 + scope.length),
    ]);
    await rejectsWith(
      custody.unwrap({ ...wrapped, wrapped: forged.toString('base64url') }, 'tenant-key:a'),
      'crypto.decrypt_failed',
    );
    await rejectsWith(custody.unwrap({ ...wrapped, wrapped: 'AA' }, 'tenant-key:a'), 'crypto.decrypt_failed');
  });

  test('each tenant gets its own KMS key, tagged as OrthID’s; shredding one tenant leaves the others', async () => {
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    const keyD = randomBytes(32);
    const wrappedA = await custody.wrap(keyA, 'a', TENANT_A);
    const wrappedB = await custody.wrap(keyB, 'b', TENANT_B);
    const wrappedD = await custody.wrap(keyD, 'd', 'deployment');
    assert.notEqual(wrappedA.rootKeyId, server.keyArn);
    assert.notEqual(wrappedA.rootKeyId, wrappedB.rootKeyId);
    assert.equal((await custody.wrap(randomBytes(32), 'a2', TENANT_A)).rootKeyId, wrappedA.rootKeyId);
    const tags = await server.client.send(new ListResourceTagsCommand({ KeyId: wrappedA.rootKeyId }));
    assert.deepEqual(Object.fromEntries((tags.Tags ?? []).map((t) => [t.TagKey, t.TagValue])), {
      'orthid:managed-by': 'orthid',
      'orthid:scope': TENANT_A,
    });
    const listed = await custody.rootKeys();
    assert.deepEqual(
      listed.map((k) => [k.scope, k.id, k.status]).sort(),
      [
        [TENANT_A, wrappedA.rootKeyId, 'active'],
        [TENANT_B, wrappedB.rootKeyId, 'active'],
        ['deployment', server.keyArn, 'active'],
      ].sort(),
    );

    await custody.destroy(wrappedA.rootKeyId);

    // KMS refuses Decrypt under a key pending deletion, and deletes it after the window; moto
    // records the state but still decrypts, so the state is what is checked here (the error
    // mapping is checked below).
    const { KeyMetadata: shredded } = await server.client.send(
      new DescribeKeyCommand({ KeyId: wrappedA.rootKeyId }),
    );
    assert.equal(shredded?.KeyState, 'PendingDeletion');
    const days = (shredded!.DeletionDate!.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `deletion in ${days} days`);
    await assert.rejects(server.client.send(new DescribeKeyCommand({ KeyId: `alias/orthid/${TENANT_A}` })), {
      name: 'NotFoundException',
    });
    await custody.destroy(wrappedA.rootKeyId); // destroying twice is not an error
    assert.deepEqual(await custody.unwrap(wrappedB, 'b'), keyB);
    assert.deepEqual(await custody.unwrap(wrappedD, 'd'), keyD);
    assert.deepEqual(
      (await custody.rootKeys()).map((k) => k.scope).sort(),
      [TENANT_B, 'deployment'].sort(),
      'the shredded tenant’s key is no longer listed',
    );
  });

  test('destroy refuses the deployment’s key and keys OrthID did not create', async () => {
    const refused = await rejectsWith(custody.destroy(server.keyArn), 'keystore.destroy_refused');
    assert.match(refused.message, /never deletes the deployment/);
    const foreign = await server.client.send(new CreateKeyCommand({ Description: 'someone else’s key' }));
    await rejectsWith(custody.destroy(foreign.KeyMetadata!.Arn!), 'keystore.destroy_refused');
    await custody.check();
  });

  test('rotate keeps the key id, since KMS rotates the backing key material under it', async () => {
    assert.equal(await custody.rotate('deployment'), server.keyArn);
    const tenantKey = (await custody.wrap(randomBytes(32), 'b', TENANT_B)).rootKeyId;
    assert.equal(await custody.rotate(TENANT_B), tenantKey);
  });

  test('an ARN names its region, and a disabled key fails check() with keystore.custody_unavailable', async () => {
    const byArn = await openAwsKmsCustody({
      uri: uri(`awskms:${server.keyArn}?endpoint=${server.endpoint}`),
    });
    try {
      const wrapped = await byArn.wrap(randomBytes(32), 'x', 'deployment');
      assert.deepEqual((await custody.unwrap(wrapped, 'x')).length, 32);
      await server.client.send(new DisableKeyCommand({ KeyId: server.keyId }));
      const error = await rejectsWith(byArn.check(), 'keystore.custody_unavailable');
      assert.match(error.message, /Disabled/);
    } finally {
      await server.client.send(new EnableKeyCommand({ KeyId: server.keyId }));
      await byArn.close();
    }
  });

  test('an unreachable endpoint fails with keystore.custody_unavailable, at open and on unwrap', async () => {
    const wrapped = await custody.wrap(randomBytes(32), 'ctx', 'deployment');
    const closed = `http://127.0.0.1:${await freePort()}`;
    const error = await rejectsWith(
      openAwsKmsCustody({ uri: uri(`awskms:${server.alias}?region=${server.region}&endpoint=${closed}`) }),
      'keystore.custody_unavailable',
    );
    assert.match(error.message, /Check the endpoint/);
    assert.doesNotMatch(error.message, /orthid-test-secret-key/);

    const unreachable = new AwsKmsCustody({
      uri: uri(`awskms:${server.alias}?region=${server.region}&endpoint=${closed}`),
    });
    try {
      await rejectsWith(unreachable.unwrap(wrapped, 'ctx'), 'keystore.custody_unavailable');
      await rejectsWith(unreachable.check(), 'keystore.custody_unavailable');
    } finally {
      await unreachable.close();
    }
  });
});

describe('awskms custody error mapping (SDK-shaped errors, for answers moto does not give)', () => {
  test('Decrypt under a key pending deletion, disabled or deleted maps to keystore.key_not_found', () => {
    for (const name of ['KMSInvalidStateException', 'DisabledException', 'NotFoundException']) {
      assert.equal(
        unwrapFailure(Object.assign(new Error('x'), { name }), 'arn:k')?.code,
        'keystore.key_not_found',
      );
    }
    for (const name of ['InvalidCiphertextException', 'IncorrectKeyException']) {
      assert.equal(
        unwrapFailure(Object.assign(new Error('x'), { name }), 'arn:k')?.code,
        'crypto.decrypt_failed',
      );
    }
    assert.equal(unwrapFailure(Object.assign(new Error('x'), { name: 'TimeoutError' }), 'arn:k'), undefined);
  });
});
