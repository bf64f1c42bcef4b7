// `orthid start` says where mail goes: the outbox in the data directory on the embedded default,
// or the SMTP relay (never its credentials); /metrics shows the mail queue either way.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { embeddedDataDir } from '../helpers/embedded-data-dir.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

describe('orthid start and mail', { timeout: 120_000 }, () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });
  const start = async (env: Record<string, string>): Promise<{ server: ServerProcess; dir: string }> => {
    const dir = await embeddedDataDir('orthid-mail-start-');
    const server = await startServer({ ORTHID_DATA_DIR: dir, ...env });
    cleanup.push(async () => {
      if (server.child.exitCode === null) await server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    return { server, dir };
  };

  test('the embedded default prints the outbox directory and exports the queue gauges', async () => {
    const { server, dir } = await start({});
    assert.match(server.output(), new RegExp(`Mail goes to the outbox directory ${join(dir, 'outbox')}\\.`));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const state of ['queued', 'retrying', 'sent', 'failed']) {
      assert.match(metrics, new RegExp(`^orthid_mail_messages\\{state="${state}"\\} 0$`, 'm'));
    }
    assert.match(metrics, /^orthid_mail_oldest_queued_age_seconds 0$/m);
  });

  test('with ORTHID_SMTP_URL it prints the relay, and never the user or the password', async () => {
    const smtp: TestSmtpServer = await startTestSmtpServer();
    cleanup.push(() => smtp.close());
    const { server } = await start({
      ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
      ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
      ORTHID_SMTP_CA_FILE: smtp.caFile,
    });
    assert.match(server.output(), new RegExp(`Mail goes to SMTP smtp://127\\.0\\.0\\.1:${smtp.port}\\.`));
    const password = (await readFile(smtp.passwordFile, 'utf8')).trim();
    assert.equal(server.output().includes(password), false);
    assert.equal(server.output().includes(smtp.user), false);
  });
});
