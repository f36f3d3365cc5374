import { bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError } from '../errors.ts';
import { nativeAsset, type Intent } from '../intent.ts';
import { CompiledPolicies } from '../policy/compiled-policies.ts';
import { EMPTY_LIFECYCLE, effectiveHotBalanceCap, type LifecyclePolicy } from '../policy/lifecycle.ts';
import { COUNT_ASSET, type LedgerWrite } from '../ports/ledger.ts';
import type { Agent, PolicyRecord, StoreTx } from '../ports/store.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import type { EcdsaSignature } from '../ports/key-backend.ts';
import { OPEN_LIFECYCLE_STATES, type EvmSubmitter, type LifecycleFinish, type LifecycleJob, type LifecycleJobFilter, type LifecycleJobOrigin } from '../ports/lifecycle.ts';
import { classifyLifecycleCall, type ClassifiedLifecycleCall, type LifecycleCall } from '../lifecycle/lifecycle-calls.ts';
import { assertLifecycleFee, LIFECYCLE_MAX_FEE_SHARE_PERCENT } from '../lifecycle/lifecycle-fees.ts';
import { classifyLifecycleTypedData, lifecycleCallOf, lifecycleTransactionPayload, lifecycleTypedDataPayload, type LifecycleTransactionPayload, type LifecycleTypedDataPayload } from '../lifecycle/lifecycle-payloads.ts';
import type { ServiceDeps } from './deps.ts';
import type { AgentKeyRotationResult, OperatorService } from './operator-service.ts';
import { FLEET_SCOPE, agentScope } from './policy-layers.ts';

/** Ledger series the lifecycle path charges: fleet-wide (what `lifecycle.caps` limit) and per agent. */
export const LIFECYCLE_SERIES = 'lifecycle';
export const lifecycleAgentSeries = (agentId: string) => `lifecycle|agent:${agentId}`;

/** A plain native transfer costs exactly this much gas (EIP-150 schedule, to an account without code). */
const NATIVE_TRANSFER_GAS = 21_000n;
/** ERC-20 transfers and revocations get this much over the node's estimate (a refund can lower what is used). */
const GAS_MARGIN_PERCENT = 20n;
const ERC20_TRANSFER_SELECTOR = '0xa9059cbb';
/**
 * Without a `lifecycle.max_gas_price` for the chain, the gas price the RPC quotes may be at most this multiple of
 * the highest base fee plus the highest median priority fee of the last blocks (eth_feeHistory).
 */
const FEE_HISTORY_MULTIPLE = 3n;
/**
 * A native sweep whose fee would be more than this share (percent) of the value it moves is refused. The key
 * process checks the transaction it signs against the same constant (lifecycle-fees.ts): one number, so a plan
 * made here is never one the key process refuses.
 */
const MAX_FEE_SHARE_PERCENT = LIFECYCLE_MAX_FEE_SHARE_PERCENT;
/**
 * How long a `planned` job is left to the call that planned it before the tracker signs it itself (that call
 * crashed, or its store failed on the record). A resume racing a slow first try is harmless (signPlanned), only
 * wasted work.
 */
const PLANNED_RESUME_AFTER_MS = 10_000;
/** A signature not produced for these reasons is tried again by the tracker; any other refusal fails the job. */
// A resumed plan whose signature meets one of these is tried again next pass instead of failing: the key process
// did not answer, or the store did not (the plan is re-judged from what it reads, and a read that failed says nothing).
const TRANSIENT_SIGNING_CODES = new Set(['key_process_unavailable', 'key_process_rate_limited', 'store_unavailable']);
/**
 * Meta key set once the sweep of a rotated-away key to the agent's current key was built (rotate, or the rotation
 * pass's retry): until then every rotation pass sweeps that key again (resumeRotationSweeps).
 */
const rotationSweptMeta = (agentId: string, keyIndex: number) => `lifecycle_rotation_swept:${agentId}:${keyIndex}`;
/** A key rotated less than this long ago is left to the sweep its own `rotate` is building. */
const ROTATION_SWEEP_GRACE_MS = 60_000;

export type SweepDestination = 'treasury' | 'current';

/** One call handed to `submitCalls` (a revocation built from the dependency map). */
export interface LifecycleCallRequest {
  /** CAIP-2, e.g. `eip155:8453`. */
  chain: string;
  to: string;
  data: string;
  value?: bigint;
}

export interface SweepSkip {
  chain: string;
  asset: string;
  reason: 'empty' | 'dust' | 'sweep_open' | 'at_or_below_cap';
}

export interface SweepReport {
  /** The jobs built, tokens first, then the native coin (which pays their gas). */
  jobIds: string[];
  jobs: LifecycleJob[];
  skipped: SweepSkip[];
}

/** What `rotate` did: the rotation, and the sweep of the old address to the new one (or why it was not built). */
export interface RotationReport {
  rotation: AgentKeyRotationResult;
  sweep: SweepReport | { error: { code: string; message: string } };
}

export interface SweepOptions {
  /** Chains to sweep (default: every chain with an RPC or a treasury). */
  chains?: string[];
  /**
   * Per asset, what stays on the address (hot-balance caps): only the excess moves. For the native coin the
   * fee also comes out of the excess, so the address ends at exactly the cap.
   */
  keep?: ReadonlyMap<string, bigint>;
  /** Only these assets (default: the native coin and the chain's `sweep_assets`). */
  assets?: readonly string[];
}

/** What the lifecycle path knows about an agent's key lifecycle (shown on the agent route). */
export interface AgentKeyLifecycle {
  /** `active`: the agent is not retired. `sweeping`: retired, sweeps still open. `sweep_failed`: retired, a retire sweep failed. `retired`: retired, nothing open. */
  keyState: 'active' | 'sweeping' | 'sweep_failed' | 'retired';
  openJobs: string[];
  failedJobs: string[];
}

export interface Orphan {
  agentId: string;
  name: string;
  status: Agent['status'];
  reason: 'inactive' | 'retired_with_balance';
  /** Newest session activity (ms), or the agent's creation when it never had any. */
  lastActivityAt: number;
  /** Non-zero balances per key index and asset (base units, decimal strings). */
  balances: { keyIndex: number; address: string; chain: string; asset: string; amount: string }[];
}

export interface LifecycleServiceOptions {
  /** Called after a job's signed bytes committed and before their first broadcast (crash tests stop the process here). */
  beforeBroadcast?: (job: LifecycleJob) => void;
  /** Called after a job's plan committed and before it is signed (crash tests stop the process here). */
  beforeSign?: (job: LifecycleJob) => void;
}

interface KeyRef {
  agent: Agent;
  keyIndex: number;
  path: string;
  address: string;
}

interface BuiltTransaction {
  call: LifecycleCall;
  gas: bigint;
  sweepAsset?: string;
  /** Sweeps: where the transfer goes (`current` is checked again against the agent's row under its lock). */
  destination?: SweepDestination;
}

/**
 * The lifecycle path: transactions signed with an agent's key at any key index it has had (old or current),
 * through an operator-only path that allows nothing but lifecycle kinds (lifecycle-calls.ts: transfers to the
 * fleet treasury or the agent's current address, and revocations). The hot path of one transaction:
 *
 *   1. read the chain first (nonce, gas price, balances, gas estimate), outside any store transaction;
 *   2. plan, in ONE store transaction: take the agent's lock, pick the nonce above every open job of the address,
 *      build the legacy transaction, decode it with the EVM adapter, classify it (default deny), check the
 *      fleet's `lifecycle.caps` against the `lifecycle` ledger series, and write the job (`planned`, no bytes),
 *      the `lifecycle.planned` audit entry (the unsigned payload, its digest, the key and the job) and the ledger
 *      charge together;
 *   3. sign, bound to that committed entry (KeyBackend.signBound: a separate key process reads the entry and
 *      checks the call itself; an in-process backend signs the digest), and check the signature;
 *   4. record the bytes with `lifecycle.signed` (commit), and only then hand them to the RPC. The tracker (`track`)
 *      signs a job a crash left `planned`, re-broadcasts the stored bytes and polls receipts until each job is
 *      mined or failed: a crash anywhere re-sends the same transaction, never a new one, and a sweep of
 *      (agent, key index, asset) is not built while one is open.
 *
 * Fees: legacy (type-0) transactions at the node's gas price. A native sweep then costs exactly
 * 21000 x gasPrice, so it moves the balance minus that fee and leaves zero (EIP-1559 would leave the
 * unspent part of maxFeePerGas behind). The fee of token sweeps (and other open jobs of the address) is kept back
 * at its worst case (gas limit x gas price); what they do not use stays on the address as dust. The quoted gas
 * price is bounded (boundGasPrice: `lifecycle.max_gas_price`, the fee history), a native sweep may pay at most
 * MAX_FEE_SHARE_PERCENT of what it moves, and every worst-case fee counts against the native coin's caps.
 */
export class LifecycleService {
  private readonly deps: ServiceDeps;
  private readonly operator: OperatorService;
  private readonly submitter: EvmSubmitter | undefined;
  private readonly options: LifecycleServiceOptions;
  private readonly compiled = new CompiledPolicies();

  constructor(deps: ServiceDeps, operator: OperatorService, submitter?: EvmSubmitter, options: LifecycleServiceOptions = {}) {
    this.deps = deps;
    this.operator = operator;
    this.submitter = submitter;
    this.options = options;
  }

