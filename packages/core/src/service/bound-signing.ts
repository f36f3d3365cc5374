import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { AirlockError } from '../errors.ts';
import { ACTIONS, type Action } from '../intent.ts';
import { bip32Fingerprint, type ChainAdapter, type ExtendedPublicKey, type SignerContext } from '../ports/chain-adapter.ts';
import type { BoundSigningRequest, DecisionBoundRequest, KeyBackend, LifecycleBoundRequest, ProducedSignature, TreeHeadToSign } from '../ports/key-backend.ts';
import type { Agent, ApprovalRecord, PolicyRecord } from '../ports/store.ts';
import type { AgentKey } from '../ports/agent-keys.ts';
import type { LifecycleJob } from '../ports/lifecycle.ts';
import { CompiledPolicies } from '../policy/compiled-policies.ts';
import { EMPTY_LIFECYCLE, type LifecyclePolicy } from '../policy/lifecycle.ts';
import { classifyLifecycleCall } from '../lifecycle/lifecycle-calls.ts';
import { classifyLifecycleTypedData, lifecycleCallOf } from '../lifecycle/lifecycle-payloads.ts';
import { assertLifecycleFee, assertLifecycleFeeCeiling, type LifecycleFeeCeilings } from '../lifecycle/lifecycle-fees.ts';
import { FLEET_SCOPE } from './policy-layers.ts';
import { treeHeadDigest } from '../audit/hash.ts';
import { requestHash } from './tokens.ts';
import { bindingRefused } from './binding-refusal.ts';
import type { VerifiedAuditLog, VerifiedEntry } from './verified-audit-log.ts';

export * from './binding-refusal.ts';
export * from './verified-audit-log.ts';

/**
 * What the guard reads from the store besides the log (which it reads through the key process's
 * VerifiedAuditLog): read-only, and nothing the HTTP process hands it.
 */
export interface BindingReader {
  getAgent(id: string): Promise<Agent | undefined>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** Lifecycle requests: the fleet policy (its treasury), the agent's key registry and the job. */
  getPolicy(scope: string): Promise<PolicyRecord | undefined>;
  listAgentKeys(agentId: string): Promise<AgentKey[]>;
  getLifecycleJob(id: string): Promise<LifecycleJob | undefined>;
}

/** What a bound request got signed, and the leaf (as the key process verified it) of the entry that allowed it. */
export interface BoundSignatures {
  signatures: ProducedSignature[];
  leafIndex: number;
  /** RFC 9162 leaf hash of that entry's leaf (hex): the key process logs it beside the audit seq. */
  leafHash: string;
}

/** Decisions whose signatures a non-deterministic backend's guard keeps (about 200 bytes each). */
const MAX_RELEASED = 100_000;

/** How long leaves may stay under no signed tree head before the key process stops signing (the daemon's default checkpoint interval is 10 s). */
export const DEFAULT_HEAD_DEADLINE_MS = 120_000;

const NO_CEILINGS: LifecycleFeeCeilings = new Map();

export interface BoundSigningDeps {
  log: VerifiedAuditLog;
  reader: BindingReader;
  keys: KeyBackend;
  adapters: ReadonlyMap<string, ChainAdapter>;
  /** AIRLOCK_KEY_PROCESS_HEAD_DEADLINE (default DEFAULT_HEAD_DEADLINE_MS). */
  headDeadlineMs?: number;
  /** AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: the key process's own ceiling per chain on a lifecycle transaction's fee (none: no ceiling). */
  lifecycleMaxFee?: LifecycleFeeCeilings;
  /**
   * AIRLOCK_KEY_PROCESS_TREASURY: the key process's own treasury per chain (`*` for chains not named), which a sweep
   * may pay instead of the fleet policy's (in the store, which a compromised daemon can rewrite). Unset: the policy's.
   */
  lifecycleTreasury?: ReadonlyMap<string, string>;
  now?: () => number;
}

