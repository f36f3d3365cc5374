import { AirlockError } from '../errors.ts';
import { assertAgentLifecycle, hashPolicy, type PolicyWarning } from '../policy/index.ts';
import { FLEET_SCOPE } from './policy-layers.ts';
import { canonicalJson } from '../canonical-json.ts';
import { SHADOW_OUTCOMES, type ShadowOutcome, type ShadowOutcomeCounts, type ShadowPolicyRecord } from '../ports/shadow-policies.ts';
import type { StoreTx } from '../ports/store.ts';
import type { ServiceDeps } from './deps.ts';
import type { OperatorService } from './operator-service.ts';
import type { SigningService } from './signing-service.ts';

/** How a candidate has fared so far: every evaluation, and how many came out each way. */
export interface ShadowSummary {
  evaluated: number;
  outcomes: ShadowOutcomeCounts;
}

/** The candidate as shown to operators (its document apart), beside the active version it would replace. */
export interface ShadowView {
  candidate: Omit<ShadowPolicyRecord, 'document' | 'source'>;
  document: unknown;
  source?: string;
  /** The active policy of the scope now (absent: the scope has none, the candidate would be its first). */
  active?: { version: number; hash: string };
  summary: ShadowSummary;
}

const MAX_PAGE = 1000;

/**
 * What operators do with shadow policies (docs/policy.md, "Trying a policy on real traffic"): stage a candidate
 * for a scope, read how it fares and where it differs, unstage it, or promote it through the normal policy-set
 * path. Every change is audited (`policy.shadow_set`, `policy.shadow_cleared`, `policy.shadow_promoted`), with
 * the summary of the candidate it ends. The signing path evaluates staged candidates (shadow-evaluation.ts).
 */
export class ShadowPolicyService {
  private readonly deps: ServiceDeps;
  private readonly operator: OperatorService;
  private readonly signing: SigningService;

  constructor(deps: ServiceDeps, operator: OperatorService, signing: SigningService) {
    this.deps = deps;
    this.operator = operator;
    this.signing = signing;
  }

  /**
   * Validates `source` exactly as setting a policy does (invalid_policy, nothing staged) and stages it, replacing
   * the candidate staged there (its outcomes are dropped; its summary stays in the audit entry). Staging the
   * candidate that is already staged changes nothing and keeps its outcomes.
   */
  async stage(scope: string, source: string | unknown, actor: string): Promise<{ candidate: Omit<ShadowPolicyRecord, 'document' | 'source'>; changed: boolean; warnings: PolicyWarning[] }> {
    const resolved = await this.operator.resolveScope(scope);
    const { document, warnings } = this.operator.validatePolicy(source);
    // The scope's own checks too, as OperatorService.setPolicy makes them: an agent document may not set the
    // fleet's lifecycle fields (treasury, caps, ...), so a candidate it could never promote is not staged.
    if (resolved !== FLEET_SCOPE) assertAgentLifecycle(document);
    const hash = hashPolicy(document);
    const current = await this.deps.store.getShadowPolicy(resolved);
    if (current && current.hash === hash) return { candidate: strip(current), changed: false, warnings };
    const record: ShadowPolicyRecord = {
      id: this.deps.randomId('shd'),
      scope: resolved,
      hash,
      document: JSON.parse(canonicalJson(document)),
      ...(typeof source === 'string' ? { source } : {}),
      author: actor,
      createdAt: this.deps.clock.now(),
    };
    await this.audited('policy.shadow_set', actor, resolved, async (tx) => {
      const replaced = await stagedIn(tx, resolved);
      const replacedSummary = replaced ? summaryOf(await tx.shadowOutcomeCounts(replaced.id)) : undefined;
      await tx.putShadowPolicy(record);
      const active = await tx.getPolicy(resolved);
      const data = {
        scope: resolved, shadowId: record.id, hash, activeVersion: active?.version ?? null,
        ...(replaced ? { replaced: { shadowId: replaced.id, hash: replaced.hash, summary: replacedSummary } } : {}),
      };
      return { data, result: undefined };
    });
    this.signing.shadows.invalidate();
    return { candidate: strip(record), changed: true, warnings };
  }

  async get(scope: string): Promise<ShadowView> {
    const record = await this.staged(scope);
    const [counts, active] = await Promise.all([this.deps.store.shadowOutcomeCounts(record.id), this.deps.store.getPolicy(record.scope)]);
    return {
      candidate: strip(record),
      document: record.document,
      ...(record.source !== undefined ? { source: record.source } : {}),
      ...(active ? { active: { version: active.version, hash: active.hash } } : {}),
      summary: summaryOf(counts),
    };
  }

