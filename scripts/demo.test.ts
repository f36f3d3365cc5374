// `npm run demo` as a user runs it: the whole demo in a child process (a local chain, the x402 testbed, the LND
// REST test double, an L402 paid API and Airlock), its exit status and the lines it prints. The L402 chapter's
// story is asserted line by line: 402 met and paid through LND, the token reused without a second payment, an
// unknown node refused by its rule, the data budget exhausted with its numbers, a large payment approved and paid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const root = new URL('..', import.meta.url).pathname;

test('npm run demo tells the x402 story and then the L402 story, and ends cleanly', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['scripts/demo.ts'], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 });
  const lines = stdout.split('\n');
  const lineWith = (pattern: RegExp) => {
    const found = lines.find((l) => pattern.test(l));
    assert.ok(found, `no line matches ${pattern}:\n${stdout}`);
    return found;
  };
  // The x402 chapter still runs first and keeps its refusals.
  lineWith(/agent\/payees destination_not_allowed: 0xbad0+bad is not in the destination allowlist/);
  lineWith(/agent\/data-budget budget_exceeded: agent 24h budget: used 30000 \+ requested 10000 > 30000/);

  const chapter = stdout.slice(stdout.indexOf('L402: the agent pays for an API over Lightning'));
  assert.ok(chapter.length < stdout.length, `no L402 chapter:\n${stdout}`);
  // Said plainly: the LND it pays through is a test double, reached over HTTPS with the real client.
  lineWith(/Airlock pays through its LND REST backend: HTTPS to https:\/\/127\.0\.0\.1:\d+, LND's tls\.cert pinned, a pay-only macaroon/);
  lineWith(/That LND is a TEST DOUBLE of LND's REST API: no Lightning node runs here/);

  // 402 met, paid through LND at the network's fee (10 msat + 0.1 % of 10 sat), then served.
  lineWith(/GET \/data\/quote → 402 Payment Required: an L402 challenge, macaroon \+ invoice for 10 sat to node [0-9a-f]{8}…/);
  lineWith(/✔ Airlock pays the invoice through LND: 10 sat \+ 0\.02 sat routing fee \(limit 1 sat\)/);
  lineWith(/✔ GET \/data\/quote with the L402 credential → 200, AIR 101\.00/);

  // The token is reused: one payment for two paid requests.
  lineWith(/✔ GET \/data\/quote → 200, AIR 101\.00, with the credential Airlock already holds \(GET \/v1\/l402\/token\); nothing paid/);
  lineWith(/LND has sent 1 payment; the API served 2 paid requests on 1 token/);

  // The unknown node: refused by the destinations rule, and LND never asked.
  const refusal = chapter.slice(chapter.indexOf('invoice pays an unknown node'));
  assert.match(refusal, /✘ refused by Airlock, nothing paid:\n\s+agent\/payees destination_not_allowed: [0-9a-f]{66} is not in the destination allowlist/);
  lineWith(/LND sent nothing for it \(1 payment in all\)/);

  // The data budget: two more services bought, the third refused with its numbers (held: price + fee limit).
  lineWith(/✔ GET \/data\/news → 200, .*; paid 10 sat \+ 0\.02 sat routing fee/);
  lineWith(/✔ GET \/data\/weather → 200, .*; paid 10 sat \+ 0\.02 sat routing fee/);
  lineWith(/✘ GET \/data\/filings: payments stop:/);
  lineWith(/agent\/data-budget budget_exceeded: agent 24h budget: used 30060 \+ requested 11000 > 35000 base units of bip122:[0-9a-f]+\/slip44:0/);
  lineWith(/agent\/data-budget in sat: used 30\.06 sat \+ requested 11 sat \(price \+ routing fee limit\) > 35 sat/);

  // The large payment waits for the operator, then is paid and served.
  lineWith(/Airlock holds the payment: approval apr_[0-9a-f]+ \(pay 500000 msat to [0-9a-f]+… over Lightning \(regtest\)/);
  const approved = lines.findLastIndex((l) => l.includes('✔ the operator approves it'));
  assert.ok(approved > lines.findIndex((l) => l.startsWith('12. A costly report waits for a human')), 'the L402 approval');
  assert.match(lines.slice(approved).join('\n'), /✔ Airlock pays it through LND \(500 sat \+ 0\.51 sat routing fee\); GET \/premium\/report → 200/);

  // What the operator's records say, and that they agree with what LND was asked to do.
  lineWith(/✔ GET \/v1\/lightning\/payments: 4 succeeded, 530 sat \+ 0\.57 sat in routing fees; LND was asked for 4 payments/);
  lineWith(/✔ audit verify: ok, \d+ hash-chained entries \(x402 and L402 alike\); none of the 4 preimages in the audit log or the payment records/);
  lineWith(/^Demo complete in \d+\.\d s/);

  // The credential never reaches the output: no `<macaroon>:<preimage>`, no bare preimage-sized hex after a colon.
  assert.doesNotMatch(stdout, /L(402|SAT) [A-Za-z0-9+/=]{20,}:[0-9a-f]{64}/);
  assert.doesNotMatch(stdout, /:[0-9a-f]{64}\b/);
  // A few seconds, not minutes: the chapter reports its own time.
  const seconds = Number(/L402 chapter in (\d+\.\d) s/.exec(stdout)?.[1]);
  assert.ok(seconds < 10, `the L402 chapter took ${seconds} s`);
});
