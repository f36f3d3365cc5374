// The console's views beyond the approval card, as a malicious agent would shape what they show (hostile review of
// the console), in a real browser (Debian's Chromium via playwright-core) against a real daemon (SQLite store):
// - a bidi control (U+202E) in text the agent writes (here an EIP-712 domain name, which reaches the request's
//   summary) was marked on the approval card but drawn as is, reordering what follows it, on the agent page's recent
//   decisions, the shadow page's differences (what Promote is decided on), the dependency map's pending approvals and
//   the audit log's entry data;
// - the dependency map drew a spender, token or payee as 0x + 4 + 4 hex digits (32 bits, ground in minutes): an
//   allowance to the agent's own contract read exactly like one to Permit2 (0x0000…8ba3).
// Each test asserts what an operator must be able to notice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { TEST_PASSPHRASE, TEST_VAULT, USDC, usdcTransfer } from './testing/harness.ts';
import { CHROMIUM, chromiumSkip, collectProblems, jsonApi, logInThroughForm } from './testing/browser.ts';

const skip = chromiumSkip;
const RLO = '\u202E';
/** Drawn as is, "Mail ‮moc.liam-rehte" reads "Mail ether-mail.com". */
const DOMAIN_NAME = `Mail ${RLO}moc.liam-rehte`;
const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
/** The agent's own contract, its address ground to share Permit2's first and last four hex digits. */
const LOOKALIKE = '0x0000f00dbadc0ffee0ddf00dbadc0ffee0dd8ba3';

describe('the console\'s other views against a malicious agent (Chromium)', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let adminToken: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  let agentId = '';
  let approvalId = '';
  let heldSeq = 0;

  const api = jsonApi(() => server.url);
  const admin = (method: string, path: string, body?: unknown) => api(method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });

  /** The text a region draws (its text nodes, as the operator reads them), and whether it holds a raw U+202E. */
  const drawn = (where: Locator) => where.evaluate((el: any) => el.textContent as string);
  const assertMarked = async (where: Locator, what: string) => {
    const text = await drawn(where);
    assert.ok(!text.includes(RLO), `${what}: a raw U+202E is drawn (it reorders the text after it): ${JSON.stringify(text.slice(0, 200))}`);
    assert.ok(text.includes('⟨U+202E⟩'), `${what}: the U+202E is shown as a badge: ${JSON.stringify(text.slice(0, 200))}`);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-console-review-'));
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });

    // The attacker: an agent whose Mail signatures wait for a human, and who may grant ERC-20 allowances on Base.
    const created = await admin('POST', '/v1/agents', { names: ['typed-bot'] });
    assert.equal(created.status, 201);
    agentId = created.body.agents[0].id;
    const policy = { version: 1, rules: [
      { type: 'allow', name: 'mail', match: { primary_types: ['Mail'], domains: [{ chain_id: 8453 }] } },
      { type: 'approval_tier', name: 'mail-by-hand', match: { primary_types: ['Mail'], domains: [{ chain_id: 8453 }] } },
      { type: 'allow', name: 'allowances', match: { chains: ['eip155:8453'], kinds: ['erc20.approve'] } },
    ] };
    assert.equal((await admin('PUT', '/v1/policies/typed-bot', { document: policy })).status, 200);
    // A stricter candidate staged beside it: the held Mail is a difference the shadow page lists.
    const candidate = { version: 1, rules: [policy.rules[2]] };
    assert.equal((await admin('PUT', '/v1/policies/typed-bot/shadow', { document: candidate })).status, 200);
    const token = (await admin('POST', '/v1/agents/typed-bot/sessions', { ttl: '1h', actions: ['evm.typed_data', 'evm.transaction'] })).body.token;

    const typedData = {
      domain: { name: DOMAIN_NAME, chainId: 8453 },
      types: { EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'chainId', type: 'uint256' }], Mail: [{ name: 'contents', type: 'string' }] },
      primaryType: 'Mail',
      message: { contents: 'hello' },
    };
    const held = await api('POST', '/v1/sign/typed-data', { token, body: { typedData } });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    approvalId = held.body.approvalId;
    heldSeq = (await admin('GET', `/v1/approvals/${approvalId}`)).body.auditSeq;

    // An allowance to the look-alike: approve(spender, 1 USDC) on USDC.
    const transfer = usdcTransfer(LOOKALIKE, 0n, 0);
    const data = `0x095ea7b3${LOOKALIKE.slice(2).padStart(64, '0')}${(1_000_000).toString(16).padStart(64, '0')}`;
    const granted = await api('POST', '/v1/sign/transaction', { token, body: { ...transfer, transaction: { ...transfer.transaction, to: USDC, data } } });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(15_000);
    collectProblems(page, problems);
    await logInThroughForm(page, server.url, adminToken);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the agent page\'s recent decisions mark the bidi control in the summary', async () => {
    await page.goto(`${server.url}/console/#/agents/typed-bot`);
    const row = page.getByRole('table', { name: 'Recent decisions, newest first' }).getByRole('row').filter({ hasText: 'sign unknown typed data Mail' });
    await row.waitFor();
    await assertMarked(row, 'recent decisions');
  });

  test('the shadow page\'s differences mark it: the operator promotes or unstages on what they read there', async () => {
    await page.goto(`${server.url}/console/#/shadow`);
    const row = page.locator('table.differences').getByRole('row').filter({ hasText: 'sign unknown typed data Mail' });
    await row.waitFor();
    await assertMarked(row, 'shadow differences');
  });

  test('the dependency map marks it in the pending approvals', async () => {
    await page.goto(`${server.url}/console/#/agents/${agentId}/dependencies`);
    const item = page.getByRole('listitem').filter({ hasText: approvalId });
    await item.waitFor();
    await assertMarked(item, 'dependency map, pending approvals');
  });

  test('the audit log marks it in the entry\'s data', async () => {
    await page.goto(`${server.url}/console/#/audit?seq=${heldSeq}`);
    const data = page.getByRole('row').filter({ hasText: `Entry ${heldSeq} data` }).locator('pre');
    await data.waitFor({ state: 'attached' });
    await assertMarked(data, 'audit entry data');
  });

  test('the dependency map draws the whole spender: the look-alike cannot pass for Permit2', async () => {
    await page.goto(`${server.url}/console/#/agents/${agentId}/dependencies`);
    const row = page.getByRole('row').filter({ hasText: 'erc20.approve' });
    await row.waitFor();
    const text = await drawn(row);
    assert.ok(text.includes(LOOKALIKE), `the spender is drawn whole (${LOOKALIKE}); the row reads ${JSON.stringify(text)}`);
    assert.ok(text.includes(USDC), `the token is drawn whole; the row reads ${JSON.stringify(text)}`);
    const short = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
    assert.equal(short(LOOKALIKE), short(PERMIT2), 'the look-alike shares what the shortened form showed');
    assert.deepEqual(problems, []);
  });
});
