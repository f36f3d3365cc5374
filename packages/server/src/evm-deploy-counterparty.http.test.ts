// A contract creation (`to` absent) that carries value sends it to the contract it creates, whose init code can
// forward it anywhere. That address is keccak256(rlp([agent, nonce])), known before signing, and the decoder now
// names it: it is the deploy's counterparty (`intent.to`) and the value's recipient. Found by review: the value was
// recorded with no recipient, so a `destinations` allowlist saw no counterparty and signed 5 ETH to an address no
// list names, while the same 5 ETH sent to that address as a plain transfer was refused. Decoding does not depend on
// the store: SQLite only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { getContractAddress, parseTransaction, type Hex } from 'viem';
import { ALICE, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const ETH_BASE = 'eip155:8453/slip44:60';
const FIVE_ETH = '5000000000000000000';
const NONCE = 7;
// Init code that CALLs with the contract's whole balance (SELFBALANCE) to its deployer and stops: it could name any
// address. The decoder does not read init code; the point is that the value reaches code the agent wrote.
const INIT_CODE = '0x6000600060006000473361fffff100';

const rules = (extra: unknown[]) => ({
  version: 1,
  rules: [
    { name: 'deploys', type: 'allow', match: { kinds: ['contract.deploy'] } },
    { name: 'eth-transfers', type: 'allow', match: { kinds: ['native.transfer'] } },
    ...extra,
  ],
});
const partnersOnly = (partners: string[]) => rules([{ name: 'partners-only', type: 'destinations', allow: partners }]);

const tx = (fields: Record<string, unknown>) => ({
  chainId: 8453,
  transaction: { type: 'eip1559', value: FIVE_ETH, nonce: NONCE, gas: '200000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000', ...fields },
});
const deploy = (fields: Record<string, unknown> = {}) => tx({ data: INIT_CODE, ...fields });

/** The address the agent's CREATE at `nonce` deploys to, as the chain computes it. */
const createdBy = (address: string, nonce = NONCE) => getContractAddress({ from: address as Hex, nonce: BigInt(nonce) }).toLowerCase();
const codes = (body: any) => body.error.violations.map((v: any) => `${v.rule}:${v.code}`);

describe('a contract deploy carrying value: its counterparty is the contract it creates', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ store: 'sqlite' }); });
  after(async () => h.close());

  test('a destinations allowlist refuses the deploy as it refuses a plain transfer to the same address; the refusal names it, nothing is signed', async () => {
    const { agent, token } = await provisionAgent(h, { policy: partnersOnly([ALICE]), actions: ['evm.transaction'] });
    const created = createdBy(agent.address);
    const plain = await h.call('POST', '/v1/sign/transaction', { token, body: tx({ to: created }) });
    assert.equal(plain.status, 403, JSON.stringify(plain.body));
    assert.deepEqual(codes(plain.body), ['agent/partners-only:destination_not_allowed']);

    const res = await h.call('POST', '/v1/sign/transaction', { token, body: deploy() });
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 400));
    assert.equal(res.body.signedTransaction, undefined);
    assert.deepEqual(codes(res.body), ['agent/partners-only:destination_not_allowed']);
    assert.ok(res.body.error.violations[0].message.includes(created), res.body.error.violations[0].message);
    const entry = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries.at(-1);
    assert.equal(entry.decision, 'deny');
    assert.equal(entry.data.intent.kind, 'contract.deploy');
    assert.equal(entry.data.intent.to, created);
    assert.ok(entry.data.intent.summary.startsWith(`deploy a contract at ${created} `), entry.data.intent.summary);
  });

  test('with the created address on the allowlist the deploy signs, and the signed transaction is still a creation', async () => {
    const { agent, token } = await provisionAgent(h, { actions: ['evm.transaction'] });
    assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: partnersOnly([ALICE, createdBy(agent.address)]) })).status, 200);
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: deploy() });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
    const signed = parseTransaction(res.body.signedTransaction as Hex);
    assert.equal(signed.to, undefined);
    assert.equal(signed.value, BigInt(FIVE_ETH));
    // The next nonce creates another contract, which the list does not name.
    const next = await h.call('POST', '/v1/sign/transaction', { token, body: deploy({ nonce: NONCE + 1 }) });
    assert.equal(next.status, 403, JSON.stringify(next.body).slice(0, 400));
    assert.deepEqual(codes(next.body), ['agent/partners-only:destination_not_allowed']);
  });

  test('a deny naming the created address refuses the deploy', async () => {
    const { agent, token } = await provisionAgent(h, { actions: ['evm.transaction'] });
    const document = rules([{ name: 'known-drainer', type: 'deny', match: { to: [createdBy(agent.address)] } }]);
    assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document })).status, 200);
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: deploy() });
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 400));
    assert.deepEqual(codes(res.body), ['agent/known-drainer:denied_by_rule']);
  });

  test('a per_destination budget charges the deploy\'s value to the created address: sending there first, then deploying, exceeds it', async () => {
    const perPayee = { name: 'eth-per-payee', type: 'budget', asset: ETH_BASE, max: '6000000000000000000', window: '24h', scope: 'agent', per_destination: true };
    const { agent, token } = await provisionAgent(h, { policy: rules([perPayee]), actions: ['evm.transaction'] });
    const created = createdBy(agent.address);
    // 5 ETH sent there plainly (at another nonce) leaves 1 ETH of that destination's series.
    const first = await h.call('POST', '/v1/sign/transaction', { token, body: tx({ to: created, nonce: NONCE - 1 }) });
    assert.equal(first.status, 200, JSON.stringify(first.body).slice(0, 400));
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: deploy() });
    assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 400));
    assert.equal(res.body.signedTransaction, undefined);
    assert.deepEqual(codes(res.body), ['agent/eth-per-payee:budget_exceeded']);
  });
});
