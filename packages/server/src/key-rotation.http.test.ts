// Agent key rotation (POST /v1/agents/{id}/rotate) and attribution (GET /v1/agents/{id}/keys, GET /v1/agents?address=),
// driven over HTTP as an operator and an agent would. Every signature after a rotation is checked independently:
// viem recovers the signer, and viem's own BIP-32 derivation from the recovery phrase says which key that is.
// A request naming an earlier key is refused `key_rotated` before anything is reserved.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recoverMessageAddress, recoverTransactionAddress, recoverTypedDataAddress, type TransactionSerialized } from 'viem';
import { mnemonicToAccount } from 'viem/accounts';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { COUNT_ASSET, seriesFor } from '@airlock/core';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock, type Airlock } from './runtime.ts';
import { ALICE, BASE, MALLORY, TEST_PASSPHRASE, TEST_VAULT, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const LOGIN = 'Sign in to rotation.test';

const API = 'https://api.example.com';

function policy(opts: { approvalAbove?: string } = {}) {
  const base = usdcPolicy(opts);
  return {
    ...base,
    rules: [
      ...base.rules,
      { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN } } },
      { name: 'paid-api', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
    ],
  };
}

/** An x402 v2 `exact` challenge for 1000 base units of USDC on Base, paid to ALICE. */
function paymentRequired(url: string) {
  const accepts = [{ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
  return encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
}

/** An EIP-2612 permit of USDC on Base: `owner` names the signer. */
function permit(owner: string) {
  return {
    chainId: 8453,
    typedData: {
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
      types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
      primaryType: 'Permit',
      message: { owner, spender: ALICE, value: '5', nonce: '0', deadline: String(Math.floor(Date.now() / 1000) + 600) },
    },
  };
}

const validBefore = () => Math.floor(Date.now() / 1000) + 600;
const randomNonce = () => `0x${Array.from({ length: 32 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('')}`;
const authorization = (from: string, value = 5n) => ({ chainId: 8453, ...usdcAuthorization(from, ALICE, value, validBefore(), randomNonce()) });

/** viem's own derivation of m/44'/60'/{accountIndex}'/0/{keyIndex} from the vault's recovery phrase. */
const derivedAddress = (h: Harness, accountIndex: number, keyIndex: number) => mnemonicToAccount(h.mnemonic, { accountIndex, addressIndex: keyIndex }).address.toLowerCase();

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`agent key rotation (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    /** What the agent has been charged (USDC and signature count), holds included. */
    const charged = async (agentId: string) => {
      const [usdc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: USDC_ASSET, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
      return { usdc: usdc!.amount, count: count!.count };
    };
    const audit = async (agentName: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&limit=1000`)).body.entries as any[];

    test('after a rotation every EVM signature recovers to the new key, at the next index of the same account; Nostr and Bitcoin keys stay', async () => {
      const p = await provisionAgent(h, { policy: policy(), actions: ['evm.transaction', 'evm.typed_data', 'evm.message', 'bitcoin.psbt', 'nostr.event'] });
      const old = p.agent.address as string;
      assert.equal(old, derivedAddress(h, p.agent.accountIndex, 0));
      const before = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) });
      assert.equal((await recoverTransactionAddress({ serializedTransaction: before.body.signedTransaction as TransactionSerialized })).toLowerCase(), old);
      const nostrBefore = (await h.admin('GET', `/v1/agents/${p.agent.name}`)).body.nostr;
      const bitcoinBefore = await h.call('GET', '/v1/bitcoin/account', { token: p.token });

      const rotated = await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      const fresh = derivedAddress(h, p.agent.accountIndex, 1);
      assert.notEqual(fresh, old);
      assert.deepEqual(rotated.body.previous, { keyIndex: 0, address: old });
      assert.deepEqual(rotated.body.current, { keyIndex: 1, address: fresh });
      assert.equal(rotated.body.agent.address, fresh);
      assert.equal(rotated.body.agent.keyIndex, 1);
      assert.equal(rotated.body.agent.accountIndex, p.agent.accountIndex, 'the account is the agent: it never changes');
      assert.deepEqual(rotated.body.deniedApprovals, []);

      // The same session, at once: the agent learns its address as usual, and each EVM signature is by the new key.
      assert.equal((await h.call('GET', '/v1/session', { token: p.token })).body.agent.address, fresh);
      const tx = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(tx.status, 200, JSON.stringify(tx.body));
      assert.equal((await recoverTransactionAddress({ serializedTransaction: tx.body.signedTransaction as TransactionSerialized })).toLowerCase(), fresh);
      assert.equal(tx.body.intent.from, fresh, 'the audit entry of the signature names the key that signed');
      const typed = authorization(fresh);
      const signedTyped = await h.call('POST', '/v1/sign/typed-data', { token: p.token, body: typed });
      assert.equal(signedTyped.status, 200, JSON.stringify(signedTyped.body));
      assert.equal((await recoverTypedDataAddress({ ...(typed.typedData as any), signature: signedTyped.body.signature })).toLowerCase(), fresh);
      const message = await h.call('POST', '/v1/sign/message', { token: p.token, body: { chainId: 8453, message: `${LOGIN} after rotation` } });
      assert.equal(message.status, 200, JSON.stringify(message.body));
      assert.equal((await recoverMessageAddress({ message: `${LOGIN} after rotation`, signature: message.body.signature })).toLowerCase(), fresh);

      // x402: the authorization Airlock builds is from the new address and signed by it.
      const paid = await h.call('POST', '/v1/x402/pay', { token: p.token, body: { resource: `${API}/data`, paymentRequired: paymentRequired(`${API}/data`) } });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      const a = paid.body.payload.payload.authorization;
      assert.equal(a.from.toLowerCase(), fresh);
      const paidSigner = await recoverTypedDataAddress({
        domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
        types: usdcAuthorization(fresh, ALICE, 0n, 0).typedData.types,
        primaryType: 'TransferWithAuthorization',
        message: { from: a.from, to: a.to, value: BigInt(a.value), validAfter: BigInt(a.validAfter), validBefore: BigInt(a.validBefore), nonce: a.nonce },
        signature: paid.body.payload.payload.signature,
      });
      assert.equal(paidSigner.toLowerCase(), fresh);

      // JSON-RPC answers with the new account and signs with it.
      const rpc = async (method: string, params: unknown[]) => (await h.call('POST', '/v1/rpc/8453', { token: p.token, body: { jsonrpc: '2.0', id: 1, method, params } })).body;
      assert.deepEqual((await rpc('eth_accounts', [])).result.map((a: string) => a.toLowerCase()), [fresh]);
      const rpcSigned = await rpc('personal_sign', [`0x${Buffer.from(`${LOGIN} over rpc`).toString('hex')}`, fresh]);
      assert.equal((await recoverMessageAddress({ message: `${LOGIN} over rpc`, signature: rpcSigned.result })).toLowerCase(), fresh);

      // Keys that are per account (the Nostr identity, the Bitcoin accounts) are not the EVM key: unchanged.
      assert.deepEqual((await h.admin('GET', `/v1/agents/${p.agent.name}`)).body.nostr, nostrBefore);
      assert.deepEqual((await h.call('GET', '/v1/bitcoin/account', { token: p.token })).body, bitcoinBefore.body);

      // On the record: agent.key_rotated names both keys.
      const [entry] = (await audit(p.agent.name)).filter((e) => e.type === 'agent.key_rotated');
      assert.deepEqual(entry.data, { previous: { keyIndex: 0, address: old }, current: { keyIndex: 1, address: fresh }, by: 'admin' });
      assert.equal(entry.actor, 'operator');
    });

    test('a request naming an earlier key as its signer is refused key_rotated, audited, and nothing is charged; a stranger keeps its own refusal', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      const old = p.agent.address as string;
      assert.equal((await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`)).status, 200);
      const fresh = derivedAddress(h, p.agent.accountIndex, 1);
      const spentBefore = await charged(p.agent.id);
      const headBefore = (await audit(p.agent.name)).length;

      const refusals: [string, string, unknown][] = [
        ['transaction from', '/v1/sign/transaction', { ...usdcTransfer(ALICE, 1n), transaction: { ...usdcTransfer(ALICE, 1n).transaction, from: old } }],
        ['x402 payment (EIP-3009) from', '/v1/sign/typed-data', authorization(old)],
        ['x402 payment from, checksummed', '/v1/sign/typed-data', authorization(old.toUpperCase().replace('0X', '0x'))],
        ['EIP-2612 permit owner', '/v1/sign/typed-data', permit(old)],
      ];
      for (const [what, path, body] of refusals) {
        const res = await h.call('POST', path, { token: p.token, body });
        assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'key_rotated', what);
        assert.match(res.body.error.message, /agent_keys\/rotated/, 'the refusal names its rule');
        assert.deepEqual([res.body.error.details.rule, res.body.error.details.address, res.body.error.details.keyIndex, res.body.error.details.currentAddress], ['agent_keys/rotated', old, 0, fresh]);
      }
      const dry = await h.call('POST', '/v1/dry-run', { token: p.token, body: { action: 'evm.typed_data', payload: authorization(old) } });
      assert.equal(dry.status, 403);
      assert.equal(dry.body.error.code, 'key_rotated');

      // JSON-RPC: the address parameters and a transaction's from.
      const rpc = async (method: string, params: unknown[]) => (await h.call('POST', '/v1/rpc/8453', { token: p.token, body: { jsonrpc: '2.0', id: 7, method, params } })).body;
      for (const [method, params] of [
        ['personal_sign', ['0x68656c6c6f', old]],
        ['eth_signTypedData_v4', [old, JSON.stringify(authorization(old).typedData)]],
        ['eth_signTransaction', [{ from: old, to: USDC, value: '0x0', data: usdcTransfer(ALICE, 1n).transaction.data, nonce: '0x0', gas: '0xea60', maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0xf4240' }]],
      ] as const) {
        const body = await rpc(method, params as unknown as unknown[]);
        assert.equal(body.error?.code, 4100, `${method}: ${JSON.stringify(body)}`);
        assert.equal(body.error.data.code, 'key_rotated', method);
        assert.equal(body.error.data.address, old);
      }

      // Nothing reserved, nothing allowed; each refusal is on the record with its code.
      assert.deepEqual(await charged(p.agent.id), spentBefore);
      const entries = (await audit(p.agent.name)).slice(headBefore); // oldest first: what came after the rotation
      assert.equal(entries.filter((e) => e.decision === 'allow').length, 0);
      assert.equal(entries.filter((e) => e.type === 'sign.request' && e.decision === 'error' && e.data.errorCode === 'key_rotated').length, refusals.length + 3);

      // An address that was never the agent's: the refusals it always had.
      const stranger = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: { ...usdcTransfer(ALICE, 1n), transaction: { ...usdcTransfer(ALICE, 1n).transaction, from: MALLORY } } });
      assert.equal(stranger.status, 400);
      assert.equal(stranger.body.error.code, 'invalid_request');
      assert.equal((await rpc('personal_sign', ['0x68656c6c6f', MALLORY])).error.data.code, 'not_agent_address');
      // Another agent's address is a stranger too, current or earlier.
      const other = await provisionAgent(h, { policy: policy() });
      assert.equal((await rpc('personal_sign', ['0x68656c6c6f', other.agent.address])).error.data.code, 'not_agent_address');
      assert.deepEqual(await charged(p.agent.id), spentBefore);
    });

    test('a retry under an Idempotency-Key signed before the rotation is not re-signed with the new key', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      const headers = { 'idempotency-key': 'pay-alice-once' };
      const first = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 7n), headers });
      assert.equal(first.status, 200);
      const replay = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 7n), headers });
      assert.equal(replay.body.signedTransaction, first.body.signedTransaction, 'before the rotation: the same signature again');
      await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      const spent = await charged(p.agent.id);
      // The unsigned transaction does not name its sender: re-signing it now would be a second, uncharged transfer from the new address.
      const retry = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 7n), headers });
      assert.equal(retry.status, 403, JSON.stringify(retry.body));
      assert.equal(retry.body.error.code, 'key_rotated');
      assert.equal(retry.body.signedTransaction, undefined);
      assert.deepEqual(await charged(p.agent.id), spent);
      const [entry] = (await audit(p.agent.name)).filter((e) => e.data.errorCode === 'key_rotated');
      assert.equal(entry.data.originalSeq, first.body.auditSeq);
      // Under a new key the agent's request is a new one: charged, and signed by the new key.
      const fresh = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 7n), headers: { 'idempotency-key': 'pay-alice-again' } });
      assert.equal((await recoverTransactionAddress({ serializedTransaction: fresh.body.signedTransaction as TransactionSerialized })).toLowerCase(), derivedAddress(h, p.agent.accountIndex, 1));
      assert.equal((await charged(p.agent.id)).usdc, spent.usdc + 7n);
    });

    test("a rotation denies the agent's pending approvals (decoded for the old key) and releases their holds; approving one later is refused", async () => {
      const p = await provisionAgent(h, { policy: policy({ approvalAbove: '1000' }) });
      const idle = await charged(p.agent.id);
      const held = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 5000n) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const approvalId = held.body.approvalId as string;
      assert.equal((await charged(p.agent.id)).usdc, idle.usdc + 5000n, 'the approval holds its spend');

      const rotated = await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      assert.deepEqual(rotated.body.deniedApprovals, [approvalId]);
      const approval = (await h.admin('GET', `/v1/approvals/${approvalId}`)).body;
      assert.equal(approval.state, 'denied');
      assert.equal((await charged(p.agent.id)).usdc, idle.usdc, 'the hold is released');
      const approve = await h.admin('POST', `/v1/approvals/${approvalId}/approve`);
      assert.equal(approve.status, 409);
      assert.equal(approve.body.error.code, 'approval_not_pending');
      const entries = await audit(p.agent.name);
      const denial = entries.find((e) => e.type === 'approval.denied' && e.data.approvalId === approvalId);
      assert.equal(denial.data.reason, 'key_rotated');
      const rotation = entries.find((e) => e.type === 'agent.key_rotated');
      assert.deepEqual(rotation.data.deniedApprovals, [approvalId]);
      assert.ok(rotation.seq > denial.seq, 'one transaction: the denial, then the rotation that caused it');
      // The agent asks again: decoded for the new key, held again, and signed by it once approved.
      const again = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 5000n) });
      assert.equal(again.status, 202);
      const granted = await h.admin('POST', `/v1/approvals/${again.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.equal((await recoverTransactionAddress({ serializedTransaction: granted.body.result.signedTransaction as TransactionSerialized })).toLowerCase(), derivedAddress(h, p.agent.accountIndex, 1));
    });

    test('a rotation landing between an approval\'s grant and its signature: nothing is signed, the failure is on the record', async () => {
      const p = await provisionAgent(h, { policy: policy({ approvalAbove: '1000' }) });
      const held = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 5000n) });
      assert.equal(held.status, 202);
      // The grant commits, then (before completeGrant reads the agent to sign) the operator rotates the key.
      const store = h.airlock.store;
      const getAgent = store.getAgent;
      store.getAgent = (async (idOrName: string) => {
        if (idOrName !== p.agent.id) return getAgent.call(store, idOrName);
        store.getAgent = getAgent;
        await h.airlock.operator.rotateAgentKey(p.agent.id, 'admin');
        return getAgent.call(store, idOrName);
      }) as typeof getAgent;
      const approve = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      store.getAgent = getAgent;
      assert.equal(approve.status, 403, JSON.stringify(approve.body));
      assert.equal(approve.body.error.code, 'key_rotated');
      assert.equal((await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body.result, undefined, 'no signature');
      const failed = (await audit(p.agent.name)).filter((e) => e.type === 'sign.failed');
      assert.deepEqual(failed.map((e) => e.data.errorCode), ['key_rotated']);
    });

    test('concurrent rotations each take their own index, none is reused, and the registry survives a restart', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      const results = await Promise.all(Array.from({ length: 6 }, () => h.admin('POST', `/v1/agents/${p.agent.id}/rotate`)));
      assert.deepEqual(results.map((r) => r.status), Array(6).fill(200));
      assert.deepEqual(results.map((r) => r.body.current.keyIndex).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(results.map((r) => r.body.previous.keyIndex).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
      const addresses = new Set(results.map((r) => r.body.current.address));
      assert.equal(addresses.size, 6);

      await h.restart();
      const keys = (await h.admin('GET', `/v1/agents/${p.agent.name}/keys`)).body;
      assert.deepEqual(keys.agent, { id: p.agent.id, name: p.agent.name });
      assert.deepEqual(keys.keys.map((k: any) => [k.keyIndex, k.state, k.address]), Array.from({ length: 7 }, (_, i) => [i, i === 6 ? 'active' : 'rotated', derivedAddress(h, p.agent.accountIndex, i)]));
      assert.ok(keys.keys.slice(0, 6).every((k: any) => typeof k.rotatedAt === 'string'));
      // After the restart the session signs with key 6, and key 0 is still refused.
      const tx = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) });
      assert.equal((await recoverTransactionAddress({ serializedTransaction: tx.body.signedTransaction as TransactionSerialized })).toLowerCase(), derivedAddress(h, p.agent.accountIndex, 6));
      const old = await h.call('POST', '/v1/sign/typed-data', { token: p.token, body: authorization(p.agent.address) });
      assert.equal(old.body.error.code, 'key_rotated');
      // The next rotation continues after the largest index ever used.
      assert.equal((await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`)).body.current.keyIndex, 7);
    });

    test('every address an agent ever had is attributable to it: GET /v1/agents?address= and its key list', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      const old = p.agent.address as string;
      await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      for (const address of [old, old.toUpperCase().replace('0X', '0x'), derivedAddress(h, p.agent.accountIndex, 1)]) {
        const found = await h.admin('GET', `/v1/agents?address=${address}`);
        assert.equal(found.status, 200);
        assert.deepEqual(found.body.agents.map((a: any) => a.id), [p.agent.id], address);
      }
      assert.deepEqual((await h.admin('GET', `/v1/agents?address=${MALLORY}`)).body.agents, []);
      assert.deepEqual((await h.admin('GET', `/v1/agents?address=${old}&status=frozen`)).body.agents, [], 'filters still apply');
      const bad = await h.admin('GET', '/v1/agents?address=0x1234');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_address');
      assert.equal((await h.admin('GET', '/v1/agents/nobody/keys')).status, 404);
    });

    test('OperatorService.retireAgentKey (for the lifecycle sweep): a rotated key becomes retired, audited once; the signing key is refused', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      const operator = h.airlock.operator;
      await assert.rejects(operator.retireAgentKey(p.agent.name, 0, 'admin'), (e: any) => e.code === 'conflict');
      await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      const retired = await operator.retireAgentKey(p.agent.name, 0, 'admin');
      assert.deepEqual([retired.keyIndex, retired.state, retired.address], [0, 'retired', p.agent.address]);
      assert.deepEqual(await operator.retireAgentKey(p.agent.name, 0, 'admin'), retired, 'idempotent');
      await assert.rejects(operator.retireAgentKey(p.agent.name, 9, 'admin'), (e: any) => e.code === 'not_found');
      const keys = (await h.admin('GET', `/v1/agents/${p.agent.name}/keys`)).body.keys;
      assert.deepEqual(keys.map((k: any) => [k.keyIndex, k.state, typeof k.retiredAt]), [[0, 'retired', 'string'], [1, 'active', 'undefined']]);
      assert.deepEqual((await audit(p.agent.name)).filter((e) => e.type === 'agent.key_retired').map((e) => e.data), [{ keyIndex: 0, address: p.agent.address, by: 'admin' }]);
      // Still attributable, still refused as a signer.
      assert.deepEqual((await h.admin('GET', `/v1/agents?address=${p.agent.address}`)).body.agents.map((a: any) => a.id), [p.agent.id]);
      assert.equal((await h.call('POST', '/v1/sign/typed-data', { token: p.token, body: authorization(p.agent.address) })).body.error.code, 'key_rotated');
    });

    test('a session token cannot rotate or list keys; a retired agent cannot be rotated; a frozen one can and stays frozen', async () => {
      const p = await provisionAgent(h, { policy: policy() });
      for (const [method, path] of [['POST', `/v1/agents/${p.agent.name}/rotate`], ['GET', `/v1/agents/${p.agent.name}/keys`]] as const) {
        const bySession = await h.call(method, path, { token: p.token });
        assert.equal(bySession.status, 403, JSON.stringify(bySession.body));
        assert.equal(bySession.body.error.code, 'forbidden');
        const anonymous = await h.call(method, path);
        assert.equal(anonymous.status, 401);
        assert.equal(anonymous.body.error.code, 'unauthenticated');
      }
      const keys = async () => (await h.admin('GET', `/v1/agents/${p.agent.name}/keys`)).body.keys.map((k: any) => [k.keyIndex, k.state]);
      assert.deepEqual(await keys(), [[0, 'active']]);

      assert.equal((await h.admin('POST', `/v1/agents/${p.agent.name}/freeze`)).status, 200);
      const frozen = await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      assert.equal(frozen.status, 200, 'the incident case: rotate while frozen');
      assert.equal(frozen.body.agent.status, 'frozen');
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).body.error.code, 'agent_frozen');
      await h.admin('POST', `/v1/agents/${p.agent.name}/unfreeze`);
      const tx = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) });
      assert.equal((await recoverTransactionAddress({ serializedTransaction: tx.body.signedTransaction as TransactionSerialized })).toLowerCase(), derivedAddress(h, p.agent.accountIndex, 1));

      await h.admin('POST', `/v1/agents/${p.agent.name}/retire`);
      // Nothing to sweep here (no RPC, no treasury): retiring the agent retires every key of it at once.
      assert.deepEqual(await keys(), [[0, 'retired'], [1, 'retired']]);
      const retired = await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`);
      assert.equal(retired.status, 403);
      assert.equal(retired.body.error.code, 'agent_retired');
      assert.deepEqual(await keys(), [[0, 'retired'], [1, 'retired']], 'nothing changed');
      assert.equal((await h.admin('POST', '/v1/agents/nobody/rotate')).status, 404);
    });
  });
}

