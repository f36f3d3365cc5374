// `airlock agent revoke-all` against the real Permit2 on anvil (issue 14, section 3), on SQLite and PostgreSQL.
// Permit2 is installed at its canonical address (x402-testbed/src/permit2.ts), so its revocations run on the
// contract itself, not only as decoded calldata. The agent, through its own session, approves Permit2 on the
// token and signs four Permit2 grants: a PermitSingle (AllowanceTransfer) to S6 that S6 submits (a live Permit2
// allowance), then S6's next PermitSingle (nonce 1), a PermitSingle to S7 and a PermitTransferFrom
// (SignatureTransfer) to S8 that an attacker holds, never submitted. After the command: S6's transferFrom
// reverts (lockdown), every held permit reverts (invalidateNonces, invalidateUnorderedNonces), the ERC-20
// allowance to Permit2 is 0, nothing moved.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { createPublicClient, createWalletClient, http, maxUint160, parseAbi, type Address, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { installPermit2, PERMIT2_CANONICAL_ADDRESS } from '../../x402-testbed/src/permit2.ts';
import { listenOnLoopback } from '../../x402-testbed/src/listen.ts';
import { balanceOf, deployToken, localChain, mint, rpc } from '../../x402-testbed/src/token.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

const CHAIN = 'eip155:31337';
const PERMIT2 = PERMIT2_CANONICAL_ADDRESS.toLowerCase() as Address;
const ERC20 = parseAbi(['function allowance(address owner, address spender) view returns (uint256)']);
// Permit2's published interfaces (IAllowanceTransfer, ISignatureTransfer): what S6, S7 and S8 call.
const PERMIT2_ABI = parseAbi([
  'function permit(address owner, ((address token, uint160 amount, uint48 expiration, uint48 nonce) details, address spender, uint256 sigDeadline) permitSingle, bytes signature)',
  'function transferFrom(address from, address to, uint160 amount, address token)',
  'function permitTransferFrom(((address token, uint256 amount) permitted, uint256 nonce, uint256 deadline) permit, (address to, uint256 requestedAmount) transferDetails, address owner, bytes signature)',
  'function allowance(address owner, address token, address spender) view returns (uint160 amount, uint48 expiration, uint48 nonce)',
  'function nonceBitmap(address owner, uint256 wordPos) view returns (uint256)',
  'error InsufficientAllowance(uint256 amount)',
  'error InvalidNonce()',
]);
// Unlimited grants, as wallets make them (what revoke-all must undo): allowed by an approvals rule, as they must be.
const POLICY = { version: 1, rules: [{ name: 'grants', type: 'allow', match: { chains: [CHAIN], kinds: ['erc20.approve', 'permit2.permit_single', 'permit2.permit_transfer_from'] } }, { name: 'unlimited-grants', type: 'approvals', allow_unlimited: true }] };
const PERMIT_SINGLE_TYPES = {
  PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }],
  PermitDetails: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' }],
};
const PERMIT_TRANSFER_TYPES = {
  PermitTransferFrom: [{ name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }],
  TokenPermissions: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }],
};
const ETH = 10n ** 18n;

