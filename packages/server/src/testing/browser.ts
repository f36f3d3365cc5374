// What the console's browser tests share: where Chromium is, when they skip, and a JSON client for the daemon
// they drive beside the browser (as the agent, or as an operator with the admin token).
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';

export const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';

/** CI installs Chromium (.ci/run): there a missing browser fails; on a developer machine without it the tests skip, saying why. */
export const chromiumSkip: string | false = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

export interface JsonAnswer {
  status: number;
  body: any;
}

/** `api(method, path, { token, body, headers })` against the daemon at `baseUrl()` (read on each call: the server starts in `before`). */
export function jsonApi(baseUrl: () => string) {
  return async (method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<JsonAnswer> => {
    const res = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.headers ?? {}) },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}

/** Collects the page's console errors and uncaught exceptions into `problems` (the tests assert there are none). */
export function collectProblems(page: Page, problems: string[]): void {
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => void problems.push(String(e)));
}

/** Logs in as an operator does: the console's form, the admin token, then the Fleet page. */
export async function logInThroughForm(page: Page, baseUrl: string, adminToken: string): Promise<void> {
  await page.goto(`${baseUrl}/console/`);
  await page.getByLabel('Admin token').fill(adminToken);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
}
