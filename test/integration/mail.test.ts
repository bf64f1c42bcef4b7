// Outgoing mail through a real SMTP server on loopback (STARTTLS with a certificate trusted through
// ORTHID_SMTP_CA_FILE, AUTH with a password from a file): queued inside the caller's transaction,
// sealed at rest, delayed (never lost) by an outage and delivered once, shared between two workers
// without a mail going twice, and written to the outbox on the embedded default; a tenant's logo
// travels inside its mail as an inline PNG.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { simpleParser } from 'mailparser';
import sharp from 'sharp';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { createDeliveryWorker, DEFAULT_RETRY } from '../../src/mail/delivery-worker.js';
import { createMailQueueQueries } from '../../src/mail/mail-queue.queries.js';
import { createSmtpTransport } from '../../src/mail/transport.js';
import { rotateDataKey } from '../../src/ops/key-rotation.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { createBrandLogos, mailLogoKey } from '../../src/tenancy/branding.js';
import { brandOf } from '../../src/web/brand.js';
import { ENGLISH } from '../../src/web/i18n.js';
import { composeMail } from '../../src/web/mails/compose.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { testCluster } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const TO = 'ada.lovelace@example.test';
const SUBJECT = 'Confirm your address at Acme';
const SECRET_LINE = 'Your code is 271828';

/** A wide logo as a tenant would upload it: re-encoded to 512×128, its mail rendition 384×96. */
const logoUpload = () =>
  sharp({ create: { width: 1600, height: 400, channels: 4, background: '#1f4fd1' } })
    .png()
    .toBuffer()
    .then((png) => png.toString('base64'));

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The one inline PNG the HTML shows by cid, checked against the tenant's mail rendition. Parsed
 * here keeping the cid: links (mailparser otherwise swaps them for data: URLs).
 */
async function assertInlineLogo(raw: string, tenantName: string, sha256: string) {
  const parsed = await simpleParser(raw, { keepCidLinks: true });
  assert.ok(typeof parsed.html === 'string');
  const img = new RegExp(
    `<img src="cid:([^"]+)" alt="${escapeRegExp(tenantName)}" width="192" height="48"`,
  ).exec(parsed.html);
  assert.ok(img, 'the HTML shows the logo by cid, named by the tenant');
  assert.equal(parsed.attachments.length, 1);
  const [part] = parsed.attachments;
  assert.equal(part!.contentType, 'image/png');
  assert.equal(part!.contentId, `<${img[1]}>`);
  assert.equal(part!.contentDisposition, 'inline');
  assert.equal(part!.related, true);
  assert.equal(createHash('sha256').update(part!.content).digest('hex'), sha256);
  const meta = await sharp(part!.content).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 384, 96]);
  assert.match(raw, /Content-Type: multipart\/related/i);
  assert.match(raw, new RegExp(`Content-ID: <${escapeRegExp(img[1]!)}>`, 'i'));
  assert.doesNotMatch(parsed.html, /src="(?!cid:)/, 'no image is fetched from anywhere');
}

function capturedLog() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: createLogger('trace', stream), text: () => text };
}

