// The approval card as a malicious agent would shape it, in a real browser (Debian's Chromium via playwright-core)
// against a real daemon (SQLite store): the agent holds Nostr kind 0 events (profile metadata, whose lud16 is where
// zaps and tips are paid) built to make the card show something else than what would be signed (found by review):
// - a duplicate lud16 pushed 400 spaces to the right: clients keep the LAST value, and an unwrapped <pre> drew it
//   thousands of pixels off screen (and stretched every card of the list);
// - a look-alike domain (a Cyrillic а in getаlby.com) that draws exactly like the honest one;
// - a bidi control (U+202E) that reverses what follows it on the line.
// Each test asserts what an operator must be able to notice; an honest profile beside them raises no warning.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, USDC, usdcPolicy } from './testing/harness.ts';
import { CHROMIUM, chromiumSkip, collectProblems, jsonApi, logInThroughForm } from './testing/browser.ts';

const skip = chromiumSkip;
const VIEWPORT = { width: 1280, height: 800 };

/** The kind 0 contents the agent asks to sign, each held for approval by the policy below. */
const CONTENTS = {
  honest: JSON.stringify({ name: 'social-bot', about: 'Posts release notes.', lud16: 'tips@getalby.com', nip05: 'bot@example.com' }),
  // Written by hand: JSON.stringify cannot produce a duplicate key. JSON.parse (and so most clients) keeps the last.
  duplicate: `{"name":"social-bot","lud16":"tips@getalby.com","about":"Posts release notes.${' '.repeat(400)}","lud16":"drain@attacker.example"}`,
  lookalike: JSON.stringify({ name: 'social-bot', lud16: 'tips@get\u0430lby.com' }),
  // U+202E RIGHT-TO-LEFT OVERRIDE: drawn, "moc.ybla-teg@spit" reads as "tips@get-alby.com".
  bidi: JSON.stringify({ name: 'social-bot', lud16: '\u202Emoc.ybla-teg@spit' }),
  notObject: '["lud16","drain@attacker.example"]',
};
type Case = keyof typeof CONTENTS;
const X402_RESOURCE = 'https://api.example.com/premium-report';

