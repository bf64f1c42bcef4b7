// Where delivered mail goes: an SMTP server through nodemailer, or a file outbox (one .eml file per
// message) when no server is configured. A transport says whether a failure is permanent (the
// server refused this message or recipient) or transient (try again later); it never logs content.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { SmtpConfig } from '../config/config.js';
import { writeFileAtomically } from '../core/atomic-file.js';
import type { OutgoingMail } from './mail.js';

export interface MailTransport {
  /** Where mail goes, for the start output and logs (never a credential). */
  readonly describe: string;
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** A failed delivery: `reason` is a reply or error code only (it is stored and logged). */
export class DeliveryError extends Error {
  constructor(
    readonly reason: string,
    readonly permanent: boolean,
  ) {
    super(`mail delivery failed: ${reason}`);
  }
}

function domainOf(from: string): string {
  const match = /@([^>\s]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'orthid.invalid';
}

function nodemailerMessage(mail: OutgoingMail) {
  return {
    from: mail.from,
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    ...(mail.html === undefined ? {} : { html: mail.html }),
    // Inline parts of the HTML (multipart/related), which shows them by Content-ID.
    ...(mail.inline?.length
      ? {
          attachments: mail.inline.map((part) => ({
            cid: part.cid,
            filename: part.filename,
            contentType: part.contentType,
            contentDisposition: 'inline' as const,
            content: Buffer.from(part.base64, 'base64'),
          })),
        }
      : {}),
    // One stable id per queued mail, so a receiver (and a test) can tell a repeat from a new mail.
    messageId: `<${mail.id}@${domainOf(mail.from)}>`,
    headers: { 'Auto-Submitted': 'auto-generated' },
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** The reason kept for a failure: an SMTP reply code, else the error code, never server text (it may echo the address). */
export function classify(error: unknown): DeliveryError {
  const e = error as { responseCode?: number; code?: string };
  // A refused envelope or message is this mail's problem: 5xx there is final, 4xx is "later".
  if ((e.code === 'EENVELOPE' || e.code === 'EMESSAGE') && typeof e.responseCode === 'number') {
    return new DeliveryError(`smtp-${e.responseCode}`, e.responseCode >= 500);
  }
  // Anything else (no connection, no STARTTLS, a refused login) is the deployment's, fixed by
  // the operator, after which the mail should still go.
  if (typeof e.code === 'string') return new DeliveryError(e.code.toLowerCase(), false);
  return new DeliveryError(typeof e.responseCode === 'number' ? `smtp-${e.responseCode}` : 'error', false);
}

export function createSmtpTransport(smtp: SmtpConfig): MailTransport {
  let transporter: Transporter | undefined;
  const open = async (): Promise<Transporter> => {
    if (transporter) return transporter;
    const pass =
      smtp.passwordFile === undefined
        ? undefined
        : (await readFile(smtp.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    const ca = smtp.caFile === undefined ? undefined : await readFile(smtp.caFile);
    transporter = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      // STARTTLS is required unless the operator turned it off for a loopback relay (config.ts).
      requireTLS: !smtp.secure && smtp.starttls,
      ignoreTLS: !smtp.secure && !smtp.starttls,
      ...(smtp.user === undefined ? {} : { auth: { user: smtp.user, pass: pass ?? '' } }),
      tls: { ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' },
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
      logger: false,
      debug: false,
    });
    return transporter;
  };
  return {
    describe: `SMTP ${smtp.secure ? 'smtps' : 'smtp'}://${smtp.host}:${smtp.port}`,
    async send(mail) {
      const t = await open().catch((error: unknown) => {
        throw new DeliveryError(
          `config-${(error as NodeJS.ErrnoException).code?.toLowerCase() ?? 'error'}`,
          false,
        );
      });
      try {
        await t.sendMail(nodemailerMessage(mail));
      } catch (error) {
        throw classify(error);
      }
    },
    close() {
      transporter?.close();
    },
  };
}

/** Writes each mail as `<outbox>/<time>-<id>.eml` (mode 0600, atomically), for a person to read. */
export function createOutboxTransport(dir: string): MailTransport {
  const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    describe: `the outbox directory ${dir}`,
    async send(mail) {
      const info = (await builder.sendMail(nodemailerMessage(mail))) as { message: Buffer };
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      await writeFileAtomically(join(dir, `${stamp}-${mail.id}.eml`), info.message, {
        createDirectory: true,
      }).catch((error: unknown) => {
        throw new DeliveryError(
          `outbox-${(error as NodeJS.ErrnoException).code?.toLowerCase() ?? 'error'}`,
          false,
        );
      });
    },
    close() {
      builder.close();
    },
  };
}
