import { evaluatePolicy, requiredWindows, type CompiledPolicy, type EvaluationInput, type PolicyLayer } from '../policy/index.ts';
import { CompiledPolicies } from '../policy/compiled-policies.ts';
import type { Decision, Layer } from '../policy/decision.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import { windowKey, type LedgerView, type WindowQuery } from '../ports/ledger.ts';
import type { ShadowOutcome, ShadowOutcomeKind, ShadowPolicyRecord } from '../ports/shadow-policies.ts';
import type { StoreTx } from '../ports/store.ts';
import { enrichFromLayers } from './intent-enrichment.ts';
import { FLEET_SCOPE, agentScope } from './policy-layers.ts';

/**
 * Shadow policies on the signing path (docs/policy.md, "Trying a policy on real traffic"). A candidate staged
 * for the fleet or an agent is evaluated beside the active layers, with its own layer in place of the one it
 * would replace, against the ledger totals the active decision read in the same transaction. Only the active
 * decision decides: the candidate charges, holds and claims nothing, and whatever it does wrong (it throws, it
 * reads a window nobody fetched) is recorded as an `error` outcome, never passed on to the request.
 *
 * Staged candidates are cached for `refreshMs` (1 s): with nothing staged a request costs a map lookup and no
 * query. This instance sees its own staging at once (`invalidate`); other instances within `refreshMs`, which
 * is harmless since a candidate decides nothing (an outcome for a candidate unstaged meanwhile is dropped by
 * the store).
 */
export class ShadowPolicies {
  private readonly refreshMs: number;
  private cache: { loadedAt: number; byScope: ReadonlyMap<string, StagedCandidate> } | undefined;
  /** Bumped by `invalidate`: a reload that started before it must not install what it read. */
  private generation = 0;
  private readonly compiled = new CompiledPolicies();
  /** What the candidates said about a decision, until its request's audit entry records them (or it is dropped). */
  private readonly comparisons = new WeakMap<Decision, ShadowComparison[]>();

  constructor(options: { refreshMs?: number } = {}) {
    this.refreshMs = options.refreshMs ?? 1000;
  }

  /** After staging, replacing or unstaging a candidate on this instance. */
  invalidate(): void {
    this.generation++;
    this.cache = undefined;
  }

  /** The candidates that apply to `agentId`'s requests (fleet first), read inside the signing transaction. */
  async candidatesFor(tx: StoreTx, agentId: string): Promise<StagedCandidate[]> {
    const now = performance.now();
    let cache = this.cache;
    if (!cache || now - cache.loadedAt > this.refreshMs) {
      const generation = this.generation;
      const records = await tx.listShadowPolicies();
      cache = { loadedAt: now, byScope: new Map(records.map((r) => [r.scope, this.stage(r)])) };
      if (generation === this.generation) this.cache = cache;
    }
    if (cache.byScope.size === 0) return NONE;
    const fleet = cache.byScope.get(FLEET_SCOPE);
    const agent = cache.byScope.get(agentScope(agentId));
    return fleet && agent ? [fleet, agent] : fleet ? [fleet] : agent ? [agent] : NONE;
  }

  /**
   * Starts evaluating `candidates` for one request. Call before the active layers enrich `input`: each
   * candidate decodes calls against its own registered ABIs (a shallow copy of the intent: enrichment
   * replaces fields, it never changes the objects they hold).
   */
  begin(candidates: readonly StagedCandidate[], layers: readonly PolicyLayer[], input: EvaluationInput): ShadowRun {
    return new ShadowRun(
      candidates.map((c) => (c.policy ? { staged: c, layers: withCandidate(layers, c.layer, c.policy, c.label), input: { ...input, intent: { ...input.intent } } } : { staged: c, error: c.compileError! })),
      this.comparisons,
    );
  }

  /**
   * A decision replaced by another (a circuit breaker refused or held what policy allowed): what the candidates
   * said about the policy's decision goes with the one that is recorded.
   */
  carry(from: Decision, to: Decision): void {
    const comparisons = this.comparisons.get(from);
    if (comparisons && from !== to) this.comparisons.set(to, comparisons);
  }

