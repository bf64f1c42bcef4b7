// The admin credentials `orthid start` writes on first run, and the admin API token they get: what
// an operator does right after the first start.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

export interface BootstrapCredentials {
  client_id: string;
  client_secret: string;
  token_endpoint: string;
  scope: string;
  resource: string;
}

export async function readBootstrapCredentials(file: string): Promise<BootstrapCredentials> {
  return JSON.parse(await readFile(file, 'utf8')) as BootstrapCredentials;
}

/** A client-credentials token for the admin API; fails the test unless the grant succeeds. */
export async function adminTokenFrom(credentials: BootstrapCredentials): Promise<string> {
  const response = await fetch(credentials.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${credentials.client_id}:${credentials.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope: credentials.scope,
      resource: credentials.resource,
    }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { access_token: string }).access_token;
}
