// multipart/form-data (RFC 7578) for the one form that sends a file without JavaScript: the body,
// already size-limited by the parser, split into its named parts.
import { OrthIdError } from '../../core/errors.js';

export interface FormPart {
  data: Buffer;
  filename?: string;
  contentType?: string;
}

function malformed(): OrthIdError {
  return new OrthIdError('request.invalid', 'The form could not be read; send it again from the page.');
}

/** The boundary of a multipart/form-data Content-Type, or undefined. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  const match = /^multipart\/form-data\s*;.*?boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(
    contentType ?? '',
  );
  return match?.[1] ?? match?.[2];
}

/** The parts by name (the first of each name); `request.invalid` for a body that is not one. */
export function parseMultipart(body: Buffer, boundary: string): Map<string, FormPart> {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts = new Map<string, FormPart>();
  let at = body.indexOf(delimiter);
  if (at === -1) throw malformed();
  for (;;) {
    at += delimiter.length;
    // "--" after a delimiter closes the body.
    if (body.subarray(at, at + 2).toString() === '--') return parts;
    if (body.subarray(at, at + 2).toString() !== '\r\n') throw malformed();
    const headersEnd = body.indexOf('\r\n\r\n', at + 2);
    if (headersEnd === -1) throw malformed();
    const headers = body
      .subarray(at + 2, headersEnd)
      .toString('utf8')
      .split('\r\n');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd + 4);
    if (next === -1) throw malformed();
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? '';
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1];
    const contentType = headers
      .find((h) => /^content-type:/i.test(h))
      ?.replace(/^content-type:\s*/i, '')
      .trim();
    if (name !== undefined && !parts.has(name)) {
      parts.set(name, {
        data: body.subarray(headersEnd + 4, next),
        ...(filename !== undefined ? { filename } : {}),
        ...(contentType ? { contentType } : {}),
      });
    }
    at = next + 2;
  }
}