  // ---- policy ----

  /** The fleet policy's `lifecycle:` section (empty without a fleet policy). */
  async fleetLifecycle(): Promise<LifecyclePolicy> {
    return this.lifecycleAt(FLEET_SCOPE);
  }

  private async lifecycleAt(scope: string): Promise<LifecyclePolicy> {
    return this.compiledOf(await this.deps.store.getPolicy(scope));
  }

  private compiledOf(record: PolicyRecord | undefined): LifecyclePolicy {
    return record ? this.compiled.of(record).lifecycle : EMPTY_LIFECYCLE;
  }

  // ---- what the lead calls ----

  /**
   * Sweeps the residual balances of the agent's key at `keyIndex` (native coin and the chain's `sweep_assets`)
   * to the fleet treasury or to the agent's current address. Tokens first, then the native coin. Everything is
   * checked before anything is signed: a chain with a balance but no treasury is `lifecycle_no_treasury`, a
   * chain without an RPC `lifecycle_no_rpc`. Returns the jobs built (none when nothing is left to sweep).
   */
  async sweep(agentIdOrName: string, keyIndex: number, destination: SweepDestination, reason: string, options: SweepOptions = {}): Promise<SweepReport> {
    const key = await this.keyRef(agentIdOrName, keyIndex);
    const fleet = await this.fleetLifecycle();
    const plans = await this.planSweep(key, destination, fleet, options, reason);
    const report: SweepReport = { jobIds: [], jobs: [], skipped: [] };
    for (const plan of plans) {
      report.skipped.push(...plan.skipped);
      for (const tx of plan.transactions) {
        const job = await this.signAndRecord(key, plan.chain, plan.gasPrice, plan.rpcNonce, 'sweep', reason, tx, plan.nativeBalance);
        if (job === 'dust') {
          report.skipped.push({ chain: plan.chain, asset: nativeAsset(plan.chain), reason: 'dust' });
          continue;
        }
        report.jobs.push(job);
        report.jobIds.push(job.id);
      }
    }
    for (const job of report.jobs) await this.firstBroadcast(job);
    return report;
  }

  /**
   * Signs and submits calls with the agent's key at `keyIndex` (revocations built from the dependency map:
   * approve(spender, 0), Permit2 lockdown, …). Every call is classified before anything is read or signed: one
   * that is not a lifecycle kind refuses the whole batch with `lifecycle_kind_refused`. Returns the job ids,
   * in the order of `calls` (consecutive nonces per chain).
   */
  async submitCalls(agentIdOrName: string, keyIndex: number, calls: readonly LifecycleCallRequest[], purpose: string): Promise<string[]> {
    if (calls.length === 0 || calls.length > 100) throw new AirlockError('invalid_request', 'calls: between 1 and 100 calls.');
    const key = await this.keyRef(agentIdOrName, keyIndex);
    const fleet = await this.fleetLifecycle();
    const adapter = this.evm();
    const normalised = calls.map((c, i) => {
      if (!/^eip155:[1-9][0-9]{0,15}$/.test(c.chain)) throw new AirlockError('unsupported_chain', `calls[${i}].chain: expected eip155:<chainId>.`);
      if (!/^0x[0-9a-fA-F]{40}$/.test(c.to)) throw new AirlockError('invalid_address', `calls[${i}].to: expected a 0x address.`);
      if (!/^0x([0-9a-fA-F]{2})*$/.test(c.data)) throw new AirlockError('invalid_hex', `calls[${i}].data: expected 0x-hex bytes.`);
      const call: LifecycleCall = { to: c.to.toLowerCase(), data: c.data.toLowerCase(), value: c.value ?? 0n };
      // Classified on a preview (nonce and fees do not change what a call means) before any chain read.
      const { classified } = this.classify(adapter, key, c.chain, fleet, call, { nonce: 0, gas: 0n, gasPrice: 0n });
      return { chain: c.chain, call, classified };
    });
    const chains = [...new Set(normalised.map((c) => c.chain))];
    for (const chain of chains) this.requireRpc(chain);
    const reads = new Map<string, { gasPrice: bigint; nonce: number }>();
    for (const chain of chains) reads.set(chain, await this.rpc(async (s) => ({ gasPrice: await s.gasPrice(chain), nonce: await s.pendingNonce(chain, key.address) })));
    for (const chain of chains) await this.boundGasPrice(key, chain, reads.get(chain)!.gasPrice, fleet, 'call', purpose);
    const priced: { chain: string; call: LifecycleCall; gas: bigint }[] = [];
    for (const { chain, call, classified } of normalised) {
      const estimate = await this.rpc((s) => s.estimateGas(chain, { from: key.address, to: call.to!, data: call.data, value: call.value }), 'The gas estimate failed (the call would revert, or the RPC did not answer); nothing was signed.');
      const gas = withMargin(estimate);
      // The key process's fee bounds, before anything is planned: a native transfer paying more than 10% of its value
      // in fees was planned and audited here, then refused by the key process (found by review). The gas price was
      // bounded by max_gas_price above.
      assertLifecycleFee(chain, classified, { nonce: 0, gas, gasPrice: reads.get(chain)!.gasPrice }, undefined);
      priced.push({ chain, call, gas });
    }
    // The key pays for its own revocations. An old key whose address was swept holds only dust: say what it needs
    // (and where) before anything is signed, instead of a transaction the node refuses for want of funds.
    for (const chain of chains) {
      const need = priced.filter((p) => p.chain === chain).reduce((sum, p) => sum + p.gas * reads.get(chain)!.gasPrice + p.call.value, 0n);
      const balance = await this.rpc((s) => s.nativeBalance(chain, key.address));
      if (balance < need) {
        throw new AirlockError('lifecycle_insufficient_gas', `Key ${key.keyIndex} of the agent (${key.address}) holds ${balance} wei on ${chain}; its ${priced.filter((p) => p.chain === chain).length} transaction(s) need up to ${need} wei. Nothing was signed.`, {
          hints: [`Send at least ${need - balance} wei to ${key.address} on ${chain}, then run the command again.`],
        });
      }
    }
    const jobs: LifecycleJob[] = [];
    for (const { chain, call, gas } of priced) {
      const read = reads.get(chain)!;
      const job = await this.signAndRecord(key, chain, read.gasPrice, read.nonce, 'call', purpose, { call, gas });
      if (job === 'dust') throw new AirlockError('internal', 'a call was priced as a sweep');
      jobs.push(job);
    }
    for (const job of jobs) await this.firstBroadcast(job);
    return jobs.map((j) => j.id);
  }

  /**
   * `airlock agent retire`: with `sweep` (the default) every key index of the agent is checked first (balances,
   * treasury, RPC: a problem refuses the retirement and changes nothing), then the agent is retired at once
   * (its sessions die, nothing else signs) and its balances are swept to the treasury. The key counts as retired
   * once those sweeps are mined (`keyLifecycle`). Without `sweep`: today's retirement, funds left in place.
   */
  async retire(agentIdOrName: string, options: { sweep: boolean }, actor: string): Promise<{ agent: Agent; sweeps: SweepReport[] }> {
    const agent = await this.operator.getAgent(agentIdOrName);
    if (!options.sweep || agent.status === 'retired') {
      const retired = await this.operator.setAgentStatus(agent.id, 'retired', actor);
      await this.failUnsignablePlans(agent.id);
      return { agent: retired, sweeps: [] };
    }
    const fleet = await this.fleetLifecycle();
    const keys: KeyRef[] = [];
    for (let k = 0; k <= agent.keyIndex; k++) keys.push(await this.keyRef(agent.id, k));
    // Preflight: the same checks `sweep` makes, before the agent is retired.
    for (const key of keys) await this.planSweep(key, 'treasury', fleet, {}, 'retire');
    const retired = await this.operator.setAgentStatus(agent.id, 'retired', actor);
    await this.failUnsignablePlans(agent.id);
    const sweeps: SweepReport[] = [];
    for (const key of keys) sweeps.push(await this.sweep(agent.id, key.keyIndex, 'treasury', 'retire'));
    // A key with nothing to sweep is retired now; the others when their sweeps are mined (`finish`).
    await this.retireSweptKeys(agent.id, actor);
    return { agent: retired, sweeps };
  }

  /**
   * Rotates the agent's EVM key (OperatorService.rotateAgentKey) and sweeps what the old address holds to the new
   * one through the lifecycle path, on every chain with an RPC. The rotation stands even if the sweep cannot be
   * built (no RPC, a cap): the report says why, and `airlock agent sweep --key-index N --to current` retries it.
   */
  async rotate(agentIdOrName: string, actor: string, options: { expectKeyIndex?: number } = {}): Promise<RotationReport> {
    const rotation = await this.operator.rotateAgentKey(agentIdOrName, actor, options);
    await this.failUnsignablePlans(rotation.agent.id);
    if (!this.submitter || this.submitter.chains().length === 0) return { rotation, sweep: { error: { code: 'lifecycle_no_rpc', message: 'No RPC is configured: the old address was not swept.' } } };
    try {
      const sweep = await this.sweep(rotation.agent.id, rotation.previous.keyIndex, 'current', 'rotation');
      await this.deps.store.setMeta(rotationSweptMeta(rotation.agent.id, rotation.previous.keyIndex), String(this.deps.clock.now())).catch(() => undefined);
      return { rotation, sweep };
    } catch (e) {
      const error = e instanceof AirlockError ? { code: e.code, message: e.message } : { code: 'internal', message: 'The sweep of the old address failed.' };
      return { rotation, sweep: { error } };
    }
  }

