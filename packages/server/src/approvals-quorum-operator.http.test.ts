// A tier without a quorum (the operator decides) is handed only to a higher rung of its own ladder, never to a
// quorum tier written for something else (found by review 2026-12: an agent policy's "1 of [devops] for anything
// touching the router" decided a 5,000 USDC transfer the fleet holds for the operator, once the agent added a
// 1-unit router approve to the same user operation; then the same with both tiers in the fleet's policy). The
// operator's approval is then required alongside the votes, in either order; a real ladder behaves as before. On
// SQLite and PostgreSQL (the operator's approval is stored on the approval's quorum).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, maxUint256, parseAbiItem, type Hex } from 'viem';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { approverKit } from './testing/approvers.ts';

const U = 1_000_000n;
const ROUTER = '0x2626664c2603336e57b271c5c0b26f421741e481';
const ERC20_ABI = [parseAbiItem('function transfer(address to, uint256 amount)'), parseAbiItem('function approve(address spender, uint256 amount)')];
const erc20Data = (fn: 'transfer' | 'approve', to: string, amount: bigint) => encodeFunctionData({ abi: ERC20_ABI, functionName: fn, args: [to as Hex, amount] });
const ACCOUNT_ABI = [parseAbiItem('function executeBatch((address target, uint256 value, bytes data)[] calls)')];
let opNonce = 0;
/** An EntryPoint v0.8 user operation of `sender` running `calls` through executeBatch. */
const batch = (sender: string, calls: { to: string; data: Hex; value?: bigint }[]) => ({
  chainId: 8453, entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8',
  userOperation: { sender, nonce: String(opNonce++), callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'executeBatch', args: [calls.map((c) => ({ target: c.to as Hex, value: c.value ?? 0n, data: c.data }))] }), callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' },
});
const transfer = (usdc: bigint) => ({ to: USDC, data: erc20Data('transfer', ALICE, usdc * U) });
const routerApprove = { to: USDC, data: erc20Data('approve', ROUTER, 1n) };

