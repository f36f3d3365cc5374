// The dependency map and the revocation planner on a real chain (issue 14, sections 2 and 3), through the HTTP
// app on SQLite and PostgreSQL. An agent, through its own session, approves three spenders, signs an EIP-2612
// permit, an EIP-3009 authorization and a Permit2 permit; the map lists each with its audit entry; after some are
// submitted, `?reconcile=true` tells live from dead; an RPC that is down gives `unknown`. Then the planner's steps,
// signed with the agent's key OUTSIDE Airlock (derived from the test vault's mnemonic) and sent to anvil, leave
// no spender able to move the agent's tokens: transferFrom, the old permit and the old authorization all revert.
// Permit2 is left off this anvil on purpose (a grant whose read fails must stay `unknown`, never "not live"): its
// steps are decoded here with viem against Permit2's published ABI, and executed against the real contract in
// cli/src/revoke-all-permit2.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, createWalletClient, decodeFunctionData, http, parseAbi, parseSignature, type Address, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';
import { buildDependencyMap, planRevocations, reconcileDependencyMap, PERMIT2_ADDRESS, type ChainReader, type RevocationStep, type RevocationTypedData } from '@airlock/core';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { compiledContracts } from '../../x402-testbed/src/compile.ts';
import { deployToken, localChain, mint } from '../../x402-testbed/src/token.ts';
import { rpcChainReader } from './evm-chain-reader.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const CHAIN = 'eip155:31337';
const ERC20 = parseAbi([
  'function approve(address spender, uint256 value) returns (bool)',
  'function increaseAllowance(address spender, uint256 addedValue) returns (bool)',
  'function transferFrom(address from, address to, uint256 value) returns (bool)',
  'function allowance(address owner, address spender) view returns (uint256)',
]);
// Permit2's published ABI (IAllowanceTransfer / ISignatureTransfer), the functions the planner calls.
const PERMIT2_ABI = parseAbi([
  'function lockdown((address token, address spender)[] approvals)',
  'function invalidateNonces(address token, address spender, uint48 newNonce)',
  'function invalidateUnorderedNonces(uint256 wordPos, uint256 mask)',
]);

const POLICY = {
  version: 1,
  rules: [{
    name: 'grants', type: 'allow',
    match: { chains: [CHAIN], kinds: ['erc20.transfer', 'erc20.approve', 'erc20.increase_allowance', 'eip2612.permit', 'permit2.permit_single', 'eip3009.transfer_with_authorization'] },
  }],
};

/** A ChainReader over anvil that can be switched off (an RPC that is down). */
function switchableReader(rpcUrl: string): ChainReader & { down: boolean } {
  const real = rpcChainReader({ [CHAIN]: rpcUrl });
  const reader = { down: false } as ChainReader & { down: boolean };
  for (const [name, fn] of Object.entries(real)) {
    (reader as unknown as Record<string, unknown>)[name] = name === 'supports'
      ? fn
      : (...args: unknown[]) => (reader.down ? Promise.reject(new Error('connect ECONNREFUSED')) : (fn as (...a: unknown[]) => Promise<unknown>)(...args));
  }
  return reader;
}

