// The age v1 header: version line, one stanza per recipient, and the MAC line that binds them to
// the file key. Encodes and parses the text; which stanza opens the file is the stanza modules' job.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { OrthIdError } from '../../core/errors.js';
import { decodeBase64NoPad, encodeBase64NoPad } from './base64-no-pad.js';

export interface Stanza {
  /** The type (e.g. `X25519`) followed by its arguments. */
  readonly args: readonly string[];
  readonly body: Buffer;
}

export interface ParsedHeader {
  readonly stanzas: readonly Stanza[];
  /** The bytes the MAC covers: everything up to and including `---`. */
  readonly macInput: Buffer;
  readonly mac: Buffer;
  /** Header length in bytes, including the MAC line's newline. */
  readonly length: number;
}

const VERSION_LINE = 'age-encryption.org/v1';
const VERSION_PREFIX = Buffer.from(`${VERSION_LINE}\n`, 'latin1');
const ARMOR_PREFIX = Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----', 'latin1');
const MAC_LINE_START = Buffer.from('\n--- ', 'latin1');
const BODY_BYTES_PER_LINE = 48;
const BODY_COLUMNS = 64;
const MAC_LENGTH = 32;
/** Far above any real header (a stanza is ~110 bytes); bounds the memory a hostile input can take. */
export const MAX_HEADER_LENGTH = 1024 * 1024;

function malformed(problem: string): OrthIdError {
  return new OrthIdError(
    'age.decrypt_failed',
    `The age header is malformed (${problem}): the file is damaged or is not an age v1 file. Restore it from another copy.`,
  );
}

/** HMAC-SHA-256 under HKDF(file key, info "header"), as the spec defines the header MAC. */
function headerMac(fileKey: Buffer, macInput: Buffer): Buffer {
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  return createHmac('sha256', macKey).update(macInput).digest();
}

/** The complete header text for these stanzas, MAC line included. */
export function encodeHeader(stanzas: readonly Stanza[], fileKey: Buffer): Buffer {
  let text = `${VERSION_LINE}\n`;
  for (const stanza of stanzas) {
    text += `-> ${stanza.args.join(' ')}\n`;
    // A body whose length is a multiple of 48 ends with an empty line, so the reader knows it ended.
    for (let offset = 0; offset <= stanza.body.length; offset += BODY_BYTES_PER_LINE) {
      text += `${encodeBase64NoPad(stanza.body.subarray(offset, offset + BODY_BYTES_PER_LINE))}\n`;
    }
  }
  const macInput = Buffer.from(`${text}---`, 'latin1');
  const mac = encodeBase64NoPad(headerMac(fileKey, macInput));
  return Buffer.concat([macInput, Buffer.from(` ${mac}\n`, 'latin1')]);
}

/**
 * Checks the first bytes of a stream early, so a non-age input fails at once with a useful
 * message rather than after a megabyte of searching for a MAC line.
 */
function checkHeaderStart(head: Buffer): void {
  const n = Math.min(head.length, VERSION_PREFIX.length);
  if (head.subarray(0, n).equals(VERSION_PREFIX.subarray(0, n))) return;
  if (
    head
      .subarray(0, ARMOR_PREFIX.length)
      .equals(ARMOR_PREFIX.subarray(0, Math.min(head.length, ARMOR_PREFIX.length)))
  ) {
    throw new OrthIdError(
      'age.decrypt_failed',
      'The file is ASCII-armored (PEM) age, which this reader does not accept. Convert it first: `age -d` reads it, or strip the armor with base64 -d.',
    );
  }
  throw new OrthIdError(
    'age.decrypt_failed',
    'The input is not an age v1 file: it does not begin with "age-encryption.org/v1". Check that you passed the encrypted backup file.',
  );
}

function parseArgs(line: string): string[] {
  const args = line.slice(3).split(' ');
  for (const arg of args) {
    if (arg.length === 0 || !/^[\x21-\x7e]+$/.test(arg))
      throw malformed('a stanza has an empty or non-printable argument');
  }
  return args;
}

/**
 * Parses the header at the start of `buffer`, or returns null when the MAC line has not arrived yet.
 * Throws `age.decrypt_failed` for anything the spec does not allow.
 */
export function parseHeader(buffer: Buffer): ParsedHeader | null {
  checkHeaderStart(buffer);
  const macStart = buffer.indexOf(MAC_LINE_START);
  const end = macStart === -1 ? -1 : buffer.indexOf(0x0a, macStart + 1);
  if (end === -1) {
    if (buffer.length > MAX_HEADER_LENGTH)
      throw malformed(`no MAC line in the first ${MAX_HEADER_LENGTH} bytes`);
    return null;
  }
  const lines = buffer.toString('latin1', 0, end).split('\n');
  if (lines[0] !== VERSION_LINE) throw malformed('bad version line');
  const stanzas: Stanza[] = [];
  let i = 1;
  while (lines[i]!.startsWith('-> ')) {
    const args = parseArgs(lines[i++]!);
    const parts: Buffer[] = [];
    for (;;) {
      const line = lines[i++];
      if (line === undefined || line.startsWith('--- ')) throw malformed('a stanza body is unterminated');
      const part = line.length <= BODY_COLUMNS ? decodeBase64NoPad(line) : null;
      if (part === null) throw malformed('a stanza body is not canonical base64 in 64-column lines');
      parts.push(part);
      if (line.length < BODY_COLUMNS) break;
    }
    stanzas.push({ args, body: Buffer.concat(parts) });
  }
  if (i !== lines.length - 1) throw malformed('unexpected line between stanzas');
  const macLine = lines[i]!;
  const mac = decodeBase64NoPad(macLine.slice(4));
  if (mac === null || mac.length !== MAC_LENGTH) throw malformed('the MAC line is not a base64 SHA-256 MAC');
  if (stanzas.length === 0) throw malformed('there are no recipient stanzas');
  return { stanzas, macInput: buffer.subarray(0, end - macLine.length + 3), mac, length: end + 1 };
}

/** Throws unless the header MAC matches under this file key. */
export function verifyHeaderMac(header: ParsedHeader, fileKey: Buffer): void {
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
    throw new OrthIdError(
      'age.decrypt_failed',
      'The age header failed its integrity check (MAC mismatch): the file was modified or damaged after it was written. Restore it from another copy.',
    );
  }
}