/**
 * The key process's check before an agent key signs (docs/custody.md, "Separate key process"): the request must
 * name a committed audit entry that allowed exactly it, for the agent whose key signs, and what is signed is
 * what the guard decodes from the request itself with the same chain adapter, never a digest the caller chose.
 *
 * The entry is one of:
 * - `sign.request`, decision allow, whose `requestHash` is requestHash(action, payload [with its x402 context]);
 * - `sign.replay`, decision allow, hashed the same, pointing at a `sign.request` allow over the same digest;
 * - `sign.request`, decision require_approval, held by an approval in state `approved` whose stored request is
 *   this payload, and granted by a committed `approval.granted` entry (`assertGranted`).
 * and the payload must decode (for the agent as the store has it) to the digest that entry recorded, for the key
 * the decision (a replay's original) was made for.
 * A lifecycle request (`kind: 'lifecycle'`) is checked by signLifecycle.
 *
 * Every entry (the one named, a replay's original, a lifecycle plan) is read through `log`, the key process's own
 * reading of the audit log shared with the TreeHeadGuard: its leaf is hashed from its bytes and is the leaf the next
 * tree head commits to, or the one an earlier head committed to. Nothing is taken from the store's hash column, and
 * an entry rewritten after the key process read it is refused `audit_leaf_mismatch`.
 */
export class BoundSigningGuard {
  private readonly accountSigners = new Map<string, SignerContext>();
  private readonly derivedSigners = new Map<string, string>();
  private readonly compiled = new CompiledPolicies();
  /** Non-deterministic backends: the signatures released for each decision, by its seq (`releasedOnce`). */
  private readonly released = new Map<number, Promise<ProducedSignature[]>>();

  private readonly deps: BoundSigningDeps;

  constructor(deps: BoundSigningDeps) {
    this.deps = deps;
  }

  /**
   * Leaves under no tree head are what a restarted key process takes as it finds them (its record holds the last
   * head only): once the oldest of them was read more than `headDeadlineMs` ago, the daemon has stopped asking for
   * heads, and nothing more is signed until one covers them (found by review: a daemon that stopped asking, then
   * rewrote the tail while the key process was restarted, kept signatures whose entries it had rewritten).
   */
  private assertHeadsCurrent(): void {
    const since = this.deps.log.unheadedSince();
    const now = (this.deps.now ?? Date.now)();
    const deadline = this.deps.headDeadlineMs ?? DEFAULT_HEAD_DEADLINE_MS;
    if (since !== undefined && now - since > deadline) {
      throw bindingRefused('tree_head_overdue', `leaves read ${Math.round((now - since) / 1000)} s ago are under no tree head it signed (a head is due within ${Math.round(deadline / 1000)} s: AIRLOCK_KEY_PROCESS_HEAD_DEADLINE, and the daemon's AIRLOCK_CHECKPOINT_INTERVAL must be shorter); nothing is signed until one is.`);
    }
  }

  async sign(request: BoundSigningRequest): Promise<BoundSignatures> {
    if (request.kind === 'lifecycle') return this.signLifecycle(request);
    if (request.kind !== undefined && request.kind !== 'decision') throw bindingRefused('binding_missing', 'a bound request is a decision or a lifecycle plan.');
    return this.signDecision(request);
  }

