// The admin console's sign-in as an operator does it: the console's Sign in button, then the
// system tenant's hosted page (code + PKCE), back to the console's users screen.
import type { Page } from 'playwright-core';

export interface ConsoleOperator {
  email: string;
  password: string;
}

/** From the console's sign-in screen (already open in `page`) to the system tenant's users. */
export async function signInToConsole(page: Page, operator: ConsoleOperator): Promise<void> {
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/t/system/'));
  await page.fill('#email', operator.email);
  await page.fill('#password', operator.password);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/console/t/system/users');
  await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
}
