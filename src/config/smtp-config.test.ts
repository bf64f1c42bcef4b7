import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { loadConfig } from './config.js';

const base = { ORTHID_DATA_DIR: '/srv/orthid' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env }, '/work');
  } catch (error) {
    assert.ok(isOrthIdError(error, 'config.invalid'));
    return (error.details as { problems: string[] }).problems;
  }
  return [];
}

describe('mail configuration', () => {
  test('the embedded default writes mail to the outbox in the data directory', () => {
    const config = loadConfig(base, '/work');
    assert.deepEqual(config.mail, {
      smtp: undefined,
      outboxDir: '/srv/orthid/outbox',
      from: 'OrthID <no-reply@localhost>',
      retentionMs: 7 * 86_400_000,
    });
  });

  test('PostgreSQL without SMTP has no outbox unless one is named', () => {
    const env = { ...base, ORTHID_DATABASE_URL: 'postgres://db/orthid', ORTHID_MASTER_KEY: 'x'.repeat(32) };
    assert.equal(loadConfig(env, '/work').mail.outboxDir, undefined);
    assert.equal(loadConfig({ ...env, ORTHID_MAIL_OUTBOX: 'mail' }, '/work').mail.outboxDir, '/work/mail');
  });

  test('smtp:// requires STARTTLS on port 587 and reads the password from a file', () => {
    const config = loadConfig(
      {
        ...base,
        ORTHID_SMTP_URL: 'smtp://relay%40acme@smtp.acme.test',
        ORTHID_SMTP_PASSWORD_FILE: 'secrets/smtp',
        ORTHID_PUBLIC_URL: 'https://id.acme.test',
      },
      '/work',
    );
    assert.deepEqual(config.mail.smtp, {
      host: 'smtp.acme.test',
      port: 587,
      secure: false,
      starttls: true,
      user: 'relay@acme',
      passwordFile: '/work/secrets/smtp',
      caFile: undefined,
    });
    assert.equal(config.mail.outboxDir, undefined);
    assert.equal(config.mail.from, 'OrthID <no-reply@id.acme.test>');
  });

  test('smtps:// is TLS from the start on port 465', () => {
    const smtp = loadConfig({ ...base, ORTHID_SMTP_URL: 'smtps://smtp.acme.test' }, '/work').mail.smtp;
    assert.deepEqual([smtp?.secure, smtp?.port], [true, 465]);
  });

  test('a password in the URL is refused without repeating it', () => {
    const found = problems({ ORTHID_SMTP_URL: 'smtp://relay:hunter2-secret@smtp.acme.test' });
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0]!, /must not contain a password/);
    assert.equal(found.join('\n').includes('hunter2-secret'), false);
  });

  test('STARTTLS may be turned off only for a loopback relay', () => {
    assert.equal(
      loadConfig({ ...base, ORTHID_SMTP_URL: 'smtp://127.0.0.1:2525', ORTHID_SMTP_STARTTLS: 'off' }, '/work')
        .mail.smtp?.starttls,
      false,
    );
    assert.match(
      problems({ ORTHID_SMTP_URL: 'smtp://smtp.acme.test', ORTHID_SMTP_STARTTLS: 'off' }).join('\n'),
      /only for a relay on a loopback address/,
    );
  });

  test('every mail problem is reported at once, with the others', () => {
    const found = problems({
      ORTHID_SMTP_URL: 'http://smtp.acme.test',
      ORTHID_SMTP_PASSWORD_FILE: '/run/secrets/smtp',
      ORTHID_MAIL_FROM: 'Acme <not an address>',
      ORTHID_MAIL_RETENTION: 'forever',
      ORTHID_PORT: 'eighty',
    });
    assert.equal(found.length, 4, found.join('\n'));
  });
});