describe('mail through a real SMTP server (postgres)', { timeout: 180_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let tenantId: string;
  const clock = fixedClock('2031-05-01T08:00:00Z');
  const logs = capturedLog();

  const metrics = async () => (await server.inject({ method: 'GET', url: '/metrics' })).body;
  const metric = (body: string, line: string) => {
    const match = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(body);
    return match ? Number(match[1]) : undefined;
  };
  const state = (id: string) => withTenant(app.db, tenantId, (tx) => createMailQueueQueries(tx).state(id));
  const enqueue = (overrides: Partial<{ to: string; subject: string }> = {}) =>
    withTenant(app.db, tenantId, (tx) =>
      app.mail.enqueue(tx, tenantId, {
        to: overrides.to ?? TO,
        template: 'verify-email',
        subject: overrides.subject ?? SUBJECT,
        text: `Hello Ada,\n${SECRET_LINE}\n`,
        html: composeMail(
          ENGLISH,
          { name: 'Acme' },
          {
            subject: SUBJECT,
            paragraphs: ['Hello Ada <script>alert(1)</script>,', SECRET_LINE],
          },
        ).html,
      }),
    );
  const worker = () =>
    createDeliveryWorker({
      db: app.db,
      tenantKeys: app.tenantKeys,
      clock,
      log: logs.log,
      transport: createSmtpTransport(app.config.mail.smtp!),
    });

  before(async () => {
    smtp = await startTestSmtpServer();
    app = await createTestOrthId('postgres', {
      clock,
      env: {
        ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
        ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
        ORTHID_SMTP_CA_FILE: smtp.caFile,
        ORTHID_MAIL_FROM: 'OrthID <no-reply@orthid.test>',
      },
    });
    server = await buildServer(app);
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    tenantId = tenant.id;
  });
  after(async () => {
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  test('a mail goes over STARTTLS with AUTH from the tenant sender, with escaped HTML and a text body', async () => {
    await withTenant(app.db, tenantId, (tx) =>
      app.tenants.setSettings(tx, tenantId, { mailFrom: 'Acme Accounts <accounts@acme.test>' }),
    );
    const id = await enqueue().finally(() =>
      withTenant(app.db, tenantId, (tx) => app.tenants.setSettings(tx, tenantId, { mailFrom: null })),
    );
    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    await w.stop();
    assert.equal(smtp.received.length, 1);
    const [mail] = smtp.received;
    assert.equal(mail!.secure, true, 'the session was upgraded by STARTTLS');
    assert.equal(mail!.user, smtp.user);
    assert.deepEqual(mail!.rcptTo, [TO]);
    assert.equal(mail!.parsed.from?.text, '"Acme Accounts" <accounts@acme.test>');
    assert.equal(mail!.parsed.subject, SUBJECT);
    assert.equal(mail!.parsed.messageId, `<${id}@acme.test>`);
    assert.match(mail!.parsed.text ?? '', /Your code is 271828/);
    assert.ok(typeof mail!.parsed.html === 'string');
    assert.match(mail!.parsed.html, /Ada &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(mail!.parsed.html, /<script>/);
    assert.doesNotMatch(mail!.parsed.html, /<img|cid:/, 'a tenant without a logo shows none');
    assert.equal(mail!.parsed.attachments.length, 0);
    assert.equal((await state(id))?.status, 'sent');
  });

  test('a tenant with a logo sends it inside the mail: an inline PNG the HTML shows by cid, sealed while queued', async () => {
    smtp.received.length = 0;
    await runOperation(app, 'tenant.logo-set', { tenant: 'acme', imageBase64: await logoUpload() });
    const brand = brandOf(await app.tenants.get('acme'));
    assert.ok(brand.mailLogo, 'the upload made a mail rendition');
    const rendition = await createBrandLogos(app).readMail(tenantId);
    assert.equal(rendition?.sha256, brand.mailLogo.sha256);
    const composed = composeMail(ENGLISH, brand, { subject: SUBJECT, paragraphs: [SECRET_LINE] });
    const queue = (mail: typeof composed) =>
      withTenant(app.db, tenantId, (tx) =>
        app.mail.enqueue(tx, tenantId, { to: TO, template: 'verify-email', ...mail }),
      );
    const id = await queue(composed);
    const { rows } = await app.db.ownerQuery<{ content: string }>(
      'SELECT content FROM mail_queue WHERE id = $1',
      [id],
    );
    assert.ok(rows[0]!.content.startsWith('enc1.'), 'the image is queued inside the sealed content');
    assert.equal(rows[0]!.content.includes(rendition!.bytes.toString('base64').slice(0, 48)), false);

    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    const [mail] = smtp.received;
    await assertInlineLogo(mail!.raw, brand.name, brand.mailLogo.sha256);
    assert.equal(mail!.parsed.text, composed.text, 'the text alternative is as without a logo');

    // A logo replaced between composing and queueing: the old rendition is gone, the mail still goes.
    smtp.received.length = 0;
    await queue(
      composeMail(
        ENGLISH,
        { ...brand, mailLogo: { ...brand.mailLogo, sha256: 'f'.repeat(64) } },
        {
          subject: SUBJECT,
          paragraphs: [SECRET_LINE],
        },
      ),
    );
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    assert.equal(smtp.received[0]!.parsed.attachments.length, 0);

    // Removed, the logo leaves the mail as it was before: no image, no part, no rendition stored.
    smtp.received.length = 0;
    await runOperation(app, 'tenant.logo-remove', { tenant: 'acme' });
    assert.equal(await app.objects.head(mailLogoKey(tenantId)), undefined);
    const plain = brandOf(await app.tenants.get('acme'));
    assert.equal(plain.mailLogo, undefined);
    await queue(composeMail(ENGLISH, plain, { subject: SUBJECT, paragraphs: [SECRET_LINE] }));
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    await w.stop();
    assert.doesNotMatch(String(smtp.received[0]!.parsed.html), /<img|cid:/);
    assert.equal(smtp.received[0]!.parsed.attachments.length, 0);
  });

  test('a relay that offers no STARTTLS gets no mail: it stays queued and the password is never sent', async () => {
    const plain = await startTestSmtpServer({ starttls: false });
    const id = await enqueue();
    const w = createDeliveryWorker({
      db: app.db,
      tenantKeys: app.tenantKeys,
      clock,
      log: logs.log,
      transport: createSmtpTransport({ ...app.config.mail.smtp!, port: plain.port }),
    });
    try {
      assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 1, failed: 0 });
      assert.equal(plain.received.length, 0);
      assert.deepEqual(
        { status: (await state(id))?.status, error: (await state(id))?.last_error },
        { status: 'queued', error: 'etls' },
      );
    } finally {
      await w.stop();
      await plain.close();
    }
    // Delivered later through the real relay, so the tests after this one start from an empty queue.
    clock.set(new Date(clock.now().getTime() + DEFAULT_RETRY.baseMs));
    const again = worker();
    assert.deepEqual(await again.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    await again.stop();
  });

  test('queued mail is resealed by a data key rotation and still goes out', async () => {
    smtp.received.length = 0;
    const id = await enqueue();
    const tenant = await app.tenants.get('acme');
    const done = await rotateDataKey(app, tenant, 'test');
    assert.equal(done.status, 'done');
    const { rows } = await app.db.ownerQuery<{ recipient: string; content: string }>(
      'SELECT recipient, content FROM mail_queue WHERE id = $1',
      [id],
    );
    assert.ok(rows[0]!.recipient.startsWith(`enc1.${done.targetKeyId}.`), 'resealed under the new key');
    assert.ok(rows[0]!.content.startsWith(`enc1.${done.targetKeyId}.`));
    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    await w.stop();
    assert.deepEqual(smtp.received[0]?.rcptTo, [TO]);
  });

  test('a mail that no longer opens is marked failed and does not hold up the mail behind it', async () => {
    smtp.received.length = 0;
    const altered = await enqueue();
    const next = await enqueue();
    // A sealed value is bound to its row: copied onto another mail, it does not open.
    await app.db.ownerQuery(
      'UPDATE mail_queue SET recipient = (SELECT recipient FROM mail_queue WHERE id = $2) WHERE id = $1',
      [altered, next],
    );
    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 1 });
    await w.stop();
    assert.deepEqual(
      { status: (await state(altered))?.status, error: (await state(altered))?.last_error },
      { status: 'failed', error: 'crypto-decrypt_failed' },
    );
    assert.equal((await state(next))?.status, 'sent');
    assert.equal(smtp.received.length, 1);
  });

  test('a worker with no relay configured (PostgreSQL without SMTP) leaves mail queued, untried', async () => {
    const id = await enqueue();
    const idle = createDeliveryWorker({
      db: app.db,
      tenantKeys: app.tenantKeys,
      clock,
      log: logs.log,
      transport: undefined,
    });
    assert.deepEqual(await idle.runOnce(), { sent: 0, retrying: 0, failed: 0 });
    await idle.stop();
    assert.deepEqual(
      { status: (await state(id))?.status, attempts: (await state(id))?.attempts },
      { status: 'queued', attempts: 0 },
    );
    const w = worker();
    assert.deepEqual(
      await w.runOnce(),
      { sent: 1, retrying: 0, failed: 0 },
      'a relay configured later sends it',
    );
    await w.stop();
  });

  test('a mail is queued only when the change that queues it commits', async () => {
    const before = (await app.mail.counts()).queued;
    await assert.rejects(
      withTenant(app.db, tenantId, async (tx) => {
        await app.mail.enqueue(tx, tenantId, { to: TO, template: 'notice', subject: 'x', text: 'y' });
        throw new Error('the change fails');
      }),
      /the change fails/,
    );
    assert.equal((await app.mail.counts()).queued, before);
  });

  test('bad recipients and remote images are refused before anything is queued', async () => {
    for (const to of ['not an address', 'a@b.test, c@d.test', 'a@b.test\r\nBcc: e@f.test']) {
      await assert.rejects(
        withTenant(app.db, tenantId, (tx) =>
          app.mail.enqueue(tx, tenantId, { to, template: 'notice', subject: 'x', text: 'y' }),
        ),
        (e) => isOrthIdError(e, 'mail.address_invalid') && !e.message.includes(to),
      );
    }
    for (const markup of [
      '<img src="https://tracker.example/pixel.gif">',
      '<img alt="" src=//tracker.example/p.gif>',
      '<div style="background: url(\'https://tracker.example/p.gif\')"></div>',
      '<link rel="stylesheet" href="https://cdn.example/x.css">',
    ]) {
      await assert.rejects(
        withTenant(app.db, tenantId, (tx) =>
          app.mail.enqueue(tx, tenantId, {
            to: TO,
            template: 'notice',
            subject: 'x',
            text: 'y',
            html: markup,
          }),
        ),
        (e) => isOrthIdError(e, 'mail.content_invalid'),
        markup,
      );
    }
    const shown = '<img src="cid:logo.1@orthid" alt="Acme">';
    for (const inline of [
      { cid: 'logo.2@orthid', sha256: 'a'.repeat(64), filename: 'logo.png' },
      { cid: 'logo.1@orthid\r\nBcc: e@f.test', sha256: 'a'.repeat(64), filename: 'logo.png' },
      { cid: 'logo.1@orthid', sha256: 'a'.repeat(64), filename: '../logo.png' },
    ]) {
      await assert.rejects(
        withTenant(app.db, tenantId, (tx) =>
          app.mail.enqueue(tx, tenantId, {
            to: TO,
            template: 'notice',
            subject: 'x',
            text: 'y',
            html: shown,
            inline: [inline],
          }),
        ),
        (e) => isOrthIdError(e, 'mail.content_invalid'),
        JSON.stringify(inline),
      );
    }
  });

  test('with the server down the mail stays queued with a retry scheduled; back up, it goes exactly once', async () => {
    smtp.received.length = 0;
    await smtp.stop();
    const id = await enqueue();
    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 1, failed: 0 });
    const waiting = await state(id);
    assert.equal(waiting?.status, 'queued');
    assert.equal(waiting?.attempts, 1);
    assert.match(waiting?.last_error ?? '', /^(econnection|esocket)$/, 'a connection error code, no text');
    assert.equal(waiting?.next_attempt_at.getTime(), clock.now().getTime() + DEFAULT_RETRY.baseMs);

    clock.set(new Date(clock.now().getTime() + 10 * 60_000));
    const during = await metrics();
    assert.equal(metric(during, 'orthid_mail_messages{state="retrying"}'), 1);
    assert.equal(metric(during, 'orthid_mail_oldest_queued_age_seconds'), 600);

    // A second failure doubles the wait.
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 1, failed: 0 });
    assert.equal(
      (await state(id))?.next_attempt_at.getTime(),
      clock.now().getTime() + 2 * DEFAULT_RETRY.baseMs,
    );

    await smtp.start();
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 0, failed: 0 }, 'not before the retry is due');
    clock.set(new Date(clock.now().getTime() + 2 * DEFAULT_RETRY.baseMs));
    assert.deepEqual(await w.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 0, failed: 0 });
    await w.stop();
    assert.equal(smtp.received.length, 1);
    assert.equal(smtp.received[0]!.parsed.messageId?.startsWith(`<${id}@`), true);
    const after = await metrics();
    assert.equal(metric(after, 'orthid_mail_messages{state="retrying"}'), 0);
    assert.equal(metric(after, 'orthid_mail_oldest_queued_age_seconds'), 0);
  });

  test('a recipient the server refuses fails for good after one attempt, audited and counted', async () => {
    const refused = 'nobody@example.test';
    smtp.refuse.add(refused);
    const failedBefore = metric(await metrics(), 'orthid_mail_messages{state="failed"}') ?? 0;
    const id = await enqueue({ to: refused });
    const w = worker();
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 0, failed: 1 });
    await w.stop();
    assert.deepEqual(
      { status: (await state(id))?.status, error: (await state(id))?.last_error },
      { status: 'failed', error: 'smtp-550' },
    );
    const events = await withTenant(app.db, tenantId, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId)),
    );
    const failed = events.find((e) => e.action === 'mail.failed' && e.target === `mail:${id}`);
    assert.deepEqual(failed?.details, { template: 'verify-email', attempts: 1, reason: 'smtp-550' });
    assert.equal(metric(await metrics(), 'orthid_mail_messages{state="failed"}'), failedBefore + 1);
  });

  test('two workers on two connection pools never send the same mail twice', async () => {
    smtp.received.length = 0;
    const ids = new Set<string>();
    for (let i = 0; i < 40; i++) ids.add(await enqueue({ subject: `Mail ${i}` }));
    const otherDb = await openPostgres(app.databaseUrl!);
    // Connected before the race, so both workers start claiming at once.
    await otherDb.ownerQuery('SELECT 1');
    try {
      const a = worker();
      const b = createDeliveryWorker({
        db: otherDb,
        tenantKeys: app.tenantKeys,
        clock,
        log: logs.log,
        transport: createSmtpTransport(app.config.mail.smtp!),
        batch: 3,
      });
      const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
      await Promise.all([a.stop(), b.stop()]);
      assert.equal(ra.sent + rb.sent, 40);
      assert.ok(ra.sent > 0 && rb.sent > 0, `both workers took a share (${ra.sent} and ${rb.sent})`);
    } finally {
      await otherDb.close();
    }
    const delivered = smtp.received.map((m) => m.parsed.messageId ?? '');
    assert.equal(delivered.length, 40);
    assert.equal(new Set(delivered).size, 40, 'no mail arrived twice');
    assert.deepEqual(new Set(delivered.map((m) => /^<([^@]+)@/.exec(m)![1])), ids);
  });

  test('a LISTEN wake-up delivers a mail queued while the worker runs', async () => {
    smtp.received.length = 0;
    const w = createDeliveryWorker({
      db: app.db,
      tenantKeys: app.tenantKeys,
      clock,
      log: logs.log,
      transport: createSmtpTransport(app.config.mail.smtp!),
      pollMs: 3_600_000,
    });
    await w.start();
    try {
      await w.runOnce();
      await enqueue();
      const deadline = Date.now() + 20_000;
      while (smtp.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(smtp.received.length, 1, 'delivered on the notification, not the hourly poll');
    } finally {
      await w.stop();
    }
  });

  test('the log names mails by id and template, never their address, subject or body', () => {
    const text = logs.text();
    assert.match(text, /mail sent/);
    assert.match(text, /mail delivery failed; it stays queued/);
    assert.match(text, /mail failed for good/);
    for (const needle of [TO, 'nobody@example.test', 'ada.lovelace', SUBJECT, SECRET_LINE, smtp.user]) {
      assert.equal(text.includes(needle), false, `${needle} found in the log`);
    }
  });

  test('a pg_dump holds neither the recipient nor the subject nor the body in plaintext', async () => {
    const cluster = await testCluster();
    const dump = spawnSync(join(cluster.binDir, 'pg_dump'), ['--data-only', '--dbname', app.databaseUrl!], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, /COPY public\.mail_queue/);
    for (const needle of [
      TO,
      'ada.lovelace',
      'nobody@example.test',
      SUBJECT,
      SECRET_LINE,
      'accounts@acme.test',
    ]) {
      assert.equal(dump.stdout.includes(needle), false, `${needle} found in the dump`);
    }
  });

  test('housekeeping deletes sent and failed mail past the retention and keeps queued mail', async () => {
    const queued = await enqueue();
    clock.set(new Date(clock.now().getTime() + app.config.mail.retentionMs + 60_000));
    const purged = await app.mail.purgeFinished(7);
    assert.ok(purged >= 40, `purged ${purged}`);
    const counts = await app.mail.counts();
    assert.deepEqual({ sent: counts.sent, failed: counts.failed }, { sent: 0, failed: 0 });
    assert.equal((await state(queued))?.status, 'queued');
  });
});

