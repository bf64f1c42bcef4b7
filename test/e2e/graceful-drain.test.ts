// SIGTERM on a real `orthid start` under traffic: /readyz goes 503 first, requests in flight
// finish, new connections are refused, clients that stopped sending never hold the shutdown, and
// the grace period cuts what is still open. Timings are measured and printed, never bet on.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, test } from 'node:test';
import { type BootstrapCredentials, readBootstrapCredentials } from '../helpers/bootstrap-credentials.js';
import { embeddedDataDir } from '../helpers/embedded-data-dir.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  server: ServerProcess;
  credentials: BootstrapCredentials;
  /** Resolves when the process exits, with its exit code and when (performance.now()). */
  exited: Promise<{ code: number | null; at: number }>;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function start(env: Record<string, string>): Promise<Started> {
  const dir = await embeddedDataDir('orthid-drain-');
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const server = await startServer({ ORTHID_DATA_DIR: dir, ORTHID_LOG_LEVEL: 'info', ...env }, 180_000);
  cleanup.push(async () => {
    if (server.child.exitCode === null && server.child.signalCode === null) await server.stop();
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    server.child.once('exit', (code) => resolve({ code, at: performance.now() })),
  );
  const file = join(dir, 'admin-credentials.json');
  assert.ok(existsSync(file), 'orthid start wrote the admin credentials');
  return { server, credentials: await readBootstrapCredentials(file), exited };
}

function tokenForm(credentials: BootstrapCredentials): string {
  return new URLSearchParams({
    grant_type: 'client_credentials',
    scope: credentials.scope,
    resource: credentials.resource,
  }).toString();
}

function basic(credentials: BootstrapCredentials): string {
  return `Basic ${Buffer.from(`${credentials.client_id}:${credentials.client_secret}`).toString('base64')}`;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** A hand-driven HTTP/1.1 connection: the test decides when each byte of the request is sent. */
function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  let onResponse: (r: RawResponse) => void;
  const response = new Promise<RawResponse>((resolve) => {
    onResponse = resolve;
  });
  let answered = false;
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
    const end = received.indexOf('\r\n\r\n');
    if (answered || end < 0) return;
    const [statusLine = '', ...lines] = received.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (received.length - end - 4 < length) return;
    answered = true;
    onResponse({
      status: Number(statusLine.split(' ')[1]),
      headers,
      body: received.slice(end + 4, end + 4 + length),
      at: performance.now(),
    });
  });
  // How the connection ended: closed by the server (with or without a reset) and when.
  const closed = new Promise<{ error?: string; at: number }>((resolve) => {
    let error: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('close', () => resolve({ ...(error ? { error } : {}), at: performance.now() }));
  });
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  cleanup.push(async () => {
    socket.destroy();
  });
  return {
    opened,
    response,
    closed,
    write: (text: string | Buffer) => socket.write(text),
    answered: () => answered,
  };
}

