import type { Page } from 'playwright-core';

/** Poll `fn` until it returns something truthy; that value, or an error naming `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * On the task's page, press `button` (#revoke or #terminate) and wait for the dashboard's answer,
 * then for REVOKED in the result backend (`stateOf`).
 */
export async function revokeFromPage(
  page: Page, dashboardUrl: string, id: string, button: '#revoke' | '#terminate', stateOf: (id: string) => Promise<string>,
): Promise<void> {
  await page.goto(`${dashboardUrl}/task/${id}`);
  await page.locator(button).click();
  await page.locator('#flash', { hasText: 'Revoked' }).waitFor();
  await until('REVOKED', async () => (await stateOf(id)) === 'REVOKED');
}
