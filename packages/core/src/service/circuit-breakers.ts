import { AirlockError } from '../errors.ts';
import { COUNT_ASSET, ledgerViewFrom, seriesFor, windowKey, type LedgerWrite, type WindowQuery } from '../ports/ledger.ts';
import type { BreakerRecord, BreakerResetKeptFrozen, BreakerState, BreakerTargets, DestinationPayers } from '../ports/breakers.ts';
import type { Agent, StoreTx } from '../ports/store.ts';
import type { Decision, Violation } from '../policy/decision.ts';
import { intentFacts } from '../policy/facts.ts';
import type { PolicyLayer } from '../policy/layers.ts';
import type { EvaluationInput } from '../policy/rules/types.ts';
import { utcHour, type CompiledDetector, type DetectorContext, type DetectorFinding, type DetectorReads, type DetectorView } from '../policy/detectors/index.ts';
import type { ServiceDeps } from './deps.ts';
import type { CredentialCache } from './credential-cache.ts';

/** A detector of one layer, named as its violations and breakers name it: `detector/<layer>/<name>`. */
interface LayerDetector {
  rule: string;
  detector: CompiledDetector;
}

interface Trip {
  rule: string;
  detector: CompiledDetector;
  finding: DetectorFinding;
}

/** What the detectors made of one request, before anything is written (`screen`), for `record` after its audit entry. */
export interface Screening {
  /** The decision as the breakers leave it (policy's, unless a breaker holds or refuses the request). */
  decision: Decision;
  trips: Trip[];
  alerts: Trip[];
  records: CompiledDetector['records'];
  input: EvaluationInput;
  agent: Agent;
  /** The tripped breakers that bound the agent when it was screened (each named by a `breaker_open` violation). */
  open: BreakerRecord[];
}

/** What a tripped breaker that binds the agent says of a request it refuses (freeze) or holds (require_approval). */
export function breakerOpenViolation(b: BreakerRecord): Violation {
  const effect = b.action === 'freeze' ? 'froze this agent' : "holds this agent's requests for approval";
  return { rule: b.detector, code: 'breaker_open', message: `breaker ${b.id} (tripped ${new Date(b.trippedAt).toISOString()}: ${b.message}) ${effect} until an operator resets it` };
}

/** The most a wave lists (its breaker binds them all; the threshold itself is far lower). */
const MAX_WAVE = 1000;

/**
 * Anomaly detection and circuit breakers on the signing path (docs/policy.md, "Detectors and circuit breakers").
 *
 * Inside the signing transaction, after policy decided and before the decision's audit entry: `screen` reads the
 * breakers that bind the agent and the figures its layers' detectors declare (ledger windows, a destination's
 * recent payers), runs the detectors, and returns the decision they leave (a tripped freeze refuses the request,
 * a tripped require_approval holds it, an alert changes nothing). After the entry, `record` stores each trip (a
 * `breaker.tripped` entry, the breaker, and for a freeze the bound agents frozen, all in the same transaction),
 * appends the alerts and writes what later requests' detectors will read (refusal and hour-of-day series, first
 * payers). So the request that trips a breaker is the last one its agents get past it, and nothing after it is
 * signed. A policy without detectors costs nothing: `screen` returns before any read.
 */
export class CircuitBreakers {
  private readonly deps: ServiceDeps;
  private readonly credentials: CredentialCache;

  constructor(deps: ServiceDeps, credentials: CredentialCache) {
    this.deps = deps;
    this.credentials = credentials;
  }

