// A relying party's redirect URI as a real listener on loopback, for browser tests: the test sees
// the authorization response arrive (a request it can wait for, with a deadline) instead of
// guessing from the browser's address bar, and the browser lands on a small page that loads at once.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CallbackServer {
  /** `http://localhost:<port>/callback`; the server listens before this is known. */
  redirectUri: string;
  /**
   * The next authorization response to reach the redirect URI after this call (its full URL,
   * code included), or a rejection after `timeoutMs`. Call it before the step that redirects;
   * a new call gives up the previous wait, so a step that failed cannot take a later response.
   */
  next(timeoutMs: number): Promise<URL>;
  close(): Promise<void>;
}

interface Waiter {
  resolve(url: URL): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const PAGE =
  '<!doctype html><html lang="en"><title>Relying party</title><h1>Back at the application</h1></html>';

export async function startCallbackServer(): Promise<CallbackServer> {
  let waiting: Waiter | undefined;
  const settle = (outcome: { url: URL } | { error: Error }) => {
    const waiter = waiting;
    if (!waiter) return;
    waiting = undefined;
    clearTimeout(waiter.timer);
    if ('url' in outcome) waiter.resolve(outcome.url);
    else waiter.reject(outcome.error);
  };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' || url.pathname !== '/callback') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(PAGE);
    settle({ url: new URL(`${redirectUri}${url.search}`) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const redirectUri = `http://localhost:${(server.address() as AddressInfo).port}/callback`;

  return {
    redirectUri,
    next(timeoutMs) {
      settle({ error: new Error('a newer wait for an authorization response took its place') });
      return new Promise<URL>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            settle({
              error: new Error(`no authorization response reached ${redirectUri} within ${timeoutMs} ms`),
            }),
          timeoutMs,
        );
        waiting = { resolve, reject, timer };
      });
    },
    async close() {
      settle({ error: new Error('the callback server closed before an authorization response arrived') });
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