  private async signDecision(request: DecisionBoundRequest): Promise<BoundSignatures> {
    const { reader } = this.deps;
    if (!Number.isSafeInteger(request.auditSeq) || request.auditSeq < 1) throw bindingRefused('binding_missing', 'a signature needs the audit seq of the committed decision that allowed it.');
    if (typeof request.agentId !== 'string' || typeof request.action !== 'string') throw bindingRefused('binding_missing', 'a bound request names its agent and action.');
    const entry = await this.entryAt(request.auditSeq);
    this.assertHeadsCurrent();
    if (entry.agentId !== request.agentId) throw bindingRefused('agent_mismatch', `audit entry ${entry.seq} is another agent's decision.`);
    if (entry.action !== request.action) throw bindingRefused('request_hash_mismatch', `audit entry ${entry.seq} decided another action.`);
    const { digest: decided, decision } = await this.decidedDigest(entry, request);
    const agent = await reader.getAgent(request.agentId);
    if (!agent) throw bindingRefused('agent_mismatch', 'the agent is not in the store.');
    const adapter = this.adapterFor(request.action);
    const signer = await this.signerFor(adapter, agent);
    // Decoded for the key that signs now: an EVM key rotated since the decision must not sign what was decided for
    // the old one. The key is read off the decision's own entry (a replay's original: a `sign.replay` entry records
    // no intent, and one naming a pre-rotation allow got it signed by the new key; found by review), and an EVM
    // decision that names no key is refused rather than taken as any key's.
    const decidedFor = (decision.data.intent as { from?: unknown } | undefined)?.from;
    if (adapter.signerIsAgentAddress && adapter.namespace === 'eip155' && typeof decidedFor !== 'string') {
      throw bindingRefused('agent_key_changed', `audit entry ${decision.seq} records no key it was decided for.`);
    }
    if (adapter.signerIsAgentAddress && typeof decidedFor === 'string' && decidedFor.toLowerCase() !== signer.address.toLowerCase()) {
      throw bindingRefused('agent_key_changed', `audit entry ${decision.seq} was decided for another key of this agent.`);
    }
    let decoded;
    try {
      decoded = adapter.decode(request.action as Action, request.payload, signer);
    } catch {
      throw bindingRefused('digest_mismatch', 'the payload does not decode.');
    }
    if (bytesToHex(decoded.digest) !== decided) throw bindingRefused('digest_mismatch', `the payload does not decode to the digest audit entry ${entry.seq} recorded.`);
    const sign = () => this.produce(adapter, request.action, agent, decoded);
    const signatures = this.deps.keys.deterministic ? await sign() : await this.releasedOnce(decision.seq, sign);
    return { signatures, leafIndex: entry.leafIndex, leafHash: entry.leafHash };
  }

  /**
   * With a backend that draws a random nonce (a PKCS#11 token), each signing of one decision is another valid
   * signature over the same authorization or transaction nonce, and a compromised daemon asking again and again
   * collected as many (found by review). The first is kept by the seq of the decision (a replay's original, as the
   * daemon keeps its released signatures, released-signatures.ts) and every later ask gets those bytes, as RFC 6979
   * would give; asks at once share one signing, and a signing that fails is not kept. In memory, bounded: a key
   * process restarted (or past MAX_RELEASED newer decisions) signs a decision once more.
   */
  private releasedOnce(seq: number, sign: () => Promise<ProducedSignature[]>): Promise<ProducedSignature[]> {
    const kept = this.released.get(seq);
    if (kept) return kept;
    const signing = sign();
    this.released.set(seq, signing);
    signing.catch(() => {
      if (this.released.get(seq) === signing) this.released.delete(seq);
    });
    if (this.released.size > MAX_RELEASED) this.released.delete(this.released.keys().next().value!);
    return signing;
  }

