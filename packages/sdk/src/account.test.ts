// The SDK account against a real Airlock over HTTP and a real local chain (anvil): viem is used
// unchanged, through its public API only, and every claim is checked on chain or with viem's verifiers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BaseError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  parseAbi,
  parseEther,
  parseTransaction,
  verifyMessage,
  verifyTypedData,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
} from 'viem';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
import { airlockAccount, type AirlockAccountOptions } from './account.ts';
import { AirlockApprovalRequiredError, AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { findAirlockError } from './find-airlock-error.ts';
import { startAnvil, type Anvil } from './testing/anvil.ts';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';
import { waitForNewApprovals } from './testing/approvals.ts';

const CHAIN = 'eip155:31337';
const ETH = `${CHAIN}/slip44:60`;
const FRIEND = '0x1111111111111111111111111111111111111111' as Address;
const STRANGER = '0x2222222222222222222222222222222222222222' as Address;
const ORDERS = '0xcccccccccccccccccccccccccccccccccccccccc' as Address;
const LOGIN_PREFIX = 'Sign in to airlock.test';

/** Native amounts include the network fee (gas × maxFeePerGas), so caps leave room for it above the value. */
function nativePolicy(opts: { budget: bigint; approvalAbove?: bigint; recipients?: Address[] }) {
  return {
    version: 1,
    sets: { friends: opts.recipients ?? [FRIEND] },
    rules: [
      { name: 'eth-to-friends', type: 'allow', match: { chains: [CHAIN], kinds: ['native.transfer'], to: '$friends' } },
      { name: 'eth-per-request', type: 'max_amount', asset: ETH, max: parseEther('1').toString() },
      { name: 'eth-daily', type: 'budget', asset: ETH, max: opts.budget.toString(), window: '24h', scope: 'agent' },
      { name: 'orders', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Order'], domains: [{ chain_id: 31337, verifying_contract: ORDERS, name: 'Airlock Test Exchange' }] } },
      { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN_PREFIX } } },
      ...(opts.approvalAbove !== undefined ? [{ name: 'big-needs-human', type: 'approval_tier', asset: ETH, above: opts.approvalAbove.toString() }] : []),
    ],
  };
}

/** viem wraps account errors (TransactionExecutionError etc.); find ours along the `.cause` chain. */
function airlockErrorIn<T extends Error>(e: unknown, type: new (...args: never[]) => T): T {
  const found = e instanceof BaseError ? e.walk((c) => c instanceof type) : e instanceof type ? e : null;
  assert.ok(found instanceof type, `expected ${type.name} in the cause chain, got ${String(e)}`);
  return found;
}

