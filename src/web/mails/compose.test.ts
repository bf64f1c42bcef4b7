import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { html } from '../../core/html.js';
import { brandOf } from '../brand.js';
import { localeOf } from '../i18n.js';
import { composeMail } from './compose.js';

describe('composed mail', () => {
  test('every interpolated value is escaped; markup built by html is kept', () => {
    const name = `Ada" onmouseover="x()' <b>&`;
    const inner = html`<em>${name}</em>`;
    assert.equal(
      html`<p title="${name}">${inner}</p>`.value,
      '<p title="Ada&quot; onmouseover=&quot;x()&#39; &lt;b&gt;&amp;"><em>Ada&quot; onmouseover=&quot;x()&#39; &lt;b&gt;&amp;</em></p>',
    );
    assert.equal(html`${[html`<br>`, html`${'<'}`]}`.value, '<br>&lt;');
  });

  test('text and HTML carry the same words, link and code; HTML escapes them and loads nothing remote', () => {
    const mail = composeMail(
      localeOf('de'),
      { name: 'Acme <GmbH>' },
      {
        subject: '<Willkommen>',
        paragraphs: ['Hallo <Ada>,', 'bitte bestätigen.'],
        action: { label: 'Bestätigen', url: 'https://id.example/t/acme/verify?token=abc' },
        code: '123456',
      },
    );
    assert.match(mail.html, /<title>&lt;Willkommen&gt;<\/title>/);
    assert.match(mail.html, /<html lang="de">/);
    assert.match(mail.html, /Hallo &lt;Ada&gt;,/);
    assert.match(mail.html, /Acme &lt;GmbH&gt;/);
    for (const part of [
      'Hallo <Ada>,',
      'https://id.example/t/acme/verify?token=abc',
      '123456',
      'Acme <GmbH>',
    ])
      assert.ok(mail.text.includes(part), part);
    const withoutLink = mail.html.replaceAll('https://id.example/t/acme/verify?token=abc', '');
    assert.doesNotMatch(withoutLink, /https?:|src=|<link|<script/);
  });

  test('the brand reaches the mail: its colour inline on the button, its support contact in both parts', () => {
    const brand = brandOf({
      slug: 'acme',
      displayName: 'Acme',
      settings: { brandColour: '#1f4fd1', supportContact: 'https://help.acme.test' },
    });
    const mail = composeMail(localeOf('fr'), brand, {
      subject: 'Bienvenue',
      paragraphs: ['Bonjour'],
      action: { label: 'Confirmer', url: 'https://id.example/t/acme/verify' },
    });
    assert.match(mail.html, /background:#1f4fd1;color:#fff/);
    assert.match(
      mail.html,
      /Besoin d’aide\u00a0\? <a href="https:\/\/help\.acme\.test" style="color:#1f4fd1">help\.acme\.test<\/a>/,
    );
    assert.match(mail.text, /Besoin d’aide\u00a0\? help\.acme\.test\nEnvoyé par Acme/);
    const plain = composeMail(localeOf('en'), brandOf({ displayName: 'Acme', settings: {} }), {
      subject: 'Welcome',
      paragraphs: ['Hello'],
      action: { label: 'Confirm', url: 'https://id.example/t/acme/verify' },
    });
    assert.match(plain.html, /background:#3b5bdb/);
    assert.doesNotMatch(plain.text, /Need help/);
  });

  test('a logo with a mail rendition is shown inline by cid with the tenant name as alt; the text is unchanged', () => {
    const sha256 = 'ab'.repeat(32);
    const settings = { brandLogo: { sha256: 'cd'.repeat(32), width: 512, height: 128 } };
    const parts = { subject: 'Welcome', paragraphs: ['Hello'], note: 'Ignore if not you.' };
    const withLogo = composeMail(
      localeOf('en'),
      brandOf({
        slug: 'acme',
        displayName: 'Acme <GmbH>',
        settings: { brandLogo: { ...settings.brandLogo, mail: { sha256, width: 384, height: 96 } } },
      }),
      parts,
    );
    const img = /<img src="cid:([^"]+)" alt="Acme &lt;GmbH&gt;" width="192" height="48"/.exec(withLogo.html);
    assert.ok(img, withLogo.html);
    assert.deepEqual(withLogo.inline, [{ cid: img[1], sha256, filename: 'logo.png' }]);
    assert.match(img[1]!, /^logo\.abababababababab@orthid$/);
    assert.equal(withLogo.html.match(/<img/g)?.length, 1);

    // A logo stored before renditions (no `mail` record), and no logo at all: no image, same words.
    for (const brandLogo of [settings.brandLogo, undefined]) {
      const plain = composeMail(
        localeOf('en'),
        brandOf({ slug: 'acme', displayName: 'Acme <GmbH>', settings: brandLogo ? { brandLogo } : {} }),
        parts,
      );
      assert.doesNotMatch(plain.html, /<img|cid:/);
      assert.equal(plain.inline, undefined);
      assert.equal(plain.text, withLogo.text);
    }
  });

  test('a small logo is drawn at its own size; a large one fits 192×64', () => {
    const drawn = (width: number, height: number) => {
      const mail = composeMail(
        localeOf('en'),
        brandOf({
          displayName: 'Acme',
          settings: { brandLogo: { mail: { sha256: 'e'.repeat(64), width, height } } },
        }),
        { subject: 'Hi', paragraphs: ['Hello'] },
      );
      return /width="(\d+)" height="(\d+)"/.exec(mail.html)?.slice(1).map(Number);
    };
    assert.deepEqual(drawn(60, 30), [60, 30]);
    assert.deepEqual(drawn(384, 128), [192, 64]);
    assert.deepEqual(drawn(128, 128), [64, 64]);
    assert.deepEqual(drawn(384, 40), [192, 20]);
  });
});