  /**
   * A lifecycle signature (docs/custody.md, "Separate key process"): the request names a committed
   * `lifecycle.planned` entry of this agent, whose payload it repeats; the key is one of the agent's (any index it
   * has had: rotation sweeps sign with the old key) and the one the entry planned with; the payload decodes to the
   * digest the entry recorded; and what it decodes to is a call the lifecycle path could have planned, judged
   * against the store as it is now: a transfer only to the agent's current key or the fleet treasury the fleet
   * policy names on that chain, or a revocation (classifyLifecycleCall), or a revocation's typed data
   * (classifyLifecycleTypedData). A transaction's fee is bounded as the planner bounds it, by what holds without
   * the chain (assertLifecycleFee): its gas price at most the fleet's `lifecycle.max_gas_price` for the chain when
   * the policy sets one, and a native transfer's worst-case fee at most 10% of its value (found by review: a
   * forged 1-wei sweep to the agent's own key, priced at the old key's whole balance, was signed); and its
   * worst-case fee at most the key process's own ceiling for the chain (`lifecycleMaxFee`, from its environment:
   * the fleet policy is in the store, which a compromised daemon can rewrite before it forges a plan). Its job must be
   * the one the entry planned, for this key, chain and nonce, recording this worst-case fee as its `maxFee` (what
   * the ledger and the caps were charged), and still `planned`: once its bytes are recorded (or it failed)
   * nothing more is signed for it, so one nonce never gets two different transactions from here.
   */
  private async signLifecycle(request: LifecycleBoundRequest): Promise<BoundSignatures> {
    const { reader, keys } = this.deps;
    if (!Number.isSafeInteger(request.auditSeq) || request.auditSeq < 1) throw bindingRefused('binding_missing', 'a lifecycle signature needs the audit seq of its committed plan.');
    if (typeof request.agentId !== 'string' || typeof request.action !== 'string') throw bindingRefused('binding_missing', 'a lifecycle request names its agent and action.');
    const entry = await this.entryAt(request.auditSeq);
    this.assertHeadsCurrent();
    if (entry.type !== 'lifecycle.planned') throw bindingRefused('not_lifecycle_plan', `audit entry ${entry.seq} is a ${entry.type} entry, not a lifecycle plan.`);
    if (entry.agentId !== request.agentId) throw bindingRefused('agent_mismatch', `audit entry ${entry.seq} is another agent's plan.`);
    const data = entry.data;
    if (entry.action !== request.action) throw bindingRefused('request_hash_mismatch', `audit entry ${entry.seq} planned another action.`);
    if (data.keyIndex !== request.keyIndex) throw bindingRefused('key_not_agents', `audit entry ${entry.seq} planned with another key index.`);
    if (canonicalJson(data.payload ?? null) !== canonicalJson(request.payload ?? null)) throw bindingRefused('request_hash_mismatch', `the payload is not the one audit entry ${entry.seq} recorded.`);
    const agent = await reader.getAgent(request.agentId);
    if (!agent) throw bindingRefused('agent_mismatch', 'the agent is not in the store.');
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter || !adapter.actions.includes(request.action as Action) || (request.action !== 'evm.transaction' && request.action !== 'evm.typed_data')) {
      throw bindingRefused('unsupported_action', 'the lifecycle path signs EVM transactions and revocation typed data only.');
    }
    // The key: an index the agent has had, in its registry, and the address this backend holds at its path.
    const keyIndex = request.keyIndex;
    const registered = Number.isSafeInteger(keyIndex) && keyIndex >= 0 && keyIndex <= agent.keyIndex ? (await reader.listAgentKeys(agent.id)).find((k) => k.keyIndex === keyIndex) : undefined;
    if (!registered) throw bindingRefused('key_not_agents', `the agent has no key ${String(keyIndex)}.`);
    const path = adapter.derivationPath(agent.accountIndex, keyIndex);
    const from = adapter.addressFromPublicKey(await keys.getPublicKey(path)).toLowerCase();
    if (from !== registered.address.toLowerCase() || from !== String(data.from ?? '').toLowerCase()) throw bindingRefused('key_not_agents', `the key at the agent's index ${keyIndex} is not the one audit entry ${entry.seq} planned with.`);
    // The agent's current address, a sweep destination, is the key this backend holds at its current index, never the
    // store's word (found by review: a daemon that rewrote the agent row's address got an old key swept to its own).
    const current = keyIndex === agent.keyIndex ? from : adapter.addressFromPublicKey(await keys.getPublicKey(adapter.derivationPath(agent.accountIndex, agent.keyIndex))).toLowerCase();
    if (current !== agent.address.toLowerCase()) throw bindingRefused('agent_mismatch', `the agent's address is not the key at its current index ${agent.keyIndex}.`);
    let decoded;
    try {
      decoded = adapter.decode(request.action as Action, request.payload, { address: from });
    } catch {
      throw bindingRefused('digest_mismatch', 'the payload does not decode.');
    }
    if (typeof data.digest !== 'string' || bytesToHex(decoded.digest) !== data.digest) throw bindingRefused('digest_mismatch', `the payload does not decode to the digest audit entry ${entry.seq} recorded.`);
    if (request.action === 'evm.transaction') {
      const planned = lifecycleCallOf(request.payload);
      if (!planned) throw bindingRefused('lifecycle_call_refused', 'the payload is not a legacy transaction as the lifecycle path builds it.');
      const fleet = await this.fleetLifecycle();
      // Pinned in the key process's environment, the treasury is its own word, not the store's (found by review: a
      // daemon that rewrote the fleet policy's treasury to its own address got every old key swept to it).
      const pinned = this.deps.lifecycleTreasury;
      const treasury = pinned && pinned.size > 0 ? (pinned.get(planned.chain) ?? pinned.get('*')) : fleet.treasury.get(planned.chain);
      try {
        const classified = classifyLifecycleCall(decoded.intent, planned.call, { from, current, ...(treasury ? { treasury } : {}) });
        assertLifecycleFee(planned.chain, classified, planned.fees, fleet.maxGasPrice.get(planned.chain));
        assertLifecycleFeeCeiling(planned.chain, planned.fees, this.deps.lifecycleMaxFee ?? NO_CEILINGS);
      } catch (e) {
        throw bindingRefused('lifecycle_call_refused', e instanceof AirlockError ? e.message : 'the call is not a lifecycle call.');
      }
      const job = typeof data.jobId === 'string' ? await reader.getLifecycleJob(data.jobId) : undefined;
      if (!job || job.auditSeq !== entry.seq || job.agentId !== agent.id) throw bindingRefused('audit_entry_not_found', `no lifecycle job was planned by audit entry ${entry.seq}.`);
      const maxFee = planned.fees.gas * planned.fees.gasPrice;
      if (job.keyIndex !== keyIndex || job.chain !== planned.chain || job.from.toLowerCase() !== from || job.nonce !== planned.fees.nonce || job.to.toLowerCase() !== planned.call.to || job.maxFee !== maxFee) {
        throw bindingRefused('lifecycle_call_refused', `the job of audit entry ${entry.seq} records another key, chain, nonce, to-address or worst-case fee than the transaction (gas x gasPrice = ${maxFee} wei).`);
      }
      if (job.state !== 'planned') throw bindingRefused('lifecycle_job_not_planned', `the job of audit entry ${entry.seq} is ${job.state}: nothing more is signed for it.`);
    } else {
      try {
        classifyLifecycleTypedData(request.payload, from);
      } catch (e) {
        throw bindingRefused('lifecycle_call_refused', e instanceof AirlockError ? e.message : 'the typed data is not a revocation.');
      }
    }
    return { signatures: [await keys.signDigest(path, decoded.digest, 'ecdsa-secp256k1')], leafIndex: entry.leafIndex, leafHash: entry.leafHash };
  }

  /** The fleet policy's `lifecycle:` section as the store has it now (compiled once per policy version). */
  private async fleetLifecycle(): Promise<LifecyclePolicy> {
    const record = await this.deps.reader.getPolicy(FLEET_SCOPE);
    return record ? this.compiled.of(record).lifecycle : EMPTY_LIFECYCLE;
  }

  /**
   * The digest the entry (or, for a replay, its original) recorded, once the entry is shown to allow this very
   * request, and `decision`: the entry that decided it (the original of a replay), whose intent names the key.
   */
  private async decidedDigest(entry: VerifiedEntry, request: DecisionBoundRequest): Promise<{ digest: string; decision: VerifiedEntry }> {
    const data = entry.data;
    const hashed = requestHash(request.action, request.x402 !== undefined ? { payload: request.payload, x402: request.x402 } : request.payload, canonicalJson);
    if (request.approvalId !== undefined) {
      if (entry.type !== 'sign.request' || entry.decision !== 'require_approval') throw bindingRefused('decision_not_allow', `audit entry ${entry.seq} is not a request held for approval.`);
      const approval = typeof request.approvalId === 'string' ? await this.deps.reader.getApproval(request.approvalId) : undefined;
      if (!approval || approval.auditSeq !== entry.seq || approval.agentId !== entry.agentId) throw bindingRefused('audit_entry_not_found', `no approval holds audit entry ${entry.seq}.`);
      if (approval.state !== 'approved') throw bindingRefused('decision_not_allow', `the approval of audit entry ${entry.seq} is ${approval.state}, not approved.`);
      if (canonicalJson(approval.request) !== canonicalJson(request.payload)) throw bindingRefused('request_hash_mismatch', 'the payload is not the request that was approved.');
      if (typeof data.digest !== 'string' || approval.digest !== data.digest) throw bindingRefused('digest_mismatch', 'the approval and its entry disagree on the digest.');
      await this.assertGranted(entry, request.approvalId);
      return { digest: data.digest, decision: entry };
    }
    if ((entry.type !== 'sign.request' && entry.type !== 'sign.replay') || entry.decision !== 'allow') {
      throw bindingRefused('decision_not_allow', `audit entry ${entry.seq} is not an allowed signing decision (${entry.type}, ${entry.decision ?? 'no decision'}).`);
    }
    if (data.requestHash !== hashed) throw bindingRefused('request_hash_mismatch', `the request is not the one audit entry ${entry.seq} allowed.`);
    if (typeof data.digest !== 'string') throw bindingRefused('digest_mismatch', `audit entry ${entry.seq} recorded no digest.`);
    if (entry.type === 'sign.replay') {
      const original = typeof data.originalSeq === 'number' ? await this.entryAt(data.originalSeq) : undefined;
      if (!original || original.type !== 'sign.request' || original.decision !== 'allow' || original.agentId !== entry.agentId || original.data.digest !== data.digest) {
        throw bindingRefused('decision_not_allow', `replay entry ${entry.seq} does not point at an allowed signature over the same digest.`);
      }
      return { digest: data.digest, decision: original };
    }
    return { digest: data.digest, decision: entry };
  }

  /**
   * A held request is granted only by its committed `approval.granted` entry, read through the log like the held
   * entry: one naming this approval and this held entry (`requestSeq`), for its agent, action and digest, after it.
   * The approval row's `approved` is the daemon's to write: a row flipped in the store, with no grant on the record
   * (a request the operator denied, never charged), was signed (found by review).
   */
  private async assertGranted(held: VerifiedEntry, approvalId: string): Promise<void> {
    for (const seq of await this.deps.log.grantsOf(approvalId)) {
      const grant = await this.entryAt(seq);
      const d = grant.data;
      if (grant.type === 'approval.granted' && grant.decision === 'allow' && grant.seq > held.seq && grant.agentId === held.agentId && grant.action === held.action
        && d.approvalId === approvalId && d.requestSeq === held.seq && typeof d.digest === 'string' && d.digest === held.data.digest) return;
    }
    throw bindingRefused('decision_not_allow', `no approval.granted entry in the audit log grants the approval of audit entry ${held.seq}.`);
  }

  /** The entry as the key process read and verified its leaf (never the store's parsed columns). */
  private entryAt(seq: number): Promise<VerifiedEntry> {
    if (!Number.isSafeInteger(seq) || seq < 1) return Promise.reject(bindingRefused('audit_entry_not_found', 'an audit seq is a positive integer.'));
    return this.deps.log.entry(seq);
  }

  private adapterFor(action: string): ChainAdapter {
    const adapter = (ACTIONS as readonly string[]).includes(action) ? this.deps.adapters.get(action.startsWith('evm.') ? 'eip155' : action.split('.')[0]!) : undefined;
    if (!adapter || !adapter.actions.includes(action as Action)) throw bindingRefused('unsupported_action', 'the key process has no adapter for this action.');
    return adapter;
  }

  /** As SigningService.signerFor, from this backend's own keys and the agent record in the store. */
  private async signerFor(adapter: ChainAdapter, agent: Agent): Promise<SignerContext> {
    const { keys } = this.deps;
    if (adapter.signerKeyPaths) {
      const cacheKey = `${adapter.namespace}|${agent.accountIndex}`;
      const cached = this.accountSigners.get(cacheKey);
      if (cached) return cached;
      const paths = adapter.signerKeyPaths(agent.accountIndex);
      const extendedKeys: Record<string, ExtendedPublicKey> = {};
      for (const path of paths) extendedKeys[path] = await keys.getExtendedPublicKey(path);
      const signer = { address: adapter.addressFromPublicKey(extendedKeys[paths[0]!]!.publicKey), extendedKeys, masterFingerprint: bip32Fingerprint((await keys.getExtendedPublicKey('m')).publicKey) };
      this.accountSigners.set(cacheKey, signer);
      return signer;
    }
    const path = adapter.derivationPath(agent.accountIndex, agent.keyIndex);
    let address = this.derivedSigners.get(`${adapter.namespace}|${path}`);
    if (address === undefined) {
      address = adapter.addressFromPublicKey(await keys.getPublicKey(path));
      this.derivedSigners.set(`${adapter.namespace}|${path}`, address);
    }
    // EVM: the address the agent record names must be the key this backend holds at the agent's path.
    if (adapter.signerIsAgentAddress && address.toLowerCase() !== agent.address.toLowerCase()) throw bindingRefused('agent_mismatch', "the agent record's address is not the key at its path.");
    return { address };
  }

  /** The signatures of a decoded request, as SigningService.produceSignatures makes them. */
  private async produce(adapter: ChainAdapter, action: string, agent: Agent, decoded: ReturnType<ChainAdapter['decode']>): Promise<ProducedSignature[]> {
    const { keys } = this.deps;
    if (!decoded.tasks) {
      const path = adapter.derivationPath(agent.accountIndex, agent.keyIndex);
      if (adapter.signatureScheme?.(action as Action) === 'schnorr-secp256k1') return [{ schnorr: await keys.signSchnorr(path, decoded.digest) }];
      return [await keys.signDigest(path, decoded.digest, 'ecdsa-secp256k1')];
    }
    const out: ProducedSignature[] = [];
    for (const task of decoded.tasks) {
      if (task.scheme === 'taproot-key-path') out.push({ schnorr: await keys.signTaprootKeyPath(task.path, task.digest) });
      else if (task.scheme === 'schnorr-secp256k1') out.push({ schnorr: await keys.signSchnorr(task.path, task.digest) });
      else out.push(await keys.signDigest(task.path, task.digest, 'ecdsa-secp256k1'));
    }
    return out;
  }
}