/** The harness app on a real port, so the CLI reaches it as it reaches a daemon. */
const listen = (h: Harness) => listenOnLoopback(createAdaptorServer({ fetch: (req: Request) => h.fetch(req) }) as Server);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`airlock agent revoke-all against Permit2 on anvil (${store})`, () => {
    let anvil: Anvil;
    let h: Harness;
    let server: { url: string; close: () => Promise<void> };
    let client: PublicClient;
    let token: Address;

    before(async () => {
      anvil = await startAnvil();
      token = (await deployToken(anvil.rpcUrl)).toLowerCase() as Address;
      await installPermit2(anvil.rpcUrl);
      client = createPublicClient({ transport: http(anvil.rpcUrl) });
      h = await startHarness({ store, config: { evmRpc: { [CHAIN]: anvil.rpcUrl } } });
      server = await listen(h);
    });
    after(async () => {
      await server?.close();
      await h?.close();
      await anvil?.stop();
    });

    test('a submitted Permit2 allowance is locked down, held PermitSingle and PermitTransferFrom revert, the approval of Permit2 is 0', async (t) => {
      const { agent, token: session } = await provisionAgent(h, { policy: POLICY });
      const owner = agent.address as Address;
      const [s6, s7, s8] = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()));
      for (const address of [owner, s6!.address, s7!.address, s8!.address]) await rpc(anvil.rpcUrl, 'anvil_setBalance', [address, `0x${ETH.toString(16)}`]);
      await mint(anvil.rpcUrl, token, owner, 1_000_000n);
      const now = Number((await client.getBlock()).timestamp);
      const domain = { name: 'Permit2', chainId: 31337, verifyingContract: PERMIT2 };
      const signTyped = async (typedData: unknown) => {
        const res = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { typedData } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return (res.body as { signature: Hex }).signature;
      };

      // The ERC-20 approval of Permit2 (unlimited, as wallets do), signed through the session and sent.
      const approve = await h.call('POST', '/v1/sign/transaction', { token: session, body: { chainId: 31337, transaction: { type: 'eip1559', to: token, value: '0', data: `0x095ea7b3${PERMIT2.slice(2).padStart(64, '0')}${'f'.repeat(64)}`, nonce: 0, gas: '100000', maxFeePerGas: '5000000000', maxPriorityFeePerGas: '1000000' } } });
      assert.equal(approve.status, 200, JSON.stringify(approve.body));
      assert.equal((await client.waitForTransactionReceipt({ hash: await client.sendRawTransaction({ serializedTransaction: approve.body.signedTransaction }) })).status, 'success');

      // (a) A PermitSingle to S6, which S6 submits: S6 now holds a live Permit2 allowance.
      const permitS6 = { details: { token, amount: 5000n, expiration: now + 7200, nonce: 0 }, spender: s6!.address, sigDeadline: BigInt(now + 3600) };
      const sigS6 = await signTyped({ domain, types: PERMIT_SINGLE_TYPES, primaryType: 'PermitSingle', message: { details: { token, amount: '5000', expiration: String(now + 7200), nonce: '0' }, spender: s6!.address, sigDeadline: String(now + 3600) } });
      const { request } = await client.simulateContract({ account: s6!, address: PERMIT2, abi: PERMIT2_ABI, functionName: 'permit', args: [owner, permitS6, sigS6] });
      const wallet = createWalletClient({ account: s6!, chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
      const submitted = await client.waitForTransactionReceipt({ hash: await wallet.writeContract(request) });
      assert.equal(submitted.status, 'success');
      // (b) Held by the attacker, never submitted: a PermitSingle to S7 and a PermitTransferFrom to S8.
      const permitS7 = { details: { token, amount: maxUint160, expiration: now + 7200, nonce: 0 }, spender: s7!.address, sigDeadline: BigInt(now + 3600) };
      const sigS7 = await signTyped({ domain, types: PERMIT_SINGLE_TYPES, primaryType: 'PermitSingle', message: { details: { token, amount: maxUint160.toString(), expiration: String(now + 7200), nonce: '0' }, spender: s7!.address, sigDeadline: String(now + 3600) } });
      // And S6's next permit (nonce 1, after the submitted nonce 0): lockdown alone would not stop it.
      const permitS6Next = { ...permitS7, spender: s6!.address, details: { ...permitS7.details, nonce: 1 } };
      const sigS6Next = await signTyped({ domain, types: PERMIT_SINGLE_TYPES, primaryType: 'PermitSingle', message: { details: { token, amount: maxUint160.toString(), expiration: String(now + 7200), nonce: '1' }, spender: s6!.address, sigDeadline: String(now + 3600) } });
      const transferNonce = (3n << 8n) | 77n; // word 3, bit 77
      const permitS8 = { permitted: { token, amount: 800n }, nonce: transferNonce, deadline: BigInt(now + 3600) };
      const sigS8 = await signTyped({ domain, types: PERMIT_TRANSFER_TYPES, primaryType: 'PermitTransferFrom', message: { permitted: { token, amount: '800' }, spender: s8!.address, nonce: transferNonce.toString(), deadline: String(now + 3600) } });

      const pullByS6 = () => client.simulateContract({ account: s6!, address: PERMIT2, abi: PERMIT2_ABI, functionName: 'transferFrom', args: [owner, s6!.address, 1n, token] });
      const submitS7 = () => client.simulateContract({ account: s7!, address: PERMIT2, abi: PERMIT2_ABI, functionName: 'permit', args: [owner, permitS7, sigS7] });
      const submitS6Next = () => client.simulateContract({ account: s6!, address: PERMIT2, abi: PERMIT2_ABI, functionName: 'permit', args: [owner, permitS6Next, sigS6Next] });
      const submitS8 = () => client.simulateContract({ account: s8!, address: PERMIT2, abi: PERMIT2_ABI, functionName: 'permitTransferFrom', args: [permitS8, { to: s8!.address, requestedAmount: 800n }, owner, sigS8] });
      const erc20AllowanceOfPermit2 = () => client.readContract({ address: token, abi: ERC20, functionName: 'allowance', args: [owner, PERMIT2] });
      // Before: every grant works on the real contract (so every check below can fail).
      await pullByS6();
      await submitS7();
      await submitS6Next();
      await submitS8();
      assert.equal(await erc20AllowanceOfPermit2(), (1n << 256n) - 1n);
      const balance = await balanceOf(anvil.rpcUrl, token, owner);

      // The map reads the real contract: all four grants live, each for its own reason.
      const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
      assert.equal(map.status, 200, JSON.stringify(map.body));
      const verdicts = (map.body.grants as { kind: string; spender: string; live: unknown; evidence?: { reason: string } }[]).map((g) => `${g.kind}|${g.spender}|${g.live}|${g.evidence?.reason}`);
      assert.deepEqual(verdicts.sort(), [
        `erc20.approve|${PERMIT2}|true|allowance_nonzero`,
        `permit2.permit|${s6!.address.toLowerCase()}|true|allowance_nonzero`,
        `permit2.permit|${s6!.address.toLowerCase()}|true|permit_unused`,
        `permit2.permit|${s7!.address.toLowerCase()}|true|permit_unused`,
        `permit2.transfer|${s8!.address.toLowerCase()}|true|permit_unused`,
      ].sort());

      const tracker = setInterval(() => void h.airlock.lifecycle.track().catch(() => undefined), 200);
      let run;
      try {
        run = await runCli(['agent', 'revoke-all', agent.name, '--wait', '--timeout', '60', '--json'], cliEnv({ AIRLOCK_URL: server.url, AIRLOCK_ADMIN_TOKEN: h.adminToken }));
      } finally {
        clearInterval(tracker);
      }
      if (store === 'sqlite') t.diagnostic(`airlock agent revoke-all ${agent.name} --wait --json\n${run.stdout}${run.stderr}`);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const report = JSON.parse(run.stdout);
      // One step per revocation, in the planner's order, each sent to the contract that holds the grant.
      assert.deepEqual(report.steps.map((s: { status: string; purpose: string }) => `${s.status}|${s.purpose.split(' ').slice(0, 2).join(' ')}`), [
        ...report.steps.slice(0, 2).map(() => 'submitted|invalidate the'),
        'submitted|invalidate 1',
        'submitted|Permit2 lockdown',
        `submitted|approve(${PERMIT2}, 0)`,
      ]);
      assert.deepEqual(report.steps.slice(0, 2).map((s: { purpose: string }) => s.purpose.split(' for ')[1]).sort(), [s6!.address, s7!.address].map((a) => a.toLowerCase()).sort());
      assert.deepEqual(report.jobs.map((j: { state: string }) => j.state), Array(5).fill('mined'));
      assert.deepEqual(report.unplanned, []);

      // On chain: S6 cannot pull, the held permits revert with Permit2's own errors, Permit2 may move nothing.
      await assert.rejects(pullByS6(), /InsufficientAllowance/);
      await assert.rejects(submitS7(), /InvalidNonce/);
      await assert.rejects(submitS6Next(), /InvalidNonce/);
      await assert.rejects(submitS8(), /InvalidNonce/);
      assert.equal(await erc20AllowanceOfPermit2(), 0n);
      const [amountS6, , nonceS6] = await client.readContract({ address: PERMIT2, abi: PERMIT2_ABI, functionName: 'allowance', args: [owner, token, s6!.address] });
      const [, , nonceS7] = await client.readContract({ address: PERMIT2, abi: PERMIT2_ABI, functionName: 'allowance', args: [owner, token, s7!.address] });
      const word3 = await client.readContract({ address: PERMIT2, abi: PERMIT2_ABI, functionName: 'nonceBitmap', args: [owner, 3n] });
      assert.deepEqual([amountS6, nonceS6, nonceS7, word3], [0n, 2, 1, 1n << 77n]);
      assert.equal(await balanceOf(anvil.rpcUrl, token, owner), balance);

      // Pressed again: the map reads every grant dead, nothing is signed.
      const again = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body.steps, []);
      assert.equal(again.body.alreadyDead.length, 5, JSON.stringify(again.body.alreadyDead));
    });
  });
}