  async screen(tx: StoreTx, layers: readonly PolicyLayer[], input: EvaluationInput, agent: Agent, decision: Decision): Promise<Screening | undefined> {
    const detectors = detectorsOf(layers);
    if (detectors.length === 0) return undefined;
    const ctx: DetectorContext = { input, facts: intentFacts(input.intent), decision: decision.decision };
    const reads: DetectorReads = { windows: [], payers: [] };
    for (const { detector } of detectors) detector.reads(ctx, reads);
    // One after the other: a PostgreSQL transaction is one connection.
    const open = await tx.trippedBreakersFor(agent.id);
    const view = await this.read(tx, reads);

    const denials = decision.decision === 'deny' ? [...decision.violations] : [];
    const approvals = decision.decision === 'require_approval' ? [...decision.violations] : [];
    const notes: Violation[] = [];
    for (const b of open) (b.action === 'freeze' ? denials : approvals).push(breakerOpenViolation(b));
    const trips: Trip[] = [];
    const alerts: Trip[] = [];
    const records: CompiledDetector['records'] = {};
    for (const { rule, detector } of detectors) {
      Object.assign(records, detector.records);
      const finding = detector.evaluate(ctx, view);
      if (!finding) continue;
      const violation: Violation = {
        rule,
        code: detector.action === 'alert' ? 'anomaly_detected' : 'breaker_tripped',
        message: finding.message,
        limit: finding.figures.threshold,
        used: finding.figures.observed,
        ...(finding.figures.asset !== undefined ? { asset: finding.figures.asset } : {}),
      };
      if (detector.action === 'alert') {
        alerts.push({ rule, detector, finding });
        notes.push(violation);
        continue;
      }
      // A breaker of this detector already binds the agent: its `breaker_open` says so; it is not tripped twice.
      if (open.some((b) => b.detector === rule && b.action === detector.action)) continue;
      trips.push({ rule, detector, finding });
      (detector.action === 'freeze' ? denials : approvals).push(violation);
    }
    const result: Decision = denials.length > 0
      ? { ...decision, decision: 'deny', violations: [...denials, ...notes] }
      : approvals.length > 0
        ? { ...decision, decision: 'require_approval', violations: [...approvals, ...notes] }
        : { ...decision, decision: 'allow', violations: notes };
    return { decision: result, trips, alerts, records, input, agent, open };
  }

  /** After the request's audit entry (`requestSeq`): trips, alerts and the series later detectors read. */
  async record(tx: StoreTx, screening: Screening, requestSeq: number, sessionId: string): Promise<void> {
    const { decision, input, agent } = screening;
    const now = input.nowMs;
    for (const trip of screening.trips) await this.trip(tx, trip, screening, requestSeq, sessionId);
    for (const { rule, detector, finding } of screening.alerts) {
      await tx.appendAudit({
        at: now, type: `alert.${detector.type}`, actor: 'system', agentId: agent.id, sessionId, decision: decision.decision,
        data: { detector: rule, type: detector.type, message: finding.message, figures: finding.figures, requestSeq, policyVersion: decision.policyVersion },
      });
    }
    const writes: LedgerWrite[] = [];
    if (screening.records.refusals && decision.decision === 'deny') writes.push({ series: seriesFor.refusals(agent.id), asset: COUNT_ASSET, amount: 0n, count: 1 });
    if (screening.records.hours && decision.decision !== 'deny') {
      writes.push({ series: seriesFor.hourOfDay(agent.id, utcHour(now)), asset: COUNT_ASSET, amount: 0n, count: 1 });
      writes.push({ series: seriesFor.allHours(agent.id), asset: COUNT_ASSET, amount: 0n, count: 1 });
    }
    if (writes.length > 0) await tx.appendLedger(writes, now, requestSeq);
    // Payers: of a request signed or held. A held request charges the fleet's destination series when an operator
    // grants it, with no screening then: recorded now, it is part of the wave and its later charge is never older
    // than the destination's first recorded payer (which would read as "paid before the detector").
    if (screening.records.payers && decision.decision !== 'deny') {
      const destinations = [...intentFacts(input.intent).requestedByDestination.keys()];
      if (destinations.length > 0) await tx.recordDestinationPayers(agent.id, destinations, now, requestSeq);
    }
  }

  private async trip(tx: StoreTx, { rule, detector, finding }: Trip, screening: Screening, requestSeq: number, sessionId: string): Promise<void> {
    const { agent, input, decision } = screening;
    const label = detector.groupLabel !== undefined ? agent.labels[detector.groupLabel] : undefined;
    // An agent without the group's label is a group of one.
    const targets: BreakerTargets = detector.scope === 'fleet'
      ? { fleet: true }
      : detector.scope === 'group' && label !== undefined
        ? { group: { label: detector.groupLabel!, value: label } }
        : { agents: [agent.id, ...(finding.agents ?? [])] };
    const bound = await tx.breakerTargets(targets);
    // The requester is bound whatever the selection says (it is active: its request is being decided).
    const agents = bound.includes(agent.id) ? bound : [agent.id, ...bound];
    const id = this.deps.randomId('brk');
    const action = detector.action as BreakerRecord['action'];
    const group = 'group' in targets ? targets.group : undefined;
    const entry = await tx.appendAudit({
      at: input.nowMs, type: 'breaker.tripped', actor: 'system', agentId: agent.id, sessionId, decision: action === 'freeze' ? 'deny' : 'require_approval',
      data: {
        breakerId: id, detector: rule, type: detector.type, action, scope: detector.scope, ...(group ? { group } : {}),
        message: finding.message, figures: finding.figures, agents, requestSeq, policyVersion: decision.policyVersion,
      },
    });
    const record: BreakerRecord = {
      id, detector: rule, type: detector.type, action, scope: detector.scope, ...(group ? { group } : {}), agentId: agent.id,
      policyVersion: decision.policyVersion, figures: finding.figures, message: finding.message, agents, state: 'tripped',
      trippedAt: input.nowMs, trippedSeq: entry.seq,
    };
    await tx.tripBreaker(record, { freeze: action === 'freeze', now: input.nowMs });
    // This instance's cached credentials of the frozen agents go now; every instance re-reads the agent in its transaction anyway.
    if (action === 'freeze') for (const a of agents) this.credentials.forgetAgent(a);
  }

