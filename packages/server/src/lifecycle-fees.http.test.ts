// The lifecycle path's fee bounds, through the real HTTP app against a fake JSON-RPC node that quotes whatever gas
// price the test sets (a lying or broken RPC): a gas price above lifecycle.max_gas_price or far above the chain's
// fee history is refused (lifecycle_gas_price_too_high), a native sweep that would pay more than 10% of what it
// moves in fees is refused (lifecycle_fee_too_high), both audited (lifecycle.refused) with nothing signed or
// broadcast; the worst-case fee counts against the native coin's lifecycle caps; a sweep to the current address of
// a retired agent is refused (lifecycle_current_key_unavailable).
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { parseTransaction } from 'viem';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = 'eip155:31337';
const NATIVE = `${CHAIN}/slip44:60`;
const TREASURY = '0x7ea5000000000000000000000000000000000001';
const ETH = 10n ** 18n;
const GWEI = 10n ** 9n;
const hex = (n: bigint) => `0x${n.toString(16)}`;

/** What the fake node answers; reset before each test. */
const node = { gasPrice: GWEI, balance: ETH, feeHistory: undefined as { baseFee: bigint; reward: bigint } | undefined, sent: [] as string[], onBalance: undefined as (() => Promise<void>) | undefined };

function fakeRpc(): Server {
  return createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const msgs = JSON.parse(body);
    if ([msgs].flat().some((m: { method: string }) => m.method === 'eth_getBalance') && node.onBalance) {
      const hook = node.onBalance;
      node.onBalance = undefined;
      await hook();
    }
    const one = (m: { id: number; method: string; params: unknown[] }) => {
      const r = (result: unknown) => ({ jsonrpc: '2.0', id: m.id, result });
      switch (m.method) {
        case 'eth_chainId': return r('0x7a69');
        case 'eth_gasPrice': return r(hex(node.gasPrice));
        case 'eth_getTransactionCount': return r('0x0');
        case 'eth_getBalance': return r(hex(node.balance));
        case 'eth_blockNumber': return r('0x10');
        case 'eth_feeHistory':
          if (!node.feeHistory) break;
          return r({ oldestBlock: '0x7', baseFeePerGas: Array(11).fill(hex(node.feeHistory.baseFee)), gasUsedRatio: Array(10).fill(0.5), reward: Array(10).fill([hex(node.feeHistory.reward)]) });
        case 'eth_sendRawTransaction': node.sent.push(m.params[0] as string); return r('0x' + '11'.repeat(32));
        case 'eth_getTransactionReceipt': return r(null);
      }
      return { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `the method ${m.method} does not exist` } };
    };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(Array.isArray(msgs) ? msgs.map(one) : one(msgs)));
  });
}

