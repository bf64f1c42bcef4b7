// Where `orthid bundle verify` gets the tenant's JWKS: its URL (fetched, 10 s at most) or a
// saved file, for verifying offline. Only the source is named in errors, never the document.
import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import { OrthIdError } from '../core/errors.js';

/** The JWKS at `source` (an http(s) URL or a file path), parsed; `bundle.jwks_*` when it cannot be had. */
export async function loadJwks(source: string): Promise<JSONWebKeySet> {
  let text: string;
  if (/^https?:\/\//i.test(source)) {
    const response = await fetch(source, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    }).catch((error: unknown) => {
      throw new OrthIdError(
        'bundle.jwks_unavailable',
        `Could not fetch the JWKS from ${source}; check the URL or pass a saved JWKS file.`,
        { cause: error },
      );
    });
    if (!response.ok) {
      throw new OrthIdError(
        'bundle.jwks_unavailable',
        `Fetching the JWKS from ${source} answered HTTP ${response.status}.`,
      );
    }
    text = await response.text();
  } else {
    text = await readFile(source, 'utf8').catch((error: unknown) => {
      throw new OrthIdError('request.invalid', `Cannot read the JWKS file ${source}.`, { cause: error });
    });
  }
  try {
    return JSON.parse(text) as JSONWebKeySet;
  } catch (error) {
    throw new OrthIdError(
      'bundle.jwks_invalid',
      `${source} is not JSON; pass the tenant's JWKS ({"keys": [...]}).`,
      { cause: error },
    );
  }
}