function tokenHead(credentials: BootstrapCredentials, length: number | 'chunked'): string {
  return [
    'POST /t/system/token HTTP/1.1',
    'Host: 127.0.0.1',
    `Authorization: ${basic(credentials)}`,
    'Content-Type: application/x-www-form-urlencoded',
    length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`,
    '',
    '',
  ].join('\r\n');
}

interface LoadResult {
  startedAt: number;
  endedAt: number;
  status?: number;
  connection?: string;
  error?: string;
}

/** Keeps `workers` keep-alive clients sending discovery and token requests until stopped. */
function steadyLoad(url: string, credentials: BootstrapCredentials, workers: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const results: LoadResult[] = [];
  let running = true;
  const form = tokenForm(credentials);
  const one = (i: number) =>
    new Promise<LoadResult>((resolve) => {
      const startedAt = performance.now();
      const token = i % 2 === 0;
      const request = http.request(
        token ? `${url}/t/system/token` : `${url}/t/system/.well-known/openid-configuration`,
        {
          agent,
          method: token ? 'POST' : 'GET',
          headers: token
            ? { authorization: basic(credentials), 'content-type': 'application/x-www-form-urlencoded' }
            : {},
        },
        (response) => {
          response.resume();
          response.on('end', () =>
            resolve({
              startedAt,
              endedAt: performance.now(),
              status: response.statusCode ?? 0,
              connection: String(response.headers.connection ?? ''),
            }),
          );
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ startedAt, endedAt: performance.now(), error: error.code ?? error.message }),
      );
      request.end(token ? form : undefined);
    });
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; running; i += workers) {
      const result = await one(i);
      results.push(result);
      // A refused connection is what a stopped listener does; do not spin on it.
      if (result.error) await sleep(20);
    }
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

interface Probe {
  sentAt: number;
  at: number;
  status?: number;
  code?: string;
  error?: string;
}

/** Asks `path` on a new connection every 50 ms, as an orchestrator's probe does, until stopped. */
function probe(url: string, path: string) {
  const seen: Probe[] = [];
  let running = true;
  const once = () =>
    new Promise<Probe>((resolve) => {
      const sentAt = performance.now();
      const request = http.get(`${url}${path}`, { agent: false, timeout: 5_000 }, (response) => {
        let body = '';
        response.on('data', (d) => (body += d));
        response.on('end', () => {
          const code = (JSON.parse(body) as { code?: string }).code;
          resolve({
            sentAt,
            at: performance.now(),
            status: response.statusCode ?? 0,
            ...(code ? { code } : {}),
          });
        });
      });
      request.on('timeout', () => request.destroy(new Error('timeout')));
      request.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ sentAt, at: performance.now(), error: error.code ?? error.message }),
      );
    });
  const loop = (async () => {
    while (running) {
      seen.push(await once());
      await sleep(50);
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await loop;
    },
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

describe('orthid start shuts down gracefully on SIGTERM', () => {
  test('under load: unready first, the slow request in flight finishes 200, new connections are refused, and it exits within the grace period', {
    timeout: 300_000,
  }, async (t) => {
    const drainSeconds = 2;
    const graceSeconds = 20;
    const { server, credentials, exited } = await start({
      ORTHID_SHUTDOWN_DRAIN_SECONDS: String(drainSeconds),
      ORTHID_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });
    const load = steadyLoad(server.url, credentials, 4);
    const ready = probe(server.url, '/readyz');
    const live = probe(server.url, '/healthz');
    await sleep(1_000);

    // A client uploading its token request slowly, but steadily (a byte every 100 ms of a
    // parameter the provider ignores): in flight across the whole drain, and finished only once
    // the listener is seen closed, so the order is the test's, not the scheduler's.
    const slow = rawConnection(server.port);
    await slow.opened;
    slow.write(tokenHead(credentials, 'chunked'));
    const first = `${tokenForm(credentials)}&pad=`;
    slow.write(`${first.length.toString(16)}\r\n${first}\r\n`);
    let sigterm = Number.POSITIVE_INFINITY;
    const listenerClosed = () => ready.seen.some((p) => p.at > sigterm && p.error !== undefined);
    const trickle = (async () => {
      while (!listenerClosed()) {
        slow.write('1\r\nx\r\n');
        await sleep(100);
      }
      slow.write('0\r\n\r\n');
    })();
    await sleep(200);

    sigterm = performance.now();
    server.child.kill('SIGTERM');
    const [{ code, at: exitAt }, slowResponse] = await Promise.all([exited, slow.response, trickle]);
    await Promise.all([load.stop(), ready.stop(), live.stop()]);

    assert.equal(code, 0, server.output());
    // Readiness failed before the listener closed.
    const unready = ready.seen.find((p) => p.at > sigterm && p.status === 503);
    assert.ok(unready, 'the readiness probe saw 503 after SIGTERM');
    assert.equal(unready.code, 'server.shutting_down');
    // A connection made just as the listener closes may be reset rather than refused.
    const refusedProbe = ready.seen.find((p) => p.at > sigterm && p.error !== undefined);
    assert.ok(refusedProbe, 'the readiness probe was refused once the listener closed');
    assert.ok(
      ready.seen.every((p) => p.error === undefined || ['ECONNREFUSED', 'ECONNRESET'].includes(p.error)),
    );
    assert.ok(ready.seen.some((p) => p.error === 'ECONNREFUSED'));
    assert.ok(unready.at < refusedProbe.at);
    assert.ok(
      ready.seen.filter((p) => p.at > unready.at && p.status !== undefined).every((p) => p.status === 503),
      'once unready, /readyz never answered 200 again',
    );
    // Liveness stayed OK until the process stopped answering.
    const liveAnswers = live.seen.filter((p) => p.status !== undefined);
    assert.ok(
      liveAnswers.some((p) => p.at > unready.at),
      'healthz answered during the drain',
    );
    assert.ok(liveAnswers.every((p) => p.status === 200));

    // Every answer the load got was a success: no 503 from a closing server, no 5xx.
    const answered = load.results.filter((r) => r.status !== undefined);
    const failed = load.results.filter((r) => r.error !== undefined);
    assert.ok(answered.length > 0);
    assert.deepEqual(
      answered.filter((r) => r.status !== 200).map((r) => r.status),
      [],
    );
    // Requests during the drain were served and told to close their connection.
    const duringDrain = answered.filter((r) => r.startedAt > unready.at);
    assert.ok(duringDrain.length > 0, 'requests sent while unready were still served');
    assert.ok(duringDrain.every((r) => r.connection === 'close'));
    // Failures only once the listener had closed (a refused, or a just-accepted and reset, connection).
    assert.ok(
      failed.some((r) => r.error === 'ECONNREFUSED'),
      'new connections were refused',
    );
    for (const r of failed) {
      assert.ok(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(r.error!), r.error);
      assert.ok(r.startedAt > unready.at, `a request failed (${r.error}) before the drain began`);
    }

    // The slow request, in flight when the listener closed, still got its token.
    assert.equal(slowResponse.status, 200, slowResponse.body);
    assert.ok((JSON.parse(slowResponse.body) as { access_token?: string }).access_token);
    assert.equal(slowResponse.headers.connection, 'close');
    assert.ok(slowResponse.at > refusedProbe.at, 'the slow request finished after the listener closed');
    assert.ok(exitAt > slowResponse.at);
    assert.match(server.output(), /every request in flight finished/);
    assert.ok(
      exitAt - sigterm < (drainSeconds + graceSeconds) * 1000,
      `exited ${seconds(exitAt - sigterm)} after SIGTERM`,
    );

    const lastResponse = Math.max(slowResponse.at, ...answered.map((r) => r.endedAt));
    const timings = {
      requests: load.results.length,
      served: answered.length,
      servedWhileUnready: duringDrain.length,
      refusedOrReset: failed.length,
      toUnready: seconds(unready.at - sigterm),
      unreadyProbeSentAt: seconds(unready.sentAt - sigterm),
      toRefused: seconds(refusedProbe.at - sigterm),
      toLastResponse: seconds(lastResponse - sigterm),
      toExit: seconds(exitAt - sigterm),
    };
    t.diagnostic(
      `shutdown under load (drain ${drainSeconds} s, grace ${graceSeconds} s): ${JSON.stringify(timings)}`,
    );
  });

  test('an oversized chunked body to the token endpoint is answered with Connection: close and its socket closed, and a stalled one does not hold the shutdown', {
    timeout: 300_000,
  }, async (t) => {
    const graceSeconds = 60;
    const { server, credentials, exited } = await start({
      ORTHID_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });

    // Oversized: more than the provider reads (56 KiB), then the client sends nothing more.
    const oversized = rawConnection(server.port);
    await oversized.opened;
    oversized.write(tokenHead(credentials, 'chunked'));
    const chunk = `${tokenForm(credentials)}&pad=${'x'.repeat(64 * 1024)}`;
    oversized.write(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
    const rejected = await oversized.response;
    assert.equal(rejected.status, 400, rejected.body);
    assert.equal((JSON.parse(rejected.body) as { error: string }).error, 'invalid_request');
    assert.equal(rejected.headers.connection, 'close');
    // The server closes it by itself (well before the 60 s request timeout), no SIGTERM needed.
    const closedBy = await Promise.race([oversized.closed, sleep(20_000).then(() => undefined)]);
    assert.ok(closedBy, 'the server closed the connection of the oversized body');

    // Stalled: the start of a chunked body, then silence, while SIGTERM arrives.
    const stalled = rawConnection(server.port);
    await stalled.opened;
    stalled.write(tokenHead(credentials, 'chunked'));
    stalled.write('5\r\ngrant\r\n');
    await sleep(500);
    assert.equal(stalled.answered(), false, 'the stalled request is still waiting for its body');

    const sigterm = performance.now();
    server.child.kill('SIGTERM');
    const [closed, { code, at: exitAt }] = await Promise.all([stalled.closed, exited]);
    assert.equal(code, 0, server.output());
    assert.ok(
      stalled.answered(),
      `the stalled request got no answer before its socket closed:\n${server.output()}`,
    );
    const answer = await stalled.response;
    assert.equal(answer.status, 503);
    assert.equal((JSON.parse(answer.body) as { code: string }).code, 'server.shutting_down');
    assert.equal(answer.headers.connection, 'close');
    assert.ok(closed.at >= answer.at);
    // Not cut at the end of the grace period: answered, closed, and the process left long before.
    assert.match(server.output(), /every request in flight finished/);
    assert.doesNotMatch(server.output(), /grace period over/);
    assert.ok(
      exitAt - sigterm < (graceSeconds * 1000) / 2,
      `exited ${seconds(exitAt - sigterm)} after SIGTERM`,
    );
    t.diagnostic(
      `stalled body: answered ${seconds(answer.at - sigterm)}, socket closed ${seconds(closed.at - sigterm)}, exit ${seconds(exitAt - sigterm)} after SIGTERM (grace ${graceSeconds} s)`,
    );
  });

  test('at the end of the grace period a request that never ends is cut, and the log says how many were', {
    timeout: 300_000,
  }, async (t) => {
    const graceSeconds = 2;
    const { server, credentials, exited } = await start({
      ORTHID_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });
    // Still sending, so never stalled, and never finished: only the grace period ends it.
    const endless = rawConnection(server.port);
    await endless.opened;
    // Below the provider's 56 KiB limit, so it keeps reading.
    endless.write(tokenHead(credentials, 50_000));
    let sending = true;
    const trickle = (async () => {
      while (sending) {
        endless.write('a');
        await sleep(100);
      }
    })();
    await sleep(300);

    const sigterm = performance.now();
    server.child.kill('SIGTERM');
    const [{ code, at: exitAt }, closed] = await Promise.all([exited, endless.closed]);
    sending = false;
    await trickle;
    assert.equal(code, 0, server.output());
    assert.equal(endless.answered(), false, 'the endless request got no answer');
    assert.ok(closed.at - sigterm >= graceSeconds * 1000, 'cut only once the grace period was over');
    assert.match(server.output(), /grace period over: cut 1 connection\(s\) still open/);
    assert.ok(exitAt - sigterm < 60_000, `exited ${seconds(exitAt - sigterm)} after SIGTERM`);
    t.diagnostic(
      `endless request: cut ${seconds(closed.at - sigterm)}, exit ${seconds(exitAt - sigterm)} after SIGTERM (grace ${graceSeconds} s)`,
    );
  });

  test('a second SIGTERM cuts what is still open at once instead of waiting out the grace period', {
    timeout: 300_000,
  }, async () => {
    const graceSeconds = 120;
    const { server, credentials, exited } = await start({
      ORTHID_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });
    const endless = rawConnection(server.port);
    await endless.opened;
    endless.write(tokenHead(credentials, 50_000));
    let sending = true;
    const trickle = (async () => {
      while (sending) {
        endless.write('a');
        await sleep(100);
      }
    })();
    await sleep(300);
    server.child.kill('SIGTERM');
    await server.waitForOutput(/stopped accepting connections/);
    const second = performance.now();
    server.child.kill('SIGTERM');
    const [{ code, at: exitAt }] = await Promise.all([exited, endless.closed]);
    sending = false;
    await trickle;
    assert.equal(code, 0, server.output());
    assert.match(server.output(), /shutting down now: cutting open connections/);
    assert.match(server.output(), /grace period over: cut 1 connection\(s\) still open/);
    assert.ok(
      exitAt - second < (graceSeconds * 1000) / 2,
      `exited ${seconds(exitAt - second)} after the second SIGTERM`,
    );
  });
});
