// The operator console in a real browser (Debian's Chromium, driven by playwright-core) against a real daemon
// on a real port, with a real agent speaking HTTP: log in, see a pending payment, approve it and see the agent's
// request complete with a signature that recovers to the agent; freeze the agent and see its next request
// refused; the charts draw their data; the audit log searches and verifies. Each page is checked for what a
// keyboard or screen-reader user needs, and for CSP violations.
// AIRLOCK_CONSOLE_SCREENSHOTS=docs/console writes a 1280x800 screenshot of each page there (docs/console.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { recoverTransactionAddress, type Hex } from 'viem';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, USDC_ASSET, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { CHROMIUM, chromiumSkip, jsonApi } from './testing/browser.ts';

const SCREENSHOTS = process.env.AIRLOCK_CONSOLE_SCREENSHOTS ? resolve(import.meta.dirname, '../../..', process.env.AIRLOCK_CONSOLE_SCREENSHOTS) : undefined;
const skip = chromiumSkip;

/** The daemon's clock, shifted into the past while the test builds a day of history, then moved to the present. */
class ShiftedClock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

describe('the operator console in Chromium', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let adminToken: string;
  let browser: Browser;
  let page: Page;
  const clock = new ShiftedClock();
  const problems: string[] = [];
  let agent: { id: string; name: string; address: string };
  let token: string;

  const api = jsonApi(() => server.url);
  const admin = (method: string, path: string, body?: unknown) => api(method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });
  const shoot = async (name: string) => {
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
  };
  /** What assistive technology needs on every page: one h1, a main landmark, a label for every control, names for buttons. */
  const checkAccessible = async (where: string) => {
    const found = await page.evaluate(() => {
      const document = (globalThis as any).document;
      const out: string[] = [];
      if (document.querySelectorAll('h1').length !== 1) out.push(`${document.querySelectorAll('h1').length} h1`);
      if (!document.querySelector('main')) out.push('no main landmark');
      for (const el of document.querySelectorAll('input, select, textarea') as any[]) {
        const control = el as any;
        if (!control.labels?.length && !control.getAttribute('aria-label')) out.push(`unlabelled ${el.tagName} ${control.name}`);
      }
      for (const b of document.querySelectorAll('button, a') as any[]) if (!(b.textContent ?? '').trim() && !b.getAttribute('aria-label')) out.push(`nameless ${b.tagName}`);
      for (const c of document.querySelectorAll('.chart-canvas') as any[]) if (c.getAttribute('role') !== 'img' || !c.getAttribute('aria-label')) out.push('chart without a text alternative');
      return out;
    });
    assert.deepEqual(found, [], where);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-console-'));
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock });

    // A fleet with a fleet-wide budget, a few agents, and a day of payments spread over the hours.
    assert.equal((await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'fleet-daily', type: 'budget', asset: USDC_ASSET, max: '1000000000', window: '24h', scope: 'fleet' }] } })).status, 200);
    const created = await admin('POST', '/v1/agents', { names: ['payments-bot', 'research-bot', 'ops-bot'] });
    assert.equal(created.status, 201);
    agent = created.body.agents[0];
    for (const a of created.body.agents) assert.equal((await admin('PUT', `/v1/policies/${a.name}`, { document: usdcPolicy({ daily: '400000000', approvalAbove: '50000000' }) })).status, 200);
    clock.offset = -20 * 3_600_000;
    token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '48h', actions: ['evm.transaction'] })).body.token;
    const other = (await admin('POST', `/v1/agents/research-bot/sessions`, { ttl: '48h', actions: ['evm.transaction'] })).body.token;
    let nonce = 0;
    for (const [hours, amount, who] of [[0, 12, token], [3, 25, token], [3, 8, other], [7, 40, token], [11, 18, other], [15, 30, token], [19, 22, token]] as const) {
      clock.offset = (-20 + hours) * 3_600_000;
      const signed = await api('POST', '/v1/sign/transaction', { token: who, body: usdcTransfer(ALICE, BigInt(amount) * 1_000_000n, nonce++) });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
    }
    clock.offset = 0;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    // The one expected error line: the browser logs the 401 of the wrong token at login.
    page.on('console', (m) => void (m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text())));
    page.on('pageerror', (e) => void problems.push(String(e)));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('login: a wrong token is refused, the right one opens a session the page cannot read', async () => {
    await page.goto(`${server.url}/console/`);
    const field = page.getByLabel('Admin token');
    await field.waitFor();
    await checkAccessible('login');
    await shoot('login');
    await field.fill(`adm_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not the admin token' }).waitFor();
    assert.equal(await field.inputValue(), '', 'the token is cleared from the form once sent');
    // Keyboard only: focus the field, type, Enter.
    await field.focus();
    await page.keyboard.type(adminToken);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
    assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is HttpOnly: not readable by scripts');
    const cookies = await page.context().cookies();
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite]), [['airlock_console', true, 'Strict']]);
    // The page keeps only the session's proof, in sessionStorage (this origin, this tab): never the token.
    assert.equal(await page.evaluate('JSON.stringify({ ...localStorage })'), '{}', 'nothing in localStorage');
    const kept = JSON.parse(await page.evaluate('JSON.stringify({ ...sessionStorage })') as string) as Record<string, string>;
    assert.deepEqual(Object.keys(kept), ['airlock.console.proof']);
    assert.match(kept['airlock.console.proof']!, /^cp_[A-Za-z0-9_-]{43}$/);
    assert.ok(!(await page.content()).includes(adminToken.slice(4)));
  });

  test('fleet overview: agents, and charts drawn from the spend history', async () => {
    await page.getByRole('link', { name: 'payments-bot' }).waitFor();
    assert.equal(await page.getByRole('row').filter({ hasText: 'research-bot' }).getByText('active').count(), 1);
    for (const chart of ['fleet-spend', 'fleet-budgets']) {
      const figure = page.locator(`figure[data-chart="${chart}"]`);
      await figure.locator('canvas').first().waitFor();
      assert.ok(Number(await figure.getAttribute('data-points')) >= 5, `${chart}: data points`);
      // The canvas is drawn on: count pixels of the series colours, not just a blank element.
      const inked = await figure.locator('canvas').first().evaluate((canvas: any) => {
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 0 && Math.abs(data[i]! - data[i + 2]!) > 60) n++;
        return n;
      });
      assert.ok(inked > 200, `${chart}: ${inked} coloured pixels drawn`);
    }
    // The numbers behind the chart, for those who cannot see it.
    const table = page.locator('figure[data-chart="fleet-spend"] details');
    await table.locator('summary').click();
    assert.ok(await table.getByRole('cell', { name: '40,000,000' }).count() >= 1, 'the 40 USDC hour is in the data table');
    await table.locator('summary').click();
    await page.getByRole('row').filter({ hasText: 'fleet/fleet-daily' }).getByText('155,000,000').waitFor();
    await checkAccessible('fleet');
    await shoot('fleet');
  });

  test('approvals: a payment held for a human is approved in the console and the agent gets its signature', async () => {
    // The agent: asks to pay 75 USDC (above its 50 USDC approval tier), then polls its approval, as the SDK does.
    const agentRun = (async () => {
      const asked = await api('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 75_000_000n, 100) });
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      for (;;) {
        const seen = await api('GET', `/v1/approvals/${asked.body.approvalId}`, { token });
        // Approved but without its result: the grant has committed and the signature is being made (api.md).
        const signing = seen.body.state === 'approved' && seen.body.result === undefined;
        if (seen.body.state !== 'pending' && !signing) return { id: asked.body.approvalId as string, ...seen.body };
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Approvals' }).click();
    await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
    const card = page.locator('li.card').filter({ hasText: 'payments-bot' });
    await card.waitFor();
    await card.getByText('approval_required').waitFor();
    await card.getByText('75,000,000').waitFor();
    await checkAccessible('approvals');
    await shoot('approvals');
    await card.getByRole('button', { name: 'Approve' }).click();
    // Confirm has the focus: Enter confirms, as a keyboard user would.
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Confirm approve');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Approved' }).waitFor();
    const outcome = await agentRun;
    assert.equal(outcome.state, 'approved');
    assert.equal(outcome.decidedBy, 'admin');
    const signer = await recoverTransactionAddress({ serializedTransaction: outcome.result.signedTransaction as Hex as never });
    assert.equal(signer.toLowerCase(), agent.address.toLowerCase(), 'signed by the agent\'s key');
    await page.getByRole('row').filter({ hasText: outcome.id }).getByText('approved').waitFor();
    assert.equal(await page.locator('li.card').count(), 0, 'nothing pending any more');
  });

  test('agent page: policy, sessions, recent decisions with their rules; freezing refuses the agent\'s next request', async () => {
    await page.getByRole('link', { name: 'Fleet' }).click();
    await page.getByRole('link', { name: 'payments-bot' }).click();
    await page.getByRole('heading', { level: 1, name: /payments-bot/ }).waitFor();
    await page.getByText('agent/usdc-daily').first().waitFor();
    await page.getByText('agent/big-needs-human').first().waitFor();
    await page.locator('figure[data-chart="agent-budgets"] canvas').first().waitFor();
    assert.ok(Number(await page.locator('figure[data-chart="agent-spend"]').getAttribute('data-points')) >= 4);
    await checkAccessible('agent');
    await shoot('agent');
    await page.getByRole('button', { name: 'Freeze agent' }).click();
    await page.getByRole('button', { name: 'Confirm freeze' }).click();
    await page.getByRole('status').filter({ hasText: 'payments-bot is now frozen' }).waitFor();
    await page.getByRole('heading', { level: 1 }).getByText('frozen').waitFor();
    const refused = await api('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 101) });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'agent_frozen');
    await page.getByRole('button', { name: 'Unfreeze agent' }).waitFor();
  });

  test('dependency map: an allowance the agent signed is listed with its audit entry; reading the chain without an RPC says unknown', async () => {
    const grantPolicy = { version: 1, rules: [{ name: 'approvals', type: 'allow', match: { chains: ['eip155:8453'], kinds: ['erc20.approve'] } }] };
    assert.equal((await admin('PUT', '/v1/policies/ops-bot', { document: grantPolicy })).status, 200);
    const opsToken = (await admin('POST', '/v1/agents/ops-bot/sessions', { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const transfer = usdcTransfer(ALICE, 5_000_000n, 0);
    const approve = { ...transfer, transaction: { ...transfer.transaction, data: `0x095ea7b3${transfer.transaction.data.slice(10)}` } };
    const signed = await api('POST', '/v1/sign/transaction', { token: opsToken, body: approve });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet' }).click();
    await page.getByRole('link', { name: 'ops-bot' }).click();
    await page.getByRole('link', { name: 'Dependency map' }).click();
    await page.getByRole('heading', { level: 1, name: /Dependencies of ops-bot/ }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'erc20.approve' });
    await row.getByRole('link', { name: String(signed.body.auditSeq) }).waitFor();
    await row.getByText('5,000,000').waitFor();
    await row.getByText('not read').waitFor();
    await page.getByRole('button', { name: 'Read the chain' }).click();
    await row.getByText('unknown', { exact: true }).waitFor();
    await row.getByText('No RPC is configured for eip155:8453.').waitFor();
    await page.getByRole('status').filter({ hasText: 'Read from the chain' }).waitFor();
    await checkAccessible('dependencies');
    await shoot('dependencies');
  });

  test('audit log: search by agent and decision, then verify the whole log', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await page.getByLabel('Agent (name or id)').fill('payments-bot');
    await page.getByLabel('Decision').selectOption('require_approval');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('status').filter({ hasText: '1 entry' }).waitFor();
    await page.locator('table.audit code').getByText('agent/big-needs-human', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Verify the audit log' }).click();
    await page.getByText('Verified.').waitFor();
    await checkAccessible('audit');
    await shoot('audit');
  });

  test('no CSP violation and no script error on any page; logout ends the session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Admin token').waitFor();
    assert.equal((await page.context().cookies()).length, 0);
    assert.deepEqual(problems, []);
  });
});
