// The JSON-RPC signer endpoint (POST /v1/rpc/{chainId}) driven by unmodified third-party clients, ethers v6's
// JsonRpcSigner, viem's JSON-RPC account and Foundry's `cast --unlocked`, against a real Airlock daemon over
// TCP and a real chain (anvil). Every signature is checked independently (viem's verifiers, recovery, the
// chain's own balances), and every refusal by its JSON-RPC code and the violations in `data`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FetchRequest, JsonRpcProvider, Signature, Transaction, type JsonRpcSigner } from 'ethers';
import {
  BaseError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
  keccak256,
  parseEther,
  parseTransaction,
  recoverTransactionAddress,
  RpcRequestError,
  UnauthorizedProviderError,
  serializeTransaction,
  verifyMessage,
  verifyTypedData,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
} from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from './testing/harness.ts';

const CHAIN = 'eip155:31337';
const ETH = `${CHAIN}/slip44:60`;
const FRIEND = '0x1111111111111111111111111111111111111111' as Address;
const STRANGER = '0x2222222222222222222222222222222222222222' as Address;
const ORDERS = '0xcccccccccccccccccccccccccccccccccccccccc' as Address;
const LOGIN = 'Sign in to airlock.test';
/** A node URL whose path stands in for a provider API key: it must never reach a response. */
const SECRET_RPC = 'http://127.0.0.1:1/v3/key-that-must-not-leak';

function policy(opts: { budget?: bigint; approvalAbove?: bigint } = {}) {
  return {
    version: 1,
    sets: { friends: [FRIEND] },
    rules: [
      { name: 'eth-to-friends', type: 'allow', match: { chains: [CHAIN], kinds: ['native.transfer'], to: '$friends' } },
      { name: 'eth-per-request', type: 'max_amount', asset: ETH, max: parseEther('1').toString() },
      { name: 'eth-daily', type: 'budget', asset: ETH, max: (opts.budget ?? parseEther('5')).toString(), window: '24h', scope: 'agent' },
      { name: 'orders', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Order'], domains: [{ chain_id: 31337, verifying_contract: ORDERS, name: 'Airlock Test Exchange' }] } },
      { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN } } },
      ...(opts.approvalAbove !== undefined ? [{ name: 'big-needs-human', type: 'approval_tier', asset: ETH, above: opts.approvalAbove.toString() }] : []),
    ],
  };
}

const ORDER_TYPES = { Order: [{ name: 'maker', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'salt', type: 'uint256' }] };
const orderDomain = { name: 'Airlock Test Exchange', version: '1', chainId: 31337, verifyingContract: ORDERS };

/** What a JSON-RPC client's error carries, found along viem's `.cause` chain. */
function rpcErrorIn(e: unknown): RpcRequestError {
  const found = e instanceof BaseError ? e.walk((c) => c instanceof RpcRequestError) : null;
  assert.ok(found instanceof RpcRequestError, `expected a JSON-RPC error in the cause chain, got ${String(e)}`);
  return found;
}

/** The maximum a transaction can cost: what the policy charges for a native transfer. */
function maxCost(tx: { value?: bigint; gas?: bigint; maxFeePerGas?: bigint; gasPrice?: bigint }): bigint {
  return (tx.value ?? 0n) + (tx.gas ?? 0n) * (tx.maxFeePerGas ?? tx.gasPrice ?? 0n);
}

