// The console's phase 2 pages in a real browser (Debian's Chromium via playwright-core) against a real daemon with
// agents speaking HTTP: a refusal_run detector freezes a probing agent and the operator re-opens its breaker from
// the alerts page (the agent's next allowed request is signed); an alert-only detector's alert is shown and
// "Freeze agent" from it refuses the agent's next request; a 2-of-treasury quorum approval is voted twice in the
// browser with two approvers' key files (signed in the page, never sent) and the agent's request completes; the
// shadow page shows how a stricter staged candidate would have decided.
// AIRLOCK_CONSOLE_SCREENSHOTS=docs/console writes 1280x800 screenshots of these pages there (docs/console.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { recoverTransactionAddress, type Hex } from 'viem';
import { generateApproverKey } from '@airlock/sdk/approvals';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { ALICE, MALLORY, TEST_PASSPHRASE, TEST_VAULT, USDC_ASSET, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { CHROMIUM, chromiumSkip, collectProblems, jsonApi, logInThroughForm } from './testing/browser.ts';

const SCREENSHOTS = process.env.AIRLOCK_CONSOLE_SCREENSHOTS ? resolve(import.meta.dirname, '../../..', process.env.AIRLOCK_CONSOLE_SCREENSHOTS) : undefined;
const skip = chromiumSkip;

describe('the console: alerts, breakers, quorum votes and shadow policies in Chromium', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let adminToken: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const agents: Record<string, { id: string; name: string; address: string; token: string }> = {};
  const keyFiles: Record<string, string> = {};
  let nonce = 0;

  const api = jsonApi(() => server.url);
  const admin = (method: string, path: string, body?: unknown) => api(method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });
  const pay = (who: string, amountUsdc: number, to = ALICE) => api('POST', '/v1/sign/transaction', { token: agents[who]!.token, body: usdcTransfer(to, BigInt(amountUsdc) * 1_000_000n, nonce++) });
  const shoot = async (name: string) => {
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
  };
  const nav = async (link: string, heading: string | RegExp) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };
  const checkAccessible = async (where: string) => {
    const found = await page.evaluate(() => {
      const document = (globalThis as any).document;
      const out: string[] = [];
      if (document.querySelectorAll('h1').length !== 1) out.push(`${document.querySelectorAll('h1').length} h1`);
      for (const el of document.querySelectorAll('input, select, textarea') as any[]) if (!el.labels?.length && !el.getAttribute('aria-label')) out.push(`unlabelled ${el.tagName}`);
      for (const b of document.querySelectorAll('button, a') as any[]) if (!(b.textContent ?? '').trim() && !b.getAttribute('aria-label')) out.push(`nameless ${b.tagName}`);
      return out;
    });
    assert.deepEqual(found, [], where);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-console2-'));
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });

    const created = await admin('POST', '/v1/agents', { names: ['probe-bot', 'payee-bot', 'treasury-bot'] });
    assert.equal(created.status, 201);
    const policies: Record<string, unknown> = {
      // Two policy refusals within 10 minutes freeze it.
      'probe-bot': { ...usdcPolicy(), detectors: [{ name: 'probing', type: 'refusal_run', max: 2, window: '10m', action: 'freeze' }] },
      // A first payment to a payee the fleet never paid is an alert, nothing more.
      'payee-bot': { ...usdcPolicy({ perRequest: '100000000' }), sets: { partners: [ALICE, MALLORY] }, detectors: [{ name: 'first-payee', type: 'new_destination', action: 'alert' }] },
      // Above 500 USDC, two distinct approvers of treasury must sign their votes.
      'treasury-bot': { ...usdcPolicy({ perRequest: '2000000000', daily: '5000000000' }), rules: [...usdcPolicy({ perRequest: '2000000000', daily: '5000000000' }).rules, { name: 'treasury-approves', type: 'approval_tier', asset: USDC_ASSET, above: '500000000', quorum: { min: 2, groups: ['treasury'] } }] },
    };
    for (const a of created.body.agents) {
      assert.equal((await admin('PUT', `/v1/policies/${a.name}`, { document: policies[a.name] })).status, 200, a.name);
      agents[a.name] = { ...a, token: (await admin('POST', `/v1/agents/${a.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token };
    }
    // The approvers' key files, as `airlock approver add` writes them; the daemon gets only the public keys.
    for (const name of ['tre-a', 'tre-b']) {
      const key = generateApproverKey();
      const added = await admin('POST', '/v1/approvers', { name, publicKey: key.publicKey, groups: ['treasury'] });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      keyFiles[name] = join(dir, `${name}.approver-key.json`);
      writeFileSync(keyFiles[name], JSON.stringify({ type: 'airlock-approver-key', approver: name, id: added.body.id, publicKey: key.publicKey, secretKey: key.secretKey }, null, 2), { mode: 0o600 });
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    collectProblems(page, problems);
    await logInThroughForm(page, server.url, adminToken);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a probing agent trips its breaker; the operator sees it and re-opens it; the next allowed request is signed', async () => {
    assert.equal((await pay('probe-bot', 150)).status, 403, 'above its 100 USDC cap: refused');
    const trip = await pay('probe-bot', 150);
    assert.equal(trip.status, 403);
    assert.equal(trip.body.error.violations.at(-1).rule, 'detector/agent/probing');
    assert.equal((await pay('probe-bot', 5)).body.error.code, 'agent_frozen');
    assert.equal((await pay('payee-bot', 10, MALLORY)).status, 200, 'a first payee: alert only, signed');

    await nav('Alerts', 'Alerts and breakers');
    const row = page.locator('table.breakers tr').filter({ hasText: 'detector/agent/probing' });
    await row.waitFor();
    await row.getByRole('link', { name: 'probe-bot' }).waitFor();
    await row.getByText('observed 2').waitFor();
    await page.locator('table.alerts').getByText('breaker.tripped').waitFor();
    await checkAccessible('alerts');
    await shoot('alerts');
    await row.getByRole('button', { name: 'Re-open' }).click();
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Confirm re-open', 'the confirmation takes the focus');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Re-opened detector/agent/probing: probe-bot unfrozen' }).waitFor();
    await page.getByText('No breaker is tripped.').waitFor();
    const signed = await pay('probe-bot', 5);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const signer = await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as Hex as never });
    assert.equal(signer.toLowerCase(), agents['probe-bot']!.address.toLowerCase());
  });

  test('an alert-only detector\'s alert is listed; "Freeze agent" from it refuses the agent\'s next request', async () => {
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Alerts and breakers' }).waitFor();
    const alert = page.locator('table.alerts tr').filter({ hasText: 'alert.new_destination' });
    await alert.getByText('detector/agent/first-payee').waitFor();
    await alert.getByRole('link', { name: 'payee-bot' }).waitFor();
    await alert.getByRole('button', { name: 'Freeze agent' }).click();
    await alert.getByRole('button', { name: 'Confirm freeze' }).click();
    await page.getByRole('status').filter({ hasText: 'payee-bot is now frozen' }).waitFor();
    await alert.getByText('frozen').waitFor();
    const refused = await pay('payee-bot', 1);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'agent_frozen');

    // The agent page's anomaly signals: the probe-bot breaker (reset) and its alert entries.
    await page.goto(`${server.url}/console/#/agents/probe-bot`);
    await page.getByRole('heading', { level: 1, name: /probe-bot/ }).waitFor();
    await page.getByRole('heading', { name: 'Anomaly signals' }).waitFor();
    const breaker = page.locator('table.breakers tr').filter({ hasText: 'detector/agent/probing' });
    await breaker.getByText('reset').waitFor();
    await page.locator('table.alerts').getByText('breaker.reset').waitFor();
    await checkAccessible('agent');
    await page.getByRole('heading', { name: 'Anomaly signals' }).scrollIntoViewIfNeeded();
    await shoot('agent-anomalies');
  });

  test('a 2-of-treasury approval is voted in the browser with two approvers\' key files; the agent gets its signature', async () => {
    const agentRun = (async () => {
      const asked = await pay('treasury-bot', 750);
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      const seen = await api('GET', `/v1/approvals/${asked.body.approvalId}?wait=30`, { token: agents['treasury-bot']!.token });
      return { id: asked.body.approvalId as string, ...seen.body };
    })();
    await nav('Approvals', 'Approvals');
    const card = page.locator('li.card').filter({ hasText: 'treasury-bot' });
    await card.getByText('0 of 2 approvals from treasury').waitFor();
    await card.getByText('Load an approver key file above to vote.').waitFor();
    // The admin token cannot approve a quorum tier: no plain Approve button.
    assert.equal(await card.getByRole('button', { name: 'Approve', exact: true }).count(), 0);

    const keyInput = page.getByLabel('Approver key file');
    await keyInput.setInputFiles(keyFiles['tre-a']!);
    await page.getByRole('status').filter({ hasText: 'Signing as tre-a' }).waitFor();
    await checkAccessible('approvals with a key');
    await card.getByRole('button', { name: 'Approve as tre-a' }).click();
    await card.getByRole('button', { name: 'Sign and send vote' }).click();
    await page.getByRole('status').filter({ hasText: 'tre-a voted approve' }).waitFor();
    await card.getByText('1 of 2 approvals from treasury').waitFor();
    await shoot('approvals-quorum');
    await card.getByText('tre-a cannot vote on this one').waitFor();

    await keyInput.setInputFiles(keyFiles['tre-b']!);
    await page.getByRole('status').filter({ hasText: 'Signing as tre-b' }).waitFor();
    await card.getByRole('button', { name: 'Approve as tre-b' }).click();
    await card.getByRole('button', { name: 'Sign and send vote' }).click();
    await page.getByRole('status').filter({ hasText: 'tre-b voted approve' }).filter({ hasText: 'signed and handed to the agent' }).waitFor();

    const outcome = await agentRun;
    assert.equal(outcome.state, 'approved');
    // The agent reads how many voted, not who (approvals-agent-view.http.test.ts); the operator reads the names.
    assert.deepEqual([outcome.voteCounts, outcome.approvers, outcome.votes], [{ approve: 2, reject: 0 }, undefined, undefined]);
    const operatorView = (await admin('GET', `/v1/approvals/${outcome.id}`)).body;
    assert.deepEqual([...operatorView.approvers].sort(), ['tre-a', 'tre-b']);
    const signer = await recoverTransactionAddress({ serializedTransaction: outcome.result.signedTransaction as Hex as never });
    assert.equal(signer.toLowerCase(), agents['treasury-bot']!.address.toLowerCase());
    // The private keys never reached the daemon nor the page's storage.
    const secrets = Object.values(keyFiles).map((f) => JSON.parse(readFileSync(f, 'utf8')).secretKey as string);
    const audit = JSON.stringify((await admin('GET', '/v1/audit?limit=1000')).body);
    for (const s of secrets) assert.ok(!audit.includes(s) && !(await page.content()).includes(s));
    // Only the console session's proof is kept (sessionStorage), no approver key.
    assert.equal(await page.evaluate('JSON.stringify({ ...localStorage })'), '{}');
    assert.deepEqual(Object.keys(JSON.parse(await page.evaluate('JSON.stringify({ ...sessionStorage })') as string)), ['airlock.console.proof']);
    const stored = await page.evaluate('JSON.stringify({ ...sessionStorage })') as string;
    for (const s of secrets) assert.ok(!stored.includes(s));
  });

  test('an approval that needs the operator as well as a vote: "Approve as operator" records it (still pending), the vote in the page grants it', async () => {
    // The fleet holds payments above 1,000 USDC for the operator; the agent's own 1-of-treasury tier does not replace it.
    assert.equal((await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'big-by-operator', type: 'approval_tier', asset: USDC_ASSET, above: '1000000000' }] } })).status, 200);
    try {
      const created = (await admin('POST', '/v1/agents', { names: ['ops-bot'] })).body.agents[0];
      const policy = usdcPolicy({ perRequest: '2000000000', daily: '5000000000' });
      const tier = { name: 'treasury-approves', type: 'approval_tier', asset: USDC_ASSET, above: '500000000', quorum: { min: 1, groups: ['treasury'] } };
      assert.equal((await admin('PUT', `/v1/policies/${created.name}`, { document: { ...policy, rules: [...policy.rules, tier] } })).status, 200);
      agents['ops-bot'] = { ...created, token: (await admin('POST', `/v1/agents/${created.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token };
      const asked = await pay('ops-bot', 1_500);
      assert.equal(asked.status, 202, JSON.stringify(asked.body));

      await nav('Alerts', 'Alerts and breakers');
      await nav('Approvals', 'Approvals');
      const card = page.locator('li.card').filter({ hasText: 'ops-bot' });
      await card.getByText("not approved yet: the operator's approval is needed as well as the votes").waitFor();
      await card.getByRole('button', { name: 'Approve as operator' }).click();
      await card.getByRole('button', { name: 'Confirm operator approval' }).click();
      await page.getByRole('status').filter({ hasText: `The operator's approval of ${asked.body.approvalId} is recorded` }).waitFor();
      await card.getByText('by admin').waitFor();
      assert.equal(await card.getByRole('button', { name: 'Approve as operator' }).count(), 0, 'given once');
      assert.equal((await admin('GET', `/v1/approvals/${asked.body.approvalId}`)).body.state, 'pending');

      await page.getByLabel('Approver key file').setInputFiles(keyFiles['tre-a']!);
      await card.getByRole('button', { name: 'Approve as tre-a' }).click();
      await card.getByRole('button', { name: 'Sign and send vote' }).click();
      await page.getByRole('status').filter({ hasText: 'tre-a voted approve' }).filter({ hasText: 'signed and handed to the agent' }).waitFor();
      const granted = (await admin('GET', `/v1/approvals/${asked.body.approvalId}`)).body;
      assert.equal(granted.state, 'approved');
      const signer = await recoverTransactionAddress({ serializedTransaction: granted.result.signedTransaction as Hex as never });
      assert.equal(signer.toLowerCase(), created.address.toLowerCase());
    } finally {
      assert.equal((await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
    }
  });

  test('a key file that is not the registered key is refused in the page', async () => {
    const wrong = generateApproverKey();
    await page.getByLabel('or paste it').fill(JSON.stringify({ type: 'airlock-approver-key', approver: 'tre-a', id: 'x', publicKey: wrong.publicKey, secretKey: wrong.secretKey }));
    await page.getByRole('button', { name: 'Use pasted key' }).click();
    await page.getByRole('alert').filter({ hasText: 'This key is not the one registered for tre-a.' }).waitFor();
    assert.equal(await page.getByLabel('or paste it').inputValue(), '', 'the pasted key is cleared');
  });

  test('shadow policies: a stricter candidate staged over HTTP shows its differences; unstage behind a confirmation', async () => {
    assert.equal((await admin('POST', '/v1/agents/payee-bot/unfreeze')).status, 200);
    const stricter = { ...usdcPolicy({ perRequest: '20000000' }), sets: { partners: [ALICE, MALLORY] } };
    assert.equal((await admin('PUT', '/v1/policies/payee-bot/shadow', { document: stricter })).status, 200);
    assert.equal((await pay('payee-bot', 50)).status, 200, 'the active policy decides');
    assert.equal((await pay('payee-bot', 10)).status, 200);
    await nav('Shadow policies', 'Shadow policies');
    const candidate = page.locator('article.card').filter({ hasText: 'Agent payee-bot' });
    await candidate.getByRole('list', { name: 'Agent payee-bot: outcomes so far' }).getByText('would deny').waitFor();
    assert.match(await candidate.getByRole('list', { name: 'Agent payee-bot: outcomes so far' }).innerText(), /2\s*evaluated[\s\S]*1\s*same[\s\S]*1\s*would deny/);
    const diff = candidate.locator('table.differences tbody tr');
    assert.equal(await diff.count(), 1);
    await diff.getByText('agent/usdc-per-request').waitFor();
    await diff.getByText('would_deny').waitFor();
    await checkAccessible('shadow');
    await shoot('shadow');
    await candidate.getByRole('button', { name: 'Unstage' }).click();
    await candidate.getByRole('button', { name: 'Confirm unstage' }).click();
    await page.getByRole('status').filter({ hasText: 'Unstaged the candidate of Agent payee-bot' }).waitFor();
    await page.getByText('No candidate is staged').waitFor();
    assert.equal((await admin('GET', '/v1/policies/payee-bot/shadow')).status, 404);
    assert.deepEqual(problems, []);
  });
});
