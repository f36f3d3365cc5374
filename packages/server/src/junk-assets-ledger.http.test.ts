// Junk assets (found by review 2026-12-04): an agent whose allow rule lists no `assets` signs transfers of many
// token contracts nobody values. A ledger entry kept the running totals of every asset its series was ever
// charged, and every signature writes a fleet entry, so each junk asset made every later signature of every agent
// write a wider fleet entry (3,000 of them: 213 KB per entry, another agent's signature 4.5x slower). A series now
// keeps at most ASSETS_KEPT_PER_SERIES assets in its entries and sends the charges of further ones to their
// assets' own series, which window totals read too: the entries stay narrow and budgets on those assets exact.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { storeTarget } from '@airlock/store';
import { ALICE, BASE, PG_URL, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

/**
 * The most assets any ledger entry keeps, over every series but the assets' own (named from U+0001), read from
 * outside the daemon. (On PostgreSQL the fleet's entries are spread over sixteen stripes, so the agent's own
 * series is where sixty assets show.)
 */
async function widestEntry(h: Harness): Promise<number> {
  const target = storeTarget(h.config.storeUrl);
  if ('sqlite' in target) {
    const db = new DatabaseSync(target.sqlite, { readOnly: true });
    try {
      return Number(db.prepare("SELECT max((SELECT count(*) FROM json_each(kept_totals))) AS n FROM ledger WHERE substr(series, 1, 1) <> char(1)").get()!.n);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${target.postgres.schema}`);
    const { rows } = await client.query("SELECT max((SELECT count(*) FROM jsonb_object_keys(kept_totals)))::int AS n FROM ledger WHERE left(series, 1) <> chr(1)");
    return rows[0].n;
  } finally {
    await client.end();
  }
}

const token = (i: number) => `0x${'de'.repeat(18)}${i.toString(16).padStart(4, '0')}`;

function transfer(tokenAddress: string, amount: bigint, nonce: number) {
  const data = `0xa9059cbb${ALICE.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId: 8453, transaction: { type: 'eip1559', to: tokenAddress, value: '0', data, nonce, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

// Any ERC-20 to ALICE: the rule lists no `assets`, as the attack needs.
const anyToken = { version: 1, rules: [{ name: 'any-token', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], to: [ALICE] } }, { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' }] };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`junk assets do not widen every ledger entry (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store }); });
    after(async () => h.close());

    test('sixty junk tokens leave ledger entries at 32 assets, and budgets on the sixtieth still count its history', async () => {
      const attacker = await provisionAgent(h, { policy: anyToken, ttl: '1h' });
      for (let i = 1; i <= 60; i++) {
        const res = await h.call('POST', '/v1/sign/transaction', { token: attacker.token, body: transfer(token(i), 40n, i - 1) });
        assert.equal(res.status, 200, JSON.stringify(res.body));
      }
      // 60 tokens, the fee asset and the request count: on the old code the fleet's and the agent's head entries kept all 62.
      assert.equal(await widestEntry(h), 32);

      // A budget added later on a token the fleet entries do not keep is answered from its history all the same.
      const junk = `${BASE}/erc20:${token(60)}`;
      // Per agent and fleet-wide (on PostgreSQL the fleet's sixteen stripes each keep a few of the sixty: the
      // agent's series is the one that sends the sixtieth to its own series there).
      const fleet = {
        version: 1,
        rules: ['agent', 'fleet'].map((scope) => ({ name: `junk-cap-${scope}`, type: 'budget', asset: junk, max: '100', window: '24h', scope })),
      };
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleet })).status, 200);
      const over = await h.call('POST', '/v1/sign/transaction', { token: attacker.token, body: transfer(token(60), 61n, 60) });
      assert.equal(over.status, 403, JSON.stringify(over.body));
      const violations = over.body.error.violations as { code: string; rule: string; message: string }[];
      assert.deepEqual(violations.map((v) => [v.code, v.rule]).sort(), [['budget_exceeded', 'fleet/junk-cap-agent'], ['budget_exceeded', 'fleet/junk-cap-fleet']]);
      for (const v of violations) assert.match(v.message, /used 40 \+ requested 61 > 100/);
      const within = await h.call('POST', '/v1/sign/transaction', { token: attacker.token, body: transfer(token(60), 60n, 60) });
      assert.equal(within.status, 200, JSON.stringify(within.body));
      const full = await h.call('POST', '/v1/sign/transaction', { token: attacker.token, body: transfer(token(60), 1n, 61) });
      assert.equal(full.status, 403, 'the budget is spent: 40 + 60 of 100');
      assert.match(full.body.error.violations[0].message, /used 100 \+ requested 1 > 100/);
    });
  });
}