describe('airlockAccount with viem on a real chain (anvil) and a real Airlock over HTTP', () => {
  let anvil: Anvil | undefined;
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let adminToken: string;
  let chain: Chain;
  let publicClient: PublicClient;
  let admin: AirlockHttp;

  before(async () => {
    anvil = await startAnvil();
    chain = defineChain({ id: anvil.chainId, name: 'Anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [anvil.rpcUrl] } } });
    publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl) });
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-test-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  // Runs even when `before` or a test failed: every resource is released independently.
  after(async () => {
    await server?.close().catch(() => {});
    await anvil?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Operator steps over HTTP: agent, policy, session; then the agent is funded on chain. */
  async function provision(policy: unknown, accountOptions: Partial<AirlockAccountOptions> = {}) {
    const created = await admin.request<{ agents: { name: string; address: Address }[] }>('POST', '/v1/agents', { names: [uniqueName('bot')] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: policy });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message'] });
    await createTestClient({ chain, mode: 'anvil', transport: http(anvil!.rpcUrl) }).setBalance({ address: agent.address, value: parseEther('10') });
    const options = { url: server!.url, token: issued.body.token, ...accountOptions };
    const account = await airlockAccount(options);
    const walletClient = createWalletClient({ account, chain, transport: http(anvil!.rpcUrl) });
    return { agent, account, walletClient, token: issued.body.token, options };
  }

  test('sendTransaction: an allowed transfer is signed by Airlock and mined from the agent address', async () => {
    const { agent, account, walletClient } = await provision(nativePolicy({ budget: parseEther('1') }));
    assert.equal(account.address.toLowerCase(), agent.address.toLowerCase());
    const before = await publicClient.getBalance({ address: FRIEND });
    const hash = await walletClient.sendTransaction({ to: FRIEND, value: parseEther('0.01') });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    assert.equal((await publicClient.getBalance({ address: FRIEND })) - before, parseEther('0.01'));
    const tx = await publicClient.getTransaction({ hash });
    assert.equal(tx.from.toLowerCase(), agent.address.toLowerCase());
  });

  test('sendTransaction: a recipient outside the set is refused with the named rule; nothing reaches the chain', async () => {
    const { agent, walletClient } = await provision(nativePolicy({ budget: parseEther('1') }));
    const balanceBefore = await publicClient.getBalance({ address: STRANGER });
    const nonceBefore = await publicClient.getTransactionCount({ address: agent.address });
    const error = await walletClient.sendTransaction({ to: STRANGER, value: parseEther('0.01') }).then(
      () => assert.fail('the transfer was signed'),
      (e: unknown) => e,
    );
    const denied = airlockErrorIn(error, AirlockPolicyError);
    assert.equal(denied.code, 'policy_denied');
    assert.deepEqual(denied.violations.map((v) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
    assert.equal(await publicClient.getBalance({ address: STRANGER }), balanceBefore);
    assert.equal(await publicClient.getTransactionCount({ address: agent.address }), nonceBefore);
  });

  test('signTypedData and signMessage verify with viem; a message without the allowed prefix is refused', async () => {
    const { agent, walletClient } = await provision(nativePolicy({ budget: parseEther('1') }));
    const typedData = {
      domain: { name: 'Airlock Test Exchange', version: '1', chainId: 31337, verifyingContract: ORDERS },
      types: { Order: [{ name: 'maker', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'memo', type: 'string' }] },
      primaryType: 'Order',
      message: { maker: agent.address, amount: 123_456_789_000_000_000_000n, memo: 'gm' },
    } as const;
    const typedSignature = await walletClient.signTypedData(typedData);
    assert.ok(await verifyTypedData({ address: agent.address, ...typedData, signature: typedSignature }));
    // The same signature must not verify for different content (the check above can fail).
    assert.equal(await verifyTypedData({ address: agent.address, ...typedData, message: { ...typedData.message, amount: 1n }, signature: typedSignature }), false);

    const login = `${LOGIN_PREFIX}\nNonce: 42`;
    const messageSignature = await walletClient.signMessage({ message: login });
    assert.ok(await verifyMessage({ address: agent.address, message: login, signature: messageSignature }));

    const error = await walletClient.signMessage({ message: 'Transfer all my funds' }).then(
      () => assert.fail('the message was signed'),
      (e: unknown) => e,
    );
    const denied = airlockErrorIn(error, AirlockPolicyError);
    assert.equal(denied.violations[0]?.code, 'message_not_allowed');
  });

  test('writeContract: the refusal sits two causes deep; findAirlockError finds it with its violations', async () => {
    const { agent, walletClient } = await provision(nativePolicy({ budget: parseEther('1') }));
    const nonceBefore = await publicClient.getTransactionCount({ address: agent.address });
    const error = await walletClient
      .writeContract({ address: ORDERS, abi: parseAbi(['function cancel(uint256 id)']), functionName: 'cancel', args: [7n] })
      .then(
        () => assert.fail('the contract call was signed'),
        (e: unknown) => e,
      );
    // The README's old check (`e.cause instanceof AirlockPolicyError`) misses it: viem wraps twice here.
    assert.ok(error instanceof BaseError && !(error.cause instanceof AirlockPolicyError), `unexpected shape: ${String(error)}`);
    const denied = findAirlockError(error, AirlockPolicyError);
    assert.ok(denied, `no AirlockPolicyError in the chain of ${String(error)}`);
    assert.deepEqual(denied.violations.map((v) => [v.rule, v.code]), [['agent/default', 'contract_call_not_allowed']]);
    assert.equal(findAirlockError(error)?.code, 'policy_denied', 'without a type it finds any Airlock error');
    assert.equal(findAirlockError(new Error('unrelated', { cause: new Error('deeper') })), undefined);
    assert.equal(await publicClient.getTransactionCount({ address: agent.address }), nonceBefore);
  });

  test('nonceManager: five parallel sends from one account all mine, with nonces 0..4', async () => {
    const { agent, walletClient } = await provision(nativePolicy({ budget: parseEther('1') }), { nonceManager: true });
    const friendBefore = await publicClient.getBalance({ address: FRIEND });
    const hashes = await Promise.all(Array.from({ length: 5 }, () => walletClient.sendTransaction({ to: FRIEND, value: parseEther('0.001') })));
    const receipts = await Promise.all(hashes.map((hash) => publicClient.waitForTransactionReceipt({ hash })));
    assert.deepEqual(receipts.map((r) => r.status), Array(5).fill('success'));
    const nonces = await Promise.all(hashes.map(async (hash) => (await publicClient.getTransaction({ hash })).nonce));
    assert.deepEqual(nonces.sort(), [0, 1, 2, 3, 4]);
    assert.equal(await publicClient.getTransactionCount({ address: agent.address }), 5);
    assert.equal((await publicClient.getBalance({ address: FRIEND })) - friendBefore, parseEther('0.005'));
  });

  test('budget: with room for two transfers the third is refused and the chain shows exactly two', async () => {
    // Each transfer charges 0.01 ETH plus at most ~0.0001 ETH of fee: two fit in 0.025, three do not.
    const { agent, walletClient } = await provision(nativePolicy({ budget: parseEther('0.025') }));
    const friendBefore = await publicClient.getBalance({ address: FRIEND });
    for (let i = 0; i < 2; i++) {
      const hash = await walletClient.sendTransaction({ to: FRIEND, value: parseEther('0.01') });
      assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success');
    }
    const error = await walletClient.sendTransaction({ to: FRIEND, value: parseEther('0.01') }).then(
      () => assert.fail('the third transfer was signed'),
      (e: unknown) => e,
    );
    const denied = airlockErrorIn(error, AirlockPolicyError);
    const budget = denied.violations.find((v) => v.code === 'budget_exceeded');
    assert.equal(budget?.rule, 'agent/eth-daily');
    assert.equal(budget?.limit, parseEther('0.025').toString());
    assert.equal(await publicClient.getTransactionCount({ address: agent.address }), 2);
    assert.equal((await publicClient.getBalance({ address: FRIEND })) - friendBefore, parseEther('0.02'));
  });

  test('approval tier: refused at once without waiting; with a wait, an operator approval lets the transfer mine', async () => {
    const policy = nativePolicy({ budget: parseEther('5'), approvalAbove: parseEther('0.05') });
    const { agent, walletClient, options } = await provision(policy);
    // viem fills nonce, gas and fees in prepareTransactionRequest; signTransaction signs what it is given.
    const request = await walletClient.prepareTransactionRequest({ to: FRIEND, value: parseEther('0.1') });
    const pending = await walletClient.signTransaction(request).then(
      () => assert.fail('signed without approval'),
      (e: unknown) => e,
    );
    const held = airlockErrorIn(pending, AirlockApprovalRequiredError);
    assert.match(held.approvalId, /\S/);
    assert.equal(held.violations[0]?.code, 'approval_required');

    const patient = createWalletClient({ account: await airlockAccount({ ...options, approvalWaitMs: 10_000 }), chain, transport: http(anvil!.rpcUrl) });
    const friendBefore = await publicClient.getBalance({ address: FRIEND });
    const operator = (async () => {
      const fresh = await waitForNewApprovals(admin, agent.name, [held.approvalId]);
      assert.equal(fresh.length, 1, 'exactly one new pending approval');
      await admin.request('POST', `/v1/approvals/${fresh[0]!.id}/approve`);
    })();
    const [hash] = await Promise.all([patient.sendTransaction({ to: FRIEND, value: parseEther('0.1') }), operator]);
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    assert.equal((await publicClient.getBalance({ address: FRIEND })) - friendBefore, parseEther('0.1'));
  });

  test('approval tier: a grant whose signature never left the daemon (its key backend failed) still reaches the waiting account, charged once', async () => {
    // 0.1 ETH needs a human; 0.15 ETH a day leaves no room for the same 0.1 ETH charged twice.
    const { agent, options } = await provision(nativePolicy({ budget: parseEther('0.15'), approvalAbove: parseEther('0.05') }));
    const patient = createWalletClient({ account: await airlockAccount({ ...options, approvalWaitMs: 3_000 }), chain, transport: http(anvil!.rpcUrl) });
    const request = await patient.prepareTransactionRequest({ to: FRIEND, value: parseEther('0.1') });
    const keys = server!.holder.get().deps.keys;
    const signDigest = keys.signDigest.bind(keys);
    const operator = (async () => {
      const fresh = await waitForNewApprovals(admin, agent.name, []);
      assert.equal(fresh.length, 1, 'exactly one pending approval');
      // The key backend fails once, after the grant committed (an HSM session lost): granted and charged, nothing released.
      keys.signDigest = (async () => {
        keys.signDigest = signDigest;
        throw new Error('key backend unavailable (test)');
      }) as typeof keys.signDigest;
      const approve = await admin.request('POST', `/v1/approvals/${fresh[0]!.id}/approve`).then((r) => r.status, (e: unknown) => e);
      assert.notEqual(approve, 200);
      return fresh[0]!.id;
    })();
    // The account's poll ends on "approved, no result"; it asks again under its Idempotency-Key and gets the grant's signature.
    const [signed, approvalId] = await Promise.all([patient.signTransaction(request), operator]);
    const tx = parseTransaction(signed);
    assert.deepEqual([tx.to?.toLowerCase(), tx.value], [FRIEND, parseEther('0.1')]);
    const hash = await publicClient.sendRawTransaction({ serializedTransaction: signed });
    assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success');
    // Charged once: one pending approval was ever opened, and a second 0.1 ETH does not fit beside the first.
    const approvals = await admin.request<{ approvals: { id: string; state: string }[] }>('GET', `/v1/approvals?agent=${agent.name}&state=all`);
    assert.deepEqual(approvals.body.approvals.map((a) => [a.id, a.state]), [[approvalId, 'approved']]);
    const agentHttp = createAirlockHttp({ url: server!.url, token: options.token });
    const more = await agentHttp.request<{ decision: { violations: { rule: string }[] } }>('POST', '/v1/dry-run', { action: 'evm.transaction', payload: { chainId: 31337, transaction: { type: 'eip1559', to: FRIEND, value: parseEther('0.1').toString(), nonce: 1, gas: '21000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000' } } });
    assert.ok(more.body.decision.violations.some((v) => v.rule === 'agent/eth-daily'), JSON.stringify(more.body));
  });

  test('a sign request retried with the same Idempotency-Key is answered once: replayed, same signature', async () => {
    const { token } = await provision(nativePolicy({ budget: parseEther('0.025') }));
    const agentHttp = createAirlockHttp({ url: server!.url, token });
    const body = {
      chainId: 31337,
      transaction: { type: 'eip1559', to: FRIEND, value: parseEther('0.01'), nonce: 0, gas: 21000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000n },
    };
    const headers = { 'idempotency-key': 'retry-test-1' };
    type Signed = { signedTransaction: Hex; replayed?: boolean; auditSeq: number };
    const first = await agentHttp.request<Signed>('POST', '/v1/sign/transaction', body, headers);
    const second = await agentHttp.request<Signed>('POST', '/v1/sign/transaction', body, headers);
    assert.equal(first.status, 200);
    assert.notEqual(first.body.replayed, true);
    assert.equal(second.body.replayed, true);
    assert.equal(second.body.signedTransaction, first.body.signedTransaction);
    assert.equal(second.body.auditSeq, first.body.auditSeq);
    assert.equal(parseTransaction(first.body.signedTransaction).to?.toLowerCase(), FRIEND);
    // Charged once: the budget has room for two transfers, so a fresh request still fits only if the replay cost nothing.
    const fresh = await agentHttp.request<Signed>('POST', '/v1/sign/transaction', { ...body, transaction: { ...body.transaction, nonce: 1 } }, { 'idempotency-key': 'retry-test-2' });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.body.replayed, true);
  });
});