describe('mail on the embedded default without SMTP', { timeout: 120_000 }, () => {
  let app: TestOrthId;
  before(async () => {
    app = await createTestOrthId('pglite');
  });
  after(() => app?.close());

  test('goes to one .eml file per message in the outbox of the data directory', async () => {
    assert.equal(app.config.mail.outboxDir, join(app.dataDir, 'outbox'));
    assert.equal(app.mailTransport?.describe, `the outbox directory ${join(app.dataDir, 'outbox')}`);
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    const id = await withTenant(app.db, tenant.id, (tx) =>
      app.mail.enqueue(tx, tenant.id, { to: TO, template: 'notice', subject: SUBJECT, text: SECRET_LINE }),
    );
    assert.deepEqual(await app.mailWorker.runOnce(), { sent: 1, retrying: 0, failed: 0 });
    const files = await readdir(join(app.dataDir, 'outbox'));
    assert.equal(files.length, 1);
    assert.match(files[0]!, new RegExp(`-${id}\\.eml$`));
    const parsed = await simpleParser(await readFile(join(app.dataDir, 'outbox', files[0]!)));
    assert.equal(parsed.subject, SUBJECT);
    assert.equal(parsed.from?.text, '"OrthID" <no-reply@localhost>');
    assert.match(parsed.text ?? '', /Your code is 271828/);
    assert.equal((Array.isArray(parsed.to) ? parsed.to[0] : parsed.to)?.text, TO);
  });

  test('an invitation from a tenant with a logo carries it inline in the .eml; one from a tenant without, none', async () => {
    const outbox = join(app.dataDir, 'outbox');
    const invite = async (slug: string) => {
      const before = new Set(await readdir(outbox));
      const tenant = await app.tenants.get(slug);
      await app.signUp.invite(tenant, { email: TO, actor: 'test' });
      assert.deepEqual(await app.mailWorker.runOnce(), { sent: 1, retrying: 0, failed: 0 });
      const [file] = (await readdir(outbox)).filter((f) => !before.has(f));
      const raw = await readFile(join(outbox, file!), 'utf8');
      return { raw, parsed: await simpleParser(raw), tenant };
    };
    await app.tenants.create({ slug: 'globex', displayName: 'Globex & Co', actor: 'test' });
    await runOperation(app, 'tenant.logo-set', { tenant: 'globex', imageBase64: await logoUpload() });
    const branded = await invite('globex');
    const { mailLogo } = brandOf(branded.tenant);
    assert.ok(mailLogo);
    await assertInlineLogo(branded.raw, 'Globex &amp; Co', mailLogo.sha256);

    const plain = await invite('acme');
    assert.doesNotMatch(String(plain.parsed.html), /<img|cid:/);
    assert.equal(plain.parsed.attachments.length, 0);
  });

  test('tenant configure --mail-from sets the sender of later mail; default goes back to ORTHID_MAIL_FROM', async () => {
    const tenant = await app.tenants.get('acme');
    const sender = () => withTenant(app.db, tenant.id, (tx) => app.mail.senderOf(tx, tenant.id));
    const set = await runOperation(app, 'tenant.configure', {
      slug: 'acme',
      mailFrom: 'Acme Accounts <accounts@acme.test>',
    });
    assert.equal((set as { mailFrom: string }).mailFrom, 'Acme Accounts <accounts@acme.test>');
    assert.equal(await sender(), 'Acme Accounts <accounts@acme.test>');
    for (const bad of ['Acme <accounts@acme.test>\r\nBcc: x@y.test', 'Acme "Accounts" <nowhere>', '<>']) {
      await assert.rejects(runOperation(app, 'tenant.configure', { slug: 'acme', mailFrom: bad }), (e) =>
        isOrthIdError(e, 'mail.address_invalid'),
      );
    }
    assert.equal(await sender(), 'Acme Accounts <accounts@acme.test>', 'a refused sender changes nothing');
    await runOperation(app, 'tenant.configure', { slug: 'acme', mailFrom: 'default' });
    assert.equal(await sender(), 'OrthID <no-reply@localhost>');
  });
});
