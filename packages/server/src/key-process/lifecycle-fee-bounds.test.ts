// The key process bounds a lifecycle transaction's fee itself (docs/custody.md, "Lifecycle signatures"), through its
// socket, against plans forged into the store (a compromised daemon writes the `lifecycle.planned` entry and the job,
// and skips the planner's fee bounds): the gas price at most the fleet's lifecycle.max_gas_price for the chain, a
// native transfer's worst-case fee (gas x gasPrice) at most 10% of its value, and the job recording that very fee.
// Found by review: a forged 1-wei sweep to the agent's own current key, priced so that gas x gasPrice was the old
// key's whole balance, was signed (the balance left as a fee to the block producer). And what the planner itself
// plans at those bounds (a sweep whose fee is exactly 10%, a revocation at exactly max_gas_price) is still signed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { encodeFunctionData, parseAbi, parseTransaction, recoverTransactionAddress, serializeTransaction, type Hex } from 'viem';
import type { EvmSubmitter, LifecycleCall, LifecycleJob, Store } from '@airlock/core';
import { openStore } from '@airlock/store';
import { loadConfig, type AirlockConfig } from '../config.ts';
import { initAirlock, openAirlock } from '../runtime.ts';
import { createLogger } from '../http/request-log.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from '../testing/harness.ts';
import { forgeLifecyclePlan } from '../testing/forged-lifecycle.ts';
import { keyProcessLifecycleMaxFeeFrom, startKeyProcess } from './key-process.ts';

const CHAIN = 'eip155:31337';
const OTHER_CHAIN = 'eip155:8453';
const GWEI = 10n ** 9n;
const ETH = 10n ** 18n;
const TOKEN = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const SPENDER = '0x2222222222222222222222222222222222222222';
const approveZero = encodeFunctionData({ abi: parseAbi(['function approve(address spender, uint256 value) returns (bool)']), functionName: 'approve', args: [SPENDER, 0n] });

const dir = mkdtempSync(join(tmpdir(), 'airlock-kp-lifecycle-fees-'));
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** The chain as the planner reads it (gas price 1 gwei): what it sends is kept in `sent`. */
function chainAt(at: { nonce: number; gas: bigint; balance: bigint }): { sent: string[]; submitter: EvmSubmitter } {
  const sent: string[] = [];
  const submitter: EvmSubmitter = {
    supports: (chain) => chain === CHAIN,
    chains: () => [CHAIN],
    pendingNonce: async () => at.nonce,
    gasPrice: async () => GWEI,
    estimateGas: async () => at.gas,
    nativeBalance: async () => at.balance,
    tokenBalance: async () => 0n,
    sendRawTransaction: async (_chain, raw) => void sent.push(raw),
    receipt: async () => undefined,
    blockNumber: async () => 1n,
    incomingTransfers: async () => [],
  };
  return { sent, submitter };
}