describe('the approval card against a malicious agent (Nostr kind 0) in Chromium', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let adminToken: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const held = {} as Record<Case, string>;
  let x402Approval = '';

  const api = jsonApi(() => server.url);
  const admin = (method: string, path: string, body?: unknown) => api(method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });
  const card = (which: Case): Locator => page.locator(`li.card[data-approval="${held[which]}"]`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-console-card-'));
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });

    // The attacker: an agent allowed to publish notes, whose profile changes (kind 0) wait for a human.
    assert.equal((await admin('POST', '/v1/agents', { names: ['social-bot'] })).status, 201);
    const policy = { version: 1, rules: [
      { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [0, 1] } },
      { type: 'approval_tier', name: 'metadata-by-hand', match: { nostr_kinds: [0] } },
    ] };
    assert.equal((await admin('PUT', '/v1/policies/social-bot', { document: policy })).status, 200);
    const token = (await admin('POST', '/v1/agents/social-bot/sessions', { ttl: '1h', actions: ['nostr.event'] })).body.token;
    const now = Math.floor(Date.now() / 1000);
    for (const [which, content] of Object.entries(CONTENTS) as [Case, string][]) {
      const res = await api('POST', '/v1/sign/nostr-event', { token, body: { kind: 0, tags: [], content, created_at: now } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      held[which] = res.body.approvalId;
    }
    // An x402 payment held for a human: the card must say what it buys (the resource the agent named).
    assert.equal((await admin('POST', '/v1/agents', { names: ['payments-bot'] })).status, 201);
    assert.equal((await admin('PUT', '/v1/policies/payments-bot', { document: usdcPolicy({ approvalAbove: '50000000' }) })).status, 200);
    const payer = (await admin('POST', '/v1/agents/payments-bot/sessions', { ttl: '1h', actions: ['evm.typed_data'] })).body.token;
    const accepts = [{ scheme: 'exact', network: 'eip155:8453', amount: '60000000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
    const paymentRequired = Buffer.from(JSON.stringify({ x402Version: 2, resource: { url: X402_RESOURCE, description: 'One report' }, accepts })).toString('base64');
    const x402 = await api('POST', '/v1/x402/pay', { token: payer, body: { resource: X402_RESOURCE, paymentRequired } });
    assert.equal(x402.status, 202, JSON.stringify(x402.body));
    x402Approval = x402.body.approvalId;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
    page.setDefaultTimeout(15_000);
    collectProblems(page, problems);

    // The operator logs in through the console's form, as console.browser.test.ts does, and opens Approvals.
    await logInThroughForm(page, server.url, adminToken);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Approvals' }).click();
    await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
    for (const which of Object.keys(CONTENTS) as Case[]) await card(which).locator('details.request pre').waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the whole request is drawn inside the viewport: the second lud16 is not pushed off screen, no card is wider than the page', async () => {
    const target = card('duplicate');
    await target.scrollIntoViewIfNeeded();
    // Every place the card draws the value clients would use, in the request as sent and anywhere else on the card.
    const boxes = await target.evaluate((li: any, needle: string) => {
      const document = (globalThis as any).document;
      const out: { left: number; right: number; top: number; bottom: number; inPre: boolean }[] = [];
      const walker = document.createTreeWalker(li, 4 /* NodeFilter.SHOW_TEXT */);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let at = node.data.indexOf(needle); at !== -1; at = node.data.indexOf(needle, at + 1)) {
          const range = document.createRange();
          range.setStart(node, at);
          range.setEnd(node, at + needle.length);
          for (const r of range.getClientRects()) out.push({ left: r.left, right: r.right, top: r.top, bottom: r.bottom, inPre: !!node.parentElement.closest('pre') });
        }
      }
      return out;
    }, 'drain@attacker.example');
    assert.ok(boxes.some((b) => b.inPre), 'the request as sent shows the second lud16');
    for (const b of boxes) assert.ok(b.left >= 0 && b.right <= VIEWPORT.width, `drain@attacker.example drawn at x ${Math.round(b.left)}..${Math.round(b.right)}, viewport ${VIEWPORT.width} px`);
    // The field view: the lud16 clients use, within the viewport once scrolled to.
    const lud16 = target.locator('[data-kind0-field="lud16"] [data-field-value]');
    await lud16.scrollIntoViewIfNeeded();
    const box = await lud16.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= VIEWPORT.width && box.y >= 0 && box.y + box.height <= VIEWPORT.height, `lud16 value box ${JSON.stringify(box)}`);
    assert.equal((await lud16.innerText()).trim(), 'drain@attacker.example');
    // One wide card must not stretch the list, nor the page.
    for (const which of Object.keys(CONTENTS) as Case[]) {
      const b = await card(which).boundingBox();
      assert.ok(b && b.x >= 0 && b.x + b.width <= VIEWPORT.width, `${which} card box ${JSON.stringify(b)}`);
    }
    const widths = await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]') as number[];
    assert.ok(widths[0]! <= widths[1]!, `the page scrolls sideways: ${widths[0]} px of content in ${widths[1]} px`);
  });

  test('a duplicate key is flagged with the value clients use; content that is not a JSON object is flagged', async () => {
    const warning = card('duplicate').locator('[data-warning="duplicate-key"]');
    assert.equal(await warning.count(), 1);
    const text = await warning.innerText();
    assert.match(text, /lud16 appears twice/);
    assert.match(text, /LAST value: drain@attacker\.example/);
    assert.match(text, /tips@getalby\.com/, 'the earlier value, which clients ignore, is named too');
    // Each key is listed once, with the value clients read.
    assert.equal(await card('duplicate').locator('[data-kind0-field="lud16"]').count(), 1);

    const notObject = card('notObject').locator('[data-warning="not-an-object"]');
    assert.equal(await notObject.count(), 1);
    assert.match(await notObject.innerText(), /not a JSON object/);
  });

  test('a bidi control is shown as a code-point badge, never drawn', async () => {
    const target = card('bidi');
    const text = await target.evaluate((li: any) => li.textContent as string);
    assert.ok(!text.includes('\u202E'), 'the raw U+202E is not in the card');
    assert.ok(await target.locator('[data-field-value]').count() > 0);
    assert.ok(await target.locator('pre .cp-badge', { hasText: '⟨U+202E⟩' }).count() >= 1, 'the request as sent shows a badge');
    assert.ok(await target.locator('[data-kind0-field="lud16"] .cp-badge', { hasText: '⟨U+202E⟩' }).count() === 1, 'the lud16 field shows a badge');
    // What follows the badge keeps its order: the stored string, not the reversed one.
    assert.match(await target.locator('[data-kind0-field="lud16"] [data-field-value]').innerText(), /⟨U\+202E⟩moc\.ybla-teg@spit/);
    await target.locator('[data-warning="characters"]').filter({ hasText: 'U+202E' }).waitFor();
  });

  test('a look-alike (Cyrillic) letter is marked, and the domain is shown in punycode', async () => {
    const target = card('lookalike');
    const marks = target.locator('[data-kind0-field="lud16"] mark.non-ascii');
    assert.equal(await marks.count(), 1);
    assert.equal(await marks.innerText(), '\u0430');
    assert.match((await marks.getAttribute('title')) ?? '', /U\+0430/);
    assert.ok(await target.locator('pre mark.non-ascii').count() >= 1, 'marked in the request as sent too');
    const punycode = new URL('http://get\u0430lby.com').hostname;
    assert.equal(punycode, 'xn--getlby-5nf.com');
    await target.locator('[data-kind0-field="lud16"]').getByText(punycode).waitFor();
    await target.locator('[data-warning="characters"]').filter({ hasText: 'U+0430' }).waitFor();
  });

  test('an x402 payment\'s card says what it buys: the resource the agent named, with the protocol', async () => {
    const target = page.locator(`li.card[data-approval="${x402Approval}"]`);
    const row = target.locator('dt', { hasText: 'Pays for' }).locator('xpath=..');
    assert.match(await row.innerText(), new RegExp(`${X402_RESOURCE.replace(/[.]/g, '\\.')}[\\s\\S]*x402: the resource as the agent named it`));
  });

  test('an honest profile raises no warning; every field is listed; no script error, no CSP violation', async () => {
    const target = card('honest');
    assert.equal(await target.locator('[data-warning]').count(), 0);
    assert.equal(await target.locator('mark.non-ascii, .cp-badge').count(), 0);
    for (const [key, value] of Object.entries(JSON.parse(CONTENTS.honest))) {
      assert.equal((await target.locator(`[data-kind0-field="${key}"] [data-field-value]`).innerText()).trim(), value);
    }
    assert.deepEqual(problems, []);
  });
});
