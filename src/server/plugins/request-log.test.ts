import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressForLog, redactUrl, truncateAddress } from './request-log.js';

describe('the request log', () => {
  test('keeps protocol switches and redacts every other query value, including ones it has never heard of', () => {
    assert.equal(
      redactUrl(
        '/t/acme/auth?client_id=web&scope=openid+email&login_hint=ann%40acme.test&state=s&brand_new=x',
      ),
      '/t/acme/auth?client_id=web&scope=openid+email&login_hint=[redacted]&state=[redacted]&brand_new=[redacted]',
    );
    assert.equal(redactUrl('/t/acme/me?access%5Ftoken=abc'), '/t/acme/me?access_token=[redacted]');
    assert.equal(redactUrl('/x?eyJhbGciOiJFZERTQSJ9.e30.sig'), '/x?[redacted]');
    assert.equal(redactUrl('/healthz'), '/healthz');
  });

  test('truncates IPv4 to /24 and IPv6 to /48, and logs nothing it cannot parse', () => {
    assert.equal(truncateAddress('203.0.113.77'), '203.0.113.0/24');
    assert.equal(truncateAddress('::ffff:203.0.113.77'), '203.0.113.0/24');
    assert.equal(truncateAddress('2001:db8:abcd:12::77'), '2001:db8:abcd::/48');
    assert.equal(truncateAddress('::1'), '0:0:0::/48');
    assert.equal(truncateAddress('fe80::1%eth0'), 'fe80:0:0::/48');
    assert.equal(truncateAddress('not an address'), '[redacted]');
  });

  test('omits or keeps the address when configured so', () => {
    assert.equal(addressForLog('203.0.113.77', 'omit'), undefined);
    assert.equal(addressForLog('203.0.113.77', 'full'), '203.0.113.77');
    assert.equal(addressForLog('203.0.113.77', 'truncate'), '203.0.113.0/24');
  });
});
