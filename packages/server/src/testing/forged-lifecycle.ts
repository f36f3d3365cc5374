// What a compromised daemon with write access to the store can do to the key process (docs/custody.md, "Lifecycle
// signatures"): write a `lifecycle.planned` entry and its `planned` job for a transaction the lifecycle path never
// planned, then ask the key process over its socket to sign it. Shared by the key process's lifecycle tests.
import { bytesToHex } from '@noble/hashes/utils.js';
import { createEvmAdapter } from '@airlock/chains';
import { lifecycleTransactionPayload, type LifecycleCall, type LifecycleJob, type Store } from '@airlock/core';
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