/** How far a tree head's time may be from the key process's clock. */
const TREE_HEAD_SKEW_MS = 5 * 60_000;

/**
 * The audit key signs a tree head only over the root it computes itself from the leaves in the store, each hashed
 * from its stored bytes (never the hash column, never the stored tree nodes the HTTP process writes), through the
 * same VerifiedAuditLog the bound signer reads entries from: each head costs the leaves added since the last one,
 * and a leaf an agent key signed from is in the next head as it was read. Leaves once read are kept as read: a log
 * rewritten under them, or a head older than the last one signed, is refused `tree_root_mismatch` (or the edited
 * leaf `audit_leaf_mismatch`) until the key process restarts.
 */
export class TreeHeadGuard {
  private readonly deps: { log: VerifiedAuditLog; keys: KeyBackend; now: () => number };

  constructor(deps: { log: VerifiedAuditLog; keys: KeyBackend; now: () => number }) {
    this.deps = deps;
  }

  async sign(path: string, head: TreeHeadToSign): Promise<Uint8Array> {
    if (!Number.isSafeInteger(head.treeSize) || head.treeSize < 1 || typeof head.rootHash !== 'string' || !Number.isSafeInteger(head.at)) throw bindingRefused('binding_missing', 'a tree head names its size, root and time.');
    if (Math.abs(head.at - this.deps.now()) > TREE_HEAD_SKEW_MS) throw bindingRefused('tree_head_stale', "the tree head's time is more than 5 minutes from the key process's clock.");
    await this.deps.log.foldTo(head.treeSize, head.rootHash);
    return this.deps.keys.signSchnorr(path, treeHeadDigest(head));
  }
}
