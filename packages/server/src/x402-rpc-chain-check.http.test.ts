// The daemon's own chain reads (the x402 reconciler's chain reader, the lifecycle path's submitter) ask each
// AIRLOCK_EVM_RPC node its chain id before the first read, as the JSON-RPC endpoint does (found by review: they
// did not). With eip155:8453 pointed at an honest node of chain 84532 holding the token at the same address, a
// payment that settled on 8453 was released as `expired` (that node truthfully says "nonce unused"), and the agent
// paid again past its daily budget. Two anvils: `base` is the real eip155:8453, `other` is chain 84532, configured
// both as eip155:8453 (the slip) and as eip155:84532 (right: the control on the same node).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { AirlockError } from '@airlock/core';
import { createWalletClient, http, parseSignature, type Address, type Hex } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { compiledContracts } from '../../x402-testbed/src/compile.ts';
import { x402Policy } from '../../x402-testbed/src/policy.ts';
import { ANVIL_KEYS, authorizationState, balanceOf, deployToken, localAccount, localChain, mint, publicClientFor, rpc } from '../../x402-testbed/src/token.ts';
import { UpstreamChainMismatchError, rpcChainReader } from './evm-chain-reader.ts';
import { rpcEvmSubmitter } from './evm-submitter.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const PAYEE = '0x6666666666666666666666666666666666666666' as Address;
const TREASURY = '0x7ea5000000000000000000000000000000000001';
const PRICE = 1_000_000n;
const BASE = 'eip155:8453';
const SEPOLIA = 'eip155:84532';

let base: Anvil; // the real eip155:8453
let other: Anvil; // chain 84532: right for eip155:84532, wrong for eip155:8453
let token: Address;
let h: Harness;

before(async () => {
  [base, other] = await Promise.all([startAnvil({ chainId: 8453 }), startAnvil({ chainId: 84532 })]);
  // Same deployer, same nonce: the token sits at the same address on both chains (as CREATE2/CreateX tokens do).
  token = await deployToken(base.rpcUrl);
  assert.equal(await deployToken(other.rpcUrl), token);
  h = await startHarness({ manualClock: true, config: { evmRpc: { [BASE]: other.rpcUrl, [SEPOLIA]: other.rpcUrl } } });
});
after(async () => {
  await h?.close();
  await base?.stop();
  await other?.stop();
});

const URL_PAID = 'https://api.example.com/data';

function required(network: string) {
  return encodePaymentRequiredHeader({
    x402Version: 2, error: 'Payment required', resource: { url: URL_PAID },
    accepts: [{ scheme: 'exact', network, amount: PRICE.toString(), asset: token, payTo: PAYEE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }],
  } as never);
}

/** An agent allowed one payment a day on `network`. */
function oneADay(network: string) {
  return provisionAgent(h, { policy: x402Policy({ chain: network, asset: `${network}/erc20:${token.toLowerCase()}`, payees: [PAYEE], perCall: PRICE, daily: PRICE, maxValiditySeconds: 60 }) });
}

const pay = (session: string, network: string) => h.call('POST', '/v1/x402/pay', { token: session, body: { resource: URL_PAID, paymentRequired: required(network) } });

/** Time passes on the node (100 blocks 5 s apart; finalized = latest - 64) and on the wall clock, past validBefore + the 5 min margin, without skew. */
async function passValidBefore(validBefore: number): Promise<void> {
  await rpc(other.rpcUrl, 'anvil_mine', ['0x64', '0x5']);
  const latest = Number(BigInt(((await rpc(other.rpcUrl, 'eth_getBlockByNumber', ['latest', false])) as { timestamp: Hex }).timestamp));
  assert.ok(latest - 64 * 5 > validBefore, "the node's finalized block is past validBefore");
  h.clock!.set(Math.max(latest, validBefore + 301) * 1000);
  assert.ok(Math.abs(Math.floor(h.clock!.now() / 1000) - latest) <= 120, 'no clock skew alarm');
}

async function paymentState(agentName: string, id: string): Promise<string> {
  const payments = await h.admin('GET', `/v1/x402/payments?agent=${agentName}`);
  return payments.body.payments.find((x: { id: string }) => x.id === id).state;
}

test('control: a node on the right chain (eip155:84532) still releases an unsettled payment as expired', async () => {
  const { agent, token: session } = await oneADay(SEPOLIA);
  const paid = await pay(session, SEPOLIA);
  assert.equal(paid.status, 200, JSON.stringify(paid.body));
  await passValidBefore(Number(paid.body.authorization.validBefore));

  const round = await h.admin('POST', '/v1/x402/reconcile');
  assert.equal(round.status, 200, JSON.stringify(round.body));
  assert.deepEqual({ expired: round.body.expired, errors: round.body.errors, alerts: round.body.alerts }, { expired: 1, errors: 0, alerts: 0 }, JSON.stringify(round.body));
  assert.equal(await paymentState(agent.name, paid.body.paymentId), 'expired');
});

