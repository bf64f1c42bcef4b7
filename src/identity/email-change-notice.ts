// The notice a user's previous address gets when the account's address changes (confirmed by the
// user, or set by an administrator): queued in the transaction of the change, naming the new
// address only masked, so a mailbox taken over long ago learns nothing it could use.
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { InlineImageRef, Mail } from '../mail/mail.js';

/** The mail's words, composed by the caller in the reader's language and the tenant's brand. */
export interface NoticeText {
  subject: string;
  text: string;
  html: string;
  /** The images the HTML shows (the tenant's logo). */
  inline?: readonly InlineImageRef[];
}

/** The template the notice is queued under (metrics and audit name it, never its content). */
export const EMAIL_CHANGED_TEMPLATE = 'email-changed';

/**
 * An address with most of it hidden: the first character of the local part and of the domain,
 * and the top-level domain (`ada.lovelace@example.org` → `a•••@e•••.org`). The owner recognises
 * their own new address; someone reading the old mailbox cannot write to the new one.
 */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 1) return '•••';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  const host = dot > 0 ? domain.slice(0, dot) : domain;
  const tld = dot > 0 ? domain.slice(dot) : '';
  return `${[...local][0]}•••@${[...host][0] ?? ''}•••${tld}`;
}

/**
 * Queues the notice to `previous` when the address really changed (not only its case), inside
 * the caller's tenant transaction: it goes iff the change commits. `compose` is handed the new
 * address masked, never in full. Returns whether a notice was queued.
 */
export async function queueEmailChangedNotice(
  mail: Pick<Mail, 'enqueue'>,
  tx: Queryable,
  tenantId: string,
  change: { previous: string; next: string },
  compose: (maskedNext: string) => NoticeText,
): Promise<boolean> {
  if (normaliseEmail(change.previous) === normaliseEmail(change.next)) return false;
  await mail.enqueue(tx, tenantId, {
    to: change.previous,
    template: EMAIL_CHANGED_TEMPLATE,
    ...compose(maskEmail(change.next)),
  });
  return true;
}
