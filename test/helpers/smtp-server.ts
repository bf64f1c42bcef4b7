// A real SMTP server on loopback for mail tests (the smtp-server package): STARTTLS with a
// self-signed certificate made here by openssl, AUTH with one user, and every message kept parsed
// (mailparser). It can be stopped and started again on the same port to play an outage.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { freePort } from './postgres.js';

export interface ReceivedMail {
  parsed: ParsedMail;
  raw: string;
  /** The envelope's recipients. */
  rcptTo: string[];
  /** Whether the session was encrypted (STARTTLS) when the message arrived. */
  secure: boolean;
  user: string | undefined;
}

export interface TestSmtpServer {
  port: number;
  /** PEM file of the self-signed certificate, for ORTHID_SMTP_CA_FILE. */
  caFile: string;
  /** The password file for ORTHID_SMTP_PASSWORD_FILE. */
  passwordFile: string;
  user: string;
  received: ReceivedMail[];
  /** Recipients the server refuses with 550. */
  refuse: Set<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** `starttls: false` plays a relay that offers no STARTTLS (and so, here, no AUTH either). */
export async function startTestSmtpServer(settings: { starttls?: boolean } = {}): Promise<TestSmtpServer> {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-smtp-'));
  const keyFile = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
  const user = 'orthid-relay';
  const password = 'smtp-password-for-tests-only';
  const passwordFile = join(dir, 'smtp-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const received: ReceivedMail[] = [];
  const refuse = new Set<string>();
  const port = await freePort();
  const options: SMTPServerOptions = {
    key: readFileSync(keyFile),
    cert: readFileSync(caFile),
    authMethods: ['PLAIN', 'LOGIN'],
    ...(settings.starttls === false ? { disabledCommands: ['STARTTLS'] } : {}),
    // AUTH is offered only after STARTTLS, as a real relay does.
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) callback(null, { user });
      else callback(Object.assign(new Error('Invalid credentials'), { responseCode: 535 }));
    },
    onMailFrom(_address, session, callback) {
      if (!session.user)
        return callback(Object.assign(new Error('Authentication required'), { responseCode: 530 }));
      callback();
    },
    onRcptTo(address, _session, callback) {
      if (refuse.has(address.address)) {
        return callback(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then(
          (parsed) => {
            received.push({
              parsed,
              raw,
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              secure: session.secure,
              user: typeof session.user === 'string' ? session.user : undefined,
            });
            callback();
          },
          (error: Error) => callback(error),
        );
      });
    },
  };
  let server: SMTPServer | undefined;
  const start = async () => {
    server = new SMTPServer(options);
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();
  return {
    port,
    caFile,
    passwordFile,
    user,
    received,
    refuse,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