  /** What the candidates would have decided, for a dry-run (nothing recorded). */
  comparisonsOf(decision: Decision): readonly ShadowComparison[] {
    return this.comparisons.get(decision) ?? [];
  }

  /**
   * Records what the candidates said about `decision` with the audit entry of its request, in the request's
   * transaction. A decision no candidate saw records nothing (no query).
   */
  async record(tx: StoreTx, decision: Decision, entry: { seq: number; agentId: string; at: number; action?: string }, summary?: string): Promise<void> {
    const comparisons = this.comparisons.get(decision);
    if (!comparisons) return;
    this.comparisons.delete(decision);
    await tx.appendShadowOutcomes(comparisons.map((c) => outcomeOf(c, decision, entry, summary)));
  }

  /**
   * A refusal that sums up several evaluations (x402: every payment requirement was refused): each candidate
   * would have taken the first requirement it does not refuse, as the active policy does, or refused them all.
   */
  async recordAcross(tx: StoreTx, evaluated: readonly Decision[], refusal: Decision, entry: { seq: number; agentId: string; at: number; action?: string }): Promise<void> {
    const byShadow = new Map<string, ShadowComparison[]>();
    for (const d of evaluated) {
      for (const c of this.comparisons.get(d) ?? []) (byShadow.get(c.shadowId) ?? byShadow.set(c.shadowId, []).get(c.shadowId)!).push(c);
      this.comparisons.delete(d);
    }
    if (byShadow.size === 0) return;
    const outcomes: ShadowOutcome[] = [];
    for (const [shadowId, list] of byShadow) {
      const failed = list.find((c) => c.error !== undefined);
      let combined: ShadowComparison;
      if (failed) combined = failed;
      else {
        const decisions = list.map((c) => c.candidate!);
        const chosen = decisions.find((d) => d.decision !== 'deny');
        const candidate: Decision = chosen ?? { decision: 'deny', violations: decisions.flatMap((d) => d.violations), allowedBy: [], policyVersion: decisions[0]!.policyVersion };
        combined = { shadowId, scope: list[0]!.scope, kind: compareDecisions(refusal, candidate), candidate };
      }
      outcomes.push(outcomeOf(combined, refusal, entry));
    }
    await tx.appendShadowOutcomes(outcomes);
  }

  private stage(record: ShadowPolicyRecord): StagedCandidate {
    const layer: Layer = record.scope === FLEET_SCOPE ? 'fleet' : 'agent';
    const label = `${layer}@shadow:${record.hash.slice(0, 8)}`;
    try {
      return { record, layer, label, policy: this.compiled.of(record) };
    } catch (e) {
      // Validated when staged; an upgrade may still refuse it. Every evaluation then records the error.
      return { record, layer, label, compileError: errorText(e) };
    }
  }
}

/** A staged candidate, compiled (or why it could not be). */
export interface StagedCandidate {
  record: ShadowPolicyRecord;
  layer: Layer;
  /** `agent@shadow:1a2b3c4d`: the label the candidate's layer carries in its decisions' policyVersion. */
  label: string;
  policy?: CompiledPolicy;
  compileError?: string;
}

/** What one candidate said about one request. */
export interface ShadowComparison {
  shadowId: string;
  scope: string;
  kind: ShadowOutcomeKind;
  candidate?: Decision;
  error?: string;
}

interface Pending {
  staged: StagedCandidate;
  layers?: PolicyLayer[];
  input?: EvaluationInput;
  decided?: Decision;
  error?: string;
}

/** The candidates of one request, between `begin` and the active decision. */
export class ShadowRun {
  private readonly pending: Pending[];
  private readonly comparisons: WeakMap<Decision, ShadowComparison[]>;

  constructor(pending: Pending[], comparisons: WeakMap<Decision, ShadowComparison[]>) {
    this.pending = pending;
    this.comparisons = comparisons;
  }

