import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAwsKmsUri } from './awskms-uri.js';

test('an awskms: URI names a key by id, ARN or alias; an ARN carries its region', () => {
  const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const byArn = parseAwsKmsUri(`awskms:${arn}`);
  assert.ok(byArn.ok);
  assert.deepEqual(byArn.value, {
    uri: `awskms:${arn}?region=eu-west-1`,
    keyId: arn,
    region: 'eu-west-1',
    scopeAliasPrefix: 'orthid',
  });
  const byAlias = parseAwsKmsUri('awskms:alias/orthid?region=eu-central-1&endpoint=http://127.0.0.1:4599');
  assert.ok(byAlias.ok);
  assert.equal(byAlias.value.keyId, 'alias/orthid');
  assert.equal(byAlias.value.endpoint, 'http://127.0.0.1:4599');
  const byId = parseAwsKmsUri('awskms:1234abcd-12ab-34cd-56ef-1234567890ab?scope-alias-prefix=acme/orthid');
  assert.ok(byId.ok);
  assert.equal(byId.value.region, undefined, 'left to the AWS SDK chain (AWS_REGION)');
  assert.equal(byId.value.scopeAliasPrefix, 'acme/orthid');
});

test('a malformed awskms: URI names each problem', () => {
  const parsed = parseAwsKmsUri(
    'awskms:not a key?region=Europe&endpoint=ftp://x&profile=prod&scope-alias-prefix=aws/x',
  );
  assert.ok(!parsed.ok);
  const text = parsed.problems.join('\n');
  assert.match(text, /must name a KMS key/);
  assert.match(text, /region must be an AWS region/);
  assert.match(text, /endpoint must be an http/);
  assert.match(text, /"profile" is not supported/);
  assert.match(text, /must not start with "aws"/);
  const mismatch = parseAwsKmsUri('awskms:arn:aws:kms:eu-west-1:111122223333:alias/x?region=us-east-1');
  assert.ok(!mismatch.ok);
  assert.match(mismatch.problems.join(), /differs from the key ARN's region/);
});
