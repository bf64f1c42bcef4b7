// The mail queue other features call: `enqueue` seals a mail, with the images its HTML shows
// inline, into the caller's transaction (so it is queued iff the change commits and wakes the
// delivery workers on commit); the queue's counts for /metrics and the purge of finished mail for
// housekeeping. Delivery is delivery-worker.ts.
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { type Database, notify, withSystem, withTenantStatements } from '../storage/db/database.js';
import { checkRecipient, formatSender, parseSender } from './address.js';
import { allTenantIds, createMailQueueQueries, type MailCounts } from './mail-queue.queries.js';

/** Told when mail was queued; every replica's worker listens. The payload is the tenant id. */
export const MAIL_CHANNEL = 'orthid_mail';

export const MAIL_TABLE = 'mail_queue';

/** What a feature hands to `enqueue`. */
export interface MailMessage {
  to: string;
  /** The kind of mail, e.g. `verify-email`; shown in metrics and audit events, never its content. */
  template: string;
  subject: string;
  text: string;
  /** Optional HTML alternative; the hosted flows build theirs with `composeMail` (src/web/mails). */
  html?: string;
  /** Images the HTML shows as `cid:` URLs, found among the tenant's stored images when queued. */
  inline?: readonly InlineImageRef[];
}

/**
 * An image the HTML shows as `<img src="cid:<cid>">`: the tenant's stored image whose bytes hash
 * to `sha256`. The bytes are sealed into the queued mail, so what goes out is what was queued.
 */
export interface InlineImageRef {
  cid: string;
  sha256: string;
  filename: string;
}

/** The tenant's images a mail may carry inline (src/tenancy/mail-logo-images.ts). */
export interface InlineImageSource {
  /** The tenant's image with these bytes' hash, or undefined when it holds none (any more). */
  find(tenantId: string, sha256: string): Promise<{ content: Buffer; contentType: string } | undefined>;
}

/** An inline image as sealed with its mail: the bytes in base64, since the content is JSON. */
export interface InlinePart {
  cid: string;
  filename: string;
  contentType: string;
  base64: string;
}

/** What is sealed into `mail_queue.content`. */
export interface MailContent {
  from: string;
  subject: string;
  text: string;
  html?: string;
  inline?: InlinePart[];
}

/** A mail ready to hand to a transport. */
export interface OutgoingMail extends MailContent {
  id: string;
  tenantId: string;
  template: string;
  to: string;
}

export interface Mail {
  /**
   * Queues a mail inside `tx`, which must be scoped to `tenantId` (withTenant). The recipient and
   * the content are sealed with the tenant's data key. Returns the mail's id.
   *
   * @example
   * await withTenant(app.db, tenant.id, async (tx) => {
   *   await app.mail.enqueue(tx, tenant.id, { to, template: 'password-reset', subject, text, html });
   * });
   */
  enqueue(tx: Queryable, tenantId: string, message: MailMessage): Promise<string>;
  /** The deployment's sender, used when a tenant has configured none. */
  readonly defaultFrom: string;
  /** The tenant's sender (its `mailFrom` setting) or the deployment's. */
  senderOf(tx: Queryable, tenantId: string): Promise<string>;
  /** Counts over every tenant (for /metrics). */
  counts(): Promise<MailCounts>;
  /** Deletes sent and failed mail finished longer than the retention ago; returns how many. */
  purgeFinished(batch?: number): Promise<number>;
}

export interface MailDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  /** "Name <address>" used when a tenant sets no sender of its own. */
  defaultFrom: string;
  /** How long sent and failed mail is kept before housekeeping deletes it. */
  retentionMs: number;
  /** Where inline images are found; without it a mail goes without them. */
  inlineImages?: InlineImageSource;
  log: Logger;
}

const TEMPLATE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Remote resources in a mail leak when and where it is read; only inline and local ones are allowed. */
const REMOTE_RESOURCE =
  /\b(?:src|background|srcset|poster)\s*=\s*["']?\s*(?:https?:)?\/\/|url\(\s*["']?\s*(?:https?:)?\/\/|<link\b/i;
const MAX_BODY = 256 * 1024;
const MAX_INLINE = 4;
/** An inline image is a logo-sized picture, not a document: a larger one is left out. */
const MAX_INLINE_BYTES = 128 * 1024;
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif']);
/** A Content-ID is a header value and an attribute value: no room for anything but these. */
const CID = /^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9.-]{1,64}$/;
const FILENAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;

