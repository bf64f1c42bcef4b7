// Checks the addresses OrthID sends to and from before they reach the queue: one mailbox, no
// line breaks or header syntax that could smuggle another header or recipient into the message.
import { OrthIdError } from '../core/errors.js';

/** A mailbox: local part, @, a domain of dot-separated labels; no spaces, brackets, quotes, commas. */
const ADDRESS =
  /^[^\s@<>()[\]",;:\\]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function isMailAddress(value: string): boolean {
  return value.length <= 254 && ADDRESS.test(value);
}

/** A recipient address; the error never repeats the address (it is personal data). */
export function checkRecipient(value: string): string {
  const address = value.trim();
  if (!isMailAddress(address)) {
    throw new OrthIdError(
      'mail.address_invalid',
      'The recipient is not a single e-mail address (name@domain).',
    );
  }
  return address;
}

export interface Sender {
  name: string | undefined;
  address: string;
}

/**
 * Parses a sender written `Name <address>` or `address`. The display name may hold letters,
 * digits, spaces and common punctuation, but no quotes, brackets or line breaks, so it needs no
 * quoting of our own (nodemailer encodes it).
 */
export function parseSender(value: string): Sender | undefined {
  const text = value.trim();
  const named = /^([^<>"\r\n\\]{1,100}?)\s*<([^<>\s]+)>$/.exec(text);
  if (named) {
    const name = named[1]!.trim();
    return isMailAddress(named[2]!) && name !== '' ? { name, address: named[2]! } : undefined;
  }
  return isMailAddress(text) ? { name: undefined, address: text } : undefined;
}

export function formatSender(sender: Sender): string {
  return sender.name === undefined ? sender.address : `${sender.name} <${sender.address}>`;
}
