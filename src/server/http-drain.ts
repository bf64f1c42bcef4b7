// Graceful drain of the HTTP listener: unready first, then stop accepting, let requests in flight
// finish within a grace period, and never wait on a client that stopped sending. Works on the Node
// server underneath Fastify, so it covers the admin API and the oidc-provider (Koa) routes alike.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { OrthIdError } from '../core/errors.js';
import { problemFrom } from './plugins/problem-details.js';

/** During a drain, a request body from which nothing arrives for this long is answered and closed. */
const STALLED_BODY_MS = 2_000;
/** After answering a request whose body is still arriving, how long its rest is read and dropped before the socket is destroyed. */
const LINGER_MS = 2_000;
const WATCH_INTERVAL_MS = 250;

interface InFlight {
  req: IncomingMessage;
  res: ServerResponse;
  /** The socket's bytesRead when a byte last arrived; progress without touching the body stream. */
  bytesRead: number;
  progressAt: number;
}

export interface DrainOptions {
  /** How long /readyz answers 503 while requests are still served and accepted. */
  drainMs: number;
  /** How long requests in flight may still take once the listener has closed. */
  graceMs: number;
  /** Stops accepting connections; resolves once every connection has closed (Fastify's close). */
  close(): Promise<void>;
  /** Called when the listener is closed, with the requests then in flight. */
  onClosing?(inFlight: number): void;
}

export interface DrainOutcome {
  /** Connections still open when the grace period ended, destroyed with whatever they were doing. */
  cut: number;
}

export interface HttpDrain {
  /** True from the first shutdown signal: /readyz answers 503 and every response closes its connection. */
  readonly draining: boolean;
  /** Watches `server`'s connections and responses; call once, before it listens. */
  attach(server: Server): void;
  drain(options: DrainOptions): Promise<DrainOutcome>;
  /** Ends the drain delay and the grace period now (a second signal). */
  hurry(): void;
}

/** A body was announced (a length or chunked) and has not fully arrived yet. */
function bodyStillArriving(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Node destroys a `Connection: close` socket as soon as the response is written; with the rest of
 * the request unread, the kernel then answers with a reset, which can discard the response before
 * the client has read it. Instead: send the response and FIN, read and drop whatever still comes,
 * and destroy the socket after LINGER_MS even if the client goes on sending (or stops).
 */
function lingerOnClose(req: IncomingMessage, socket: Socket): void {
  socket.destroySoon = function (this: Socket) {
    req.resume();
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

export function createHttpDrain(): HttpDrain {
  const sockets = new Set<Socket>();
  const inFlight = new Set<InFlight>();
  const state = { draining: false, hurried: false };
  const waiting = new Set<() => void>();

  /** Resolves after `ms`, or at once when hurried; `cancel` clears the timer, which would keep the process alive. */
  const pause = (ms: number) => {
    let cancel = () => {};
    const done = new Promise<void>((resolve) => {
      if (state.hurried || ms <= 0) return resolve();
      const timer = setTimeout(() => cancel(), ms);
      cancel = () => {
        clearTimeout(timer);
        waiting.delete(cancel);
        resolve();
      };
      waiting.add(cancel);
    });
    return { done, cancel: () => cancel() };
  };

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const entry: InFlight = { req, res, bytesRead: req.socket.bytesRead, progressAt: Date.now() };
    inFlight.add(entry);
    res.once('close', () => inFlight.delete(entry));
    // Every way of answering (Fastify's reply, Koa's res.end, an implicit header) goes through
    // writeHead, so the decision to close is taken here, once the answer is known to be starting.
    const writeHead = res.writeHead;
    res.writeHead = ((...args: unknown[]) => {
      if (!res.headersSent) {
        const unread = bodyStillArriving(req);
        if (unread) lingerOnClose(req, req.socket);
        // A client still sending is never waited for; during a drain, the client reconnects
        // (through the load balancer, to a replica that stays).
        if (unread || state.draining) res.setHeader('Connection', 'close');
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(res, args);
    }) as ServerResponse['writeHead'];
  }

  /** A body that stopped arriving would hold the drain until the grace period ends: answer it now. */
  function answerStalledBodies(): void {
    const now = Date.now();
    for (const entry of inFlight) {
      const { req, res } = entry;
      if (res.headersSent || !bodyStillArriving(req)) continue;
      const read = req.socket?.bytesRead ?? entry.bytesRead;
      if (read !== entry.bytesRead) {
        entry.bytesRead = read;
        entry.progressAt = now;
      } else if (now - entry.progressAt >= STALLED_BODY_MS) {
        inFlight.delete(entry);
        const problem = problemFrom(
          new OrthIdError(
            'server.shutting_down',
            'OrthID is shutting down and the request body stopped arriving; send the request again.',
          ),
        );
        const body = JSON.stringify(problem);
        res.writeHead(problem.status, {
          'Content-Type': 'application/problem+json',
          'Content-Length': Buffer.byteLength(body),
          'Retry-After': '1',
        });
        res.end(body);
      }
    }
  }

  return {
    get draining() {
      return state.draining;
    },

    attach(server) {
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      // Before Fastify's own listener, so the writeHead guard is in place for every route.
      server.prependListener('request', onRequest);
    },

    async drain({ drainMs, graceMs, close, onClosing }) {
      state.draining = true;
      // Bodies already in progress are watched from now on: progress is measured, not assumed.
      for (const entry of inFlight) {
        entry.bytesRead = entry.req.socket?.bytesRead ?? entry.bytesRead;
        entry.progressAt = Date.now();
      }
      const watcher = setInterval(answerStalledBodies, WATCH_INTERVAL_MS);
      try {
        await pause(drainMs).done;
        onClosing?.(inFlight.size);
        const closed = close();
        const grace = pause(graceMs);
        const drained = await Promise.race([closed.then(() => true), grace.done.then(() => false)]);
        grace.cancel();
        if (drained) return { cut: 0 };
        const cut = sockets.size;
        for (const socket of sockets) socket.destroy();
        await closed;
        return { cut };
      } finally {
        clearInterval(watcher);
      }
    },

    hurry() {
      state.hurried = true;
      for (const done of [...waiting]) done();
    },
  };
}