  /** The ledger windows the candidates read beyond `active` (fetched in the same call as the active ones). */
  windows(adapter: ChainAdapter, active: readonly WindowQuery[]): WindowQuery[] {
    const seen = new Set(active.map(windowKey));
    const extra: WindowQuery[] = [];
    for (const p of this.pending) {
      if (p.error !== undefined) continue;
      try {
        const undecodable = enrichFromLayers(adapter, p.layers!, p.input!);
        if (undecodable) {
          p.decided = undecodable;
          continue;
        }
        for (const q of requiredWindows(p.layers!, p.input!)) {
          const key = windowKey(q);
          if (!seen.has(key)) {
            seen.add(key);
            extra.push(q);
          }
        }
      } catch (e) {
        p.error = errorText(e);
      }
    }
    return extra;
  }

  /** Evaluates each candidate and keeps how it compares with `active`, for `record` (or a dry-run) to read. */
  finish(active: Decision, ledger: LedgerView): void {
    const out: ShadowComparison[] = [];
    for (const p of this.pending) {
      const { id: shadowId, scope } = p.staged.record;
      if (p.error === undefined && !p.decided) {
        try {
          p.decided = evaluatePolicy(p.layers!, p.input!, ledger);
        } catch (e) {
          p.error = errorText(e);
        }
      }
      out.push(p.error !== undefined ? { shadowId, scope, kind: 'error', error: p.error } : { shadowId, scope, kind: compareDecisions(active, p.decided!), candidate: p.decided! });
    }
    this.comparisons.set(active, out);
  }
}

const NONE: StagedCandidate[] = [];

/** `layers` with the candidate in place of its layer (or added where it belongs, if the scope has no policy yet). */
function withCandidate(layers: readonly PolicyLayer[], layer: Layer, policy: CompiledPolicy, label: string): PolicyLayer[] {
  const out = layers.filter((l) => l.layer !== layer);
  const at = layer === 'fleet' ? 0 : out.findIndex((l) => l.layer === 'session');
  out.splice(at < 0 ? out.length : at, 0, { layer, label, policy });
  return out;
}

/** The rules a decision rests on: who granted an allow, which rules (and codes) refused or held it. */
function decidingRules(d: Decision): string {
  const rules = d.decision === 'allow' ? d.allowedBy : d.violations.map((v) => `${v.rule}:${v.code}`);
  return [...new Set(rules)].sort().join('\n');
}

export function compareDecisions(active: Decision, candidate: Decision): ShadowOutcomeKind {
  if (active.decision === candidate.decision) return decidingRules(active) === decidingRules(candidate) ? 'same' : 'rules_differ';
  if (candidate.decision === 'allow') return 'would_allow';
  if (candidate.decision === 'deny') return 'would_deny';
  return 'would_require_approval';
}

function outcomeOf(c: ShadowComparison, active: Decision, entry: { seq: number; agentId: string; at: number; action?: string }, summary?: string): ShadowOutcome {
  const base = {
    shadowId: c.shadowId, auditSeq: entry.seq, agentId: entry.agentId, at: entry.at, kind: c.kind,
    ...(entry.action !== undefined ? { action: entry.action } : {}),
    activeDecision: active.decision,
    ...(c.candidate ? { candidateDecision: c.candidate.decision } : {}),
  };
  if (c.kind === 'same') return base;
  return {
    ...base,
    detail: {
      ...(summary !== undefined ? { summary } : {}),
      active: sideOf(active),
      ...(c.candidate ? { candidate: sideOf(c.candidate) } : {}),
      ...(c.error !== undefined ? { error: c.error } : {}),
    },
  };
}

function sideOf(d: Decision) {
  return { decision: d.decision, violations: d.violations, allowedBy: d.allowedBy, policyVersion: d.policyVersion };
}

/** An error's message only (an intent can name addresses, never secrets; a stack trace is for logs). */
function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 500);
}
