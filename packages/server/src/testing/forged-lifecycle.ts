// What a compromised daemon with write access to the store can do to the key process (docs/custody.md, "Lifecycle
// signatures"): write a `lifecycle.planned` entry and its `planned` job for a transaction the lifecycle path never
// planned, then ask the key process over its socket to sign it. Shared by the key process's lifecycle tests.
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createEvmAdapter } from '@airlock/chains';
import { lifecycleTransactionPayload, type LifecycleCall, type LifecycleJob, type Store } from '@airlock/core';
import { openStore } from '@airlock/store';
import { loadConfig, type AirlockConfig } from '../config.ts';
import { initAirlock, openAirlock } from '../runtime.ts';
import { createLogger } from '../http/request-log.ts';
import { startKeyProcess, type KeyProcessOptions } from '../key-process/key-process.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from './harness.ts';
import { askKeyProcess } from './processes.ts';

export interface ForgedPlan {
  agentId: string;
  /** The address of the key at `keyIndex` (default 0, a rotated-away key), which the plan signs with. */
  from: string;
  keyIndex?: number;
  chain: string;
  call: LifecycleCall;
  fees: { nonce: number; gas: bigint; gasPrice: bigint };
  jobId: string;
  /** Fields of the job that differ from what the transaction says (a forged `maxFee`, nonce, origin). */
  job?: Partial<LifecycleJob>;
}

/**
 * Writes the plan's entry and job, asks the key process at `socket` to sign it and answers what it said; the job is
 * then closed, so the next forged sweep of the same asset is not `lifecycle_sweep_open` in the store.
 */
export async function forgeLifecyclePlan(store: Store, socket: string, plan: ForgedPlan): Promise<{ status: number; body: any }> {
  const { agentId, from, chain, call, fees, jobId } = plan;
  const keyIndex = plan.keyIndex ?? 0;
  const payload = lifecycleTransactionPayload(chain, call, fees);
  const digest = bytesToHex(createEvmAdapter().decode('evm.transaction', payload, { address: from }).digest);
  const kind = call.data === '0x' ? 'native_transfer' : 'revocation';
  const seq = await store.transaction(async (tx) => {
    const entry = await tx.appendAudit({ at: Date.now(), type: 'lifecycle.planned', actor: 'operator', agentId, action: 'evm.transaction', decision: 'allow', data: { jobId, kind, keyIndex, from, payload, digest } });
    await tx.insertLifecycleJob({
      id: jobId, agentId, keyIndex, chain, from, nonce: fees.nonce, origin: 'sweep', kind, purpose: 'rotation',
      ...(kind === 'native_transfer' ? { asset: `${chain}/slip44:60`, recipient: call.to } : {}), amount: call.value, to: call.to!,
      maxFee: fees.gas * fees.gasPrice, summary: 'forged', state: 'planned', auditSeq: entry.seq, broadcasts: 0, createdAt: Date.now(), updatedAt: Date.now(),
      ...plan.job,
    } as LifecycleJob);
    return entry.seq;
  });
  const res = await askKeyProcess(socket, 'signBound', { kind: 'lifecycle', auditSeq: seq, agentId, action: 'evm.transaction', payload, keyIndex });
  await store.transaction((tx) => tx.finishLifecycleJob(jobId, { state: 'failed', failure: 'test' }, Date.now(), seq));
  return res;
}

/** A deployment whose agent `victim` was rotated once (key 0 rotated away, key 1 current), its store open. */
export interface RotatedVictim {
  config: AirlockConfig;
  store: Store;
  agentId: string;
  /** Key 0's address, lowercase: the key forged plans sign with. */
  oldAddress: string;
  /** Key 1's address, lowercase. */
  current: string;
  /** Starts a key process on it, listening at `<dir>/<name>.sock`; the socket's path. */
  startKeyProcessAt(name: string, options?: Partial<KeyProcessOptions>): Promise<string>;
}

/**
 * Sets up a RotatedVictim in `dir` (the fleet policy `fleet` set first, as a compromised daemon may write it);
 * what it opens is closed by `closers`, last first.
 */
export async function rotatedVictim(dir: string, closers: (() => Promise<unknown>)[], fleet?: object): Promise<RotatedVictim> {
  const config = loadConfig({ dataDir: join(dir, 'data') }, {});
  await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const airlock = await openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  const [agent] = await airlock.operator.createAgents({ names: ['victim'] }, 'operator');
  const rotation = await airlock.operator.rotateAgentKey('victim', 'operator');
  if (fleet) await airlock.operator.setPolicy('fleet', fleet, 'operator');
  await airlock.close();
  const store = await openStore(config.storeUrl);
  closers.push(() => store.close());
  return {
    config, store, agentId: agent!.id, oldAddress: rotation.previous.address.toLowerCase(), current: rotation.current.address.toLowerCase(),
    async startKeyProcessAt(name, options = {}) {
      const socketPath = join(dir, `${name}.sock`);
      const kp = await startKeyProcess({ storeUrl: config.storeUrl, vaultPath: config.vaultPath, passphrase: TEST_PASSPHRASE, socketPath, logger: createLogger('info', new PassThrough()), vault: TEST_VAULT, headRecordPath: join(dir, `${name}-head.json`), ...options });
      closers.push(() => kp.close());
      return socketPath;
    },
  };
}