  /**
   * Fails at once the `planned` jobs of the agent that its rotation or retirement just made unsignable (a transfer
   * to the key rotated away, or to a retired agent's address: plannedCallRefusal), before anything new is planned:
   * a new sweep of the same address then takes the nonce such a job held, not a nonce above a hole no transaction
   * will ever fill. The tracker would refuse them too when it resumes them; a job being signed right now loses
   * under the agent's lock and is not broadcast. A job this cannot read or settle is left to the tracker.
   */
  private async failUnsignablePlans(agentId: string): Promise<void> {
    const planned = (await this.deps.store.listLifecycleJobs({ agentId, open: true, limit: 500 })).filter((j) => j.state === 'planned');
    for (const job of planned) {
      try {
        const [entry] = await this.deps.store.readAudit(job.auditSeq, 1);
        if (!entry || entry.seq !== job.auditSeq || entry.type !== 'lifecycle.planned' || entry.data.jobId !== job.id) continue;
        const payload = entry.data.payload;
        const { intent } = this.evm().decode('evm.transaction', payload, { address: job.from });
        const now = this.deps.clock.now();
        await this.deps.store.transaction(async (tx) => {
          await tx.getAgent(agentId); // the agent's lock, as for the signature's record
          const current = await tx.getLifecycleJob(job.id);
          if (!current || current.state !== 'planned') return;
          const refused = await this.plannedCallRefusal(tx, job, payload, intent);
          if (refused) await this.finishIn(tx, job, { state: 'failed', failure: notSignedReason(refused) }, now);
        }, { affinity: agentId });
      } catch {
        // Left planned: the tracker's resume judges it the same way.
      }
    }
  }

  /**
   * Scheduled rotation (`lifecycle.rotate_every` in the fleet policy): every active agent whose current key is
   * older than that is rotated and its old address swept. Several instances may run this pass at once: a
   * rotation only happens if the key is still the one this pass read (`expectKeyIndex`).
   */
  async rotationPass(): Promise<{ rotated: string[]; errors: { agentId: string; code: string }[]; sweepsResumed: string[]; sweepErrors: { agentId: string; keyIndex: number; code: string }[] }> {
    const out = { rotated: [] as string[], errors: [] as { agentId: string; code: string }[], ...(await this.resumeRotationSweeps()) };
    const every = (await this.fleetLifecycle()).rotateEveryMs;
    if (every === undefined) return out;
    const now = this.deps.clock.now();
    for (const agent of await this.activeAgents()) {
      if (agent.status !== 'active') continue;
      const current = (await this.deps.store.listAgentKeys(agent.id)).find((k) => k.keyIndex === agent.keyIndex);
      if (!current || current.createdAt + every > now) continue;
      try {
        await this.rotate(agent.id, 'system:rotate_every', { expectKeyIndex: agent.keyIndex });
        out.rotated.push(agent.id);
      } catch (e) {
        const code = e instanceof AirlockError ? e.code : 'internal';
        if (code !== 'conflict') out.errors.push({ agentId: agent.id, code });
      }
    }
    return out;
  }

  /**
   * The sweep of a rotated-away key whose rotation committed but whose sweep was never built: the daemon died between
   * the two (the rotation is one transaction, its sweep the next ones), or the sweep failed (an RPC that did not
   * answer, a gas price above the bounds, a cap) on a scheduled rotation no operator watches. Found by review: nothing
   * swept such a key later (hot-balance caps read current keys only, orphans only retired or idle agents), so an
   * active agent's funds stayed on the key rotated away as exposed, unreported. Each pass sweeps every rotated key of
   * an active or frozen agent not yet marked swept (and rotated over a minute ago: a `rotate` still building its own
   * sweep is left to it) to its current key, as `rotate` would have, chain by chain; once every chain's sweep is
   * built (jobs planned, or nothing to move) the key is marked and read no more. A native balance too small to pay
   * its fee within the 10% bound does not hold back the tokens beside it (sweepResumed).
   */
  private async resumeRotationSweeps(): Promise<{ sweepsResumed: string[]; sweepErrors: { agentId: string; keyIndex: number; code: string }[] }> {
    const out = { sweepsResumed: [] as string[], sweepErrors: [] as { agentId: string; keyIndex: number; code: string }[] };
    if (!this.submitter || this.submitter.chains().length === 0) return out;
    const fleet = await this.fleetLifecycle();
    for (const agent of await this.activeAgents()) {
      if (agent.keyIndex === 0) continue;
      for (const key of await this.deps.store.listAgentKeys(agent.id)) {
        if (key.keyIndex >= agent.keyIndex || key.state !== 'rotated') continue;
        if (key.rotatedAt !== undefined && this.deps.clock.now() - key.rotatedAt < ROTATION_SWEEP_GRACE_MS) continue;
        const marker = rotationSweptMeta(agent.id, key.keyIndex);
        if ((await this.deps.store.getMeta(marker)) !== undefined) continue;
        let swept = true;
        for (const chain of this.sweepChains(fleet)) {
          try {
            out.sweepsResumed.push(...(await this.sweepResumed(agent.id, key.keyIndex, chain, fleet)));
          } catch (e) {
            swept = false;
            out.sweepErrors.push({ agentId: agent.id, keyIndex: key.keyIndex, code: e instanceof AirlockError ? e.code : 'internal' });
          }
        }
        if (swept) await this.deps.store.setMeta(marker, String(this.deps.clock.now()));
      }
    }
    return out;
  }

  /**
   * One chain of a resumed rotation sweep. A native balance whose sweep would pay more than the fee share
   * (`lifecycle_fee_too_high`, refused and recorded for the whole key before anything is signed) must not strand the
   * tokens beside it (found by the review of the resume: one such refusal marked the key, and 10,000 USDC stayed on
   * it for good): the chain's tokens are swept without it, and what is left is dust at this gas price.
   */
  private async sweepResumed(agentId: string, keyIndex: number, chain: string, fleet: LifecyclePolicy): Promise<string[]> {
    try {
      return (await this.sweep(agentId, keyIndex, 'current', 'rotation', { chains: [chain] })).jobIds;
    } catch (e) {
      if (!(e instanceof AirlockError) || e.code !== 'lifecycle_fee_too_high') throw e;
      const tokens = fleet.sweepAssets.get(chain) ?? [];
      return tokens.length === 0 ? [] : (await this.sweep(agentId, keyIndex, 'current', 'rotation', { chains: [chain], assets: tokens })).jobIds;
    }
  }

  /** The chains a sweep reads by default: every chain with an RPC, a treasury or sweep assets. */
  private sweepChains(fleet: LifecyclePolicy): string[] {
    return [...new Set([...(this.submitter?.chains() ?? []), ...fleet.treasury.keys(), ...fleet.sweepAssets.keys()])].sort();
  }

  /**
   * Marks the keys of a retired agent `retired` in the key registry once nothing of theirs is left to sweep: no
   * open job, and no failed sweep that a later mined one did not replace (that key stays `sweep_failed` until
   * swept). Audited `agent.key_retired` per key.
   */
  private async retireSweptKeys(agentId: string, actor: string): Promise<void> {
    const agent = await this.deps.store.getAgent(agentId);
    if (!agent || agent.status !== 'retired') return;
    const jobs = await this.deps.store.listLifecycleJobs({ agentId, limit: 500 });
    for (const key of await this.deps.store.listAgentKeys(agentId)) {
      if (key.state === 'retired') continue;
      const own = jobs.filter((j) => j.keyIndex === key.keyIndex);
      const open = own.some(isOpen);
      const unresolved = unresolvedSweepFailures(own).length > 0;
      if (!open && !unresolved) await this.operator.retireAgentKey(agentId, key.keyIndex, actor);
    }
  }

  // ---- jobs ----

  async getJob(id: string): Promise<LifecycleJob> {
    const job = await this.deps.store.getLifecycleJob(id);
    if (!job) throw new AirlockError('not_found', 'No such lifecycle job.');
    return job;
  }

  async listJobs(filter: LifecycleJobFilter & { agent?: string }): Promise<LifecycleJob[]> {
    const { agent, ...rest } = filter;
    const agentId = agent !== undefined ? (await this.operator.getAgent(agent)).id : rest.agentId;
    return this.deps.store.listLifecycleJobs({ ...rest, ...(agentId ? { agentId } : {}) });
  }

  /** Whether the agent's key is retired yet: a retired agent's key is `sweeping` until its sweeps are mined. */
  async keyLifecycle(agent: Agent): Promise<AgentKeyLifecycle> {
    const jobs = await this.deps.store.listLifecycleJobs({ agentId: agent.id, limit: 200 });
    const openJobs = jobs.filter(isOpen).map((j) => j.id);
    const failedJobs = jobs.filter((j) => j.state === 'failed').map((j) => j.id);
    if (agent.status !== 'retired') return { keyState: 'active', openJobs, failedJobs };
    if (openJobs.length > 0) return { keyState: 'sweeping', openJobs, failedJobs };
    // A failed retire sweep counts until a later sweep of the same asset was mined.
    const retireFailures = unresolvedSweepFailures(jobs);
    return { keyState: retireFailures.length > 0 ? 'sweep_failed' : 'retired', openJobs, failedJobs };
  }

