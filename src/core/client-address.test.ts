import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressUnit, canonicalAddress, UNRECOGNISED_ADDRESS } from './client-address.js';

test('every spelling of one IPv4 address is one address', () => {
  for (const spelling of [
    '203.0.113.21',
    ' 203.0.113.21 ',
    '203.0.113.21:4711',
    '203.0.113.21:0',
    '[203.0.113.21]',
    '[203.0.113.21]:4711',
    '3405803797',
    '3405803797:443',
    '0xcb007115',
    '0XCB007115',
    '0xcb.0x0.0x71.0x15',
    '0313.0.0161.025',
    '0313.00.0161.0025',
    '203.28949',
    '203.0.28949',
    '203.0.113.21.',
    '::ffff:203.0.113.21',
    '::FFFF:cb00:7115',
    '[::ffff:203.0.113.21]:4711',
    '0:0:0:0:0:ffff:cb00:7115',
  ]) {
    assert.equal(canonicalAddress(spelling), '203.0.113.21', spelling);
    assert.equal(addressUnit(spelling), '203.0.113.21', spelling);
  }
});

test('leading zeros are octal, as the operating system reads them, so they name another address', () => {
  assert.equal(canonicalAddress('0203.0.113.021'), '131.0.113.17');
  assert.equal(canonicalAddress('203.000.113.021'), '203.0.113.17');
  assert.equal(canonicalAddress('010.0.0.1'), '8.0.0.1');
});

test('every spelling of one IPv6 address is one address, and its /64 is one unit', () => {
  for (const spelling of [
    '2001:db8:0:0:1:0:0:1',
    '2001:DB8::1:0:0:1',
    '2001:0db8:0000:0000:0001:0000:0000:0001',
    '[2001:db8::1:0:0:1]',
    '[2001:db8::1:0:0:1]:443',
    '2001:db8::1:0:0:1%eth0',
  ]) {
    assert.equal(canonicalAddress(spelling), '2001:db8::1:0:0:1', spelling);
    assert.equal(addressUnit(spelling), '2001:db8:0:0::/64', spelling);
  }
  assert.equal(addressUnit('2001:db8::ffff:1'), '2001:db8:0:0::/64');
  assert.equal(addressUnit('2001:db8:0:1::1'), '2001:db8:0:1::/64');
  assert.equal(addressUnit('::1'), '0:0:0:0::/64');
});

test('what names no address is refused, and every such spelling is counted as one', () => {
  for (const spelling of [
    '',
    'localhost',
    'evil.example',
    '256.0.0.1',
    '1.2.3.4.5',
    '99999999999',
    '1.2.3.4:port',
    '1.2.3.4:123456',
    'user@1.2.3.4',
    '1.2.3.4/8',
    '2001:db8::1::2',
    '[2001:db8::1',
    '[evil.example]:80',
    'unrecognised',
  ]) {
    assert.equal(canonicalAddress(spelling), undefined, spelling);
    assert.equal(addressUnit(spelling), UNRECOGNISED_ADDRESS, spelling);
  }
});
