import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { html } from '../core/html.js';
import { parseSender } from './address.js';
import { backoffMs, DEFAULT_RETRY } from './delivery-worker.js';
import { layoutMail } from './template.js';

describe('mail templates', () => {
  test('every interpolated value is escaped; markup built by html is kept', () => {
    const name = `Ada" onmouseover="x()' <b>&`;
    const inner = html`<em>${name}</em>`;
    assert.equal(
      html`<p title="${name}">${inner}</p>`.value,
      '<p title="Ada&quot; onmouseover=&quot;x()&#39; &lt;b&gt;&amp;"><em>Ada&quot; onmouseover=&quot;x()&#39; &lt;b&gt;&amp;</em></p>',
    );
    assert.equal(html`${[html`<br>`, html`${'<'}`]}`.value, '<br>&lt;');
  });

  test('the layout escapes the title and loads nothing remote', () => {
    const page = layoutMail('<Welcome>', html`<p>Hi</p>`);
    assert.match(page, /<title>&lt;Welcome&gt;<\/title>/);
    assert.doesNotMatch(page, /https?:|src=|<link|<script/);
  });
});

describe('senders', () => {
  test('"Name <address>" and a bare address parse; header syntax does not', () => {
    assert.deepEqual(parseSender('Acme Accounts <accounts@acme.test>'), {
      name: 'Acme Accounts',
      address: 'accounts@acme.test',
    });
    assert.deepEqual(parseSender('accounts@acme.test'), { name: undefined, address: 'accounts@acme.test' });
    for (const bad of [
      'Acme <a@acme.test>\r\nBcc: x@y.test',
      '"Acme" <a@acme.test>',
      'a@acme.test, b@acme.test',
      '<>',
    ]) {
      assert.equal(parseSender(bad), undefined, bad);
    }
  });
});

describe('retry back-off', () => {
  test('doubles from 30 s after each failure and stops growing at an hour', () => {
    assert.deepEqual(
      [1, 2, 3, 8, 20].map((n) => backoffMs(DEFAULT_RETRY, n) / 1000),
      [30, 60, 120, 3600, 3600],
    );
  });
});