describe('key process: the fee of a lifecycle transaction', () => {
  let config: AirlockConfig;
  let socket: string;
  let store: Store;
  let agentId: string;
  let oldAddress: string;
  let current: string;
  let forged = 0;

  /** The fleet policy as an operator writes it (the key process reads it from the store at each request). */
  async function setFleetLifecycle(lifecycle: Record<string, unknown>): Promise<void> {
    const airlock = await openAirlock(config, { keyProcess: socket }, { timers: false });
    try {
      await airlock.operator.setPolicy('fleet', { version: 1, rules: [], lifecycle }, 'operator');
    } finally {
      await airlock.close();
    }
  }

  /** A plan forged into the store for a transaction from the rotated-away key 0 (testing/forged-lifecycle.ts), then the ask. */
  const forge = (call: LifecycleCall, fees: { gas: bigint; gasPrice: bigint }, job: Partial<LifecycleJob> = {}, via = socket) =>
    forgeLifecyclePlan(store, via, { agentId, from: oldAddress, chain: CHAIN, call, fees: { nonce: forged, ...fees }, jobId: `lcj_forged${String(++forged).padStart(10, '0')}`, job });

  /** A second key process on the same store and vault, started with AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE as given. */
  async function keyProcessWithCeiling(name: string, maxFee: string): Promise<string> {
    const path = join(dir, `${name}.sock`);
    const kp = await startKeyProcess({
      storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase: TEST_PASSPHRASE, socketPath: path, logger: createLogger('info', new PassThrough()), vault: TEST_VAULT,
      headRecordPath: join(dir, `${name}-head.json`), lifecycleMaxFee: keyProcessLifecycleMaxFeeFrom({ AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: maxFee }),
    });
    closers.push(() => kp.close());
    return path;
  }

  function assertRefused(res: { status: number; body: any }, message: RegExp): void {
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'key_process_refused');
    assert.equal(res.body.error.details.reason, 'lifecycle_call_refused', JSON.stringify(res.body));
    assert.match(res.body.error.message, message);
  }

  before(async () => {
    config = loadConfig({ dataDir: join(dir, 'data') }, {});
    await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    const airlock = await openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
    const [agent] = await airlock.operator.createAgents({ names: ['victim'] }, 'operator');
    const rotation = await airlock.operator.rotateAgentKey('victim', 'operator'); // key 0 is now an old key, key 1 current
    await airlock.close();
    agentId = agent!.id;
    oldAddress = rotation.previous.address.toLowerCase();
    current = rotation.current.address.toLowerCase();
    socket = join(dir, 'keys.sock');
    const kp = await startKeyProcess({ storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase: TEST_PASSPHRASE, socketPath: socket, logger: createLogger('info', new PassThrough()), vault: TEST_VAULT });
    closers.push(() => kp.close());
    store = await openStore(config.storeUrl);
    closers.push(() => store.close());
  });

  test('no max_gas_price on the chain: a forged 1-wei sweep to the agent\'s own key whose fee is the old key\'s whole balance is refused (over 10% of the value); at 10% it is signed', async () => {
    await setFleetLifecycle({ max_gas_price: { [OTHER_CHAIN]: String(GWEI) } }); // a bound for another chain bounds nothing here
    const gas = 21_000n;
    const gasPrice = ETH / gas; // ~47,619 gwei: the fee is the balance
    assertRefused(await forge({ to: current, value: 1n, data: '0x' }, { gas, gasPrice }), /more than 10% of the value/);
    const fee = gas * GWEI;
    assertRefused(await forge({ to: current, value: fee * 10n - 1n, data: '0x' }, { gas, gasPrice: GWEI }), /more than 10% of the value/);
    // At the planner's own bound (the fee exactly 10% of what moves): signed, a valid transaction of the old key.
    const call = { to: current, value: fee * 10n, data: '0x' };
    const signed = await forge(call, { gas, gasPrice: GWEI });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const [sig] = signed.body.result as { compact: Uint8Array; recovery: number }[];
    const raw = serializeTransaction({ type: 'legacy', chainId: 31337, to: current as Hex, value: call.value, data: '0x', nonce: forged - 1, gas, gasPrice: GWEI }, {
      r: `0x${Buffer.from(sig!.compact.subarray(0, 32)).toString('hex')}`, s: `0x${Buffer.from(sig!.compact.subarray(32)).toString('hex')}`, v: BigInt(31337 * 2 + 35 + sig!.recovery),
    });
    assert.equal((await recoverTransactionAddress({ serializedTransaction: raw })).toLowerCase(), oldAddress);
  });

  test('max_gas_price on the chain: a forged revocation or sweep priced above it is refused (the worst-case fee is then at most gas x max_gas_price)', async () => {
    await setFleetLifecycle({ max_gas_price: { [CHAIN]: String(GWEI) } });
    // A revocation moves no value, so only max_gas_price bounds its fee: 30M gas at 33,333 gwei would be 1 ETH.
    assertRefused(await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 30_000_000n, gasPrice: ETH / 30_000_000n }), /above the fleet's lifecycle\.max_gas_price/);
    assertRefused(await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 60_000n, gasPrice: GWEI + 1n }), /above the fleet's lifecycle\.max_gas_price/);
    assertRefused(await forge({ to: current, value: ETH, data: '0x' }, { gas: 21_000n, gasPrice: GWEI + 1n }), /above the fleet's lifecycle\.max_gas_price/);
    assert.equal((await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 60_000n, gasPrice: GWEI })).status, 200);
  });

  test('a job that records another worst-case fee (or nonce) than the transaction is refused', async () => {
    const call = { to: current, value: ETH, data: '0x' };
    assertRefused(await forge(call, { gas: 21_000n, gasPrice: GWEI }, { maxFee: 0n }), /worst-case fee/);
    assertRefused(await forge(call, { gas: 21_000n, gasPrice: GWEI }, { maxFee: 21_000n * GWEI + 1n }), /worst-case fee/);
    assertRefused(await forge(call, { gas: 21_000n, gasPrice: GWEI }, { nonce: 999 }), /worst-case fee/);
  });

  test('what the planner plans at the bounds (a rotation sweep paying exactly 10%, a revocation at max_gas_price) is signed by the key process', async () => {
    await setFleetLifecycle({ max_gas_price: { [CHAIN]: String(GWEI) } });
    const fee = 21_000n * GWEI;
    // Nonce 100: above the forged nonces of the tests before; the gas price exactly max_gas_price; the sweep moves 10 x its fee.
    const { sent, submitter } = chainAt({ nonce: 100, gas: 50_000n, balance: fee * 11n });
    const airlock = await openAirlock({ ...config, keyProcessSocket: socket }, { keyProcess: socket }, { timers: false, evmSubmitter: submitter });
    try {
      const report = await airlock.lifecycle.sweep('victim', 0, 'current', 'test');
      assert.equal(report.jobs.length, 1, JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
      const [revocation] = await airlock.lifecycle.submitCalls('victim', 0, [{ chain: CHAIN, to: TOKEN, data: approveZero }], 'test');
      const jobs = await Promise.all([report.jobs[0]!.id, revocation!].map((id) => store.getLifecycleJob(id)));
      for (const job of jobs) assert.ok(job?.rawTransaction && job.state !== 'failed', JSON.stringify(job, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
      assert.equal(sent.length, 2);
      const sweep = parseTransaction(sent[0] as Hex);
      assert.equal(sweep.gasPrice, GWEI);
      assert.equal(sweep.value, fee * 10n);
      assert.equal((await recoverTransactionAddress({ serializedTransaction: sent[1] as never })).toLowerCase(), oldAddress);
    } finally {
      await airlock.close();
    }
  });

  test("an operator's native transfer (submitCalls) paying more than 10% of its value is refused by the planner, before anything is planned", async () => {
    // Found by review: only sweeps were held to the 10% share by the planner; this call was planned and audited, then
    // refused by the key process (`lifecycle_call_refused`), its job failed `not_signed`.
    await setFleetLifecycle({ max_gas_price: { [CHAIN]: String(GWEI) } });
    const { sent, submitter } = chainAt({ nonce: 200, gas: 21_000n, balance: ETH });
    const airlock = await openAirlock({ ...config, keyProcessSocket: socket }, { keyProcess: socket }, { timers: false, evmSubmitter: submitter });
    try {
      const callJobs = async () => (await store.listLifecycleJobs({ agentId } as never)).filter((j) => j.origin === 'call').length;
      const before = await callJobs();
      const value = 100_000n * GWEI; // 0.0001 ETH; the worst-case fee (21,000 gas with its margin, at 1 gwei) is over 10% of it
      await assert.rejects(airlock.lifecycle.submitCalls('victim', 0, [{ chain: CHAIN, to: current, data: '0x', value }], 'test'), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'lifecycle_fee_too_high', String(e.message));
        return true;
      });
      assert.equal(await callJobs(), before, 'nothing planned');
      assert.equal(sent.length, 0);
      // Ten times the value: within the share, planned, signed by the key process and sent.
      const [id] = await airlock.lifecycle.submitCalls('victim', 0, [{ chain: CHAIN, to: current, data: '0x', value: value * 10n }], 'test');
      const job = await store.getLifecycleJob(id!);
      assert.ok(job?.rawTransaction && job.state !== 'failed', JSON.stringify(job, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
      assert.equal(sent.length, 1);
    } finally {
      await airlock.close();
    }
  });

  describe("the key process's own ceiling (AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE), which no store write changes", () => {
    const ceiling = 21_000n * GWEI; // a native sweep's fee at 1 gwei

    test('a compromised daemon that first rewrites max_gas_price away still cannot have a forged revocation or sweep pay more than the ceiling', async () => {
      // The chain's own ceiling wins over `*` (1 wei would refuse everything).
      const capped = await keyProcessWithCeiling('capped', `${CHAIN}=${ceiling}, *=1`);
      await setFleetLifecycle({}); // the policy rewritten: no max_gas_price anywhere
      // 30M gas at 1 gwei: 0.03 ETH of fee for an approve(0); the policy bounds nothing, the ceiling does.
      assertRefused(await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 30_000_000n, gasPrice: GWEI }, {}, capped), /above the key process's own ceiling/);
      assertRefused(await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 21_000n, gasPrice: GWEI + 1n }, {}, capped), /above the key process's own ceiling/);
      // A native sweep within the 10% share (1 ETH moved) but above the ceiling.
      // (As an operator's call: the planner's sweep of this asset from the test before is still open.)
      assertRefused(await forge({ to: current, value: ETH, data: '0x' }, { gas: 42_000n, gasPrice: GWEI }, { origin: 'call' }, capped), /above the key process's own ceiling/);
      // At the ceiling exactly: signed. The key process without a ceiling signs the 30M-gas revocation (the residual it closes).
      assert.equal((await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 21_000n, gasPrice: GWEI }, {}, capped)).status, 200);
      assert.equal((await forge({ to: current, value: ETH, data: '0x' }, { gas: 21_000n, gasPrice: GWEI }, { origin: 'call' }, capped)).status, 200);
      assert.equal((await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 30_000_000n, gasPrice: GWEI })).status, 200);
    });

    test('`*` is the ceiling of a chain the variable does not name', async () => {
      const starred = await keyProcessWithCeiling('starred', `${OTHER_CHAIN}=${ETH}, *=${ceiling}`);
      await setFleetLifecycle({});
      assertRefused(await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 21_001n, gasPrice: GWEI }, {}, starred), /above the key process's own ceiling/);
      assert.equal((await forge({ to: TOKEN, value: 0n, data: approveZero }, { gas: 21_000n, gasPrice: GWEI }, {}, starred)).status, 200);
    });

    test("through the planner: a revocation whose fee is above the key process's ceiling fails with the reason and nothing is sent; a sweep at the ceiling is sent", async () => {
      const capped = await keyProcessWithCeiling('planner', `${CHAIN}=${ceiling}`);
      await setFleetLifecycle({});
      // The planner's sweep of the tests before was sent and never mined: closed here, so this one can be planned.
      for (const open of await store.transaction((tx) => tx.openLifecycleJobs(agentId))) await store.transaction((tx) => tx.finishLifecycleJob(open.id, { state: 'failed', failure: 'test' }, Date.now(), open.auditSeq));
      const { sent, submitter } = chainAt({ nonce: 300, gas: 50_000n, balance: ceiling * 11n });
      const airlock = await openAirlock({ ...config, keyProcessSocket: capped }, { keyProcess: capped }, { timers: false, evmSubmitter: submitter });
      try {
        // The daemon does not know the key process's ceiling: the call is planned (and audited), refused by the key
        // process, and its job fails with the reason; the operator's command gets the refusal.
        const calls = async () => (await store.listLifecycleJobs({ agentId } as never)).filter((j) => j.origin === 'call' && j.nonce >= 300);
        await assert.rejects(airlock.lifecycle.submitCalls('victim', 0, [{ chain: CHAIN, to: TOKEN, data: approveZero }], 'test'), /above the key process's own ceiling/);
        const [failed] = await calls();
        assert.equal(failed?.state, 'failed');
        assert.equal(failed?.rawTransaction, undefined);
        assert.match(String(failed?.failure), /lifecycle_call_refused/);
        assert.equal(sent.length, 0, 'nothing sent');
        const report = await airlock.lifecycle.sweep('victim', 0, 'current', 'test');
        const job = await store.getLifecycleJob(report.jobs[0]!.id);
        assert.ok(job?.rawTransaction && job.state !== 'failed', JSON.stringify(job, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        assert.equal(sent.length, 1);
        assert.equal(parseTransaction(sent[0] as Hex).gas! * parseTransaction(sent[0] as Hex).gasPrice!, ceiling);
      } finally {
        await airlock.close();
      }
    });

    test('a malformed AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE is config_invalid, naming the part', () => {
      for (const [value, part] of [['eip155:1', 'eip155:1'], ['eip155:1=1e18', 'eip155:1=1e18'], ['eip155:1=-5', 'eip155:1=-5'], ['bip122:000000000019d6689c085ae165831e93=1', 'bip122'], ['eip155:1=1,,*=2', '""'], ['eip155:01=1', 'eip155:01']] as const) {
        assert.throws(() => keyProcessLifecycleMaxFeeFrom({ AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: value }), (e: { code?: string; message?: string }) => {
          assert.equal(e.code, 'config_invalid');
          assert.ok(String(e.message).includes(part), `${value}: ${e.message}`);
          return true;
        });
      }
      assert.throws(() => keyProcessLifecycleMaxFeeFrom({ AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: '*=1,*=2' }), /names \* twice/);
      assert.deepEqual([...keyProcessLifecycleMaxFeeFrom({ AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: ' eip155:8453 = 7 ,*=9' })], [['eip155:8453', 7n], ['*', 9n]]);
      assert.equal(keyProcessLifecycleMaxFeeFrom({}).size, 0);
    });
  });
});