const bigByOperator = { name: 'big-by-operator', type: 'approval_tier', asset: USDC_ASSET, above: (1_000n * U).toString() };
/** The agent's policy: pays Alice and approves the router; `tiers` added. */
const agentPolicy = (...tiers: object[]) => ({ version: 1, rules: [
  { name: 'pay', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['erc20.transfer', 'erc20.approve'], assets: [USDC_ASSET], to: [ALICE, ROUTER] } },
  { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
  ...tiers,
] });
const routerByDevops = { name: 'router', type: 'approval_tier', match: { to: [ROUTER] }, quorum: { min: 1, groups: ['devops'] } };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a quorum stands in for an operator tier only as a higher rung of its ladder (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());

    const { addApprover, vote } = approverKit(() => h, store);
    const setFleet = async (...rules: object[]) => assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules } })).status, 200);
    const hold = async (token: string, body: unknown) => {
      const res = await h.call('POST', '/v1/sign/user-operation', { token, body });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return (await h.admin('GET', `/v1/approvals/${res.body.approvalId}`)).body;
    };

    test('a 1-unit router approve batched with a 5,000 USDC transfer: one devops vote no longer grants it; the operator must approve too (votes first)', async () => {
      await setFleet(bigByOperator);
      const { agent, token } = await provisionAgent(h, { policy: agentPolicy(routerByDevops), actions: ['evm.user_operation'] });
      const dev = await addApprover('devops');
      const body = batch(agent.address, [transfer(5_000n), routerApprove]);
      const approval = await hold(token, body);
      assert.deepEqual(approval.quorum, [{ rule: 'agent/router', min: 1, groups: ['devops'] }, { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: {} }]);

      const voted = await vote(dev, approval.id);
      assert.equal(voted.status, 200, JSON.stringify(voted.body));
      assert.equal(voted.body.state, 'pending', 'the devops vote alone does not grant what the fleet holds for the operator');
      assert.equal(voted.body.result, undefined);
      assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries.length, 0);

      const approved = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'approved');
      assert.ok(approved.body.result?.signature, 'signed once both approved');
      const [granted] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries;
      assert.deepEqual([granted.data.by, granted.data.approvers], ['admin', [dev.name]]);
      const [recorded] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.operator_approved`)).body.entries;
      assert.deepEqual([recorded.data.approvalId, recorded.data.rule, recorded.data.by], [approval.id, 'fleet/big-by-operator', 'admin']);

      // A retry of the granted request releases the same signature, charged once (the operator's approval counts
      // for the replay's quorum check as the votes do).
      const replay = await h.call('POST', '/v1/sign/user-operation', { token, body });
      assert.equal(replay.status, 200, JSON.stringify(replay.body));
      assert.equal(replay.body.signature, approved.body.result.signature);
    });

    test('the other order: the operator approves first (recorded, still pending), a second approve is refused, the devops vote grants', async () => {
      await setFleet(bigByOperator);
      const { agent, token } = await provisionAgent(h, { policy: agentPolicy(routerByDevops), actions: ['evm.user_operation'] });
      const dev = await addApprover('devops');
      const approval = await hold(token, batch(agent.address, [transfer(5_000n), routerApprove]));

      const first = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.state, 'pending');
      assert.equal(first.body.result, undefined);
      assert.deepEqual(first.body.quorum.find((q: { operator?: unknown }) => q.operator), { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: { approvedBy: 'admin' } });
      const again = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'quorum_required');
      assert.equal((await h.admin('GET', `/v1/approvals/${approval.id}`)).body.state, 'pending');

      const granted = await vote(dev, approval.id);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      assert.equal(granted.body.state, 'approved');
      assert.ok(granted.body.result?.signature);
      assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries[0].data.by, `approvers:${dev.name}`);
    });

    test('both tiers in the fleet\'s policy: a 1-unit router approve batched with a 5,000 USDC transfer still needs the operator; the devops vote alone does not grant it', async () => {
      await setFleet(bigByOperator, routerByDevops);
      const { agent, token } = await provisionAgent(h, { policy: agentPolicy(), actions: ['evm.user_operation'] });
      const dev = await addApprover('devops');
      const alone = await hold(token, batch(agent.address, [transfer(5_000n)]));
      assert.equal(alone.quorum, undefined, 'the transfer alone waits for the operator');
      const approval = await hold(token, batch(agent.address, [transfer(5_000n), routerApprove]));
      assert.deepEqual(approval.quorum, [{ rule: 'fleet/router', min: 1, groups: ['devops'] }, { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: {} }]);

      const voted = await vote(dev, approval.id);
      assert.equal(voted.status, 200, JSON.stringify(voted.body));
      assert.equal(voted.body.state, 'pending', 'one devops vote does not grant what the fleet holds for the operator');
      assert.equal(voted.body.result, undefined);
      assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries.length, 0);

      const approved = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'approved');
      assert.ok(approved.body.result?.signature, 'signed once the operator approved too');
      const again = await h.admin('POST', `/v1/approvals/${approval.id}/approve`);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'approval_not_pending');
    });

    for (const [how, match] of [['kinds and to', { kinds: ['erc20.approve'], to: [ROUTER] }], ['to alone (it touches the batch as a whole through the approve)', { to: [ROUTER] }]] as const) {
      test(`a quorum tier with a match (${how}) is a rung only where it left out no call moving the asset: a 2,000 USDC router approve alone goes to treasury; batched with a 5,000 USDC transfer, the operator must approve too`, async () => {
        // Found by review: "router approvals above 1,000 USDC: 1 of treasury" is on the ladder of "above 1,000 USDC:
        // the operator" (same layer, asset and threshold), but its approvers were asked about the router, and one
        // treasury vote granted the 5,000 USDC transfer riding along with the approve.
        const routerBig = { name: 'router-big', type: 'approval_tier', asset: USDC_ASSET, above: (1_000n * U).toString(), match, quorum: { min: 1, groups: ['treasury'] } };
        await setFleet(bigByOperator, routerBig);
        const { agent, token } = await provisionAgent(h, { policy: agentPolicy(), actions: ['evm.user_operation'] });
        const treasurer = await addApprover('treasury');
        const approve2k = { to: USDC, data: erc20Data('approve', ROUTER, 2_000n * U) };

        const alone = await hold(token, batch(agent.address, [approve2k]));
        assert.deepEqual(alone.quorum, [{ rule: 'fleet/router-big', min: 1, groups: ['treasury'] }], 'its match touched every call moving USDC: the rung stands in');
        assert.equal((await vote(treasurer, alone.id)).body.state, 'approved');

        const steered = await hold(token, batch(agent.address, [approve2k, transfer(5_000n)]));
        assert.deepEqual(steered.quorum, [{ rule: 'fleet/router-big', min: 1, groups: ['treasury'] }, { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: {} }]);
        const voted = await vote(treasurer, steered.id);
        assert.equal(voted.status, 200, JSON.stringify(voted.body));
        assert.equal(voted.body.state, 'pending', 'one treasury vote does not grant the 5,000 USDC transfer the operator holds');
        assert.equal(voted.body.result, undefined);
        const approved = await h.admin('POST', `/v1/approvals/${steered.id}/approve`);
        assert.equal(approved.body.state, 'approved', JSON.stringify(approved.body));
        assert.ok(approved.body.result?.signature);
        // The in-memory flag the rule is decided by is never written out.
        const held = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries;
        assert.ok(held.length >= 2 && !JSON.stringify(held).includes('judgedAll'));
      });
    }

    test('an unlimited router approve does not cover what the match left out: batched with a 5,000 USDC transfer, or with an unlimited approve to another spender, the operator must approve too', async () => {
      // Found by the review of the fix above: compared as amounts, an unlimited approve equalled the whole request's
      // unlimited amount, so the router tier "judged everything" and one treasury vote granted the rest.
      const unlimitedTo = (...spenders: string[]) => ({ name: 'unlimited', type: 'approvals', spenders, allow_unlimited: true });
      const routerBig = { name: 'router-big', type: 'approval_tier', asset: USDC_ASSET, above: (1_000n * U).toString(), match: { to: [ROUTER] }, quorum: { min: 1, groups: ['treasury'] } };
      await setFleet(bigByOperator, routerBig, unlimitedTo(ROUTER, ALICE));
      const { agent, token } = await provisionAgent(h, { policy: { ...agentPolicy(), rules: [...agentPolicy().rules, unlimitedTo(ROUTER, ALICE)] }, actions: ['evm.user_operation'] });
      const treasurer = await addApprover('treasury');
      const unlimitedApprove = (spender: string) => ({ to: USDC, data: erc20Data('approve', spender, maxUint256) });
      const operator = { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: {} };

      const alone = await hold(token, batch(agent.address, [unlimitedApprove(ROUTER)]));
      assert.deepEqual(alone.quorum, [{ rule: 'fleet/router-big', min: 1, groups: ['treasury'] }], 'the unlimited router approve alone: the rung stands in');
      for (const rest of [transfer(5_000n), unlimitedApprove(ALICE)]) {
        const steered = await hold(token, batch(agent.address, [unlimitedApprove(ROUTER), rest]));
        assert.deepEqual(steered.quorum, [{ rule: 'fleet/router-big', min: 1, groups: ['treasury'] }, operator]);
        assert.equal((await vote(treasurer, steered.id)).body.state, 'pending', 'one treasury vote does not grant what the match left out');
      }
    });

    test('a native ladder on a user operation: the prefund (a fee, no call) does not count as a part the match left out', async () => {
      const ETH = 'eip155:8453/slip44:60';
      const ethByOperator = { name: 'eth-by-operator', type: 'approval_tier', asset: ETH, above: (10n ** 18n).toString() };
      const routerEth = { name: 'router-eth', type: 'approval_tier', asset: ETH, above: (10n ** 18n).toString(), match: { to: [ROUTER] }, quorum: { min: 1, groups: ['treasury'] } };
      await setFleet(ethByOperator, routerEth);
      const policy = { ...agentPolicy(), rules: [{ name: 'pay-eth', type: 'allow', match: { actions: ['evm.user_operation'], chains: ['eip155:8453'], kinds: ['native.transfer'], to: [ROUTER] } }, ...agentPolicy().rules] };
      const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.user_operation'] });
      const treasurer = await addApprover('treasury');
      const held = await hold(token, batch(agent.address, [{ to: ROUTER, data: '0x', value: 2n * 10n ** 18n }]));
      assert.deepEqual(held.quorum, [{ rule: 'fleet/router-eth', min: 1, groups: ['treasury'] }]);
      assert.equal((await vote(treasurer, held.id)).body.state, 'approved');
    });

    test('a real ladder as before: a fleet quorum above the fleet operator tier on the same asset, an agent quorum alone; an agent quorum over the agent\'s own operator tier that is no rung of it needs the operator too', async () => {
      const dev = await addApprover('devops');
      const treasurer = await addApprover('treasury');
      // No fleet tier matches (500 USDC): the agent's quorum decides alone.
      await setFleet(bigByOperator);
      const small = await provisionAgent(h, { policy: agentPolicy(routerByDevops), actions: ['evm.user_operation'] });
      const alone = await hold(small.token, batch(small.agent.address, [transfer(500n), routerApprove]));
      assert.deepEqual(alone.quorum, [{ rule: 'agent/router', min: 1, groups: ['devops'] }]);
      assert.equal((await h.admin('POST', `/v1/approvals/${alone.id}/approve`)).body.error.code, 'quorum_required');
      assert.equal((await vote(dev, alone.id)).body.state, 'approved');

      // The fleet's own quorum on USDC above 3,000 stands in for its "above 1,000 by the operator" (its ladder).
      await setFleet(bigByOperator, { name: 'treasury', type: 'approval_tier', asset: USDC_ASSET, above: (3_000n * U).toString(), quorum: { min: 1, groups: ['treasury'] } });
      const fleetQuorum = await provisionAgent(h, { policy: agentPolicy(), actions: ['evm.user_operation'] });
      const ladder = await hold(fleetQuorum.token, batch(fleetQuorum.agent.address, [transfer(5_000n)]));
      assert.deepEqual(ladder.quorum, [{ rule: 'fleet/treasury', min: 1, groups: ['treasury'] }]);
      assert.equal((await h.admin('POST', `/v1/approvals/${ladder.id}/approve`)).body.error.code, 'quorum_required');
      assert.equal((await vote(treasurer, ladder.id)).body.state, 'approved');

      // The agent's own router quorum is no rung of the agent's "above 1,000 by the operator": the operator too.
      await setFleet();
      const own = await provisionAgent(h, { policy: agentPolicy({ ...bigByOperator, name: 'big' }, routerByDevops), actions: ['evm.user_operation'] });
      const steered = await hold(own.token, batch(own.agent.address, [transfer(5_000n), routerApprove]));
      assert.deepEqual(steered.quorum, [{ rule: 'agent/router', min: 1, groups: ['devops'] }, { rule: 'agent/big', min: 1, groups: [], operator: {} }]);
      assert.equal((await vote(dev, steered.id)).body.state, 'pending');
      assert.equal((await h.admin('POST', `/v1/approvals/${steered.id}/approve`)).body.state, 'approved');
    });
  });
}
