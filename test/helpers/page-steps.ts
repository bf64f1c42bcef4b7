// Steps of a browser test that leave a page: the click, then the next document loaded, then a check
// that it is the page expected. A test that reads or photographs the page right after a click can
// catch the old one still shown, or the new one half-built, on a busy machine; waiting for the load
// event of the document the click led to, registered before the click, cannot.
import assert from 'node:assert/strict';
import type { Locator, Page } from 'playwright-core';
import type { CallbackServer } from './callback-server.js';

/** How long one page may take to arrive: generous, for a loaded CI machine. */
export const NAVIGATION_MS = 30_000;

export interface Landing {
  /** What the page is, for failure messages ("the recovery codes page"). */
  name: string;
  path: RegExp;
  /** The page's h1, exactly. */
  heading: string;
}

export interface StepOptions {
  timeout?: number;
  /**
   * Shown on the page instead of a navigation when the step failed in place (a script's status
   * line): ends the wait at once with what the page says, rather than at the deadline.
   */
  failsWith?: Locator;
}

/** Test output names no address, not even a made-up one, and no interaction's id. */
const redacted = (text: string) =>
  text.replace(/[^\s"]+@[^\s"]+/g, '<address>').replace(/\/interaction\/[^/\s"]+/g, '/interaction/<uid>');

/** How long a failure message waits to read the page: one with a navigation pending may not answer. */
const READ_MS = 5_000;

/**
 * Where the page stands, for a failure message: its path (never the query, which may carry a
 * code), its h1 and any refusal it shows with its stable code. Never waits more than READ_MS.
 */
export async function whereIs(page: Page): Promise<string> {
  const path = new URL(page.url()).pathname;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${READ_MS} ms, as while a navigation waits for the server`)),
      READ_MS,
    );
  });
  try {
    const shown = await Promise.race([
      // A string, evaluated in the page: the test's TypeScript has no DOM types.
      page.evaluate(`({
        headings: [...document.querySelectorAll('h1')].map((h) => h.textContent ?? ''),
        refusals: [...document.querySelectorAll('[role=alert], #passkey-status:not([hidden])')].map(
          (n) => (n.getAttribute('data-code') ?? n.id) + ': ' + (n.textContent ?? '').trim(),
        ),
      })`) as Promise<{ headings: string[]; refusals: string[] }>,
      deadline,
    ]);
    const refusals = shown.refusals.length > 0 ? `, showing ${JSON.stringify(shown.refusals)}` : '';
    return redacted(`${path} (h1 ${JSON.stringify(shown.headings)}${refusals})`);
  } catch (error) {
    return redacted(`${path} (unreadable: ${(error as Error).message.split('\n')[0]})`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `action` and waits for the load of the document it leads to, or for `failsWith`. */
async function nextDocument(page: Page, action: () => Promise<unknown>, options: StepOptions) {
  const timeout = options.timeout ?? NAVIGATION_MS;
  // Listening before the action: the old document has loaded already, so this load is the next one's.
  const loaded = page.waitForEvent('load', { timeout }).then(() => 'loaded' as const);
  loaded.catch(() => undefined);
  await action();
  const failed = options.failsWith
    ?.waitFor({ state: 'visible', timeout })
    .then(() => 'failed in place' as const);
  failed?.catch(() => undefined);
  return Promise.race(failed ? [loaded, failed] : [loaded]);
}

/**
 * Runs `action` (a click that leaves the page), waits until the next page has loaded, and checks
 * that it is `next`; fails with where the browser stopped otherwise. Only then may a test read
 * or photograph it.
 */
export async function navigate(
  page: Page,
  action: () => Promise<unknown>,
  next: Landing,
  options: StepOptions = {},
): Promise<void> {
  let outcome: Awaited<ReturnType<typeof nextDocument>>;
  try {
    outcome = await nextDocument(page, action, options);
  } catch (error) {
    throw new Error(`the browser did not reach ${next.name}; it stopped at ${await whereIs(page)}`, {
      cause: error,
    });
  }
  const where = await whereIs(page);
  assert.notEqual(outcome, 'failed in place', `${next.name} never came: the page says ${where}`);
  assert.match(
    redacted(new URL(page.url()).pathname),
    next.path,
    `expected ${next.name}, the browser is at ${where}`,
  );
  assert.deepEqual(
    await page.locator('h1').allTextContents(),
    [next.heading],
    `expected ${next.name}, the browser is at ${where}`,
  );
}

/**
 * Runs `action` (the step that ends a sign-in) and waits for the browser to come back to the
 * client's redirect URI, the page there loaded, and for the server behind it to have the
 * response; returns that response's URL. Fails at once on a page of OrthID's instead.
 */
export async function throughToCallback(
  page: Page,
  callbacks: CallbackServer,
  action: () => Promise<unknown>,
  options: StepOptions = {},
): Promise<URL> {
  const arrival = callbacks.next(options.timeout ?? NAVIGATION_MS);
  arrival.catch(() => undefined);
  let outcome: Awaited<ReturnType<typeof nextDocument>>;
  try {
    outcome = await nextDocument(page, action, options);
  } catch (error) {
    throw new Error(
      `the browser never came back to the client's redirect URI; it stopped at ${await whereIs(page)}`,
      { cause: error },
    );
  }
  if (outcome !== 'loaded' || !page.url().startsWith(`${callbacks.redirectUri}?`)) {
    assert.fail(
      `the browser did not come back to the client's redirect URI; it stopped at ${await whereIs(page)}`,
    );
  }
  // The browser shows the page the callback server answered with: the response has arrived.
  return arrival;
}
