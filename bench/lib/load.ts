// HTTP load from its own process: `node --import tsx bench/lib/load.ts SPEC_JSON|-` runs
// `connections` keep-alive request loops against one URL for `seconds` and prints one JSON line
// {requests, errors, seconds, rps, p50, p99, firstError, refreshTokens}. Latencies in milliseconds; a non-2xx
// answer counts as an error, not as a request served. Loopback only.
import { Agent, request } from 'node:http';

export interface LoadSpec {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
  /**
   * Refresh-token chains: connection i starts with refreshTokens[i], appends
   * `&refresh_token=…` to `body`, and continues with the refresh token each answer rotates to.
   */
  refreshTokens?: string[];
  /** Requests take these in turn, each replacing `body` and adding to `headers` (e.g. one token each). */
  variants?: { body?: string; headers?: Record<string, string> }[];
  /** Stop after this many requests in all (or at `seconds`, whichever comes first). */
  requests?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  firstError?: string;
  /** Where each refresh-token chain ended, so the next run continues it. */
  refreshTokens?: string[];
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error('loopback only');
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const fixedBody = spec.body === undefined ? undefined : Buffer.from(spec.body);
  const chains = spec.refreshTokens;
  if (chains && chains.length < spec.connections) throw new Error('one refresh token per connection');
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  let issued = 0;
  const once = (connection: number) =>
    new Promise<void>((resolve) => {
      const variant = spec.variants?.[next++ % spec.variants.length];
      const body = chains
        ? Buffer.from(`${spec.body ?? ''}&refresh_token=${encodeURIComponent(chains[connection]!)}`)
        : variant?.body !== undefined
          ? Buffer.from(variant.body)
          : fixedBody;
      const headers = {
        ...spec.headers,
        ...variant?.headers,
        ...(body ? { 'content-length': String(body.length) } : {}),
      };
      const start = performance.now();
      const req = request(url, { method: spec.method, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          if (res.statusCode! >= 200 && res.statusCode! < 300) {
            latencies.push(performance.now() - start);
            if (chains) chains[connection] = (JSON.parse(text) as { refresh_token: string }).refresh_token;
          } else {
            errors++;
            firstError ??= `HTTP ${res.statusCode}: ${text.slice(0, 300)}`;
          }
          resolve();
        });
      });
      req.on('error', (error) => {
        errors++;
        firstError ??= String(error);
        resolve();
      });
      req.end(body);
    });
  const started = performance.now();
  const deadline = started + spec.seconds * 1000;
  await Promise.all(
    Array.from({ length: spec.connections }, async (_, connection) => {
      while (performance.now() < deadline && (spec.requests === undefined || issued < spec.requests)) {
        issued++;
        await once(connection);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    requests: latencies.length,
    errors,
    seconds,
    rps: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    ...(firstError ? { firstError } : {}),
    ...(chains ? { refreshTokens: chains } : {}),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  // "-": the spec comes on stdin (large specs, e.g. thousands of tokens, exceed argv limits).
  const text =
    process.argv[2] === '-'
      ? await new Promise<string>((resolve) => {
          let input = '';
          process.stdin.setEncoding('utf8');
          process.stdin.on('data', (d) => (input += d));
          process.stdin.on('end', () => resolve(input));
        })
      : process.argv[2]!;
  const spec = JSON.parse(text) as LoadSpec;
  console.log(JSON.stringify(await run(spec)));
}