  /**
   * One pass of the tracker (runtime.ts runs it in the background): each open job's receipt is read; a mined
   * one is finished (`lifecycle.mined`, or `lifecycle.failed` when it reverted), the others get their stored
   * bytes broadcast again. A node that says the nonce is used while no receipt of ours exists fails the job. A
   * job left `planned` (by a crash between its plan and its recorded signature) for PLANNED_RESUME_AFTER_MS is
   * signed from its plan, recorded and broadcast, or failed when the signature is refused (resumePlanned).
   */
  async track(): Promise<{ mined: number; failed: number; rebroadcast: number; resumed: number }> {
    const out = { mined: 0, failed: 0, rebroadcast: 0, resumed: 0 };
    if (!this.submitter) return out;
    const open = (await this.deps.store.listLifecycleJobs({ open: true, limit: 500 })).reverse();
    const now = this.deps.clock.now();
    for (const job of open) {
      if (!this.submitter.supports(job.chain)) continue;
      if (job.state === 'planned' || !job.rawTransaction || !job.transactionHash) {
        if (job.state !== 'planned' || now - job.updatedAt < PLANNED_RESUME_AFTER_MS) continue;
        const resumed = await this.resumePlanned(job).catch(() => 'later' as const);
        if (resumed === 'signed') out.resumed++;
        if (resumed === 'failed') out.failed++;
        continue;
      }
      const { rawTransaction, transactionHash } = job;
      const receipt = await this.submitter.receipt(job.chain, transactionHash).catch(() => undefined);
      if (receipt) {
        const failure = receipt.status === 'reverted' ? 'reverted' : undefined;
        await this.finish(job, { state: failure ? 'failed' : 'mined', blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed, ...(failure ? { failure } : {}) });
        if (failure) out.failed++;
        else out.mined++;
        continue;
      }
      try {
        await this.submitter.sendRawTransaction(job.chain, rawTransaction);
        await this.deps.store.recordLifecycleBroadcast(job.id, this.deps.clock.now());
        out.rebroadcast++;
      } catch (e) {
        const message = e instanceof Error ? `${e.message} ${(e as { details?: string }).details ?? ''}` : String(e);
        // Two answers are final: the nonce went to another transaction, or the address can no longer pay for this
        // one (its balance fell since the sweep was built). Either way these bytes can never be mined at a profit,
        // and a new sweep built later takes the same nonce unless another transaction did: the chain accepts at
        // most one of them. Anything else (a timeout, a node that is behind) is retried with the same bytes.
        const final = /nonce too low|nonce has already been used/i.test(message) ? 'nonce_used_elsewhere: another transaction of this key took the nonce'
          : /insufficient funds/i.test(message) ? 'insufficient_funds: the address cannot pay for this transaction any more' : undefined;
        if (final) {
          // Checked once more: the receipt may have appeared between the two reads.
          const late = await this.submitter.receipt(job.chain, transactionHash).catch(() => undefined);
          if (!late) {
            await this.finish(job, { state: 'failed', failure: final });
            out.failed++;
          }
        }
      }
    }
    return out;
  }

