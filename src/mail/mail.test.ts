import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import sharp from 'sharp';
import { parseSender } from './address.js';
import { backoffMs, DEFAULT_RETRY } from './delivery-worker.js';
import type { OutgoingMail } from './mail.js';
import { createOutboxTransport } from './transport.js';

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

describe('inline images', () => {
  const CID = 'logo.0123456789abcdef@orthid';
  const mail = (inline: OutgoingMail['inline']): OutgoingMail => ({
    id: `0190b3f2-0000-7000-8000-00000000000${inline ? 1 : 2}`,
    tenantId: '0190b3f2-0000-7000-8000-000000000000',
    template: 'notice',
    to: 'ada@example.test',
    from: 'Acme <no-reply@acme.test>',
    subject: 'Hello',
    text: 'Hello Ada\n',
    html: `<p><img src="cid:${CID}" alt="Acme"></p><p>Hello Ada</p>`,
    ...(inline ? { inline } : {}),
  });

  test('go out as inline image/png parts of the HTML, named by their Content-ID; a mail without has none', async () => {
    const png = await sharp({ create: { width: 40, height: 20, channels: 4, background: '#1f4fd1' } })
      .png()
      .toBuffer();
    const dir = await mkdtemp(join(tmpdir(), 'orthid-outbox-'));
    const outbox = createOutboxTransport(dir);
    try {
      const part = {
        cid: CID,
        filename: 'logo.png',
        contentType: 'image/png',
        base64: png.toString('base64'),
      };
      await outbox.send(mail([part]));
      await outbox.send(mail(undefined));
      const parsed = await Promise.all(
        (await readdir(dir)).sort().map(async (f) => simpleParser(await readFile(join(dir, f)))),
      );
      const [withImage, without] = parsed.sort((a, b) => b.attachments.length - a.attachments.length);
      assert.equal(withImage!.attachments.length, 1);
      const [image] = withImage!.attachments;
      assert.equal(image!.contentType, 'image/png');
      assert.equal(image!.contentId, `<${CID}>`);
      assert.equal(image!.contentDisposition, 'inline');
      assert.equal(image!.related, true, 'part of the HTML (multipart/related), not a download');
      assert.deepEqual(image!.content, png);
      assert.equal(withImage!.text, 'Hello Ada\n');
      assert.equal(without!.attachments.length, 0);
    } finally {
      outbox.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