  /** The figures the detectors declared: one read of the windows, one of each destination's payers. */
  private async read(tx: StoreTx, reads: DetectorReads): Promise<DetectorView> {
    const seen = new Set<string>();
    const windows: WindowQuery[] = reads.windows.filter((q) => !seen.has(windowKey(q)) && seen.add(windowKey(q)));
    const bySince = new Map<number, Set<string>>();
    for (const p of reads.payers) {
      let set = bySince.get(p.sinceMs);
      if (!set) bySince.set(p.sinceMs, (set = new Set()));
      set.add(p.destination);
    }
    const totals = windows.length > 0 ? await tx.detectorTotals(windows) : [];
    const payersBySince = new Map<number, Map<string, DestinationPayers>>();
    for (const [sinceMs, destinations] of bySince) payersBySince.set(sinceMs, await tx.destinationPayers([...destinations], sinceMs, MAX_WAVE));
    const ledger = ledgerViewFrom(windows, totals);
    return {
      total: (q) => ledger.total(q),
      payers: (destination, sinceMs) => payersBySince.get(sinceMs)?.get(destination) ?? { agents: [], paidBeforeRecorded: false, paidBeforeWindow: false },
    };
  }

  // ---- operator side ----

  async list(filter: { state?: BreakerState; limit?: number }): Promise<BreakerRecord[]> {
    return this.deps.store.listBreakers(filter);
  }

  async get(id: string): Promise<BreakerRecord> {
    const breaker = await this.deps.store.getBreaker(id);
    if (!breaker) throw new AirlockError('not_found', 'No such breaker.');
    return breaker;
  }

  /**
   * Re-opens a tripped breaker (an operator action, audited): unfreezes what it froze, ends its approval hold. An
   * agent the operator froze themselves (also while the breaker held it: a freeze, or revoke-all) or that another
   * tripped freeze breaker holds stays frozen: `keptFrozen` says which and why, audited as `agent.kept_frozen`.
   */
  async reset(id: string, actor: string): Promise<BreakerRecord & { unfrozen: string[]; keptFrozen: BreakerResetKeptFrozen[] }> {
    const now = this.deps.clock.now();
    const out = await this.deps.store.transaction(async (tx) => {
      const breaker = await tx.getBreaker(id);
      if (!breaker) throw new AirlockError('not_found', 'No such breaker.');
      if (breaker.state !== 'tripped') throw new AirlockError('breaker_not_tripped', `Breaker ${id} was already reset.`);
      const entry = await tx.appendAudit({
        at: now, type: 'breaker.reset', actor: 'operator', agentId: breaker.agentId,
        data: { breakerId: id, detector: breaker.detector, action: breaker.action, scope: breaker.scope, by: actor },
      });
      const reset = await tx.resetBreaker(id, actor, now, entry.seq);
      if (reset.unfrozen.length > 0) {
        await tx.appendAudit({ at: now, type: 'agent.unfrozen', actor: 'operator', agentId: breaker.agentId, data: { breakerId: id, agents: reset.unfrozen, by: actor } });
      }
      if (reset.keptFrozen.length > 0) {
        await tx.appendAudit({ at: now, type: 'agent.kept_frozen', actor: 'operator', agentId: breaker.agentId, data: { breakerId: id, agents: reset.keptFrozen, by: actor } });
      }
      return reset;
    });
    return { ...out.breaker, unfrozen: out.unfrozen, keptFrozen: out.keptFrozen };
  }
}

function detectorsOf(layers: readonly PolicyLayer[]): LayerDetector[] {
  const out: LayerDetector[] = [];
  for (const { layer, policy } of layers) for (const detector of policy.detectors) out.push({ rule: `detector/${layer}/${detector.name}`, detector });
  return out;
}