  private async finish(job: LifecycleJob, finish: LifecycleFinish): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.store.transaction((tx) => this.finishIn(tx, job, finish, now), { affinity: job.agentId });
    // The last sweep of a retired agent's key mined: the key is retired (a failed one keeps it `sweep_failed`).
    if (finish.state === 'mined') await this.retireSweptKeys(job.agentId, 'system');
  }

  /** `lifecycle.mined` or `lifecycle.failed` and the job's final state, in `tx`; a job no longer open is left as it is. */
  private async finishIn(tx: StoreTx, job: LifecycleJob, finish: LifecycleFinish, now: number): Promise<void> {
    const current = await tx.getLifecycleJob(job.id);
    if (!current || !isOpen(current)) return; // another instance finished it
    const entry = await tx.appendAudit({
      at: now, type: finish.state === 'mined' ? 'lifecycle.mined' : 'lifecycle.failed', actor: 'system', agentId: job.agentId, action: 'evm.transaction', decision: finish.state === 'mined' ? 'allow' : 'error',
      data: {
        jobId: job.id, kind: job.kind, keyIndex: job.keyIndex, chain: job.chain, purpose: job.purpose,
        ...(job.transactionHash ? { transactionHash: job.transactionHash } : {}),
        ...(finish.blockNumber !== undefined ? { blockNumber: finish.blockNumber.toString() } : {}),
        ...(finish.gasUsed !== undefined ? { gasUsed: finish.gasUsed.toString() } : {}),
        ...(finish.failure ? { reason: finish.failure } : {}),
      },
    });
    await tx.finishLifecycleJob(job.id, finish, now, entry.seq);
  }

  // ---- orphans and hot-balance caps ----

  /**
   * Agents with no session activity for the fleet's `lifecycle.orphan_after`, and retired agents with a
   * non-zero balance on any key index (read through the RPC; chains without one are not read). A retired agent
   * whose sweeps are still open is not an orphan: it is being swept.
   */
  async orphans(): Promise<Orphan[]> {
    const fleet = await this.fleetLifecycle();
    const now = this.deps.clock.now();
    const out: Orphan[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.deps.store.listAgents({ limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      after = page[page.length - 1]!.id;
      for (const agent of page) {
        const lastActivityAt = await this.lastSessionActivity(agent);
        const inactive = agent.status !== 'retired' && fleet.orphanAfterMs !== undefined && now - lastActivityAt >= fleet.orphanAfterMs;
        if (agent.status !== 'retired' && !inactive) continue;
        if (agent.status === 'retired' && (await this.deps.store.listLifecycleJobs({ agentId: agent.id, open: true, limit: 1 })).length > 0) continue;
        const balances = await this.balancesOf(agent, fleet);
        if (agent.status === 'retired' && balances.length === 0) continue;
        out.push({ agentId: agent.id, name: agent.name, status: agent.status, reason: inactive ? 'inactive' : 'retired_with_balance', lastActivityAt, balances });
      }
      if (page.length < 500) break;
    }
    return out;
  }

  /**
   * The periodic orphan pass: each orphan is reported once (`lifecycle.orphan_found`, remembered in the store's
   * meta table so neither a later tick nor another instance reports it again) and, with `sweep_orphans`,
   * swept to the treasury. `sweep` forces the sweep (the operator's `lifecycle orphans --sweep`).
   */
  async orphanPass(options: { sweep?: boolean } = {}): Promise<{ orphans: Orphan[]; reported: string[]; sweeps: { agentId: string; jobIds: string[]; error?: string }[] }> {
    const fleet = await this.fleetLifecycle();
    const orphans = await this.orphans();
    const reported: string[] = [];
    const sweeps: { agentId: string; jobIds: string[]; error?: string }[] = [];
    for (const orphan of orphans) {
      const marker = this.deps.randomId('orp');
      if ((await this.deps.store.initMeta(`lifecycle_orphan:${orphan.agentId}:${orphan.reason}`, marker)) === marker) {
        const now = this.deps.clock.now();
        await this.deps.store.transaction((tx) => tx.appendAudit({ at: now, type: 'lifecycle.orphan_found', actor: 'system', agentId: orphan.agentId, data: { reason: orphan.reason, status: orphan.status, lastActivityAt: orphan.lastActivityAt, balances: orphan.balances } }));
        reported.push(orphan.agentId);
      }
      if (!(options.sweep ?? fleet.sweepOrphans) || orphan.balances.length === 0) continue;
      const jobIds: string[] = [];
      try {
        for (const keyIndex of [...new Set(orphan.balances.map((b) => b.keyIndex))]) jobIds.push(...(await this.sweep(orphan.agentId, keyIndex, 'treasury', 'orphan')).jobIds);
        sweeps.push({ agentId: orphan.agentId, jobIds });
      } catch (e) {
        sweeps.push({ agentId: orphan.agentId, jobIds, error: e instanceof AirlockError ? e.code : 'internal' });
      }
    }
    return { orphans, reported, sweeps };
  }

  /**
   * Hot-balance caps: agents whose current address holds more of a capped asset than the lower of the fleet's
   * and the agent's cap get the excess swept to the treasury. Which agents are read: those that received a
   * capped ERC-20 (Transfer logs since the last checked block, remembered per chain), and with `full` every
   * agent with a cap (native balance increases leave no log: the scheduled full pass finds them).
   */
  async hotBalancePass(options: { full?: boolean } = {}): Promise<{ checked: number; jobIds: string[]; errors: { agentId: string; code: string }[] }> {
    const out = { checked: 0, jobIds: [] as string[], errors: [] as { agentId: string; code: string }[] };
    if (!this.submitter) return out;
    const fleet = await this.fleetLifecycle();
    const agents = await this.activeAgents();
    const caps = new Map<string, Map<string, bigint>>(); // agentId -> asset -> cap
    for (const agent of agents) {
      const own = await this.lifecycleAt(agentScope(agent.id));
      const assets = new Set([...fleet.hotBalanceCaps.keys(), ...own.hotBalanceCaps.keys()]);
      const mine = new Map<string, bigint>();
      for (const asset of assets) {
        const cap = effectiveHotBalanceCap(asset, fleet, own);
        if (cap !== undefined) mine.set(asset, cap);
      }
      if (mine.size > 0) caps.set(agent.id, mine);
    }
    const toCheck = new Set<string>(options.full ? caps.keys() : []);
    const byAddress = new Map(agents.filter((a) => caps.has(a.id)).map((a) => [a.address, a.id]));
    for (const chain of this.submitter.chains()) {
      const tokens = [...new Set([...caps.values()].flatMap((m) => [...m.keys()]))].filter((a) => a.startsWith(`${chain}/erc20:`)).map((a) => a.slice(`${chain}/erc20:`.length));
      const latest = await this.submitter.blockNumber(chain).catch(() => undefined);
      if (latest === undefined) continue;
      const metaKey = `lifecycle_hot_block:${chain}`;
      const last = await this.deps.store.getMeta(metaKey);
      if (tokens.length > 0 && byAddress.size > 0 && last !== undefined && BigInt(last) < latest) {
        const seen = await this.submitter.incomingTransfers(chain, tokens, [...byAddress.keys()], BigInt(last) + 1n, latest).catch(() => undefined);
        if (seen === undefined) continue; // the block is not moved on: the next pass reads the range again
        for (const t of seen) {
          const agentId = byAddress.get(t.to);
          if (agentId) toCheck.add(agentId);
        }
      }
      await this.deps.store.setMeta(metaKey, latest.toString());
    }
    for (const agentId of toCheck) {
      const agent = agents.find((a) => a.id === agentId)!;
      const agentCaps = caps.get(agentId)!;
      out.checked++;
      const byChain = new Map<string, Map<string, bigint>>();
      for (const [asset, cap] of agentCaps) {
        const chain = asset.slice(0, asset.indexOf('/'));
        if (!this.submitter.supports(chain)) continue;
        const balance = await this.balanceOf(chain, asset, agent.address).catch(() => undefined);
        if (balance === undefined || balance <= cap) continue;
        if (!byChain.has(chain)) byChain.set(chain, new Map());
        byChain.get(chain)!.set(asset, cap);
      }
      for (const [chain, keep] of byChain) {
        try {
          const report = await this.sweep(agent.id, agent.keyIndex, 'treasury', 'hot_balance_cap', { chains: [chain], keep, assets: [...keep.keys()] });
          out.jobIds.push(...report.jobIds);
        } catch (e) {
          out.errors.push({ agentId, code: e instanceof AirlockError ? e.code : 'internal' });
        }
      }
    }
    return out;
  }

  // ---- internals ----

  private evm(): ChainAdapter {
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter) throw new AirlockError('internal', 'EVM adapter not configured.');
    return adapter;
  }

  private requireRpc(chain: string): EvmSubmitter {
    if (!this.submitter || !this.submitter.supports(chain)) {
      throw new AirlockError('lifecycle_no_rpc', `No RPC is configured for ${chain}; the lifecycle path cannot read or submit there.`, { hints: ['Set AIRLOCK_EVM_RPC (e.g. eip155:8453=https://…) and restart, or retire with --no-sweep.'], details: { chain } });
    }
    return this.submitter;
  }

  private async rpc<T>(read: (s: EvmSubmitter) => Promise<T>, message = 'The RPC did not answer a lifecycle read; nothing was signed.'): Promise<T> {
    if (!this.submitter) throw new AirlockError('lifecycle_no_rpc', 'No RPC is configured (AIRLOCK_EVM_RPC).');
    try {
      return await read(this.submitter);
    } catch (cause) {
      if (cause instanceof AirlockError) throw cause;
      throw new AirlockError('lifecycle_rpc_unavailable', message, { cause });
    }
  }

  private async keyRef(agentIdOrName: string, keyIndex: number): Promise<KeyRef> {
    const agent = await this.operator.getAgent(agentIdOrName);
    if (!Number.isSafeInteger(keyIndex) || keyIndex < 0 || keyIndex > agent.keyIndex) {
      throw new AirlockError('lifecycle_key_index_invalid', `The agent's key indexes are 0 to ${agent.keyIndex}.`);
    }
    const adapter = this.evm();
    const path = adapter.derivationPath(agent.accountIndex, keyIndex);
    const address = keyIndex === agent.keyIndex ? agent.address : adapter.addressFromPublicKey(await this.deps.keys.getPublicKey(path)).toLowerCase();
    return { agent, keyIndex, path, address };
  }

  private async balanceOf(chain: string, asset: string, address: string): Promise<bigint> {
    const submitter = this.requireRpc(chain);
    if (asset === nativeAsset(chain)) return submitter.nativeBalance(chain, address);
    return submitter.tokenBalance(chain, asset.slice(`${chain}/erc20:`.length), address);
  }

  /**
   * Balances worth sweeping of every key index of the agent, on every chain with an RPC. A native balance that
   * cannot pay for its own transfer (at most 21000 x the gas price: what a token sweep's unused gas leaves) is
   * dust: no sweep can move it, so it makes no orphan.
   */
  private async balancesOf(agent: Agent, fleet: LifecyclePolicy): Promise<Orphan['balances']> {
    const out: Orphan['balances'] = [];
    if (!this.submitter) return out;
    for (const chain of this.submitter.chains()) {
      const gasPrice = await this.submitter.gasPrice(chain).catch(() => undefined);
      for (let k = 0; k <= agent.keyIndex; k++) {
        const key = await this.keyRef(agent.id, k);
        for (const asset of [nativeAsset(chain), ...(fleet.sweepAssets.get(chain) ?? [])]) {
          const amount = await this.balanceOf(chain, asset, key.address).catch(() => 0n);
          const dust = asset === nativeAsset(chain) ? NATIVE_TRANSFER_GAS * (gasPrice ?? 0n) : 0n;
          if (amount > dust) out.push({ keyIndex: k, address: key.address, chain, asset, amount: amount.toString() });
        }
      }
    }
    return out;
  }

  private async lastSessionActivity(agent: Agent): Promise<number> {
    const recent = await this.deps.store.queryAudit({ agentId: agent.id, newestFirst: true, limit: 50 });
    const own = recent.find((e) => e.actor === 'agent' || e.sessionId !== undefined);
    if (own) return own.at;
    const sessions = await this.deps.store.listSessions({ agentId: agent.id, includeInactive: true, now: this.deps.clock.now() });
    return Math.max(agent.createdAt, ...sessions.map((s) => s.createdAt));
  }

  /** Active and frozen agents: a frozen agent's key may be the compromised one, its wallet is capped all the more. */
  private async activeAgents(): Promise<Agent[]> {
    const out: Agent[] = [];
    for (const status of ['active', 'frozen'] as const) {
      let after: string | undefined;
      for (;;) {
        const page = await this.deps.store.listAgents({ status, limit: 500, ...(after ? { after } : {}) });
        out.push(...page);
        if (page.length < 500) break;
        after = page[page.length - 1]!.id;
      }
    }
    return out;
  }

  /** Reads what a sweep needs and checks every chain before anything is signed. */
  private async planSweep(key: KeyRef, destination: SweepDestination, fleet: LifecyclePolicy, options: SweepOptions, reason: string) {
    if (destination === 'current' && key.keyIndex === key.agent.keyIndex) {
      throw new AirlockError('invalid_request', 'The key index is the agent\'s current key: sweep it to the treasury, or name an older key index.');
    }
    if (destination === 'current' && key.agent.status === 'retired') {
      throw new AirlockError('lifecycle_current_key_unavailable', 'The agent is retired: its current address is no destination for a sweep. Sweep to the treasury.', { details: { agentId: key.agent.id } });
    }
    const chains = options.chains ?? this.sweepChains(fleet);
    const plans: { chain: string; gasPrice: bigint; rpcNonce: number; nativeBalance: bigint; transactions: BuiltTransaction[]; skipped: SweepSkip[] }[] = [];
    const open = await this.deps.store.listLifecycleJobs({ agentId: key.agent.id, open: true, limit: 500 });
    for (const chain of chains) {
      this.requireRpc(chain);
      const assets = options.assets ?? [nativeAsset(chain), ...(fleet.sweepAssets.get(chain) ?? [])];
      const tokens = assets.filter((a) => a !== nativeAsset(chain));
      const reads = await this.rpc(async (s) => ({
        gasPrice: await s.gasPrice(chain),
        nonce: await s.pendingNonce(chain, key.address),
        native: await s.nativeBalance(chain, key.address),
        tokens: await Promise.all(tokens.map((a) => s.tokenBalance(chain, a.slice(`${chain}/erc20:`.length), key.address))),
      }));
      const recipient = destination === 'current' ? key.agent.address : fleet.treasury.get(chain);
      const hasBalance = reads.native > 0n || reads.tokens.some((b) => b > 0n);
      if (hasBalance) await this.boundGasPrice(key, chain, reads.gasPrice, fleet, 'sweep', reason);
      if (!recipient) {
        if (!hasBalance) continue;
        throw new AirlockError('lifecycle_no_treasury', `The agent holds a balance on ${chain}, and the fleet policy names no treasury there.`, { hints: ['Set lifecycle.treasury in the fleet policy (docs/policy.md#lifecycle), or retire with --no-sweep to leave the funds.'], details: { chain } });
      }
      const skipped: SweepSkip[] = [];
      const transactions: BuiltTransaction[] = [];
      const openAsset = (asset: string) => open.some((j) => j.origin === 'sweep' && j.keyIndex === key.keyIndex && j.asset === asset);
      for (const [i, asset] of tokens.entries()) {
        const keep = options.keep?.get(asset) ?? 0n;
        const balance = reads.tokens[i]!;
        if (openAsset(asset)) skipped.push({ chain, asset, reason: 'sweep_open' });
        else if (balance === 0n) skipped.push({ chain, asset, reason: 'empty' });
        else if (balance <= keep) skipped.push({ chain, asset, reason: 'at_or_below_cap' });
        else {
          const token = asset.slice(`${chain}/erc20:`.length);
          const data = erc20TransferData(recipient, balance - keep);
          const estimate = await this.rpc((s) => s.estimateGas(chain, { from: key.address, to: token, data, value: 0n }));
          transactions.push({ call: { to: token, data, value: 0n }, gas: withMargin(estimate), sweepAsset: asset, destination });
        }
      }
      if (assets.includes(nativeAsset(chain))) {
        const asset = nativeAsset(chain);
        if (openAsset(asset)) skipped.push({ chain, asset, reason: 'sweep_open' });
        else if (reads.native === 0n) skipped.push({ chain, asset, reason: 'empty' });
        else if (reads.native <= (options.keep?.get(asset) ?? 0n)) skipped.push({ chain, asset, reason: 'at_or_below_cap' });
        // The value is settled inside the signing transaction, after the fees of every open job are kept back.
        else {
          // Preflight of the fee-share check plan() makes (so that retire refuses before the agent is retired).
          const reserved = open.filter((j) => j.chain === chain && j.from === key.address).reduce((sum, j) => sum + j.maxFee + (j.kind === 'native_transfer' ? j.amount : 0n), 0n)
            + transactions.reduce((sum, t) => sum + t.gas * reads.gasPrice, 0n);
          const fee = NATIVE_TRANSFER_GAS * reads.gasPrice;
          const value = reads.native - (options.keep?.get(asset) ?? 0n) - reserved - fee;
          if (value > 0n && fee * 100n > value * MAX_FEE_SHARE_PERCENT) await this.refuse(key, chain, 'sweep', reason, feeTooHigh(chain, fee, value, reads.gasPrice));
          transactions.push({ call: { to: recipient, data: '0x', value: 0n }, gas: NATIVE_TRANSFER_GAS, sweepAsset: asset, destination });
        }
      }
      plans.push({ chain, gasPrice: reads.gasPrice, rpcNonce: reads.nonce, nativeBalance: reads.native - (options.keep?.get(nativeAsset(chain)) ?? 0n), transactions, skipped });
    }
    return plans;
  }

  private classify(adapter: ChainAdapter, key: KeyRef, chain: string, fleet: LifecyclePolicy, call: LifecycleCall, fees: { nonce: number; gas: bigint; gasPrice: bigint }) {
    const payload = lifecycleTransactionPayload(chain, call, fees);
    const decoded = adapter.decode('evm.transaction', payload, { address: key.address });
    const treasury = fleet.treasury.get(chain);
    const classified = classifyLifecycleCall(decoded.intent, call, { from: key.address, current: key.agent.address, ...(treasury ? { treasury } : {}) });
    return { payload, decoded, classified };
  }

  /** Steps 2 to 4 of one transaction: plan it (commit), sign it bound to the plan, record the bytes (commit). */
  private async signAndRecord(key: KeyRef, chain: string, gasPrice: bigint, rpcNonce: number, origin: LifecycleJobOrigin, purpose: string, built: BuiltTransaction, nativeBalance?: bigint): Promise<LifecycleJob | 'dust'> {
    const planned = await this.plan(key, chain, gasPrice, rpcNonce, origin, purpose, built, nativeBalance);
    if (planned === 'dust') return 'dust';
    this.options.beforeSign?.(planned.job);
    // Refused or not answered here, the job fails at once with the reason (nothing was signed): the operator
    // sees why and runs the command again. A crash instead leaves it `planned` for the tracker (resumePlanned).
    return this.signPlanned(planned.job, planned.payload, (e) => this.failUnsigned(planned.job, e));
  }

  /**
   * Step 2, in ONE store transaction: the agent's lock, the nonce above every open job of the address, the
   * transaction built, decoded and classified (default deny), the fleet's caps checked, and then the job (state
   * `planned`, no bytes), its `lifecycle.planned` audit entry (the unsigned payload and its digest, the key, the
   * job) and the ledger charge written together. Nothing is signed here: a separate key process signs only what
   * a committed entry shows planned. `nativeBalance` (sweeps of the native coin): what the address holds minus
   * what must stay; the value becomes that minus the fees of every open job of the address and this
   * transaction's own fee ('dust' when nothing would be left to move).
   */
  private async plan(key: KeyRef, chain: string, gasPrice: bigint, rpcNonce: number, origin: LifecycleJobOrigin, purpose: string, built: BuiltTransaction, nativeBalance?: bigint): Promise<{ job: LifecycleJob; payload: LifecycleTransactionPayload } | 'dust'> {
    const adapter = this.evm();
    const now = this.deps.clock.now();
    const id = this.deps.randomId('lcj');
    const planned = await this.deps.store.transaction(async (tx): Promise<{ job: LifecycleJob; payload: LifecycleTransactionPayload } | 'dust' | { refused: AirlockError }> => {
      const row = await tx.getAgent(key.agent.id); // the agent's lock: its lifecycle jobs and nonces serialize here
      // A sweep to the agent's current address: the address read before the lock must still be the current one,
      // and the agent not retired (a rotation or retirement that raced this sweep would leave funds on a dead key).
      if (built.destination === 'current' && (!row || row.status === 'retired' || row.keyIndex !== key.agent.keyIndex || row.address.toLowerCase() !== key.agent.address.toLowerCase())) {
        return { refused: new AirlockError('lifecycle_current_key_unavailable', `The agent ${row?.status === 'retired' ? 'was retired' : 'rotated its key'} since this sweep to its current address was read; nothing was signed. Sweep again (to the treasury when the agent is retired).`, { details: { agentId: key.agent.id, keyIndex: key.keyIndex } }) };
      }
      // The treasury and caps as they are now, read in this transaction: the fleet policy may have changed since
      // the sweep was planned, and a transfer to a treasury that is no longer one is refused like any other.
      const policy = this.compiledOf(await tx.getPolicy(FLEET_SCOPE));
      const open = (await tx.openLifecycleJobs(key.agent.id)).filter((j) => j.chain === chain && j.from === key.address);
      const nonce = Math.max(rpcNonce, ...open.map((j) => j.nonce + 1));
      let call = built.call;
      if (built.sweepAsset === nativeAsset(chain) && origin === 'sweep') {
        const reserved = open.reduce((sum, j) => sum + j.maxFee + (j.kind === 'native_transfer' ? j.amount : 0n), 0n);
        const fee = built.gas * gasPrice;
        const value = (nativeBalance ?? 0n) - reserved - fee;
        if (value <= 0n) return 'dust' as const;
        // A fee out of proportion to what moves (a gas price no bound caught): refused, nothing is signed.
        if (fee * 100n > value * MAX_FEE_SHARE_PERCENT) return { refused: feeTooHigh(chain, fee, value, gasPrice) };
        call = { ...call, value };
      }
      const { payload, decoded, classified } = this.classify(adapter, key, chain, policy, call, { nonce, gas: built.gas, gasPrice });
      if (origin === 'sweep' && (classified.kind === 'revocation' || classified.asset !== built.sweepAsset)) throw new AirlockError('internal', 'a sweep built something other than its transfer');
      const maxFee = built.gas * gasPrice;
      await this.checkCaps(tx, key.agent.id, chain, classified, maxFee, policy, now);
      const entry = await tx.appendAudit({
        at: now, type: 'lifecycle.planned', actor: 'operator', agentId: key.agent.id, action: 'evm.transaction', decision: 'allow',
        data: {
          jobId: id, kind: classified.kind, origin, purpose, keyIndex: key.keyIndex, path: key.path, chain, from: key.address, nonce,
          payload, digest: bytesToHex(decoded.digest), summary: classified.summary, intent: decoded.intent.summary,
          ...(classified.asset ? { asset: classified.asset, amount: classified.amount.toString() } : {}),
          ...(classified.recipient ? { recipient: classified.recipient } : {}),
        },
      });
      const job: LifecycleJob = {
        id, agentId: key.agent.id, keyIndex: key.keyIndex, chain, from: key.address, nonce, origin, kind: classified.kind, purpose,
        ...(classified.asset ? { asset: classified.asset } : {}),
        amount: classified.amount,
        ...(classified.recipient ? { recipient: classified.recipient } : {}),
        to: call.to!, maxFee, summary: classified.summary, state: 'planned', auditSeq: entry.seq, broadcasts: 0, createdAt: now, updatedAt: now,
      };
      await tx.appendLedger(lifecycleCharges(key.agent.id, chain, classified, maxFee), now, entry.seq);
      await tx.insertLifecycleJob(job);
      return { job, payload };
    }, { affinity: key.agent.id });
    if (planned !== 'dust' && 'refused' in planned) return this.refuse(key, chain, origin, purpose, planned.refused);
    return planned;
  }

  /**
   * Bounds the gas price the RPC quoted before anything is built with it: at most the fleet's
   * `lifecycle.max_gas_price` for the chain and, when the node has a fee history, at most FEE_HISTORY_MULTIPLE x
   * (the highest recent base fee + the highest recent median priority fee). A higher quote (a lying or broken RPC,
   * a fee spike) is refused with `lifecycle_gas_price_too_high`, audited, and nothing is signed.
   */
  private async boundGasPrice(key: KeyRef, chain: string, gasPrice: bigint, fleet: LifecyclePolicy, origin: LifecycleJobOrigin, purpose: string): Promise<void> {
    const configured = fleet.maxGasPrice.get(chain);
    if (configured !== undefined && gasPrice > configured) {
      await this.refuse(key, chain, origin, purpose, new AirlockError('lifecycle_gas_price_too_high', `The RPC quotes a gas price of ${gasPrice} wei on ${chain}, above the fleet's lifecycle.max_gas_price (${configured}); nothing was signed.`, {
        details: { chain, gasPrice: gasPrice.toString(), limit: configured.toString(), bound: 'max_gas_price' },
      }));
    }
    const recent = this.submitter?.recentFees ? await this.submitter.recentFees(chain).catch(() => undefined) : undefined;
    if (!recent) return;
    const limit = FEE_HISTORY_MULTIPLE * (recent.maxBaseFee + recent.maxPriorityFee);
    if (gasPrice > limit) {
      await this.refuse(key, chain, origin, purpose, new AirlockError('lifecycle_gas_price_too_high', `The RPC quotes a gas price of ${gasPrice} wei on ${chain}, more than ${FEE_HISTORY_MULTIPLE} times the recent base and priority fees (${limit}); nothing was signed.`, {
        details: { chain, gasPrice: gasPrice.toString(), limit: limit.toString(), bound: 'fee_history' },
      }));
    }
  }

  /** A lifecycle transaction refused before anything was signed: `lifecycle.refused` (code and reason), then the error. */
  private async refuse(key: KeyRef, chain: string, origin: LifecycleJobOrigin, purpose: string, error: AirlockError): Promise<never> {
    const now = this.deps.clock.now();
    await this.deps.store.transaction((tx) => tx.appendAudit({
      at: now, type: 'lifecycle.refused', actor: 'operator', agentId: key.agent.id, action: 'evm.transaction', decision: 'deny',
      data: { code: error.code, message: error.message, origin, purpose, keyIndex: key.keyIndex, chain, from: key.address, ...(error.details ?? {}) },
    }), { affinity: key.agent.id });
    throw error;
  }

  /**
   * Steps 3 and 4 for a planned job: the signature, bound to its `lifecycle.planned` entry (a key process checks
   * that entry and the call itself; an in-process backend signs the digest), checked by the adapter, then the bytes
   * recorded with `lifecycle.signed` in one transaction. Only then can they be broadcast.
   *
   * The plan is judged again against the agent and the fleet's treasury as they are now (plannedCallRefusal), before
   * the signature and once more under the agent's lock in the transaction that records it: a job resumed after a
   * crash may come after a rotation, a retirement or a treasury change, and its recorded recipient is then no longer
   * a lifecycle destination. Refused, the job fails (`not_signed: <code>`) and nothing is broadcast.
   *
   * Signing a planned job twice (the tracker resuming it after a crash while, or after, the first try signed) is
   * safe with every backend: a deterministic one (RFC 6979) gives the same bytes; a PKCS#11 token may give other
   * bytes, but no bytes of a planned job leave Airlock before `recordLifecycleSignature` commits them, and only the
   * first signature recorded is kept (the job is `planned` no more), broadcast and re-broadcast: the chain only
   * ever sees one transaction for the nonce. `onSignError`: what to do when the signature is not produced
   * (refused, not answered) or refused before it is recorded, before the error is thrown.
   */
  private async signPlanned(job: LifecycleJob, payload: unknown, onSignError: (e: unknown) => Promise<void>): Promise<LifecycleJob> {
    const adapter = this.evm();
    const signer = { address: job.from };
    const decoded = adapter.decode('evm.transaction', payload, signer);
    let signed;
    try {
      const refusal = await this.plannedCallRefusal(this.deps.store, job, payload, decoded.intent);
      if (refusal) throw refusal;
      const path = adapter.derivationPath((await this.operator.getAgent(job.agentId)).accountIndex, job.keyIndex);
      const signature = await this.signBoundToPlan(job.agentId, job.keyIndex, path, job.auditSeq, 'evm.transaction', payload, decoded.digest);
      signed = adapter.finalize('evm.transaction', decoded, signature, signer);
      if (!signed.signedTransaction || !signed.transactionHash) throw new AirlockError('signature_check_failed', 'The lifecycle transaction was not assembled.');
    } catch (e) {
      await onSignError(e);
      throw e;
    }
    const { signedTransaction, transactionHash } = signed;
    const now = this.deps.clock.now();
    const recorded = await this.deps.store.transaction(async (tx): Promise<LifecycleJob | undefined | { refused: AirlockError }> => {
      await tx.getAgent(job.agentId); // the agent's lock: a concurrent resume of the same job, a rotation or a retirement waits here
      const current = await tx.getLifecycleJob(job.id);
      if (!current || current.state !== 'planned') return current; // recorded (or failed) by someone else first: theirs stands
      // Checked again under the lock: a rotation, retirement or treasury change that committed while this was signed.
      const refused = await this.plannedCallRefusal(tx, job, payload, decoded.intent);
      if (refused) {
        await this.finishIn(tx, job, { state: 'failed', failure: notSignedReason(refused) }, now);
        return { refused };
      }
      const entry = await tx.appendAudit({
        at: now, type: 'lifecycle.signed', actor: 'operator', agentId: job.agentId, action: 'evm.transaction', decision: 'allow',
        data: {
          jobId: job.id, plannedSeq: job.auditSeq, kind: job.kind, origin: job.origin, purpose: job.purpose, keyIndex: job.keyIndex, chain: job.chain, from: job.from, nonce: job.nonce,
          transactionHash, summary: job.summary, intent: decoded.intent.summary,
          ...(job.asset ? { asset: job.asset, amount: job.amount.toString() } : {}),
          ...(job.recipient ? { recipient: job.recipient } : {}),
        },
      });
      const updated = await tx.recordLifecycleSignature(job.id, { rawTransaction: signedTransaction, transactionHash, signedAuditSeq: entry.seq }, now);
      if (!updated) throw new AirlockError('conflict', 'The lifecycle job changed while its signature was recorded.');
      return updated;
    }, { affinity: job.agentId });
    if (recorded && 'refused' in recorded) {
      await onSignError(recorded.refused); // the job is failed already: only what the caller does besides
      throw recorded.refused;
    }
    if (!recorded || recorded.state === 'planned' || recorded.state === 'failed' || !recorded.rawTransaction) {
      throw new AirlockError('conflict', `The lifecycle job ${job.id} failed before its signature was recorded${recorded?.failure ? ` (${recorded.failure})` : ''}; nothing was broadcast.`);
    }
    return recorded;
  }

  /**
   * Why a planned transaction may no longer be signed, judged against the agent and the fleet policy as they are
   * now (undefined: it may). Its call is classified again (classifyLifecycleCall) with the agent's current address
   * and the chain's treasury of today: a transfer to a key the agent rotated away, or to its current address once
   * it is retired, is `lifecycle_current_key_unavailable` (its asset stays where it was: a fresh sweep moves it); a
   * transfer to a treasury the fleet policy no longer names is `lifecycle_kind_refused`, as a fresh plan would be.
   */
  private async plannedCallRefusal(store: Pick<StoreTx, 'getAgent' | 'getPolicy' | 'listAgentKeys'>, job: LifecycleJob, payload: unknown, intent: Intent): Promise<AirlockError | undefined> {
    const planned = lifecycleCallOf(payload);
    if (!planned || planned.chain !== job.chain) return new AirlockError('lifecycle_kind_refused', 'The recorded plan is not a lifecycle transaction of this job; nothing was signed.');
    const agent = await store.getAgent(job.agentId);
    const currentKeyUnavailable = () => new AirlockError('lifecycle_current_key_unavailable', `The agent ${agent?.status === 'retired' ? 'was retired' : 'rotated its key'} since this transfer to its address was planned; nothing was signed. Sweep again (to the treasury when the agent is retired).`, {
      details: { agentId: job.agentId, keyIndex: job.keyIndex, jobId: job.id },
    });
    if (!agent) return currentKeyUnavailable();
    const treasury = this.compiledOf(await store.getPolicy(FLEET_SCOPE)).treasury.get(job.chain);
    try {
      const classified = classifyLifecycleCall(intent, planned.call, { from: job.from, current: agent.address, ...(treasury ? { treasury } : {}) });
      const toRetiredAgent = agent.status === 'retired' && classified.recipient !== undefined && classified.recipient === agent.address.toLowerCase() && classified.recipient !== treasury?.toLowerCase();
      return toRetiredAgent ? currentKeyUnavailable() : undefined;
    } catch (e) {
      if (!(e instanceof AirlockError)) throw e;
      const ownKeys = new Set((await store.listAgentKeys(agent.id)).map((k) => k.address.toLowerCase()));
      return job.recipient !== undefined && ownKeys.has(job.recipient.toLowerCase()) ? currentKeyUnavailable() : e;
    }
  }

  /** The key's signature over `digest`: bound to the committed plan when the backend takes bound requests (a key process). */
  private async signBoundToPlan(agentId: string, keyIndex: number, path: string, auditSeq: number, action: 'evm.transaction' | 'evm.typed_data', payload: unknown, digest: Uint8Array): Promise<EcdsaSignature> {
    const { keys } = this.deps;
    if (!keys.signBound) return keys.signDigest(path, digest, 'ecdsa-secp256k1');
    const [signature] = await keys.signBound({ kind: 'lifecycle', auditSeq, agentId, action, payload, keyIndex });
    if (!signature || !('compact' in signature)) throw new AirlockError('signature_check_failed', 'The key process returned no ECDSA signature for the lifecycle plan.');
    return signature;
  }

  /** A planned job whose signature was refused or failed: `lifecycle.failed` with the reason; nothing was signed or sent. */
  private async failUnsigned(job: LifecycleJob, e: unknown): Promise<void> {
    await this.finish(job, { state: 'failed', failure: notSignedReason(e) }).catch(() => undefined); // left planned, the tracker tries again
  }

  /**
   * A job left `planned` by a crash between its plan and its recorded signature (or a store that failed on the
   * record): signed now from the payload its `lifecycle.planned` entry recorded, then recorded and broadcast. A key
   * process that does not answer (or rate-limits) is tried again next pass; any other refusal fails the job.
   */
  private async resumePlanned(job: LifecycleJob): Promise<'signed' | 'failed' | 'later'> {
    const [entry] = await this.deps.store.readAudit(job.auditSeq, 1);
    if (!entry || entry.seq !== job.auditSeq || entry.type !== 'lifecycle.planned' || entry.data.jobId !== job.id) {
      await this.finish(job, { state: 'failed', failure: 'not_signed: plan_missing' });
      return 'failed';
    }
    let outcome: 'failed' | 'later' = 'later';
    try {
      const signed = await this.signPlanned(job, entry.data.payload, async (e) => {
        if (e instanceof AirlockError && TRANSIENT_SIGNING_CODES.has(e.code)) return;
        outcome = 'failed';
        await this.failUnsigned(job, e);
      });
      await this.firstBroadcast(signed);
      return 'signed';
    } catch {
      return outcome;
    }
  }

  /**
   * A revocation's typed data (a zero-value EIP-2612 permit, an EIP-3009 CancelAuthorization), signed with the
   * agent's key at `keyIndex` the same way: classified (lifecycle_kind_refused otherwise), planned in a committed
   * `lifecycle.planned` entry (no job: the call that carries the signature is its own job), signed bound to it,
   * and checked against the key's address. The signature is returned to the revoke-all service only, which puts
   * it in the call it submits (and commits) through `submitCalls`. Signed again after a crash (another nonce with
   * a PKCS#11 token), a second such signature is harmless: it only revokes, and only one call is ever built from them.
   * `chain` (CAIP-2) is where the call carrying it is sent: the domain's chain when it names one (another is
   * refused, `chain_mismatch`), and the only word on it when the domain has none (a chainless CancelAuthorization,
   * the one typed data the lifecycle path signs without chainId).
   */
  async signRevocationTypedData(agentIdOrName: string, keyIndex: number, typedData: LifecycleTypedDataPayload['typedData'], purpose: string, chain: string): Promise<string> {
    const key = await this.keyRef(agentIdOrName, keyIndex);
    const adapter = this.evm();
    const payload = lifecycleTypedDataPayload(typedData, chain);
    const summary = classifyLifecycleTypedData(payload, key.address);
    const signer = { address: key.address };
    const decoded = adapter.decode('evm.typed_data', payload, signer);
    const now = this.deps.clock.now();
    const entry = await this.deps.store.transaction((tx) => tx.appendAudit({
      at: now, type: 'lifecycle.planned', actor: 'operator', agentId: key.agent.id, action: 'evm.typed_data', decision: 'allow',
      data: { kind: 'revocation_signature', purpose, keyIndex: key.keyIndex, path: key.path, chain, from: key.address, payload, digest: bytesToHex(decoded.digest), summary, intent: decoded.intent.summary },
    }), { affinity: key.agent.id });
    const signature = await this.signBoundToPlan(key.agent.id, key.keyIndex, key.path, entry.seq, 'evm.typed_data', payload, decoded.digest);
    const result = adapter.finalize('evm.typed_data', decoded, signature, signer);
    if (!result.signature) throw new AirlockError('signature_check_failed', 'The revocation signature was not produced.');
    return result.signature;
  }

  /**
   * The fleet's `lifecycle.caps`: the value moved counts against the caps of its asset, and the transaction's
   * worst-case fee (gas limit x gas price, paid in the native coin) against the caps of the chain's native coin,
   * whatever the transaction moves: the fee leaves the address like the value does.
   */
  private async checkCaps(tx: StoreTx, agentId: string, chain: string, classified: ClassifiedLifecycleCall, maxFee: bigint, fleet: LifecyclePolicy, now: number): Promise<void> {
    const native = nativeAsset(chain);
    const requestedOf = (asset: string) => (asset === classified.asset ? classified.amount : 0n) + (asset === native ? maxFee : 0n);
    const caps = fleet.caps.filter((c) => requestedOf(c.asset) > 0n || c.asset === classified.asset);
    if (caps.length === 0) return;
    const totals = await tx.windowTotals(caps.map((c) => ({ series: LIFECYCLE_SERIES, asset: c.asset, sinceMs: now - c.windowMs })), { charging: [LIFECYCLE_SERIES, lifecycleAgentSeries(agentId)] });
    caps.forEach((cap, i) => {
      const used = totals[i]!.amount;
      const requested = requestedOf(cap.asset);
      if (used + requested > cap.max) {
        throw new AirlockError('lifecycle_cap_exceeded', `The lifecycle path may move at most ${cap.max} of ${cap.asset} per ${cap.window} (fees included); ${used} moved, ${requested} requested.`, {
          details: { asset: cap.asset, window: cap.window, limit: cap.max.toString(), used: used.toString(), requested: requested.toString(), ...(cap.asset === native ? { maxFee: maxFee.toString() } : {}) },
        });
      }
    });
  }

  /** After commit: the first broadcast. A failure is left to the tracker, which sends the same bytes again. */
  private async firstBroadcast(job: LifecycleJob): Promise<void> {
    this.options.beforeBroadcast?.(job);
    if (!this.submitter || !job.rawTransaction) return;
    try {
      await this.submitter.sendRawTransaction(job.chain, job.rawTransaction);
      await this.deps.store.recordLifecycleBroadcast(job.id, this.deps.clock.now());
    } catch {
      // Committed and tracked: the next tracker pass re-broadcasts the stored bytes.
    }
  }
}

