// Row 2, token verification: OrthID's exported verifier (src/verify/index.ts, `orthid/verify`)
// against `jose.jwtVerify` with a pre-imported key, for EdDSA and ES256. Target: ratio ≥ 0.95.
//
// Run: npm run bench -- verify [seconds-per-run=1] [runs=5]
//
// Data: one key pair per algorithm (jose generateKeyPair), 1000 distinct access tokens signed
// with it (iss, aud, sub, client_id, scope, iat, exp one hour ahead, kid in the header). A tiny
// loopback node:http server publishes the issuer's discovery document and JWKS, so the verifier
// discovers and caches the key set as it does in production; discovery happens in the untimed
// warm-up. The baseline checks the same claims (issuer, audience, algorithms, clock tolerance,
// required claims) against the KeyObject imported once, so the ratio is the price of the
// verifier's discovery, key-set lookup and error mapping. Each run verifies tokens one after
// another (await in a loop) for a fixed time; runs alternate baseline / OrthID.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { createVerifier } from '../src/verify/index.js';
import { exitOnVerdicts, printHeader, printRow, type Verdict } from './lib/report.js';

const SECONDS = Number(process.argv[2] ?? 1);
const RUNS = Number(process.argv[3] ?? 5);
const TOKENS = 1000;
const AUDIENCE = 'https://api.bench.example';
const TARGET = 0.95;

type Alg = 'EdDSA' | 'ES256';

async function keysFor(alg: Alg) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `bench-${alg}`, alg, use: 'sig' };
  return { alg, privateKey, publicKey, jwk };
}

/** Counts verifications completed in SECONDS, one at a time. */
async function opsPerSecond(verify: (token: string) => Promise<unknown>, tokens: string[]): Promise<number> {
  let done = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) await verify(tokens[(done + i) % tokens.length]!);
    done += 100;
  }
  return done / ((performance.now() - start) / 1000);
}

const keys = await Promise.all((['EdDSA', 'ES256'] as const).map(keysFor));
let issuer = '';
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/t/bench/.well-known/openid-configuration') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
  } else if (path === '/t/bench/jwks') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  } else {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t/bench`;

try {
  printHeader(`Token verification, ${SECONDS} s per run, ${TOKENS} distinct tokens per algorithm`, RUNS);
  const verdicts: Verdict[] = [];
  for (const key of keys) {
    const now = Math.floor(Date.now() / 1000);
    const tokens = await Promise.all(
      Array.from({ length: TOKENS }, (_, i) =>
        new SignJWT({ client_id: `client-${i}`, scope: 'orders:read orders:write', roles: ['reader'] })
          .setProtectedHeader({ alg: key.alg, kid: key.jwk.kid, typ: 'at+jwt' })
          .setIssuer(issuer)
          .setAudience(AUDIENCE)
          .setSubject(`subject-${i}`)
          .setIssuedAt(now)
          .setExpirationTime(now + 3600)
          .sign(key.privateKey),
      ),
    );
    const options = {
      issuer,
      audience: AUDIENCE,
      algorithms: ['EdDSA', 'ES256', 'RS256'],
      clockTolerance: 5,
      requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
    };
    const baseline = (token: string) => jwtVerify(token, key.publicKey, options);
    const orthid = createVerifier({ issuer, audience: AUDIENCE });
    // Warm-up: discovery + JWKS fetch, and the JIT on both paths.
    await opsPerSecond(baseline, tokens);
    await opsPerSecond(orthid, tokens);
    const base: number[] = [];
    const ours: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      base.push(await opsPerSecond(baseline, tokens));
      ours.push(await opsPerSecond(orthid, tokens));
    }
    verdicts.push(
      printRow({
        name: `verify ${key.alg}`,
        baseline: base,
        orthid: ours,
        unit: 'ops/s',
        target: { kind: 'ratio-at-least', value: TARGET },
      }),
    );
  }
  exitOnVerdicts(verdicts);
} finally {
  server.close();
}