/** viem wants bigints for uint fields; the plan's typed data carries decimal strings (as Airlock's API takes them). */
function forViem(td: RevocationTypedData) {
  const uintFields = new Set(Object.values(td.types).flat().filter((f) => f.type.startsWith('uint')).map((f) => f.name));
  const message = Object.fromEntries(Object.entries(td.message).map(([k, v]) => [k, uintFields.has(k) ? BigInt(v) : v]));
  return { domain: { ...td.domain, verifyingContract: td.domain.verifyingContract as Address }, types: td.types, primaryType: td.primaryType, message } as never;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`dependency map and revocation on anvil (${store})`, () => {
    let anvil: Anvil;
    let h: Harness;
    let publicClient: PublicClient;
    let token: Address;
    let reader: ChainReader & { down: boolean };

    before(async () => {
      anvil = await startAnvil();
      token = await deployToken(anvil.rpcUrl);
      publicClient = createPublicClient({ chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
      reader = switchableReader(anvil.rpcUrl);
      h = await startHarness({ store, chainReader: reader });
    });
    after(async () => {
      await h?.close();
      await anvil?.stop();
    });

    test('the map lists what the key granted, reconciliation tells live from dead, and the planned steps leave no spender able to move tokens', async () => {
      const { agent, token: session, session: sessionRecord } = await provisionAgent(h, { policy: POLICY });
      const { agent: other } = await provisionAgent(h, { policy: POLICY });
      // The agent's key, derived outside Airlock from the vault's recovery phrase (what the test plays the chain with).
      const key = mnemonicToAccount(h.mnemonic, { accountIndex: agent.accountIndex, addressIndex: agent.keyIndex });
      assert.equal(key.address.toLowerCase(), agent.address);
      const owner = agent.address as Address;
      await publicClient.request({ method: 'anvil_setBalance' as never, params: [owner, '0x56BC75E2D63100000'] as never });
      await mint(anvil.rpcUrl, token, owner, 1_000_000n);

      const spenders = Array.from({ length: 5 }, () => privateKeyToAccount(generatePrivateKey()));
      for (const s of spenders) await publicClient.request({ method: 'anvil_setBalance' as never, params: [s.address, '0x56BC75E2D63100000'] as never });
      const [s1, s2, s3, s4, s5] = spenders.map((s) => s.address.toLowerCase() as Address) as [Address, Address, Address, Address, Address];

      const tx = (nonce: number, data: Hex) => ({ chainId: 31337, transaction: { type: 'eip1559', to: token, value: '0', data, nonce, gas: '100000', maxFeePerGas: '5000000000', maxPriorityFeePerGas: '1000000' } });
      const calldata = (fn: 'approve' | 'increaseAllowance', spender: Address, amount: bigint) => encode(fn, spender, amount);
      const signTx = async (nonce: number, data: Hex) => {
        const res = await h.call('POST', '/v1/sign/transaction', { token: session, body: tx(nonce, data) });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body as { auditSeq: number; signedTransaction: Hex };
      };
      const signTyped = async (typedData: unknown) => {
        const res = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { typedData } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body as { auditSeq: number; signature: Hex; paymentId?: string };
      };

      // Three spenders approved through the agent's session; S2's never reaches the chain.
      const a1 = await signTx(0, calldata('approve', s1, 1000n));
      const a3 = await signTx(1, calldata('approve', s3, 3000n));
      const a2 = await signTx(2, calldata('approve', s2, 2000n));
      // increaseAllowance: recorded too (TestUSDC, OpenZeppelin 5, has no such function: it is never sent).
      const inc = await signTx(3, calldata('increaseAllowance', s3, 50n));
      assert.equal((await h.airlock.store.listGrants(agent.id)).length, 4);
      // A plain transfer grants nothing and writes no grant row (signed, never sent).
      await signTx(4, `0xa9059cbb${s1.slice(2).padStart(64, '0')}${(5n).toString(16).padStart(64, '0')}` as Hex);
      assert.equal((await h.airlock.store.listGrants(agent.id)).length, 4);

      const now = Math.floor(Date.now() / 1000);
      const domain = { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: token };
      const permitMessage = { owner, spender: s4, value: '700', nonce: '0', deadline: String(now + 3600) };
      const permit = await signTyped({
        domain, primaryType: 'Permit', message: permitMessage,
        types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
      });
      const authNonce = `0x${'5a'.repeat(32)}` as Hex;
      const authMessage = { from: owner, to: s5, value: '100', validAfter: '0', validBefore: String(now + 3600), nonce: authNonce };
      const authorization = await signTyped({
        domain, primaryType: 'TransferWithAuthorization', message: authMessage,
        types: { TransferWithAuthorization: [{ name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' }] },
      });
      const permit2 = await signTyped({
        domain: { name: 'Permit2', chainId: 31337, verifyingContract: PERMIT2_ADDRESS },
        primaryType: 'PermitSingle',
        types: {
          PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }],
          PermitDetails: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' }],
        },
        message: { details: { token, amount: '900', expiration: String(now + 7200), nonce: '0' }, spender: s2, sigDeadline: String(now + 3600) },
      });

      // The map, as the operator reads it: every grant with the audit entry that released it.
      const map = await h.admin('GET', `/v1/agents/${agent.name}/dependencies`);
      assert.equal(map.status, 200, JSON.stringify(map.body));
      assert.equal(map.body.reconciled, false);
      const rows = map.body.grants.map((g: { kind: string; spender: string; auditSeq: number; amount: string }) => `${g.kind}|${g.spender}|${g.auditSeq}|${g.amount}`);
      assert.deepEqual(rows, [
        `erc20.approve|${s1}|${a1.auditSeq}|1000`,
        `erc20.approve|${s3}|${a3.auditSeq}|3000`,
        `erc20.approve|${s2}|${a2.auditSeq}|2000`,
        `erc20.increase_allowance|${s3}|${inc.auditSeq}|50`,
        `eip2612.permit|${s4}|${permit.auditSeq}|700`,
        `permit2.permit|${s2}|${permit2.auditSeq}|900`,
      ]);
      // The store pages by (audit entry, index): two, then the rest, is the whole list.
      const firstTwo = await h.airlock.store.listGrants(agent.id, { limit: 2 });
      const rest = await h.airlock.store.listGrants(agent.id, { after: { auditSeq: firstTwo[1]!.auditSeq, index: firstTwo[1]!.index } });
      assert.deepEqual([...firstTwo, ...rest].map((g) => g.auditSeq), map.body.grants.map((g: { auditSeq: number }) => g.auditSeq));
      assert.equal(map.body.grants[4].nonce, '0');
      assert.equal(map.body.grants[5].contract, PERMIT2_ADDRESS);
      assert.deepEqual(map.body.authorizations.map((a: { auditSeq: number; to: string; nonce: string; paymentId: string }) => [a.auditSeq, a.to, a.nonce, a.paymentId]), [[authorization.auditSeq, s5, authNonce, authorization.paymentId]]);
      assert.deepEqual(map.body.sessions.map((s: { id: string }) => s.id), [sessionRecord.id]);
      assert.ok(map.body.grants.every((g: { live?: unknown }) => g.live === undefined));

      // Submit two of the approvals: S1 and S3 are now live on chain, S2's never was.
      for (const signed of [a1, a3]) {
        const hash = await publicClient.sendRawTransaction({ serializedTransaction: signed.signedTransaction });
        assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success');
      }
      const live = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
      assert.equal(live.status, 200, JSON.stringify(live.body));
      assert.equal(live.body.reconciled, true);
      const verdicts = live.body.grants.map((g: { kind: string; spender: string; live: unknown; evidence: { reason: string } }) => [g.kind, g.spender, g.live, g.evidence.reason]);
      assert.deepEqual(verdicts, [
        ['erc20.approve', s1, true, 'allowance_nonzero'],
        ['erc20.approve', s3, true, 'allowance_nonzero'],
        ['erc20.approve', s2, false, 'allowance_zero'],
        ['erc20.increase_allowance', s3, true, 'allowance_nonzero'],
        // Never submitted, nonce unused, deadline ahead: an outstanding signature, live with a 0 allowance.
        ['eip2612.permit', s4, true, 'permit_unused'],
        // No Permit2 contract on this anvil: the read fails and the grant stays unknown, never "not live".
        ['permit2.permit', s2, 'unknown', 'read_failed'],
      ]);
      assert.equal(live.body.grants[0].evidence.allowance, '1000');
      assert.equal(live.body.grants[4].evidence.allowance, '0');
      assert.equal(live.body.authorizations[0].live, true);
      assert.equal(live.body.authorizations[0].evidence.reason, 'authorization_unused');

      // The RPC goes down: everything it would have said is unknown.
      reader.down = true;
      const down = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
      reader.down = false;
      assert.equal(down.status, 200);
      assert.ok(down.body.grants.every((g: { live: unknown; evidence: { reason: string; message: string } }) => g.live === 'unknown' && g.evidence.reason === 'rpc_failed' && !g.evidence.message.includes('127.0.0.1')));
      assert.equal(down.body.authorizations[0].live, 'unknown');

      // The session's own token cannot read its map, another agent's, or list agents.
      for (const path of [`/v1/agents/${other.id}/dependencies`, `/v1/agents/${agent.id}/dependencies?reconcile=true`]) {
        const refused = await h.call('GET', path, { token: session });
        assert.equal(refused.status, 403, JSON.stringify(refused.body));
        assert.equal(refused.body.error.code, 'forbidden');
      }
      const unknownAgent = await h.admin('GET', '/v1/agents/ag_0000000000000000/dependencies');
      assert.equal(unknownAgent.status, 404);

      // Before revocation, each spender can move the tokens (so the checks below can fail).
      const ownerBalanceBefore = await balance(publicClient, token, owner);
      await publicClient.simulateContract({ account: spenders[0]!, address: token, abi: ERC20, functionName: 'transferFrom', args: [owner, s1, 1n] });
      const tokenAbi = compiledContracts().TestUSDC.abi;
      const permitSig = parseSignature(permit.signature);
      await publicClient.simulateContract({ account: spenders[3]!, address: token, abi: tokenAbi, functionName: 'permit', args: [owner, s4, 700n, BigInt(permitMessage.deadline), Number(permitSig.v), permitSig.r, permitSig.s] });
      const authSig = parseSignature(authorization.signature);
      const authArgs = [owner, s5, 100n, 0n, BigInt(authMessage.validBefore), authNonce, Number(authSig.v), authSig.r, authSig.s] as const;
      await publicClient.simulateContract({ account: spenders[4]!, address: token, abi: tokenAbi, functionName: 'transferWithAuthorization', args: authArgs });

      // The lead's path: build + reconcile + plan (pure), then the agent's key signs and sends each step.
      const reconciled = await reconcileDependencyMap(await buildDependencyMap(h.airlock.store, agent.id, Date.now()), reader);
      const chainNow = Number((await publicClient.getBlock()).timestamp);
      const plan = planRevocations(reconciled, { nowSeconds: chainNow });
      assert.deepEqual(plan.unplanned, []);
      assert.deepEqual(plan.alreadyDead.map((r) => 'index' in r && r.auditSeq), [a2.auditSeq]);
      assert.deepEqual(plan.steps.map((s) => s.purpose.split(' ')[0]), ['cancel', 'burn', 'invalidate', 'Permit2', 'approve(' + s1 + ',', 'approve(' + s3 + ',', 'approve(' + s4 + ',']);

      const wallet = createWalletClient({ account: key, chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
      const permit2Calls: { to: string; data: Hex }[] = [];
      for (const step of plan.steps as RevocationStep[]) {
        const call = step.type === 'transaction' ? step.call : step.buildCall(await key.signTypedData(forViem(step.typedData)));
        assert.equal(call.value, 0n);
        assert.equal(call.chain, CHAIN);
        if (call.to === PERMIT2_ADDRESS) {
          permit2Calls.push(call as { to: string; data: Hex });
          continue;
        }
        const hash = await wallet.sendTransaction({ to: call.to as Address, data: call.data as Hex, value: 0n });
        assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success', step.purpose);
      }

      // Permit2 (not on this anvil): the calldata decodes against Permit2's published ABI to what revokes the permit.
      const decoded = permit2Calls.map((c) => decodeFunctionData({ abi: PERMIT2_ABI, data: c.data }));
      assert.deepEqual(decoded.map((d) => d.functionName), ['invalidateNonces', 'lockdown']);
      const lower = (v: unknown): unknown => (typeof v === 'string' ? v.toLowerCase() : Array.isArray(v) ? v.map(lower) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, lower(x)])) : v);
      assert.deepEqual(lower(decoded[0]!.args), [token.toLowerCase(), s2, 1]);
      assert.deepEqual(lower(decoded[1]!.args), [[{ token: token.toLowerCase(), spender: s2 }]]);

      // No spender can move the agent's tokens any more: each attempt reverts.
      for (const [i, spender] of [s1, s2, s3, s4].entries()) {
        await assert.rejects(publicClient.simulateContract({ account: spenders[i]!, address: token, abi: ERC20, functionName: 'transferFrom', args: [owner, spender, 1n] }), `transferFrom by spender ${i + 1}`);
        assert.equal(await publicClient.readContract({ address: token, abi: ERC20, functionName: 'allowance', args: [owner, spender] }), 0n);
      }
      await assert.rejects(publicClient.simulateContract({ account: spenders[3]!, address: token, abi: tokenAbi, functionName: 'permit', args: [owner, s4, 700n, BigInt(permitMessage.deadline), Number(permitSig.v), permitSig.r, permitSig.s] }), /ERC2612InvalidSigner|revert/);
      await assert.rejects(publicClient.simulateContract({ account: spenders[4]!, address: token, abi: tokenAbi, functionName: 'transferWithAuthorization', args: authArgs }), /ERC3009UsedAuthorization|revert/);
      assert.equal(await balance(publicClient, token, owner), ownerBalanceBefore);

      // Reconciled again: nothing on anvil is live.
      const after = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
      assert.deepEqual(after.body.grants.filter((g: { contract: string }) => g.contract !== PERMIT2_ADDRESS).map((g: { live: unknown }) => g.live), [false, false, false, false, false]);
      assert.equal(after.body.authorizations[0].live, false);
      assert.equal(after.body.authorizations[0].evidence.reason, 'authorization_used');
    });
  });
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  test(`an approve held for a human joins the map when it is granted (with the approval's entry); one through JSON-RPC at once (${store})`, async () => {
    const h = await startHarness({ store });
    try {
      const token = '0x00000000000000000000000000000000000000aa';
      const held = { version: 1, rules: [...POLICY.rules, { name: 'big-by-hand', type: 'approval_tier', match: { kinds: ['erc20.approve'] } }] };
      const { agent, token: session } = await provisionAgent(h, { policy: held });
      const spender = '0x00000000000000000000000000000000000000bb';
      const res = await h.call('POST', '/v1/sign/transaction', { token: session, body: { chainId: 31337, transaction: { type: 'eip1559', to: token, value: '0', data: encode('approve', spender, 10_000n), nonce: 0, gas: '100000', maxFeePerGas: '5000000000', maxPriorityFeePerGas: '1000000' } } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      // Waiting for a human: nothing granted yet, the map shows the pending approval.
      const pending = await h.admin('GET', `/v1/agents/${agent.id}/dependencies`);
      assert.deepEqual(pending.body.grants, []);
      assert.deepEqual(pending.body.approvals.map((a: { id: string; auditSeq: number }) => [a.id, a.auditSeq]), [[res.body.approvalId, res.body.auditSeq]]);
      const approved = await h.admin('POST', `/v1/approvals/${res.body.approvalId}/approve`, {});
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies`);
      assert.deepEqual(map.body.approvals, []);
      assert.equal(map.body.grants.length, 1);
      const [grant] = map.body.grants;
      assert.deepEqual([grant.kind, grant.spender, grant.amount, grant.token], ['erc20.approve', spender, '10000', token]);
      const [entry] = await h.airlock.store.readAudit(grant.auditSeq, 1);
      assert.equal(entry!.type, 'approval.granted');
      assert.equal((entry!.data as { approvalId: string }).approvalId, res.body.approvalId);

      // The Ethereum JSON-RPC endpoint signs through the same path: its approve is recorded too.
      const { agent: rpcAgent, token: rpcSession } = await provisionAgent(h, { policy: POLICY });
      const rpc = await h.call('POST', '/v1/rpc/31337', { token: rpcSession, body: { jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{ from: rpcAgent.address, to: token, data: encode('approve', spender, 77n), value: '0x0', nonce: '0x0', gas: '0x186a0', maxFeePerGas: '0x12a05f200', maxPriorityFeePerGas: '0xf4240', type: '0x2' }] } });
      assert.equal(rpc.status, 200, JSON.stringify(rpc.body));
      assert.match(rpc.body.result, /^0x02/);
      const rpcMap = await h.admin('GET', `/v1/agents/${rpcAgent.id}/dependencies`);
      assert.deepEqual(rpcMap.body.grants.map((g: { kind: string; spender: string; amount: string }) => [g.kind, g.spender, g.amount]), [['erc20.approve', spender, '77']]);
    } finally {
      await h.close();
    }
  });
}

function encode(fn: 'approve' | 'increaseAllowance', spender: Address, amount: bigint): Hex {
  const selector = fn === 'approve' ? '0x095ea7b3' : '0x39509351';
  return `${selector}${spender.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}` as Hex;
}

async function balance(client: PublicClient, token: Address, owner: Address): Promise<bigint> {
  return client.readContract({ address: token, abi: parseAbi(['function balanceOf(address) view returns (uint256)']), functionName: 'balanceOf', args: [owner] });
}