describe('JSON-RPC signer endpoint with ethers, viem and cast against anvil', () => {
  let anvil: Anvil;
  let server: RunningServer;
  let dataDir: string;
  let adminToken: string;
  let chain: Chain;
  /** Straight to anvil: the independent view of the chain. */
  let chainView: PublicClient;
  let rpcUrl: string;

  async function admin(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const json = await res.json();
    assert.ok(res.ok, `${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  }

  /** A funded agent with a policy and a session token. */
  async function provision(opts: Parameters<typeof policy>[0] = {}): Promise<{ address: Address; name: string; token: string }> {
    const name = uniqueName('rpc');
    const agent = (await admin('POST', '/v1/agents', { names: [name] })).agents[0];
    await admin('PUT', `/v1/policies/${name}`, { document: policy(opts) });
    const { token } = await admin('POST', `/v1/agents/${name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message'] });
    await createTestClient({ chain, mode: 'anvil', transport: http(anvil.rpcUrl) }).setBalance({ address: agent.address, value: parseEther('10') });
    return { address: getAddress(agent.address), name, token };
  }

  /** A raw JSON-RPC POST, for what no client library sends on purpose. */
  async function rpc(body: unknown, opts: { token?: string; path?: string; headers?: Record<string, string>; raw?: string } = {}): Promise<{ status: number; body: any; text: string }> {
    const res = await fetch(`${server.url}${opts.path ?? `/v1/rpc/${anvil.chainId}`}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
      body: opts.raw ?? JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
  }

  async function auditEntries(agentName: string, type = 'sign.request'): Promise<any[]> {
    return (await admin('GET', `/v1/audit?agent=${agentName}&type=${type}`)).entries;
  }

  function ethersSigner(token: string, address: Address): Promise<JsonRpcSigner> {
    const request = new FetchRequest(rpcUrl);
    request.setHeader('authorization', `Bearer ${token}`);
    const provider = new JsonRpcProvider(request, anvil.chainId, { staticNetwork: true, pollingInterval: 100 });
    return provider.getSigner(address);
  }

  function viemWallet(token: string, address: Address) {
    return createWalletClient({ account: address, chain, transport: http(rpcUrl, { fetchOptions: { headers: { authorization: `Bearer ${token}` } }, retryCount: 0 }) });
  }

  before(async () => {
    anvil = await startAnvil();
    chain = defineChain({ id: anvil.chainId, name: 'Anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [anvil.rpcUrl] } } });
    chainView = createPublicClient({ chain, transport: http(anvil.rpcUrl) });
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-jsonrpc-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0, sessionRate: { perSecond: 0, burst: 0 }, evmRpc: { [CHAIN]: anvil.rpcUrl, 'eip155:5': SECRET_RPC } }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
    rpcUrl = `${server.url}/v1/rpc/${anvil.chainId}`;
  });

  after(async () => {
    await server?.close();
    await anvil?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('ethers JsonRpcSigner: sends ETH (the chain shows it), signs a transaction, a message and typed data that verify independently', async () => {
    const agent = await provision();
    const signer = await ethersSigner(agent.token, agent.address);
    assert.equal(await signer.getAddress(), agent.address);

    const before = await chainView.getBalance({ address: FRIEND });
    const sent = await signer.sendTransaction({ to: FRIEND, value: parseEther('0.01') });
    const receipt = await sent.wait();
    assert.equal(receipt?.status, 1);
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + parseEther('0.01'));
    const onChain = await chainView.getTransaction({ hash: sent.hash as Hex });
    assert.equal(onChain.from, agent.address.toLowerCase());

    const nonce = await chainView.getTransactionCount({ address: agent.address });
    const raw = await signer.signTransaction({ to: FRIEND, value: 123n, nonce, gasLimit: 21000n, maxFeePerGas: 3_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, chainId: BigInt(anvil.chainId), type: 2 });
    const parsed = Transaction.from(raw);
    assert.equal(parsed.from, agent.address, 'ethers recovers the agent from the signed transaction');
    assert.equal(await recoverTransactionAddress({ serializedTransaction: raw as never }), agent.address);
    assert.equal(parsed.value, 123n);

    const text = `${LOGIN}\nnonce: 7`;
    const messageSignature = await signer.signMessage(text);
    assert.ok(await verifyMessage({ address: agent.address, message: text, signature: messageSignature as Hex }));

    const order = { maker: agent.address, amount: 5n, salt: 1n };
    const typedSignature = await signer.signTypedData(orderDomain, ORDER_TYPES, order);
    assert.ok(await verifyTypedData({ address: agent.address, domain: orderDomain, types: ORDER_TYPES, primaryType: 'Order', message: order, signature: typedSignature as Hex }));
    assert.ok(Signature.from(typedSignature));
    signer.provider.destroy();
  });

  test('ethers: a policy refusal is JSON-RPC error -32010 with the violations in data, and nothing moves', async () => {
    const agent = await provision();
    const signer = await ethersSigner(agent.token, agent.address);
    const before = await chainView.getBalance({ address: STRANGER });
    const err = await signer.sendTransaction({ to: STRANGER, value: 1n }).then(
      () => assert.fail('sent to a stranger'),
      (e: any) => e,
    );
    assert.equal(err.error?.code, -32010, String(err));
    assert.equal(err.error.data.code, 'policy_denied');
    assert.deepEqual(err.error.data.violations.map((v: any) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
    assert.equal(typeof err.error.data.auditSeq, 'number');
    assert.equal(await chainView.getBalance({ address: STRANGER }), before);
    signer.provider.destroy();
  });

  test('viem JSON-RPC account: sendTransaction (balance moves on anvil), signTransaction, signMessage and signTypedData verify independently', async () => {
    const agent = await provision();
    const wallet = viemWallet(agent.token, agent.address);
    assert.deepEqual(await wallet.getAddresses(), [agent.address]);
    assert.equal(await wallet.getChainId(), anvil.chainId);

    const before = await chainView.getBalance({ address: FRIEND });
    const hash = await wallet.sendTransaction({ to: FRIEND, value: parseEther('0.02') });
    const receipt = await chainView.waitForTransactionReceipt({ hash, pollingInterval: 100 });
    assert.equal(receipt.status, 'success');
    assert.equal(receipt.from, agent.address.toLowerCase());
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + parseEther('0.02'));

    const nonce = await chainView.getTransactionCount({ address: agent.address });
    const signed = await wallet.signTransaction({ to: FRIEND, value: 7n, nonce, gas: 21000n, maxFeePerGas: 3_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n });
    assert.equal(await recoverTransactionAddress({ serializedTransaction: signed as never }), agent.address);
    const tx = parseTransaction(signed);
    assert.equal(tx.chainId, anvil.chainId);
    assert.equal(tx.value, 7n);

    const message = `${LOGIN}\nnonce: 9`;
    assert.ok(await verifyMessage({ address: agent.address, message, signature: await wallet.signMessage({ message }) }));
    const order = { maker: agent.address, amount: 11n, salt: 2n };
    const signature = await wallet.signTypedData({ domain: orderDomain, types: ORDER_TYPES, primaryType: 'Order', message: order });
    assert.ok(await verifyTypedData({ address: agent.address, domain: orderDomain, types: ORDER_TYPES, primaryType: 'Order', message: order, signature }));
  });

  test('viem: refusals of a message and of typed data no rule names carry their violation codes', async () => {
    const agent = await provision();
    const wallet = viemWallet(agent.token, agent.address);
    const message = rpcErrorIn(await wallet.signMessage({ message: 'Transfer everything' }).catch((e) => e));
    assert.equal(message.code, -32010);
    assert.equal((message.data as any).violations[0].code, 'message_not_allowed');
    const mail = rpcErrorIn(await wallet.signTypedData({ domain: { name: 'Mail', chainId: anvil.chainId }, types: { Mail: [{ name: 'body', type: 'string' }] }, primaryType: 'Mail', message: { body: 'hi' } }).catch((e) => e));
    assert.equal(mail.code, -32010);
    assert.equal((mail.data as any).violations[0].code, 'unknown_typed_data');
  });

  test('eth_sign is refused (-32601) and nothing is audited as signed', async () => {
    const agent = await provision();
    const wallet = viemWallet(agent.token, agent.address);
    const err = rpcErrorIn(await wallet.request({ method: 'eth_sign' as never, params: [agent.address, keccak256('0x01')] as never }).catch((e) => e));
    assert.equal(err.code, -32601);
    assert.equal((err.data as any).code, 'method_refused');
    for (const method of ['eth_signTypedData_v3', 'personal_sendTransaction', 'wallet_sendTransaction']) {
      const res = await rpc({ jsonrpc: '2.0', id: 1, method, params: [] }, { token: agent.token });
      assert.equal(res.body.error.code, -32601, method);
    }
    assert.deepEqual(await auditEntries(agent.name), []);
  });

  test('the node\'s administration and dev-node state changes are out of reach: anvil_setBalance, evm_mine, admin_, debug_ are refused and change nothing', async () => {
    const agent = await provision();
    const blockBefore = await chainView.getBlockNumber({ cacheTime: 0 });
    const attempts: [string, unknown[]][] = [
      ['anvil_setBalance', [agent.address, '0xffffffffffffffffffffffff']],
      ['anvil_impersonateAccount', ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8']],
      ['hardhat_setBalance', [agent.address, '0xffffffffffffffffffffffff']],
      ['evm_mine', []],
      ['admin_peers', []],
      ['debug_traceTransaction', ['0x' + '00'.repeat(32)]],
      ['miner_start', []],
      ['txpool_content', []],
    ];
    for (const [method, params] of attempts) {
      const res = await rpc({ jsonrpc: '2.0', id: 7, method, params }, { token: agent.token });
      assert.equal(res.body.error?.code, -32601, `${method}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.data.code, 'method_refused', method);
    }
    assert.equal(await chainView.getBalance({ address: agent.address }), parseEther('10'), 'the balance did not change');
    assert.equal(await chainView.getBlockNumber({ cacheTime: 0 }), blockBefore, 'no block was mined');
  });

  test('reads are forwarded to the node: block number and balances match anvil, through ethers and viem', async () => {
    const agent = await provision();
    const viaAirlock = createPublicClient({ chain, transport: http(rpcUrl, { fetchOptions: { headers: { authorization: `Bearer ${agent.token}` } } }) });
    assert.equal(await viaAirlock.getBlockNumber({ cacheTime: 0 }), await chainView.getBlockNumber({ cacheTime: 0 }));
    assert.equal(await viaAirlock.getBalance({ address: agent.address }), parseEther('10'));
    const signer = await ethersSigner(agent.token, agent.address);
    assert.equal(await signer.provider.getBalance(agent.address), parseEther('10'));
    assert.equal(BigInt(await signer.provider.getBlockNumber()), await chainView.getBlockNumber({ cacheTime: 0 }));
    signer.provider.destroy();
  });

  test('without a session token: HTTP 401 with JSON-RPC error 4100, for viem and for a bare request; the admin token is refused too', async () => {
    const noToken = createPublicClient({ chain, transport: http(rpcUrl, { retryCount: 0 }) });
    const err = await noToken.getBlockNumber().catch((e) => e);
    // viem reads the JSON-RPC error out of the 401 and maps 4100 to its own class.
    assert.ok(err instanceof UnauthorizedProviderError, String(err));
    assert.equal(err.code, 4100);
    assert.match(err.message, /Status: 401/);
    const bare = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' });
    assert.equal(bare.status, 401);
    assert.deepEqual({ code: bare.body.error.code, data: bare.body.error.data.code, id: bare.body.id }, { code: 4100, data: 'unauthenticated', id: null });
    const bogus = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }, { token: `ses_0123456789abcdef.${'A'.repeat(43)}` });
    assert.equal(bogus.status, 401);
    const asAdmin = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_accounts' }, { token: adminToken });
    assert.equal(asAdmin.status, 403);
    assert.equal(asAdmin.body.error.code, 4100);
    assert.ok(!asAdmin.text.includes(adminToken.slice(4)), 'no token in the answer');
  });

  test('a sent transaction is charged to the budget (fee included) and has its audit entry', async () => {
    const agent = await provision({ budget: parseEther('0.05') });
    const wallet = viemWallet(agent.token, agent.address);
    const hash = await wallet.sendTransaction({ to: FRIEND, value: parseEther('0.03') });
    const sent = await chainView.getTransaction({ hash });
    const charged = maxCost(sent);

    const [entry] = await auditEntries(agent.name);
    assert.equal(entry.decision, 'allow');
    assert.equal(entry.data.intent.kind, 'native.transfer');
    assert.equal(entry.data.intent.to, FRIEND);
    // The audited digest is the hash the mined transaction was signed over.
    const signingHash = keccak256(serializeTransaction({ type: 'eip1559', chainId: anvil.chainId, nonce: sent.nonce, to: sent.to!, value: sent.value, gas: sent.gas, maxFeePerGas: sent.maxFeePerGas!, maxPriorityFeePerGas: sent.maxPriorityFeePerGas!, data: sent.input }));
    assert.equal(`0x${entry.data.digest}`, signingHash);

    const over = rpcErrorIn(await wallet.sendTransaction({ to: FRIEND, value: parseEther('0.03') }).catch((e) => e));
    assert.equal(over.code, -32010);
    const budget = (over.data as any).violations.find((v: any) => v.code === 'budget_exceeded');
    assert.equal(budget.rule, 'agent/eth-daily');
    assert.equal(budget.used, charged.toString(), 'the first send was charged its value plus gas x maxFeePerGas');
    assert.deepEqual((await auditEntries(agent.name)).map((e) => e.decision), ['allow', 'deny']);
  });

  test('above the approval tier: JSON-RPC error -32011 with the approval id, nothing broadcast; once approved, the signed bytes go out through eth_sendRawTransaction', async () => {
    const agent = await provision({ approvalAbove: parseEther('0.1') });
    const wallet = viemWallet(agent.token, agent.address);
    const nonceBefore = await chainView.getTransactionCount({ address: agent.address });
    const held = rpcErrorIn(await wallet.sendTransaction({ to: FRIEND, value: parseEther('0.5') }).catch((e) => e));
    assert.equal(held.code, -32011);
    const data = held.data as any;
    assert.equal(data.code, 'approval_required');
    assert.match(data.approvalId, /^apr_/);
    const approval = await admin('GET', `/v1/approvals/${data.approvalId}`);
    assert.equal(approval.state, 'pending');
    assert.equal(await chainView.getTransactionCount({ address: agent.address }), nonceBefore);

    // Once approved, the agent collects the signed bytes and broadcasts them through the same endpoint.
    await admin('POST', `/v1/approvals/${data.approvalId}/approve`);
    const approved = await fetch(`${server.url}/v1/approvals/${data.approvalId}`, { headers: { authorization: `Bearer ${agent.token}` } }).then((r) => r.json() as Promise<{ result: { signedTransaction: Hex } }>);
    const before = await chainView.getBalance({ address: FRIEND });
    const hash = await wallet.sendRawTransaction({ serializedTransaction: approved.result.signedTransaction });
    assert.equal((await chainView.waitForTransactionReceipt({ hash, pollingInterval: 100 })).status, 'success');
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + parseEther('0.5'));
  });

  test('Idempotency-Key: a retried eth_sendTransaction replays the same signed bytes, is charged once and moves ETH once', async () => {
    const agent = await provision();
    const nonce = await chainView.getTransactionCount({ address: agent.address });
    const tx = { from: agent.address, to: FRIEND, value: '0x1000', nonce: `0x${nonce.toString(16)}`, gas: '0x5208', maxFeePerGas: '0xb2d05e00', maxPriorityFeePerGas: '0x3b9aca00' };
    const before = await chainView.getBalance({ address: FRIEND });
    const send = () => rpc({ jsonrpc: '2.0', id: 'a', method: 'eth_sendTransaction', params: [tx] }, { token: agent.token, headers: { 'idempotency-key': 'order-42' } });
    const first = await send();
    const retry = await send();
    assert.match(first.body.result, /^0x[0-9a-f]{64}$/, first.text);
    assert.equal(retry.body.result, first.body.result, retry.text);
    await chainView.waitForTransactionReceipt({ hash: first.body.result, pollingInterval: 100 });
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + 0x1000n);
    assert.equal((await auditEntries(agent.name)).length, 1);
    assert.equal((await auditEntries(agent.name, 'sign.replay')).length, 1);
  });

  test('concurrent eth_sendTransaction calls of one agent get consecutive nonces and all land', async () => {
    const agent = await provision();
    const nonce = await chainView.getTransactionCount({ address: agent.address });
    const before = await chainView.getBalance({ address: FRIEND });
    const sends = await Promise.all(
      [1, 2, 3].map((i) => rpc({ jsonrpc: '2.0', id: i, method: 'eth_sendTransaction', params: [{ from: agent.address, to: FRIEND, value: `0x${i.toString(16)}` }] }, { token: agent.token })),
    );
    const hashes = sends.map((s) => {
      assert.match(s.body.result ?? '', /^0x[0-9a-f]{64}$/, s.text);
      return s.body.result as Hex;
    });
    const receipts = await Promise.all(hashes.map((hash) => chainView.waitForTransactionReceipt({ hash, pollingInterval: 100 })));
    assert.deepEqual(receipts.map((r) => r.status), ['success', 'success', 'success']);
    const nonces = (await Promise.all(hashes.map((hash) => chainView.getTransaction({ hash })))).map((t) => t.nonce).sort();
    assert.deepEqual(nonces, [nonce, nonce + 1, nonce + 2]);
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + 6n);
  });

  test('a frozen agent is refused before anything is read or forwarded (HTTP 403, 4100 agent_frozen)', async () => {
    const agent = await provision();
    await admin('POST', `/v1/agents/${agent.name}/freeze`);
    const res = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, { token: agent.token });
    assert.equal(res.status, 403);
    assert.deepEqual([res.body.error.code, res.body.error.data.code], [4100, 'agent_frozen']);
  });

  test('envelopes: batches answer per call in order, notifications are not answered, bad envelopes and JSON get their codes', async () => {
    const agent = await provision();
    const batch = await rpc(
      [
        { jsonrpc: '2.0', id: 1, method: 'eth_chainId' },
        { jsonrpc: '2.0', method: 'eth_chainId' },
        { jsonrpc: '1.0', id: 2, method: 'eth_chainId' },
        { jsonrpc: '2.0', id: 3, method: 'eth_accounts', params: [] },
        42,
        { jsonrpc: '2.0', id: 4, method: 'eth_getBalance', params: [FRIEND, 'latest'] },
      ],
      { token: agent.token },
    );
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.map((r: any) => [r.id, r.result !== undefined ? 'result' : r.error.code]), [[1, 'result'], [2, -32600], [3, 'result'], [null, -32600], [4, 'result']]);
    assert.equal(batch.body[0].result, `0x${anvil.chainId.toString(16)}`);
    assert.deepEqual(batch.body[2].result, [agent.address]);
    assert.equal(BigInt(batch.body[4].result), await chainView.getBalance({ address: FRIEND }));

    assert.equal((await rpc([], { token: agent.token })).body.error.code, -32600);
    assert.equal((await rpc(Array(101).fill({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }), { token: agent.token })).body.error.code, -32600);
    const notJson = await rpc(undefined, { token: agent.token, raw: '{"jsonrpc":"2.0",' });
    assert.deepEqual([notJson.body.error.code, notJson.body.id], [-32700, null]);
    assert.equal((await rpc({ jsonrpc: '2.0', id: 1 }, { token: agent.token })).body.error.code, -32600);
    assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: 'tx' }, { token: agent.token })).body.error.code, -32600);
    assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [] }, { token: agent.token })).body.error.code, -32602);
    const onlyNotification = await rpc({ jsonrpc: '2.0', method: 'eth_chainId' }, { token: agent.token });
    assert.equal(onlyNotification.status, 204);
    assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }, { token: agent.token, path: '/v1/rpc/0x1' })).status, 404);
  });

  test('an address that is not the agent: error 4100 for from, personal_sign and typed data, and nothing is signed or audited', async () => {
    const agent = await provision();
    const calls = [
      { method: 'eth_sendTransaction', params: [{ from: STRANGER, to: FRIEND, value: '0x1' }] },
      { method: 'eth_signTransaction', params: [{ from: STRANGER, to: FRIEND, value: '0x1' }] },
      { method: 'personal_sign', params: ['0x68656c6c6f', STRANGER] },
      { method: 'eth_signTypedData_v4', params: [STRANGER, JSON.stringify({ domain: orderDomain, types: ORDER_TYPES, primaryType: 'Order', message: { maker: STRANGER, amount: '1', salt: '1' } })] },
    ];
    for (const call of calls) {
      const res = await rpc({ jsonrpc: '2.0', id: 1, ...call }, { token: agent.token });
      assert.deepEqual([res.body.error?.code, res.body.error?.data?.code], [4100, 'not_agent_address'], `${call.method}: ${res.text}`);
    }
    const otherChain = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [{ from: agent.address, to: FRIEND, value: '0x1', chainId: '0x1' }] }, { token: agent.token });
    assert.deepEqual([otherChain.body.error.code, otherChain.body.error.data.code], [-32602, 'chain_mismatch']);
    assert.deepEqual(await auditEntries(agent.name), []);
  });

  test('a chain without a configured node answers eth_chainId and signs nothing it would have to send; a failing node URL is never echoed', async () => {
    const agent = await provision();
    const unconfigured = { path: '/v1/rpc/10', token: agent.token };
    assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }, unconfigured)).body.result, '0xa');
    const read = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, unconfigured);
    assert.deepEqual([read.body.error.code, read.body.error.data.code], [-32002, 'upstream_not_configured']);
    const down = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, { path: '/v1/rpc/5', token: agent.token });
    assert.deepEqual([down.body.error.code, down.body.error.data.code], [-32002, 'upstream_unavailable']);
    assert.ok(!down.text.includes('key-that-must-not-leak') && !down.text.includes(':1/'), down.text);
  });

  test('cast send --unlocked (Foundry) sends through the endpoint', async (t) => {
    const require = createRequire(import.meta.url);
    let cast: string;
    try {
      cast = require.resolve(`@foundry-rs/cast-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}/bin/cast`);
    } catch {
      t.skip('@foundry-rs/cast is not installed for this platform');
      return;
    }
    const agent = await provision();
    const before = await chainView.getBalance({ address: FRIEND });
    // The token goes in through the environment, not argv (argv is visible to every local user).
    const { stdout } = await promisify(execFile)(cast, ['send', '--unlocked', '--from', agent.address, '--rpc-url', rpcUrl, '--json', FRIEND, '--value', '0.003ether'], {
      env: { ...process.env, ETH_RPC_HEADERS: `Authorization: Bearer ${agent.token}` },
    });
    const receipt = JSON.parse(stdout);
    assert.equal(receipt.status, '0x1');
    assert.equal(receipt.from, agent.address.toLowerCase());
    assert.equal(await chainView.getBalance({ address: FRIEND }), before + parseEther('0.003'));
    assert.equal((await auditEntries(agent.name))[0].decision, 'allow');
  });
});