  /** The requests the candidate would have decided differently (or by other rules), oldest first, after `afterSeq`. */
  async differences(scope: string, page: { afterSeq?: number; limit?: number }): Promise<{ shadowId: string; differences: ShadowOutcome[]; next?: number }> {
    const record = await this.staged(scope);
    const limit = Math.min(page.limit ?? 100, MAX_PAGE);
    const differences = await this.deps.store.listShadowDifferences(record.id, { ...(page.afterSeq !== undefined ? { afterSeq: page.afterSeq } : {}), limit });
    return { shadowId: record.id, differences, ...(differences.length === limit ? { next: differences[differences.length - 1]!.auditSeq } : {}) };
  }

  /** Unstages the candidate; its final summary is kept in the audit entry. */
  async clear(scope: string, actor: string): Promise<{ candidate: Omit<ShadowPolicyRecord, 'document' | 'source'>; summary: ShadowSummary }> {
    const resolved = await this.operator.resolveScope(scope);
    const ended = await this.audited('policy.shadow_cleared', actor, resolved, async (tx) => {
      const { record, summary } = await this.end(tx, resolved);
      return { data: { scope: resolved, shadowId: record.id, hash: record.hash, summary }, result: { candidate: strip(record), summary } };
    });
    this.signing.shadows.invalidate();
    return ended;
  }

  /**
   * Makes the candidate the active policy of its scope through `OperatorService.setPolicy` (validated again,
   * a new version, `policy.set` audited) and unstages it in the same transaction (`policy.shadow_promoted`).
   * A candidate replaced or unstaged since it was read is not promoted (conflict).
   */
  async promote(scope: string, actor: string): Promise<{ record: { scope: string; version: number; hash: string }; changed: boolean; warnings: PolicyWarning[]; summary: ShadowSummary }> {
    const record = await this.staged(scope);
    let summary: ShadowSummary | undefined;
    const unstage = async (tx: StoreTx, now: number, version: number) => {
      const ended = await this.end(tx, record.scope, record.id);
      summary = ended.summary;
      await tx.appendAudit({ at: now, type: 'policy.shadow_promoted', actor: 'operator', ...agentOf(record.scope), data: { scope: record.scope, shadowId: record.id, hash: record.hash, version, summary, by: actor } });
    };
    const set = await this.operator.setPolicy(record.scope, record.source ?? record.document, actor, { alsoInTransaction: (tx, now, stored) => unstage(tx, now, stored.version) });
    // Identical to the active version: nothing was set, the candidate is unstaged on its own.
    if (!set.changed) {
      await this.deps.store.transaction((tx) => unstage(tx, this.deps.clock.now(), set.record.version));
    }
    this.signing.shadows.invalidate();
    return { record: { scope: set.record.scope, version: set.record.version, hash: set.record.hash }, changed: set.changed, warnings: set.warnings, summary: summary! };
  }

  private async staged(scope: string): Promise<ShadowPolicyRecord> {
    const record = await this.deps.store.getShadowPolicy(await this.operator.resolveScope(scope));
    if (!record) throw new AirlockError('not_found', 'No candidate policy is staged at this scope.');
    return record;
  }

  /** Unstages (inside `tx`) the candidate staged at `scope` (that one, if `id` is given) and returns its summary. */
  private async end(tx: StoreTx, scope: string, id?: string): Promise<{ record: ShadowPolicyRecord; summary: ShadowSummary }> {
    const record = await stagedIn(tx, scope);
    if (!record) throw new AirlockError('not_found', 'No candidate policy is staged at this scope.');
    if (id !== undefined && record.id !== id) throw new AirlockError('conflict', 'The staged candidate changed meanwhile; read it again and promote that one.');
    const summary = summaryOf(await tx.shadowOutcomeCounts(record.id));
    await tx.deleteShadowPolicy(scope);
    return { record, summary };
  }

  /** Runs a change and appends its audit entry in one transaction: both commit, or neither. */
  private async audited<T>(type: string, actor: string, scope: string, change: (tx: StoreTx) => Promise<{ data: Record<string, unknown>; result: T }>): Promise<T> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const { data, result } = await change(tx);
      await tx.appendAudit({ at: now, type, actor: 'operator', ...agentOf(scope), data: { ...data, by: actor } });
      return result;
    });
  }
}

async function stagedIn(tx: StoreTx, scope: string): Promise<ShadowPolicyRecord | undefined> {
  return (await tx.listShadowPolicies()).find((r) => r.scope === scope);
}

function summaryOf(counts: ShadowOutcomeCounts): ShadowSummary {
  return { evaluated: SHADOW_OUTCOMES.reduce((n, k) => n + counts[k], 0), outcomes: counts };
}

function agentOf(scope: string): { agentId?: string } {
  return scope.startsWith('agent:') ? { agentId: scope.slice(6) } : {};
}

function strip(record: ShadowPolicyRecord): Omit<ShadowPolicyRecord, 'document' | 'source'> {
  const { document: _document, source: _source, ...rest } = record;
  return rest;
}