test('a payment settled on eip155:8453 keeps its hold when the node configured for it is on chain 84532: an rpc error, alerted, the budget stays spent', async () => {
  const { agent, token: session } = await oneADay(BASE);
  await mint(base.rpcUrl, token, agent.address, 5n * PRICE);
  const first = await pay(session, BASE);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const a = first.body.authorization as { from: Address; to: Address; value: string; validAfter: string; validBefore: string; nonce: Hex };

  // The facilitator settles it on the real eip155:8453; the misconfigured node (84532) truthfully says "unused".
  const { v, r, s } = parseSignature(first.body.signature as Hex);
  const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.facilitator), chain: localChain(base.rpcUrl, 8453), transport: http(base.rpcUrl) });
  const hash = await wallet.writeContract({
    address: token, abi: compiledContracts().TestUSDC.abi, functionName: 'transferWithAuthorization',
    args: [a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, Number(v), r, s],
  });
  assert.equal((await publicClientFor(base.rpcUrl, 8453).waitForTransactionReceipt({ hash })).status, 'success');
  assert.equal(await balanceOf(base.rpcUrl, token, PAYEE), PRICE, 'the price moved on eip155:8453');
  assert.equal(await authorizationState(other.rpcUrl, token, a.from, a.nonce), false, 'the node of the other chain says unused');

  await passValidBefore(Number(a.validBefore));
  const round = await h.admin('POST', '/v1/x402/reconcile');
  assert.equal(round.status, 200, JSON.stringify(round.body));
  assert.deepEqual({ checked: round.body.checked, expired: round.body.expired, settled: round.body.settled, errors: round.body.errors }, { checked: 1, expired: 0, settled: 0, errors: 1 }, JSON.stringify(round.body));
  assert.equal(await paymentState(agent.name, first.body.paymentId), 'reserved', `settled on ${BASE} (tx ${hash}): the hold is kept, never released on the other chain's word`);

  const alerts = (await h.admin('GET', '/v1/audit?type=alert.reconciler&limit=100')).body.entries.filter((e: any) => e.data.reason === 'rpc_error');
  assert.equal(alerts.length, 1, JSON.stringify(alerts));
  assert.deepEqual({ network: alerts[0].data.network, failure: alerts[0].data.failure, due: alerts[0].data.due }, { network: BASE, failure: 'UpstreamChainMismatchError', due: 1 });
  assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.expired`)).body.entries.length, 0);

  const again = await pay(session, BASE);
  assert.equal(again.status, 403, JSON.stringify(again.body));
  assert.equal(again.body.error.code, 'policy_denied');
  assert.ok(again.body.error.violations.some((x: any) => x.code === 'budget_exceeded'), JSON.stringify(again.body.error.violations));
});

test('the lifecycle path reads nothing from a node of another chain: a sweep on eip155:8453 answers upstream_chain_mismatch, nothing signed', async () => {
  const { agent } = await provisionAgent(h);
  await rpc(other.rpcUrl, 'anvil_setBalance', [agent.address, `0x${(10n ** 18n).toString(16)}`]);
  const fleet = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [BASE]: TREASURY } } } });
  assert.equal(fleet.status, 200, JSON.stringify(fleet.body));
  try {
    const swept = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
    assert.equal(swept.status, 502, JSON.stringify(swept.body));
    assert.equal(swept.body.error.code, 'upstream_chain_mismatch');
    assert.equal(swept.body.error.details?.network, BASE, JSON.stringify(swept.body.error));
    assert.doesNotMatch(JSON.stringify(swept.body), /127\.0\.0\.1|localhost/, 'the URL (it can hold an API key) is never echoed');
    assert.deepEqual((await h.admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs, []);
  } finally {
    await h.admin('DELETE', '/v1/policies/fleet');
  }
});

/** A JSON-RPC node whose eth_chainId answer can change; every other call answers a zero word. Counts calls by method. */
async function switchableNode(chainId: number): Promise<{ url: string; server: Server; calls: Map<string, number>; setChainId(id: number): void }> {
  const calls = new Map<string, number>();
  let id = chainId;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string };
      calls.set(call.method, (calls.get(call.method) ?? 0) + 1);
      const result = call.method === 'eth_chainId' ? `0x${id.toString(16)}` : `0x${'00'.repeat(32)}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server, calls, setChainId: (next) => (id = next) };
}

test('the chain id check: a mismatch is never cached as success (asked again each read until it matches), a match is asked once', async () => {
  const node = await switchableNode(84532);
  try {
    const reader = rpcChainReader({ [BASE]: node.url });
    const submitter = rpcEvmSubmitter({ [BASE]: node.url });
    const read = () => reader.authorizationState(BASE, token, PAYEE, `0x${'11'.repeat(32)}`);
    const mismatch = (e: unknown) => e instanceof UpstreamChainMismatchError && e instanceof AirlockError && e.code === 'upstream_chain_mismatch' && e.details?.network === BASE && !e.message.includes(node.url);
    await assert.rejects(read(), mismatch);
    await assert.rejects(read(), mismatch);
    await assert.rejects(submitter.sendRawTransaction(BASE, '0x02'), mismatch);
    assert.equal(node.calls.get('eth_chainId'), 3, 'asked again after each failed check');
    assert.equal(node.calls.get('eth_call'), undefined, 'nothing read from the node of another chain');
    assert.equal(node.calls.get('eth_sendRawTransaction'), undefined, 'nothing broadcast through it');

    node.setChainId(8453);
    assert.equal(await read(), false);
    assert.equal(await read(), false);
    assert.equal(await submitter.nativeBalance(BASE, PAYEE), 0n);
    assert.equal(node.calls.get('eth_chainId'), 5, 'once per client after it matched');
    assert.equal(node.calls.get('eth_call'), 2);
  } finally {
    node.server.closeAllConnections();
    await new Promise((resolve) => node.server.close(resolve));
  }
});