describe('lifecycle fee bounds (fake RPC)', () => {
  let rpc: Server;
  let h: Harness;
  before(async () => {
    rpc = fakeRpc();
    await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', () => r()));
    h = await startHarness({ store: 'sqlite', config: { evmRpc: { [CHAIN]: `http://127.0.0.1:${(rpc.address() as { port: number }).port}` } } });
  });
  after(async () => {
    await h?.close();
    rpc?.close();
  });
  beforeEach(() => Object.assign(node, { gasPrice: GWEI, balance: ETH, feeHistory: undefined, sent: [], onBalance: undefined }));

  const setFleet = async (lifecycle: Record<string, unknown>) => {
    const set = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: TREASURY }, ...lifecycle } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
  };
  const refusals = async (agentId: string) => (await h.admin('GET', `/v1/audit?type=lifecycle.refused&agent=${agentId}&limit=100`)).body.entries as any[];
  const jobsOf = async (agentId: string) => (await h.admin('GET', `/v1/lifecycle/jobs?agent=${agentId}`)).body.jobs as any[];
  const planned = async (agentId: string) => (await h.admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agentId}&limit=100`)).body.entries as any[];

  async function assertRefused(agentId: string, res: { status: number; body: any }, code: string) {
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, code);
    assert.deepEqual(node.sent, [], 'nothing broadcast');
    assert.deepEqual(await jobsOf(agentId), [], 'no job');
    assert.deepEqual(await planned(agentId), [], 'nothing planned for signing');
    const [entry, ...more] = await refusals(agentId);
    assert.equal(more.length, 0);
    assert.equal(entry.data.code, code);
    assert.equal(entry.decision, 'deny');
    assert.equal(entry.data.chain, CHAIN);
    return entry;
  }

  test('a lying gas price that would burn the balance as fee: refused (lifecycle_fee_too_high), audited, nothing signed', async () => {
    await setFleet({ caps: [{ asset: NATIVE, max: (ETH / 10n).toString(), window: '24h' }] });
    node.gasPrice = (ETH - 5_000n) / 21_000n; // the reviewer's lie: ~47,619 gwei
    const { agent } = await provisionAgent(h);
    const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    const entry = await assertRefused(agent.id, res, 'lifecycle_fee_too_high');
    assert.equal(entry.data.gasPrice, node.gasPrice.toString());
    assert.equal(entry.data.origin, 'sweep');
  });

  test('a gas price above lifecycle.max_gas_price: refused (lifecycle_gas_price_too_high) before anything is built', async () => {
    await setFleet({ max_gas_price: { [CHAIN]: (100n * GWEI).toString() } });
    node.gasPrice = 101n * GWEI; // a fee of 0.2% of the balance: only the configured bound stops it
    const { agent } = await provisionAgent(h);
    const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    const entry = await assertRefused(agent.id, res, 'lifecycle_gas_price_too_high');
    assert.equal(entry.data.bound, 'max_gas_price');
    assert.equal(entry.data.limit, (100n * GWEI).toString());
  });

  test('without max_gas_price, a quote far above the fee history (eth_feeHistory) is refused', async () => {
    await setFleet({});
    node.feeHistory = { baseFee: GWEI, reward: GWEI / 10n };
    node.gasPrice = 50n * GWEI; // 0.1% of the balance as fee, but 15x the recent fees
    const { agent } = await provisionAgent(h);
    const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    const entry = await assertRefused(agent.id, res, 'lifecycle_gas_price_too_high');
    assert.equal(entry.data.bound, 'fee_history');
    assert.equal(entry.data.limit, (3n * (GWEI + GWEI / 10n)).toString());
  });

  test('a normal gas price (within max_gas_price and the fee history): swept as before, fee counted in the ledger', async () => {
    await setFleet({ max_gas_price: { [CHAIN]: (100n * GWEI).toString() } });
    node.feeHistory = { baseFee: GWEI, reward: GWEI / 10n };
    node.gasPrice = 2n * GWEI;
    const { agent } = await provisionAgent(h);
    const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [job] = res.body.jobs;
    assert.equal(res.body.jobs.length, 1);
    assert.equal(job.kind, 'native_transfer');
    assert.equal(BigInt(job.amount), ETH - 21_000n * 2n * GWEI);
    assert.equal(BigInt(job.maxFee), 21_000n * 2n * GWEI);
    assert.equal(node.sent.length, 1);
    const tx = parseTransaction(node.sent[0] as `0x${string}`);
    assert.equal(tx.value, ETH - 21_000n * 2n * GWEI);
    assert.equal(tx.gasPrice, 2n * GWEI);
    assert.deepEqual(await refusals(agent.id), []);
    const [charged] = await h.airlock.store.transaction((t) => t.windowTotals([{ series: `lifecycle|agent:${agent.id}`, asset: NATIVE, sinceMs: 0 }]));
    assert.equal(charged!.amount, ETH, 'the value moved plus its worst-case fee');
  });

  test('the worst-case fee counts against the native coin\'s lifecycle cap', async () => {
    // The cap holds exactly the value the sweep moves, not its fee: refused only because the fee counts.
    const fee = 21_000n * GWEI;
    await setFleet({ caps: [{ asset: NATIVE, max: (ETH - fee).toString(), window: '24h' }] });
    const { agent } = await provisionAgent(h);
    const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'lifecycle_cap_exceeded');
    assert.equal(res.body.error.details.requested, ETH.toString());
    assert.equal(res.body.error.details.maxFee, fee.toString());
    assert.deepEqual(node.sent, []);
    assert.deepEqual(await jobsOf(agent.id), []);
  });

  test('a retired agent\'s old key cannot be swept to its "current" address (lifecycle_current_key_unavailable)', async () => {
    await setFleet({});
    const { agent } = await provisionAgent(h);
    node.balance = 0n; // the rotation's own sweep of the old address finds nothing
    const rotated = await h.admin('POST', `/v1/agents/${agent.id}/rotate`, {});
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const retired = await h.admin('POST', `/v1/agents/${agent.id}/retire?sweep=false`, {});
    assert.equal(retired.status, 200, JSON.stringify(retired.body));
    node.balance = ETH;
    const res = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0, to: 'current' });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'lifecycle_current_key_unavailable');
    assert.deepEqual(node.sent, []);
    assert.deepEqual(await jobsOf(agent.id), []);
    // To the treasury it still goes.
    const swept = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0 });
    assert.equal(swept.status, 200, JSON.stringify(swept.body));
    assert.equal(swept.body.jobs[0].recipient, TREASURY);
  });

  test('an agent retired while a sweep to its current address reads the chain: refused under the agent\'s lock, nothing signed', async () => {
    await setFleet({});
    const { agent } = await provisionAgent(h);
    node.balance = 0n;
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/rotate`, {})).status, 200);
    node.balance = ETH;
    // The retirement lands after the sweep read the agent (active) and before it takes the agent's lock to plan.
    node.onBalance = async () => {
      const retired = await h.admin('POST', `/v1/agents/${agent.id}/retire?sweep=false`, {});
      assert.equal(retired.status, 200, JSON.stringify(retired.body));
    };
    const res = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 0, to: 'current' });
    assert.equal(node.onBalance, undefined, 'the retirement ran during the sweep');
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'lifecycle_current_key_unavailable');
    assert.deepEqual(node.sent, []);
    assert.deepEqual(await jobsOf(agent.id), []);
    const [entry] = await refusals(agent.id);
    assert.equal(entry.data.code, 'lifecycle_current_key_unavailable');
  });
});
