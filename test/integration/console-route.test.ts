// /console as `orthid start` serves it: the built app with a strict CSP and no framing, hashed
// assets cached for a year and compressed, the page itself never cached, any screen's path
// answered with the app, and a clear error where the console was not built.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { registerProblemDetails } from '../../src/server/plugins/problem-details.js';
import { CONSOLE_CSP, consoleRoutes } from '../../src/server/routes/console.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';

const INDEX =
  '<!doctype html><html lang="en"><script type="module" src="/console/assets/app-1a2b3c.js"></script></html>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(2000))});`;

describe('the /console route', () => {
  let dir: string;
  let app: FastifyInstance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-console-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), INDEX);
    await writeFile(join(dir, 'assets/app-1a2b3c.js'), SCRIPT);
    await writeFile(join(dir, 'assets/app-1a2b3c.js.br'), brotliCompressSync(SCRIPT));
    await writeFile(join(dir, 'assets/app-1a2b3c.js.gz'), gzipSync(SCRIPT));
    app = Fastify();
    registerProblemDetails(app);
    await app.register(consoleRoutes, { root: dir });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the page answers with a strict CSP (no inline script or style, no framing) and is never cached', async () => {
    const response = await app.inject({ method: 'GET', url: '/console/' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, INDEX);
    const csp = String(response.headers['content-security-policy']);
    assert.equal(csp, CONSOLE_CSP);
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /style-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['cache-control'], 'no-cache');
    assert.match(String(response.headers['content-type']), /^text\/html/);
  });

  test('any screen of the app is answered with the page, so a reload or bookmark works', async () => {
    for (const url of ['/console/t/acme/users', '/console/callback?code=x&state=y']) {
      const response = await app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200, url);
      assert.equal(response.body, INDEX);
      assert.equal(response.headers['content-security-policy'], CONSOLE_CSP);
    }
    const bare = await app.inject({ method: 'GET', url: '/console' });
    assert.equal(bare.statusCode, 302);
    assert.equal(bare.headers.location, '/console/');
  });

  test('hashed assets are cached for a year and sent brotli- or gzip-compressed when the browser accepts it', async () => {
    const br = await app.inject({
      method: 'GET',
      url: '/console/assets/app-1a2b3c.js',
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    assert.equal(br.statusCode, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(br.headers.vary, 'accept-encoding');
    assert.equal(brotliDecompressSync(br.rawPayload).toString(), SCRIPT);
    assert.ok(br.rawPayload.length < SCRIPT.length / 10);

    const gzip = await app.inject({
      method: 'GET',
      url: '/console/assets/app-1a2b3c.js',
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(gzip.headers['content-encoding'], 'gzip');

    const plain = await app.inject({ method: 'GET', url: '/console/assets/app-1a2b3c.js' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, SCRIPT);
  });

  test('a missing asset is a 404 problem, not the page', async () => {
    const response = await app.inject({ method: 'GET', url: '/console/assets/gone-000.js' });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().code, 'request.not_found');
    const outside = await app.inject({ method: 'GET', url: '/console/../package.json' });
    assert.notEqual(outside.body, readFileSync('package.json', 'utf8'));
  });

  test('a server whose console was not built says how to build it', async () => {
    const bare = Fastify();
    registerProblemDetails(bare);
    await bare.register(consoleRoutes, { root: join(dir, 'nowhere') });
    const response = await bare.inject({ method: 'GET', url: '/console/' });
    assert.equal(response.statusCode, 503);
    assert.equal(response.json().code, 'console.not_built');
    await bare.close();
  });
});

describe('the console on the OrthID server', () => {
  let orthid: TestOrthId;
  let server: FastifyInstance;

  before(async () => {
    orthid = await createTestOrthId('pglite');
    server = await buildServer(orthid);
  });

  after(async () => {
    await server?.close();
    await orthid?.close();
  });

  test('/console answers with the built app under the strict CSP', async () => {
    const response = await server.inject({ method: 'GET', url: '/console/' });
    assert.equal(response.statusCode, 200, 'the console is built into dist/console by `npm run build`');
    assert.equal(response.headers['content-security-policy'], CONSOLE_CSP);
    assert.match(
      response.body,
      /<script type="module" crossorigin src="\/console\/assets\/index-[\w-]+\.js">/,
    );
    assert.doesNotMatch(response.body, /<script>|<style>| style="/);
  });
});