const isOpen = (job: LifecycleJob) => OPEN_LIFECYCLE_STATES.includes(job.state);

/** The failure of a job whose signature was refused, not produced or not recorded: `not_signed: <code>[/<reason>]`. */
function notSignedReason(e: unknown): string {
  const code = e instanceof AirlockError ? e.code : 'internal';
  return `not_signed: ${e instanceof AirlockError && typeof e.details?.reason === 'string' ? `${code}/${e.details.reason}` : code}`;
}

function withMargin(gas: bigint): bigint {
  return gas + (gas * GAS_MARGIN_PERCENT) / 100n;
}

/** transfer(to, amount) calldata (ERC-20). */
function erc20TransferData(to: string, amount: bigint): string {
  return `${ERC20_TRANSFER_SELECTOR}${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
}

/**
 * The lifecycle ledger charge, fleet-wide and per agent: the value moved (or one count for a revocation), and the
 * worst-case fee in the chain's native coin (added to the value of a native transfer), which `caps` count too.
 */
function lifecycleCharges(agentId: string, chain: string, classified: ClassifiedLifecycleCall, maxFee: bigint): LedgerWrite[] {
  const asset = classified.asset ?? COUNT_ASSET;
  const native = nativeAsset(chain);
  return [LIFECYCLE_SERIES, lifecycleAgentSeries(agentId)].flatMap((series): LedgerWrite[] => asset === native
    ? [{ series, asset, amount: classified.amount + maxFee, count: 1 }]
    : [{ series, asset, amount: classified.amount, count: 1 }, ...(maxFee > 0n ? [{ series, asset: native, amount: maxFee, count: 0 }] : [])]);
}

/** `lifecycle_fee_too_high`: a native sweep whose fee is out of proportion to the value it would move. */
function feeTooHigh(chain: string, fee: bigint, value: bigint, gasPrice: bigint): AirlockError {
  return new AirlockError('lifecycle_fee_too_high', `The native sweep on ${chain} would pay ${fee} wei in fees (gas price ${gasPrice}) to move ${value} wei: more than ${MAX_FEE_SHARE_PERCENT}% of the value; nothing was signed.`, {
    hints: ['Check the RPC\'s gas price (AIRLOCK_EVM_RPC) and set lifecycle.max_gas_price in the fleet policy, or leave the balance (retire with --no-sweep).'],
    details: { chain, fee: fee.toString(), value: value.toString(), gasPrice: gasPrice.toString(), maxFeePercent: Number(MAX_FEE_SHARE_PERCENT) },
  });
}

/** Failed sweeps that no later mined sweep of the same key index and asset replaced: the key is not swept yet. */
function unresolvedSweepFailures(jobs: readonly LifecycleJob[]): LifecycleJob[] {
  return jobs.filter((j) => j.state === 'failed' && j.origin === 'sweep'
    && !jobs.some((m) => m.state === 'mined' && m.asset === j.asset && m.keyIndex === j.keyIndex && m.createdAt > j.createdAt));
}