function checkMessage(message: MailMessage): void {
  const problem = (text: string) => new OrthIdError('mail.content_invalid', text);
  if (!TEMPLATE.test(message.template))
    throw problem('The template name must be lowercase letters, digits, "-", "_" or ".".');
  if (message.subject.trim() === '' || /[\r\n]/.test(message.subject) || message.subject.length > 200) {
    throw problem('The subject must be one non-empty line of at most 200 characters.');
  }
  if (message.text.trim() === '') throw problem('A mail needs a plain-text body.');
  if (message.text.length + (message.html?.length ?? 0) > MAX_BODY)
    throw problem('The mail body is too large.');
  if (message.html !== undefined && REMOTE_RESOURCE.test(message.html)) {
    throw problem('The HTML body loads a remote resource; mails carry no remote images or scripts.');
  }
  const inline = message.inline ?? [];
  if (inline.length > MAX_INLINE) throw problem(`A mail carries at most ${MAX_INLINE} inline images.`);
  for (const image of inline) {
    if (!CID.test(image.cid) || !SHA256.test(image.sha256) || !FILENAME.test(image.filename)) {
      throw problem('An inline image needs a Content-ID like name@domain, a SHA-256 and a plain file name.');
    }
    // An image nothing shows would arrive as an unexplained attachment.
    if (!message.html?.includes(`cid:${image.cid}`)) {
      throw problem(`The HTML body does not show the inline image ${image.cid}.`);
    }
  }
}

export function sealMail(
  keyring: TenantKeyring,
  id: string,
  to: string,
  content: MailContent,
): { recipient: string; content: string } {
  return {
    recipient: keyring.seal(to, { table: MAIL_TABLE, column: 'recipient', rowId: id }),
    content: keyring.seal(JSON.stringify(content), { table: MAIL_TABLE, column: 'content', rowId: id }),
  };
}

export function openMail(
  keyring: TenantKeyring,
  row: { id: string; recipient: string; content: string },
): { to: string; content: MailContent } {
  return {
    to: keyring.open(row.recipient, { table: MAIL_TABLE, column: 'recipient', rowId: row.id }),
    content: JSON.parse(
      keyring.open(row.content, { table: MAIL_TABLE, column: 'content', rowId: row.id }),
    ) as MailContent,
  };
}

export function createMail(deps: MailDeps): Mail {
  const senderOf = async (tx: Queryable, tenantId: string): Promise<string> => {
    const configured = await createMailQueueQueries(tx).tenantSender(tenantId);
    const parsed = configured === undefined ? undefined : parseSender(configured);
    return parsed ? formatSender(parsed) : deps.defaultFrom;
  };
  /**
   * The images found, in order. One that is missing (the logo was replaced or removed since the
   * mail was composed) or cannot be read now is left out: the reader then sees the image's alt
   * text, and a password reset never waits on a logo.
   */
  const inlineParts = async (tenantId: string, refs: readonly InlineImageRef[]): Promise<InlinePart[]> => {
    const parts: InlinePart[] = [];
    for (const ref of refs) {
      let found: Awaited<ReturnType<InlineImageSource['find']>>;
      try {
        found = await deps.inlineImages?.find(tenantId, ref.sha256);
      } catch (error) {
        // The code only: an object store's error may quote a key or an endpoint.
        deps.log.warn(
          { tenant: tenantId, code: (error as { code?: unknown }).code },
          'an inline image of a mail could not be read; the mail is queued without it',
        );
        continue;
      }
      if (!found || found.content.length > MAX_INLINE_BYTES || !INLINE_TYPES.has(found.contentType)) continue;
      parts.push({
        cid: ref.cid,
        filename: ref.filename,
        contentType: found.contentType,
        base64: found.content.toString('base64'),
      });
    }
    return parts;
  };
  return {
    defaultFrom: deps.defaultFrom,
    senderOf,
    async enqueue(tx, tenantId, message) {
      const to = checkRecipient(message.to);
      checkMessage(message);
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const id = newId();
      const now = deps.clock.now();
      const inline = await inlineParts(tenantId, message.inline ?? []);
      const content: MailContent = {
        from: await senderOf(tx, tenantId),
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
        ...(inline.length === 0 ? {} : { inline }),
      };
      const sealed = sealMail(keyring, id, to, content);
      await createMailQueueQueries(tx).insert({
        tenant_id: tenantId,
        id,
        template: message.template,
        ...sealed,
        next_attempt_at: now,
        created_at: now,
      });
      await notify(tx, MAIL_CHANNEL, tenantId);
      return id;
    },
    async counts() {
      const total: MailCounts = { queued: 0, retrying: 0, sent: 0, failed: 0, oldest_queued_at: null };
      for (const tenantId of await withSystem(deps.db, allTenantIds)) {
        const c = await withTenantStatements(deps.db, tenantId, (q) => createMailQueueQueries(q).counts());
        total.queued += c.queued;
        total.retrying += c.retrying;
        total.sent += c.sent;
        total.failed += c.failed;
        if (c.oldest_queued_at && (!total.oldest_queued_at || c.oldest_queued_at < total.oldest_queued_at)) {
          total.oldest_queued_at = c.oldest_queued_at;
        }
      }
      return total;
    },
    async purgeFinished(batch = 5000) {
      const before = new Date(deps.clock.now().getTime() - deps.retentionMs);
      let total = 0;
      for (const tenantId of await withSystem(deps.db, allTenantIds)) {
        for (;;) {
          const deleted = await withTenantStatements(deps.db, tenantId, (q) =>
            createMailQueueQueries(q).deleteFinished(before, batch),
          );
          total += deleted;
          if (deleted < batch) break;
        }
      }
      return total;
    },
  };
}
