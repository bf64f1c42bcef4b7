// Row 10, admin console: in Debian's Chromium, the console's first screen (the users list of the
// system tenant, signed in) from navigation to its rows on screen, and the JavaScript and CSS
// bytes that travelled (compressed, as the server sent them). Targets: median under 1 s and
// under 300 KB. The baseline is a static page served by the same server in the same run: the
// console's own HTML shell from its static route (same headers, compression and stylesheet) with
// scripts off, so the ratio is what the app's code and its API calls add to fetching the page.
// The hosted sign-in page (server-rendered) is printed beside it, for scale.
//
// Run: npm run build && npm run bench -- console [runs=5]
//
// Each run opens a fresh browser context (empty cache), as a first visit; the console's token
// comes from one real sign-in through the hosted page before the timed runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/chromium.js';
import { cliEnv, runCli } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/postgres.js';
import { collect, serverNodeArgs, stop, waitFor } from './lib/processes.js';
import { exitOnVerdicts, printHeader, printRow } from './lib/report.js';

const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(BUILT_CLI) || !existsSync(join(BUILT_CLI, '../../console/index.html'))) {
  console.error('Build first (npm run build): this row measures the built CLI and console, as deployed.');
  process.exit(2);
}

const RUNS = Number(process.argv[2] ?? 5);
const OPERATOR = { email: 'bench@operators.test', password: 'a bench operator passphrase' };

/** Records, in the page, when `selector` first matches (performance.now(), from navigation start). */
const WATCH = (selector: string) => `(() => {
  const seen = () => { if (!window.__ready && document.querySelector(${JSON.stringify(selector)})) window.__ready = performance.now(); };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', seen);
})()`;

interface Visit {
  ms: number;
  kb: number;
}

/**
 * Loads `url` in a fresh context; returns when `selector` appeared and the load event fired. With
 * `selector` null the page's scripts are off and the load event alone counts (a static page).
 */
async function visit(browser: Browser, url: string, selector: string | null, init?: string): Promise<Visit> {
  const context = await browser.newContext({ javaScriptEnabled: selector !== null });
  try {
    if (selector !== null) await context.addInitScript(WATCH(selector));
    if (init) await context.addInitScript(init);
    const page: Page = await context.newPage();
    const sizes: Promise<number>[] = [];
    page.on('requestfinished', (request) => {
      if (['script', 'stylesheet'].includes(request.resourceType()))
        sizes.push(request.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
    });
    await page.goto(url, { waitUntil: 'load' });
    if (selector !== null) {
      await page.waitForFunction(() => (globalThis as { __ready?: number }).__ready !== undefined);
    }
    // The driver's evaluation runs with the page's scripts off too.
    const timing = (await page.evaluate(
      `({ ready: window.__ready ?? 0, load: performance.getEntriesByType('navigation')[0].loadEventEnd })`,
    )) as { ready: number; load: number };
    const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
    return { ms: Math.max(timing.ready, timing.load), kb: bytes / 1024 };
  } finally {
    await context.close();
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'orthid-bench-console-'));
let browser: Browser | undefined;
const port = await freePort();
const server = { url: `http://127.0.0.1:${port}` };
const env = { ORTHID_DATA_DIR: dataDir, ORTHID_PUBLIC_URL: server.url };
const child = spawn(process.execPath, [...serverNodeArgs(), BUILT_CLI, 'start'], {
  env: cliEnv({ ...env, ORTHID_PORT: String(port), ORTHID_LOG_LEVEL: 'warn' }),
  stdio: ['ignore', 'pipe', 'pipe'],
});
try {
  await waitFor(`${server.url}/readyz`, child, collect(child), 180_000);
  const made = await runCli(
    ['user', 'create', '--tenant', 'system', '--admin', '--email', OPERATOR.email, '--password-stdin'],
    env,
    OPERATOR.password,
  );
  if (made.code !== 0) throw new Error(`user create failed: ${made.stderr}`);
  browser = await launchChromium();

  // One real sign-in: the token every timed console visit starts with.
  const page = await browser.newPage();
  await page.goto(`${server.url}/console/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/t/system/'));
  const signInPage = page.url();
  await page.fill('#email', OPERATOR.email);
  await page.fill('#password', OPERATOR.password);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/console/t/system/users');
  const token = (await page.evaluate(`sessionStorage.getItem('orthid.console.token')`)) as string;
  await page.close();
  const withToken = `sessionStorage.setItem('orthid.console.token', ${JSON.stringify(token)})`;

  // The sign-in page's interaction expires once used: each baseline visit starts a new one.
  const authorize = new URL(signInPage).origin;
  const baselineUrl = `${authorize}/t/system/auth?${new URLSearchParams({
    response_type: 'code',
    client_id: 'orthid-console',
    redirect_uri: `${server.url}/console/callback`,
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  })}`;
  const consoleUrl = `${server.url}/console/t/system/users`;

  // Untimed: warms the server's caches (the console's files, the provider, the keys).
  await visit(browser, consoleUrl, null);
  await visit(browser, baselineUrl, 'button[type=submit]');
  await visit(browser, consoleUrl, 'table tbody tr', withToken);

  const shell: Visit[] = [];
  const signIn: Visit[] = [];
  const ours: Visit[] = [];
  for (let run = 0; run < RUNS; run++) {
    shell.push(await visit(browser, consoleUrl, null));
    signIn.push(await visit(browser, baselineUrl, 'button[type=submit]'));
    ours.push(await visit(browser, consoleUrl, 'table tbody tr', withToken));
  }
  printHeader('Admin console in Chromium, fresh context each run', RUNS);
  const verdicts = [
    printRow({
      name: 'console first screen interactive',
      baseline: shell.map((v) => v.ms),
      orthid: ours.map((v) => v.ms),
      unit: 'ms',
      target: { kind: 'absolute-below', value: 1000 },
      notes: "(baseline: the console's static HTML shell from the same server, scripts off)",
    }),
    printRow({
      name: 'console interactive vs sign-in page',
      baseline: signIn.map((v) => v.ms),
      orthid: ours.map((v) => v.ms),
      unit: 'ms',
      target: { kind: 'absolute-below', value: 1000 },
      notes: '(baseline: the hosted sign-in page, server-rendered, for scale)',
    }),
    printRow({
      name: 'console JS + CSS transferred',
      baseline: signIn.map((v) => v.kb),
      orthid: ours.map((v) => v.kb),
      unit: 'KB',
      digits: 1,
      target: { kind: 'absolute-below', value: 300 },
      notes: '(compressed, headers included; baseline: the sign-in page)',
    }),
  ];
  exitOnVerdicts(verdicts);
} finally {
  await browser?.close();
  await stop(child);
  rmSync(dataDir, { recursive: true, force: true });
}
