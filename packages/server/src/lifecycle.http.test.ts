// The lifecycle path end to end on anvil (issue 14, section 4), through the real HTTP app on SQLite and
// PostgreSQL: sweeps of native and token balances to the treasury (balances exact, audited, charged), retire
// with sweep (the key is retired once the sweeps are mined), lifecycle caps, refused kinds, hot-balance caps,
// orphans, and an agent session that can reach none of it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, encodeFunctionData, erc20Abi, http, parseAbi, type Address, type Hex, type PublicClient } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { balanceOf, deployToken, mint, rpc } from '../../x402-testbed/src/token.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { signedTransactionDigest } from './testing/processes.ts';

const CHAIN = 'eip155:31337';
const NATIVE = `${CHAIN}/slip44:60`;
const TREASURY = '0x7ea5000000000000000000000000000000000001';
const MALLORY = '0x2222222222222222222222222222222222222222';
const ETH = 10n ** 18n;
const TOKEN_CAP = 10_000_000n;

function fleetPolicy(token: string, extra: Record<string, unknown> = {}) {
  return {
    version: 1,
    rules: [],
    lifecycle: {
      treasury: { [CHAIN]: TREASURY },
      sweep_assets: { [CHAIN]: [`${CHAIN}/erc20:${token}`] },
      caps: [{ asset: `${CHAIN}/erc20:${token}`, max: TOKEN_CAP.toString(), window: '24h' }],
      ...extra,
    },
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`lifecycle path on anvil (${store})`, () => {
    let anvil: Anvil;
    let h: Harness;
    let token: Address;
    let tokenAsset: string;
    let client: PublicClient;

    before(async () => {
      anvil = await startAnvil();
      token = (await deployToken(anvil.rpcUrl)).toLowerCase() as Address;
      tokenAsset = `${CHAIN}/erc20:${token}`;
      client = createPublicClient({ transport: http(anvil.rpcUrl) });
      h = await startHarness({ store, config: { evmRpc: { [CHAIN]: anvil.rpcUrl } } });
      const set = await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token) });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    });
    after(async () => {
      await h?.close();
      await anvil?.stop();
    });

    const setBalance = (address: string, wei: bigint) => rpc(anvil.rpcUrl, 'anvil_setBalance', [address, `0x${wei.toString(16)}`]);
    const nativeOf = (address: string) => client.getBalance({ address: address as Address });
    const nonceOf = (address: string) => client.getTransactionCount({ address: address as Address });
    const audit = async (type: string, agentId?: string) => (await h.admin('GET', `/v1/audit?type=${type}${agentId ? `&agent=${agentId}` : ''}&limit=1000`)).body.entries as any[];
    const jobsOf = async (agentId: string) => (await h.admin('GET', `/v1/lifecycle/jobs?agent=${agentId}`)).body.jobs as any[];
    const ledger = (series: string, asset: string) => h.airlock.store.transaction((tx) => tx.windowTotals([{ series, asset, sinceMs: 0 }]));
    /** Tracker passes until no job is open (anvil mines each transaction as it arrives). */
    async function settle() {
      for (let i = 0; i < 20; i++) {
        await h.airlock.lifecycle.track();
        if ((await h.admin('GET', '/v1/lifecycle/jobs?state=open')).body.jobs.length === 0) return;
      }
      assert.fail('lifecycle jobs still open after 20 tracker passes');
    }

    test('an agent session reaches none of it: every lifecycle route answers 401/403 with its code, and nothing is signed', async () => {
      const { agent, token: session } = await provisionAgent(h);
      for (const [method, path] of [['POST', `/v1/agents/${agent.id}/sweep`], ['GET', '/v1/lifecycle/jobs'], ['GET', '/v1/lifecycle/jobs/lcj_0000000000000000'], ['GET', '/v1/lifecycle/orphans'], ['POST', '/v1/lifecycle/orphans/sweep'], ['POST', `/v1/agents/${agent.id}/retire`]] as const) {
        const res = await h.call(method, path, { token: session, ...(method === 'POST' ? { body: {} } : {}) });
        assert.ok(res.status === 401 || res.status === 403, `${method} ${path}: ${res.status}`);
        assert.equal(res.body.error.code, res.status === 403 ? 'forbidden' : 'unauthenticated', `${method} ${path}`);
      }
      assert.deepEqual(await jobsOf(agent.id), []);
      assert.equal((await h.admin('GET', `/v1/agents/${agent.id}`)).body.status, 'active');
    });

    test('sweep native and token to the treasury: tokens first, exact balances, one transaction each, audited and charged', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH);
      await mint(anvil.rpcUrl, token, agent.address, 5_000_000n);
      const treasuryBefore = { native: await nativeOf(TREASURY), token: await balanceOf(anvil.rpcUrl, token, TREASURY) };

      const res = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [tokenJob, nativeJob] = res.body.jobs;
      assert.equal(res.body.jobs.length, 2);
      assert.equal(tokenJob.kind, 'erc20_transfer');
      assert.equal(tokenJob.asset, tokenAsset);
      assert.equal(tokenJob.amount, '5000000');
      assert.equal(nativeJob.kind, 'native_transfer');
      assert.equal(nativeJob.recipient, TREASURY);
      assert.equal(nativeJob.nonce, tokenJob.nonce + 1);
      await settle();

      const tokenReceipt = await client.getTransactionReceipt({ hash: tokenJob.transactionHash });
      const nativeReceipt = await client.getTransactionReceipt({ hash: nativeJob.transactionHash });
      assert.equal(tokenReceipt.status, 'success');
      assert.equal(nativeReceipt.status, 'success');
      // The native sweep is legacy at a fixed gas price: it moved the balance minus its own fee and the token
      // sweep's worst-case fee; what is left is exactly the gas the token sweep did not use.
      const gasPrice = nativeReceipt.effectiveGasPrice;
      assert.equal(BigInt(nativeJob.amount), ETH - 21_000n * gasPrice - BigInt(tokenJob.maxFee));
      assert.equal(await nativeOf(agent.address), BigInt(tokenJob.maxFee) - tokenReceipt.gasUsed * tokenReceipt.effectiveGasPrice);
      assert.equal(await nativeOf(TREASURY), treasuryBefore.native + BigInt(nativeJob.amount));
      assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), 0n);
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), treasuryBefore.token + 5_000_000n);
      assert.equal(await nonceOf(agent.address), 2, 'exactly one transaction per job');

      const jobs = await jobsOf(agent.id);
      assert.deepEqual(jobs.map((j) => j.state), ['mined', 'mined']);
      const signed = await audit('lifecycle.signed', agent.id);
      const mined = await audit('lifecycle.mined', agent.id);
      assert.deepEqual(signed.map((e) => e.data.jobId).sort(), [tokenJob.id, nativeJob.id].sort());
      assert.deepEqual(mined.map((e) => e.data.jobId).sort(), [tokenJob.id, nativeJob.id].sort());
      const tokenEntry = signed.find((e) => e.data.jobId === tokenJob.id);
      assert.equal(tokenEntry.data.kind, 'erc20_transfer');
      assert.equal(tokenEntry.data.keyIndex, 0);
      assert.equal(tokenEntry.data.transactionHash, tokenJob.transactionHash);
      assert.match(tokenEntry.data.summary, /^sweep 5000000 /);
      // Planned before it was signed: the plan (the job's own entry, which the charge cites) recorded exactly what
      // was signed, checked here against the mined bytes with viem.
      const tokenPlan = (await audit('lifecycle.planned', agent.id)).find((e) => e.data.jobId === tokenJob.id);
      assert.equal(tokenPlan.seq, tokenJob.auditSeq);
      assert.deepEqual([tokenEntry.seq, tokenEntry.data.plannedSeq], [tokenJob.signedAuditSeq, tokenPlan.seq]);
      assert.ok(tokenPlan.seq < tokenEntry.seq);
      assert.equal(tokenPlan.data.digest, signedTransactionDigest(tokenJob.rawTransaction));
      assert.equal(tokenPlan.data.payload.transaction.nonce, 0);
      const [charged] = await ledger(`lifecycle|agent:${agent.id}`, tokenAsset);
      assert.equal(charged!.amount, 5_000_000n);
      assert.equal(charged!.count, 1);
      // The native coin is charged the value moved plus every job's worst-case fee (what `caps` count too).
      const [chargedNative] = await ledger(`lifecycle|agent:${agent.id}`, NATIVE);
      assert.equal(chargedNative!.amount, BigInt(nativeJob.amount) + BigInt(nativeJob.maxFee) + BigInt(tokenJob.maxFee));
      assert.equal(chargedNative!.count, 1);

      // Nothing left but dust below a transfer's fee: a second sweep builds nothing.
      const again = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
      assert.deepEqual(again.body.jobs, []);
      assert.equal(await nonceOf(agent.address), 2);
    });

    test('a lifecycle cap exceeded is refused with its code: nothing signed, charged, audited or sent', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH);
      // The previous test moved 5 USDC of the 10 the fleet may move per day.
      const [used] = await ledger('lifecycle', tokenAsset);
      await mint(anvil.rpcUrl, token, agent.address, TOKEN_CAP - used!.amount + 1n);
      const signedBefore = (await audit('lifecycle.signed')).length;
      const plannedBefore = (await audit('lifecycle.planned')).length;
      const res = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, {});
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'lifecycle_cap_exceeded');
      assert.equal(res.body.error.details.limit, TOKEN_CAP.toString());
      assert.deepEqual(await jobsOf(agent.id), []);
      assert.equal((await audit('lifecycle.signed')).length, signedBefore);
      assert.equal((await audit('lifecycle.planned')).length, plannedBefore, 'not even planned');
      assert.equal((await ledger('lifecycle', tokenAsset))[0]!.amount, used!.amount);
      assert.equal(await nonceOf(agent.address), 0);
      assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), TOKEN_CAP - used!.amount + 1n);
    });

    test('a call that would grant or move value elsewhere is refused (lifecycle_kind_refused); a revocation goes through', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH);
      await mint(anvil.rpcUrl, token, agent.address, 1_000n);
      const erc20 = parseAbi(['function approve(address,uint256)', 'function transfer(address,uint256)', 'function increaseAllowance(address,uint256)']);
      const refused: { to: string; data: Hex; value?: bigint }[] = [
        { to: token, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 1n] }) },
        { to: token, data: encodeFunctionData({ abi: erc20, functionName: 'increaseAllowance', args: [MALLORY, 1n] }) },
        { to: token, data: encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [MALLORY, 1_000n] }) },
        { to: MALLORY, data: '0x', value: 1n },
        { to: token, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] }), value: 1n },
        { to: token, data: '0xdeadbeef' },
      ];
      const signedBefore = (await audit('lifecycle.signed')).length;
      for (const call of refused) {
        await assert.rejects(h.airlock.lifecycle.submitCalls(agent.id, 0, [{ chain: CHAIN, ...call }], 'test'), (e: any) => e.code === 'lifecycle_kind_refused', call.data);
      }
      // One bad call refuses the whole batch.
      await assert.rejects(h.airlock.lifecycle.submitCalls(agent.id, 0, [
        { chain: CHAIN, to: token, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] }) },
        { chain: CHAIN, ...refused[0]! },
      ], 'test'), (e: any) => e.code === 'lifecycle_kind_refused');
      // Sweeping the current key to itself is no sweep.
      const self = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { to: 'current' });
      assert.equal(self.body.error.code, 'invalid_request');
      const badKey = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 1 });
      assert.equal(badKey.body.error.code, 'lifecycle_key_index_invalid');
      assert.deepEqual(await jobsOf(agent.id), []);
      assert.equal((await audit('lifecycle.signed')).length, signedBefore);
      assert.equal(await nonceOf(agent.address), 0);

      // A key without gas for its revocation (an old key whose address was swept): refused before anything is
      // signed, naming the address and what it needs.
      const { agent: empty } = await provisionAgent(h);
      const approveZero = encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] });
      await assert.rejects(h.airlock.lifecycle.submitCalls(empty.id, 0, [{ chain: CHAIN, to: token, data: approveZero }], 'revoke_all'),
        (e: any) => e.code === 'lifecycle_insufficient_gas' && e.message.includes(empty.address) && /^Send at least \d+ wei to 0x/.test(e.hints[0]));
      assert.deepEqual(await jobsOf(empty.id), []);
      assert.equal((await audit('lifecycle.signed')).length, signedBefore);

      // A revocation: approve(spender, 0) after a real allowance, signed by the agent's own key and mined.
      await rpc(anvil.rpcUrl, 'anvil_impersonateAccount', [agent.address]);
      const granted = await rpc(anvil.rpcUrl, 'eth_sendTransaction', [{ from: agent.address, to: token, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 500n] }) }]) as Hex;
      await rpc(anvil.rpcUrl, 'anvil_stopImpersonatingAccount', [agent.address]);
      // anvil answers eth_sendTransaction before its automine has mined the block (foundry-rs/foundry#3537), so the
      // allowance read right after could still see 0 (seen in CI): wait for the receipt, as any client would.
      await client.waitForTransactionReceipt({ hash: granted, pollingInterval: 20 });
      assert.equal(await client.readContract({ address: token, abi: erc20Abi, functionName: 'allowance', args: [agent.address, MALLORY] }), 500n);
      const [jobId] = await h.airlock.lifecycle.submitCalls(agent.id, 0, [{ chain: CHAIN, to: token, data: encodeFunctionData({ abi: erc20, functionName: 'approve', args: [MALLORY, 0n] }) }], 'revoke_all');
      await settle();
      const job = (await h.admin('GET', `/v1/lifecycle/jobs/${jobId}`)).body;
      assert.equal(job.kind, 'revocation');
      assert.equal(job.state, 'mined');
      assert.equal(await client.readContract({ address: token, abi: erc20Abi, functionName: 'allowance', args: [agent.address, MALLORY] }), 0n);
    });

    test('retire sweeps to the treasury at once; the key counts as retired only once the sweeps are mined', async () => {
      const { agent, token: session } = await provisionAgent(h);
      await setBalance(agent.address, ETH / 2n);
      await mint(anvil.rpcUrl, token, agent.address, 1_000_000n);
      const treasuryToken = await balanceOf(anvil.rpcUrl, token, TREASURY);
      const res = await h.admin('POST', `/v1/agents/${agent.name}/retire`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'retired');
      assert.equal(res.body.lifecycle.keyState, 'sweeping');
      assert.deepEqual((await h.admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys.map((k: any) => k.state), ['active'], 'not retired before its sweeps are mined');
      assert.equal(res.body.sweep.jobs.length, 2);
      assert.ok(res.body.sweep.jobs.every((j: any) => j.purpose === 'retire'));
      // Nothing else signs: its session died with it.
      const refused = await h.call('POST', '/v1/sign/message', { token: session, body: { message: 'hi' } });
      assert.ok(refused.status === 401 || refused.status === 403, String(refused.status));
      await settle();
      const shown = await h.admin('GET', `/v1/agents/${agent.id}`);
      assert.equal(shown.body.lifecycle.keyState, 'retired');
      assert.deepEqual(shown.body.lifecycle.openJobs, []);
      // The key registry follows: retired once its sweeps were mined, audited.
      assert.deepEqual((await h.admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys.map((k: any) => k.state), ['retired']);
      assert.equal((await audit('agent.key_retired', agent.id)).length, 1);
      assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), 0n);
      assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), treasuryToken + 1_000_000n);
      assert.deepEqual((await audit('agent.retired', agent.id)).length, 1);
    });

    test('retire with a balance and no treasury for its chain is refused (lifecycle_no_treasury) and changes nothing; sweep=false retires as before', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH);
      const withoutTreasury = fleetPolicy(token);
      delete (withoutTreasury.lifecycle as Record<string, unknown>).treasury;
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: withoutTreasury })).status, 200);
      try {
        const res = await h.admin('POST', `/v1/agents/${agent.id}/retire`);
        assert.equal(res.status, 409);
        assert.equal(res.body.error.code, 'lifecycle_no_treasury');
        assert.equal((await h.admin('GET', `/v1/agents/${agent.id}`)).body.status, 'active');
        assert.deepEqual(await jobsOf(agent.id), []);
        const plain = await h.admin('POST', `/v1/agents/${agent.id}/retire?sweep=false`);
        assert.equal(plain.status, 200);
        assert.equal(plain.body.status, 'retired');
        assert.deepEqual(plain.body.sweep.jobs, []);
        assert.equal(await nativeOf(agent.address), ETH);
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token) })).status, 200);
      }
      // Retired with a balance: an orphan, reported once however often the pass runs, then swept.
      const orphans = (await h.admin('GET', '/v1/lifecycle/orphans')).body.orphans as any[];
      const mine = orphans.find((o) => o.agentId === agent.id);
      assert.equal(mine?.reason, 'retired_with_balance');
      assert.deepEqual(mine.balances.map((b: any) => [b.asset, b.amount]), [[NATIVE, ETH.toString()]]);
      await h.airlock.lifecycle.orphanPass({ sweep: false });
      await h.airlock.lifecycle.orphanPass({ sweep: false });
      assert.equal((await audit('lifecycle.orphan_found', agent.id)).length, 1);
      const swept = await h.admin('POST', '/v1/lifecycle/orphans/sweep', {});
      assert.equal(swept.status, 200);
      assert.equal(swept.body.sweeps.find((s: any) => s.agentId === agent.id).jobIds.length, 1);
      await settle();
      assert.equal(await nativeOf(agent.address), 0n);
      assert.equal((await audit('lifecycle.orphan_found', agent.id)).length, 1);
      assert.equal(((await h.admin('GET', '/v1/lifecycle/orphans')).body.orphans as any[]).some((o) => o.agentId === agent.id), false);
    });

    test('hot-balance caps: an incoming transfer above the cap is swept down to the cap (the lower of fleet and agent cap wins)', async () => {
      const { agent } = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'nothing', type: 'allow', match: { kinds: ['message.personal'] } }], lifecycle: { hot_balance_caps: [{ asset: tokenAsset, max: '400000' }] } } });
      await setBalance(agent.address, ETH / 8n); // below the native cap: only the token is above its cap at first
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token, { hot_balance_caps: [{ asset: tokenAsset, max: '1000000' }, { asset: NATIVE, max: (ETH / 4n).toString() }] }) })).status, 200);
      try {
        await h.airlock.lifecycle.hotBalancePass(); // the first pass only notes the block it starts from
        await mint(anvil.rpcUrl, token, agent.address, 3_000_000n);
        const treasuryToken = await balanceOf(anvil.rpcUrl, token, TREASURY);
        const pass = await h.airlock.lifecycle.hotBalancePass();
        assert.equal(pass.jobIds.length, 1, JSON.stringify(pass));
        await settle();
        assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), 400_000n);
        assert.equal(await balanceOf(anvil.rpcUrl, token, TREASURY), treasuryToken + 2_600_000n);
        const [job] = await jobsOf(agent.id);
        assert.equal(job.purpose, 'hot_balance_cap');
        // A native balance above its cap leaves no log: the scheduled full pass finds it, and the fee comes out
        // of the excess, so the address ends at exactly the cap.
        await setBalance(agent.address, ETH);
        assert.deepEqual((await h.airlock.lifecycle.hotBalancePass()).jobIds, [], 'no log names a native top-up');
        await h.airlock.lifecycle.hotBalancePass({ full: true }); // (agents of earlier tests above the native cap too)
        await settle();
        const native = (await jobsOf(agent.id)).filter((j) => j.asset === NATIVE);
        assert.deepEqual(native.map((j) => [j.purpose, j.state]), [['hot_balance_cap', 'mined']]);
        assert.equal(await nativeOf(agent.address), ETH / 4n);
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token) })).status, 200);
      }
    });

    test('rotate sweeps the old address to the new key through the lifecycle path; the old key signs only that', async () => {
      const { agent, token: session } = await provisionAgent(h);
      const old = agent.address as string;
      await setBalance(old, ETH / 10n);
      await mint(anvil.rpcUrl, token, old as Address, 300_000n);
      const res = await h.admin('POST', `/v1/agents/${agent.name}/rotate`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const current = res.body.current.address as string;
      assert.deepEqual([res.body.previous.keyIndex, res.body.current.keyIndex], [0, 1]);
      assert.notEqual(current, old);
      const jobs = res.body.sweep.jobs as any[];
      assert.deepEqual(jobs.map((j) => [j.kind, j.keyIndex, j.from, j.recipient, j.purpose]), [
        ['erc20_transfer', 0, old, current, 'rotation'],
        ['native_transfer', 0, old, current, 'rotation'],
      ]);
      await settle();
      for (const job of jobs) {
        const receipt = await client.getTransactionReceipt({ hash: job.transactionHash });
        assert.equal(receipt.from.toLowerCase(), old, 'signed by the old key');
        assert.equal(receipt.status, 'success');
      }
      // What the token sweep's unused gas leaves is dust: less than one native transfer's fee.
      assert.ok((await nativeOf(old)) < 21_000n * (await client.getGasPrice()), 'only dust left on the old address');
      assert.equal(await balanceOf(anvil.rpcUrl, token, old as Address), 0n);
      assert.equal(await balanceOf(anvil.rpcUrl, token, current as Address), 300_000n);
      assert.equal(await nativeOf(current), BigInt(jobs[1].amount));
      // The agent's own requests sign with the new key; naming the old one is refused.
      const refused = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { typedData: { domain: { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: token }, types: { EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'version', type: 'string' }, { name: 'chainId', type: 'uint256' }, { name: 'verifyingContract', type: 'address' }], Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] }, primaryType: 'Permit', message: { owner: old, spender: MALLORY, value: '1', nonce: '0', deadline: '9999999999' } } } });
      assert.equal(refused.body.error?.code, 'key_rotated', JSON.stringify(refused.body));
      // The current key is not an old key: it cannot be swept "to itself", and no index beyond it exists.
      assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 1, to: 'current' })).body.error.code, 'invalid_request');
      assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/sweep`, { keyIndex: 2 })).body.error.code, 'lifecycle_key_index_invalid');
    });

    test('scheduled rotation (lifecycle.rotate_every): a key older than the period is rotated once, its address swept; a second pass and a second instance change nothing', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH / 20n);
      const set = await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token, { rotate_every: '1s' }) });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      try {
        await new Promise((r) => setTimeout(r, 1100));
        // Two passes at once stand in for two instances running the scheduler on one store.
        const [a, b] = await Promise.all([h.airlock.lifecycle.rotationPass(), h.airlock.lifecycle.rotationPass()]);
        assert.deepEqual([...a.errors, ...b.errors], []);
        const keys = (await h.admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys as any[];
        assert.deepEqual(keys.map((k) => [k.keyIndex, k.state]), [[0, 'rotated'], [1, 'active']], 'rotated exactly once');
        const [entry] = await audit('agent.key_rotated', agent.id);
        assert.equal(entry.data.by, 'system:rotate_every');
        await settle();
        assert.equal(await nativeOf(agent.address), 0n);
        assert.equal(await nativeOf(keys[1].address), BigInt((await jobsOf(agent.id))[0].amount));
        // The new key is younger than the period only for a second: nothing rotates again at once.
        const again = await h.airlock.lifecycle.rotationPass();
        assert.ok(!again.rotated.includes(agent.id));
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token) })).status, 200);
      }
    });

    test('a job whose nonce another transaction of the key took fails, audited with its reason, and frees the asset for a new sweep', async () => {
      const { agent } = await provisionAgent(h);
      await setBalance(agent.address, ETH / 10n);
      await rpc(anvil.rpcUrl, 'evm_setAutomine', [false]);
      let job: any;
      try {
        job = (await h.admin('POST', `/v1/agents/${agent.id}/sweep`, {})).body.jobs[0];
        assert.equal(job.state, 'signed');
        // Someone else with the key (the attacker of a compromised key) gets another transaction in at that nonce.
        await rpc(anvil.rpcUrl, 'anvil_dropTransaction', [job.transactionHash]);
        await rpc(anvil.rpcUrl, 'anvil_impersonateAccount', [agent.address]);
        await rpc(anvil.rpcUrl, 'eth_sendTransaction', [{ from: agent.address, to: MALLORY, value: '0x1', nonce: `0x${job.nonce.toString(16)}` }]);
        await rpc(anvil.rpcUrl, 'anvil_stopImpersonatingAccount', [agent.address]);
        await rpc(anvil.rpcUrl, 'evm_mine', []);
      } finally {
        await rpc(anvil.rpcUrl, 'evm_setAutomine', [true]);
      }
      await settle();
      const failed = (await h.admin('GET', `/v1/lifecycle/jobs/${job.id}`)).body;
      assert.equal(failed.state, 'failed');
      assert.match(failed.failure, /^nonce_used_elsewhere/);
      const [entry] = await audit('lifecycle.failed', agent.id);
      assert.equal(entry.data.jobId, job.id);
      assert.match(entry.data.reason, /^nonce_used_elsewhere/);
      assert.equal((await h.admin('GET', `/v1/agents/${agent.id}`)).body.lifecycle.failedJobs[0], job.id);
      const again = await h.admin('POST', `/v1/agents/${agent.id}/sweep`, {});
      assert.equal(again.body.jobs.length, 1, JSON.stringify(again.body));
      await settle();
      assert.equal(await nativeOf(agent.address), 0n);
    });

    test('an agent without session activity for orphan_after is an orphan (inactive); one that just signed is not', async () => {
      const signer = { version: 1, rules: [{ name: 'hello', type: 'allow', match: { kinds: ['message.personal'], message: { prefix: 'still' } } }] };
      const idle = (await provisionAgent(h)).agent;
      const busy = await provisionAgent(h, { policy: signer });
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token, { orphan_after: '2s' }) })).status, 200);
      try {
        await new Promise((done) => setTimeout(done, 2_100));
        const signed = await h.call('POST', '/v1/sign/message', { token: busy.token, body: { chainId: 31337, message: 'still here' } });
        assert.equal(signed.status, 200, JSON.stringify(signed.body));
        const orphans = (await h.admin('GET', '/v1/lifecycle/orphans')).body.orphans as any[];
        assert.equal(orphans.find((o) => o.agentId === idle.id)?.reason, 'inactive');
        assert.equal(orphans.some((o) => o.agentId === busy.agent.id), false);
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(token) })).status, 200);
      }
    });

    test('the lifecycle section is validated at its exact path; an agent policy may set only hot_balance_caps', async () => {
      const bad = fleetPolicy(token);
      (bad.lifecycle.caps[0] as Record<string, unknown>).max = '-1';
      const res = await h.admin('PUT', '/v1/policies/fleet', { document: bad });
      assert.equal(res.body.error.code, 'invalid_policy');
      assert.match(res.body.error.message, /^lifecycle\.caps\[0\]\.max:/);
      const btc = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { 'bip122:000000000019d6689c085ae165831e93': TREASURY } } } });
      assert.match(btc.body.error.message, /^lifecycle\.treasury/);
      const { agent } = await provisionAgent(h);
      const agentTreasury = await h.admin('PUT', `/v1/policies/${agent.id}`, { document: { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: MALLORY } } } });
      assert.equal(agentTreasury.body.error.code, 'invalid_policy');
      assert.match(agentTreasury.body.error.message, /^lifecycle\.treasury: only the fleet policy/);
    });
  });
}
