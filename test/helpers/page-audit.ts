// What the browser tests do on every hosted page they reach: a full-page screenshot kept for a
// person to look at, and axe-core's rules with no serious or critical violation allowed.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** `$TMPDIR/orthid-test-output/<test>/`, created: where a test's screenshots go. */
export function testOutputDir(test: string): string {
  const dir = join(tmpdir(), 'orthid-test-output', test);
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[];
}

/**
 * Photographs `page` into `dir/<name>.png` and runs axe-core on it. The page under test keeps its
 * strict CSP and may have JavaScript off, so axe runs on a copy: the same markup served at the same
 * URL in a context of its own that allows the injected script; stylesheets and images still come
 * from the server, so colours and contrast are the page's own.
 */
export async function auditPage(browser: Browser, page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  const url = page.url();
  const markup = await page.content();
  const lang = await page.getAttribute('html', 'lang');
  const context = await browser.newContext({ bypassCSP: true, ...(lang ? { locale: lang } : {}) });
  try {
    const probe = await context.newPage();
    await probe.route(
      (u) => u.href === url,
      (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: markup }),
    );
    await probe.goto(url, { waitUntil: 'load' });
    await probe.addScriptTag({ path: AXE });
    const result = (await probe.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as AxeResult;
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      serious.map((v) => `${v.id}: ${v.help} ${JSON.stringify(v.nodes.map((n) => n.target))}`),
      [],
      `${name} has serious accessibility violations`,
    );
  } finally {
    await context.close();
  }
}