describe('agent key rotation seen from another instance on the same PostgreSQL store', () => {
  let h: Harness;
  let second: Airlock;
  let callSecond: Harness['call'];
  before(async () => {
    h = await startHarness({ store: 'postgres' });
    // Its own runtime, so its own credential cache, which nobody on the first instance can invalidate.
    second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
    const app = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
    callSecond = async (method, path, o = {}) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
      const res = await app.request(path, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    };
  });
  after(async () => {
    await second.close();
    await h.close();
  });

  test('a credential cached before the rotation never signs with the old key: refused conflict once, then the new key signs', async () => {
    for (const naming of ['no from', 'from = the new address'] as const) {
      const p = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await callSecond('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) })).status, 200, 'cached on the second instance');
      const rotated = (await h.admin('POST', `/v1/agents/${p.agent.name}/rotate`)).body;
      const fresh = rotated.current.address as string;
      const body = naming === 'no from' ? usdcTransfer(ALICE, 1n, 1) : { ...usdcTransfer(ALICE, 1n, 1), transaction: { ...usdcTransfer(ALICE, 1n, 1).transaction, from: fresh } };
      const first = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body });
      assert.equal(first.status, 409, `${naming}: ${JSON.stringify(first.body)}`);
      assert.equal(first.body.error.code, 'conflict');
      const retry = await callSecond('POST', '/v1/sign/transaction', { token: p.token, body });
      assert.equal(retry.status, 200, `${naming}: ${JSON.stringify(retry.body)}`);
      assert.equal((await recoverTransactionAddress({ serializedTransaction: retry.body.signedTransaction as TransactionSerialized })).toLowerCase(), fresh);
      const entries = (await h.admin('GET', `/v1/audit?agent=${p.agent.name}&limit=100`)).body.entries as any[];
      assert.equal(entries.filter((e) => e.type === 'sign.request' && e.decision === 'allow').length, 2, `${naming}: one signature before, one after; the refused one charged nothing`);
    }
  });
});
