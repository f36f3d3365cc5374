// The destination_wave detector's "paid before the detector existed" exemption cannot be switched on for a payee by
// charges that record no payer of their own, on SQLite and PostgreSQL. It used to compare the ledger's count of
// charges to the payee (fleet|to:<addr>) with the payments its payer record held: a replayed request (Idempotency-Key),
// a request held for approval and then granted, or a batch of two calls to the payee all charge that series without
// recording a payer, so one of them made the payee look "paid before the detector" and no wave to it ever tripped.
// Now it is judged by time (a charge older than the payee's first recorded payer) and a held request's agent is
// recorded as a payer when it is held: in each case below the third agent to pay the payee trips the breaker, and
// the wave is frozen as the detector's action says.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, type Hex } from 'viem';
import { BASE, USDC, USDC_ASSET, startHarness, uniqueName, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const RULE = 'detector/fleet/lateral';
const ENTRY_POINT_V08 = '0x4337084d9e255ff0702461cf8895ce9e3b5ff108';
const ACCOUNT_ABI = parseAbi(['function executeBatch((address target, uint256 value, bytes data)[] calls)']);
const ERC20 = parseAbi(['function transfer(address to, uint256 value) returns (bool)']);

const payee = (n: number) => `0x${String(n).repeat(40).slice(0, 40)}`;
const detectors = [{ name: 'lateral', type: 'destination_wave', agents: 3, window: '1h', action: 'freeze' }];
const fleetPolicy = (extra: unknown[] = []) => ({
  version: 1,
  rules: [
    { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    { name: 'gas', type: 'user_operations', max_prefund: '5000000000000000' },
    ...extra,
  ],
  detectors,
});

interface Agent { id: string; name: string; address: string; token: string }

let nonce = 0;
/** One ERC-4337 user operation whose executeBatch makes `count` USDC transfers of `each` to `to`. */
const batch = (sender: string, to: string, count: number, each: bigint) => ({
  chainId: 8453, entryPoint: ENTRY_POINT_V08, entryPointVersion: '0.8',
  userOperation: {
    sender, nonce: String(nonce++),
    callData: encodeFunctionData({
      abi: ACCOUNT_ABI, functionName: 'executeBatch',
      args: [Array.from({ length: count }, () => ({ target: USDC as Hex, value: 0n, data: encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [to as Hex, each] }) }))],
    }),
    callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
  },
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`destination_wave cannot be switched off by replays, holds, grants or batches (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      const set = await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy() });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    });
    after(async () => h.close());

    async function agents(n: number): Promise<Agent[]> {
      const out: Agent[] = [];
      for (let i = 0; i < n; i++) {
        const created = await h.admin('POST', '/v1/agents', { names: [uniqueName('wave')] });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const a = created.body.agents[0];
        const issued = await h.admin('POST', `/v1/agents/${a.name}/sessions`, { ttl: '1d', actions: ['evm.transaction', 'evm.user_operation'] });
        assert.equal(issued.status, 201, JSON.stringify(issued.body));
        out.push({ id: a.id, name: a.name, address: a.address, token: issued.body.token });
      }
      return out;
    }

    const pay = (a: Agent, to: string, amount: bigint, headers?: Record<string, string>, body = usdcTransfer(to, amount, nonce++)) => {
      h.clock!.advance(1000);
      return h.call('POST', '/v1/sign/transaction', { token: a.token, body, ...(headers ? { headers } : {}) });
    };

    /** The request that trips: 403, `breaker_tripped` by the wave detector; the wave's agents frozen, the breaker binding them. */
    async function assertWaveFrozen(res: { status: number; body: any }, wave: Agent[]) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.signature, undefined);
      const tripped = res.body.error.violations.find((v: any) => v.code === 'breaker_tripped');
      assert.ok(tripped, JSON.stringify(res.body));
      assert.equal(tripped.rule, RULE);
      assert.equal(tripped.used, '3');
      assert.equal(tripped.limit, '3');
      const breakers = (await h.admin('GET', '/v1/breakers?state=tripped')).body.breakers.filter((b: any) => b.detector === RULE && wave.some((a) => a.id === b.agentId));
      assert.equal(breakers.length, 1);
      assert.equal(breakers[0].action, 'freeze');
      assert.deepEqual([...breakers[0].agents].sort(), wave.map((a) => a.id).sort());
      for (const a of wave) {
        assert.equal((await h.admin('GET', `/v1/agents/${a.name}`)).body.status, 'frozen', a.name);
        const next = await pay(a, payee(9), 1n);
        assert.equal(next.status, 403);
        assert.equal(next.body.error.code, 'agent_frozen');
      }
    }

    test('control: three new agents paying one new payee: 200, 200, then 403 breaker_tripped', async () => {
      const wave = await agents(3);
      const p = payee(1);
      assert.equal((await pay(wave[0]!, p, 1000n)).status, 200);
      assert.equal((await pay(wave[1]!, p, 1000n)).status, 200);
      await assertWaveFrozen(await pay(wave[2]!, p, 1000n), wave);
    });

    test('a replayed request (same Idempotency-Key) does not make the payee look known: the third agent trips the wave', async () => {
      const wave = await agents(3);
      const p = payee(2);
      const body = usdcTransfer(p, 1000n, nonce++);
      const key = { 'idempotency-key': `wave-${store}` };
      const first = await pay(wave[0]!, p, 1000n, key, body);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const again = await pay(wave[0]!, p, 1000n, key, body);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.replayed, true);
      assert.equal((await pay(wave[1]!, p, 1000n)).status, 200);
      await assertWaveFrozen(await pay(wave[2]!, p, 1000n), wave);
    });

    test('a 2-call batch (one request, two charges to the payee) does not make it look known: the third agent trips the wave', async () => {
      const wave = await agents(3);
      const p = payee(3);
      h.clock!.advance(1000);
      const sent = await h.call('POST', '/v1/sign/user-operation', { token: wave[0]!.token, body: batch(wave[0]!.address, p, 2, 500n) });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.equal((await pay(wave[1]!, p, 1000n)).status, 200);
      await assertWaveFrozen(await pay(wave[2]!, p, 1000n), wave);
    });

    describe('with an approval tier above 500', () => {
      before(async () => {
        const tier = [{ name: 'big-by-hand', type: 'approval_tier', asset: USDC_ASSET, above: '500' }];
        const set = await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy(tier) });
        assert.equal(set.status, 200, JSON.stringify(set.body));
      });
      after(async () => {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy() })).status, 200);
      });

      test('a request held for approval (still pending) counts its agent in the wave: the third agent trips it', async () => {
        const wave = await agents(3);
        const p = payee(4);
        const held = await pay(wave[0]!, p, 1000n);
        assert.equal(held.status, 202, JSON.stringify(held.body));
        assert.equal((await pay(wave[1]!, p, 100n)).status, 200);
        await assertWaveFrozen(await pay(wave[2]!, p, 100n), wave);
      });

      test('a held request granted by the operator before anyone else pays does not make the payee look known: the third agent trips the wave', async () => {
        const wave = await agents(3);
        const p = payee(5);
        const held = await pay(wave[0]!, p, 1000n);
        assert.equal(held.status, 202, JSON.stringify(held.body));
        h.clock!.advance(60_000);
        const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
        assert.equal(granted.status, 200, JSON.stringify(granted.body));
        assert.equal((await pay(wave[1]!, p, 100n)).status, 200);
        await assertWaveFrozen(await pay(wave[2]!, p, 100n), wave);
      });

      test("the reviewer's order (held, then other agents pay, then the grant): the wave trips on its third agent and the held request can no longer be granted", async () => {
        const wave = await agents(3);
        const p = payee(6);
        const held = await pay(wave[0]!, p, 1000n);
        assert.equal(held.status, 202, JSON.stringify(held.body));
        assert.equal((await pay(wave[1]!, p, 100n)).status, 200);
        await assertWaveFrozen(await pay(wave[2]!, p, 100n), wave);
        // The held request's agent is frozen with the wave: the operator cannot grant it past the breaker.
        const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
        assert.notEqual(granted.status, 200, JSON.stringify(granted.body));
        assert.equal(granted.body.error.code, 'agent_frozen');
      });
    });

    test('a payee the fleet paid before the detector was configured is still not a wave', async () => {
      const p = payee(7);
      const [early] = await agents(1);
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { ...fleetPolicy(), detectors: [] } })).status, 200);
      assert.equal((await pay(early!, p, 1000n)).status, 200);
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy() })).status, 200);
      const later = await agents(4);
      for (const a of later) {
        const r = await pay(a, p, 1000n);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    });
  });
}
