import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteQueue } from './byte-queue.js';

test('the queue hands out exact byte counts across buffer boundaries, in order, without copying', () => {
  const queue = new ByteQueue();
  const first = Buffer.from('abcdef');
  queue.push(first);
  queue.push(Buffer.alloc(0));
  queue.push(Buffer.from('ghij'));
  assert.equal(queue.length, 10);
  const taken = queue.take(4);
  assert.equal(Buffer.concat(taken).toString(), 'abcd');
  assert.equal(taken[0]!.buffer, first.buffer, 'a view, not a copy');
  assert.equal(Buffer.concat(queue.take(5)).toString(), 'efghi');
  assert.equal(queue.length, 1);
  assert.deepEqual(queue.take(0), []);
  assert.equal(Buffer.concat(queue.take(1)).toString(), 'j');
  assert.equal(queue.length, 0);
});
