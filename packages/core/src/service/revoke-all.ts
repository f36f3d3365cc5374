// `airlock agent revoke-all` (issue 14, section 3): the incident button. A frozen agent signs nothing more, but
// what its key already handed out (allowances, permits, authorizations held by someone else) outlives the
// freeze; this undoes all of it.
//
//   1. Off chain, in ONE store transaction with its audit entries: freeze the agent (an operator's freeze, also of
//      an agent a breaker froze: no breaker reset undoes it, only an unfreeze), revoke every open session
//      (child sessions go with their parent; NWC connections end with their sessions), deny every pending
//      approval (reason `revoke_all`, releasing its hold), and append `agent.revoke_all`.
//   2. The dependency map, reconciled against the chain, planned into revocation steps (chain time where the
//      chain answers) per key that granted something: a grant made by a key rotated since is revoked by that key.
//   3. Each step signed with that key through the lifecycle path (typed data first where a step needs it: planned
//      in a `lifecycle.planned` entry, signed bound to it, checked by the EVM adapter, and kept inside Airlock
//      until the call carrying it is committed), then the call handed to the lifecycle path one at a time, so
//      each step ends `submitted` with its job or `failed` with a code, and one failing key or chain stops
//      nothing else.
//
// No I/O of its own: the store, the key backend, the chain reader and the lifecycle path are ports.
import { AirlockError } from '../errors.ts';
import { buildDependencyMap, reconcileDependencyMap, type DependencyMap } from '../dependencies/dependency-map.ts';
import { planRevocations, type GrantRef, type RevocationStep, type UnplannedRevocation } from '../dependencies/revocation-planner.ts';
import type { ChainReader } from '../ports/chain-reader.ts';
import type { Agent } from '../ports/store.ts';
import type { CredentialCache } from './credential-cache.ts';
import type { ServiceDeps } from './deps.ts';
import type { LifecycleService } from './lifecycle-service.ts';

export const REVOKE_ALL_PURPOSE = 'revoke_all';

export interface RevokeAllStep {
  purpose: string;
  keyIndex: number;
  /** CAIP-2. */
  chain: string;
  grants: GrantRef[];
  status: 'submitted' | 'failed';
  /** The lifecycle job (`GET /v1/lifecycle/jobs/{id}`) when submitted. */
  jobId?: string;
  /** Why it failed: a stable code (`lifecycle_rpc_unavailable`, `lifecycle_no_rpc`, …) and a sentence. */
  error?: { code: string; message: string };
}

export interface RevokeAllReport {
  agent: { id: string; name: string; status: Agent['status'] };
  /** Whether this call froze it (false: it was frozen already; it is held frozen by the operator from now on all the same). */
  frozen: boolean;
  /** Sessions revoked, child sessions included. */
  revokedSessions: string[];
  deniedApprovals: string[];
  /** The `agent.revoke_all` audit entry. */
  auditSeq: number;
  steps: RevokeAllStep[];
  /** What could not be planned (unknown EIP-712 domain, a nonce range too large, …): still live, to be handled by hand. */
  unplanned: (UnplannedRevocation & { keyIndex?: number })[];
  /** Grants the chain showed dead already: nothing to do. */
  alreadyDead: GrantRef[];
  notes: string[];
}

export interface RevokeAllServiceOptions {
  /** Reads allowances, nonces and chain time (runtime `chainReader`); absent: every grant is `unknown` and planned. */
  chainReader?: ChainReader;
  /** The signing path's credential cache: the agent's cached sessions are dropped at once. */
  credentials?: CredentialCache;
}

export class RevokeAllService {
  private readonly deps: ServiceDeps;
  private readonly lifecycle: LifecycleService;
  private readonly options: RevokeAllServiceOptions;

  constructor(deps: ServiceDeps, lifecycle: LifecycleService, options: RevokeAllServiceOptions = {}) {
    this.deps = deps;
    this.lifecycle = lifecycle;
    this.options = options;
  }

  /**
   * Runs the incident button on `agentIdOrName` (`actor`: who pressed it, for the audit log). Throws only
   * before anything changed (`not_found`, `agent_retired`); once the off-chain part committed, every later
   * failure is reported in `steps`, never thrown.
   */
  async revokeAll(agentIdOrName: string, actor: string): Promise<RevokeAllReport> {
    const lockdown = await this.lockDown(agentIdOrName, actor);
    const { agent } = lockdown;
    const notes: string[] = [];
    const map = await reconcileDependencyMap(await buildDependencyMap(this.deps.store, agent.id, this.deps.clock.now()), this.options.chainReader);
    notes.push(...this.mapNotes(map));

    const keys = await this.deps.store.listAgentKeys(agent.id);
    const keyIndexOf = new Map(keys.map((k) => [k.address.toLowerCase(), k.keyIndex]));
    const steps: RevokeAllStep[] = [];
    const unplanned: RevokeAllReport['unplanned'] = [];
    const alreadyDead: GrantRef[] = [];
    // One plan per key that granted something: a burn permit or an EIP-3009 cancel is signed as that owner.
    for (const owner of ownersOf(map)) {
      const keyIndex = keyIndexOf.get(owner);
      const mine = { ...map, agent: { ...map.agent, address: owner }, grants: map.grants.filter((g) => g.owner.toLowerCase() === owner), authorizations: map.authorizations.filter((a) => a.owner.toLowerCase() === owner) };
      const plan = planRevocations(mine, { nowSeconds: await this.chainNow(mine) });
      alreadyDead.push(...plan.alreadyDead);
      if (keyIndex === undefined) {
        // Never expected (every address an agent signed with is in its key registry), but never dropped.
        for (const step of plan.steps) unplanned.push({ purpose: step.purpose, reason: 'owner_unknown', message: `${owner} is not one of the agent's keys.`, grants: step.grants });
        continue;
      }
      unplanned.push(...plan.unplanned.map((u) => ({ ...u, keyIndex })));
      for (const step of plan.steps) steps.push(await this.execute(agent, keyIndex, step));
    }
    const failed = steps.filter((s) => s.status === 'failed').length;
    if (failed > 0) notes.push(`${failed} of ${steps.length} on-chain revocation(s) failed (see steps[].error); the grants they name may still be live. Fix the cause and run revoke-all again: what is dead by then is skipped.`);
    if (unplanned.length > 0) notes.push(`${unplanned.length} grant group(s) could not be planned (unplanned[]): they may still be live and need revoking by hand.`);
    return { ...lockdown, agent: { id: agent.id, name: agent.name, status: agent.status }, steps, unplanned, alreadyDead, notes };
  }

  /** Step 1: freeze, sessions, approvals and the `agent.revoke_all` entry, in one transaction. */
  private async lockDown(agentIdOrName: string, actor: string): Promise<{ agent: Agent; frozen: boolean; revokedSessions: string[]; deniedApprovals: string[]; auditSeq: number }> {
    const found = await this.deps.store.getAgent(agentIdOrName);
    if (!found) throw new AirlockError('not_found', 'No such agent.');
    if (found.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot be revoked: its sessions are gone and its key signs nothing but sweeps.', { hints: ['Its grants can still be read with `airlock agent deps --reconcile`.'] });
    const now = this.deps.clock.now();
    const result = await this.deps.store.transaction(async (tx) => {
      const agent = await tx.getAgent(found.id); // the agent's lock
      if (!agent) throw new AirlockError('not_found', 'No such agent.');
      if (agent.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot be revoked.');
      const frozen = agent.status === 'active';
      // Frozen also when a breaker froze it already: the store then marks the freeze the operator's own, which no
      // breaker reset undoes (found by review: revoke-all left a breaker-frozen agent as it was, and the breaker's
      // reset made it active again).
      const current = await tx.setAgentStatus(agent.id, 'frozen', now);
      if (frozen) await tx.appendAudit({ at: now, type: 'agent.frozen', actor: 'operator', agentId: agent.id, data: { from: 'active', to: 'frozen', reason: REVOKE_ALL_PURPOSE, by: actor } });

      // Listed under the exclusive lock: a session issued while revoke-all waited is among them (found by review:
      // listed before the transaction, one issued in between survived and signed after the operator unfroze).
      const revokedSessions: string[] = [];
      for (const session of await tx.liveSessionsOf(agent.id, now)) {
        if (revokedSessions.includes(session.id)) continue;
        const descendants = (await tx.sessionDescendants(session.id)).filter((s) => s.revokedAt === undefined && !revokedSessions.includes(s.id)).map((s) => s.id);
        await tx.revokeSession(session.id, now);
        await tx.appendAudit({ at: now, type: 'session.revoked', actor: 'operator', agentId: agent.id, data: { sessionId: session.id, ...(descendants.length ? { descendants } : {}), reason: REVOKE_ALL_PURPOSE, by: actor } });
        revokedSessions.push(session.id, ...descendants);
      }

      const deniedApprovals: string[] = [];
      for (;;) {
        const pending = (await tx.listApprovals({ state: 'pending', agentId: agent.id, limit: 1000 })).filter((a) => !deniedApprovals.includes(a.id));
        if (pending.length === 0) break;
        for (const a of pending) {
          const entry = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'operator', agentId: agent.id, sessionId: a.sessionId, action: a.action, decision: 'deny', data: { approvalId: a.id, requestSeq: a.auditSeq, by: actor, reason: REVOKE_ALL_PURPOSE } });
          await tx.decideApproval(a.id, 'denied', actor, now, entry.seq);
          deniedApprovals.push(a.id);
        }
      }
      const entry = await tx.appendAudit({ at: now, type: 'agent.revoke_all', actor: 'operator', agentId: agent.id, data: { frozen, status: current.status, revokedSessions, deniedApprovals, by: actor } });
      return { agent: current, frozen, revokedSessions, deniedApprovals, auditSeq: entry.seq };
      // Exclusive, as a freeze or a revoke alone is: it changes the agent's status and its sessions, which every
      // signing transaction reads. On PostgreSQL a signing request of this agent on another instance may already
      // be waiting for the agent's lock in the statement that reads them, with a snapshot from before this commit;
      // under the signing lock taken exclusively it waits at BEGIN instead and reads the frozen agent after it.
    }, { exclusive: true });
    this.options.credentials?.forgetAgent(found.id);
    return result;
  }

  /** Steps 3 and 4 for one step: sign what it needs, submit its call, and say how it ended. Never throws. */
  private async execute(agent: Agent, keyIndex: number, step: RevocationStep): Promise<RevokeAllStep> {
    const chain = step.type === 'transaction' ? step.call.chain : step.chain;
    const base = { purpose: step.purpose, keyIndex, chain, grants: step.grants };
    try {
      // The owner's EIP-712 signature (planned and signed bound like every lifecycle signature) is kept inside
      // Airlock: it only leaves in the call the lifecycle path commits and audits. The step's chain goes with it:
      // a chainless EIP-3009 authorization's cancellation is signed without chainId (the only domain it verifies
      // under) and sent on the chain the request named (found by review: it was reported unplanned, and the
      // authorization stayed usable, because the operator cannot sign with the agent's key by hand).
      const call = step.type === 'transaction' ? step.call : step.buildCall(await this.lifecycle.signRevocationTypedData(agent.id, keyIndex, step.typedData, REVOKE_ALL_PURPOSE, step.chain));
      const [jobId] = await this.lifecycle.submitCalls(agent.id, keyIndex, [call], REVOKE_ALL_PURPOSE);
      return { ...base, status: 'submitted', jobId: jobId! };
    } catch (e) {
      const error = e instanceof AirlockError ? { code: e.code, message: e.message } : { code: 'internal', message: 'The step failed unexpectedly; nothing more is known.' };
      return { ...base, status: 'failed', error };
    }
  }

  /** Chain time of the map's EVM chain (the planner compares deadlines with it); the clock when it cannot be read. */
  private async chainNow(map: DependencyMap): Promise<number> {
    const times = [...map.grants.map((g) => g.evidence?.chainTime), ...map.authorizations.map((a) => a.evidence?.chainTime)].filter((t): t is number => t !== undefined);
    return times.length ? Math.max(...times) : Math.floor(this.deps.clock.now() / 1000);
  }

  private mapNotes(map: DependencyMap): string[] {
    const notes = [...map.notes];
    if (map.lightningPayments.length > 0) {
      notes.push(`${map.lightningPayments.length} Lightning payment(s) in flight (${map.lightningPayments.map((p) => p.id).join(', ')}) cannot be cancelled: an HTLC already sent settles or fails on its own.`);
    }
    const open = map.nwcConnections.filter((c) => c.open).length;
    if (map.nwcConnections.length > 0) notes.push(`NWC connections end with their sessions: ${map.nwcConnections.length} listed, ${open} still bound to an open session.`);
    const unknown = [...map.grants, ...map.authorizations].filter((g) => g.live === 'unknown');
    if (unknown.length > 0) notes.push(`${unknown.length} grant(s) could not be read on chain (${[...new Set(unknown.map((g) => g.evidence?.reason))].join(', ')}): they were planned as live.`);
    return notes;
  }
}

/** Every address of the agent that granted something, current key first. */
function ownersOf(map: DependencyMap): string[] {
  const owners = new Set<string>([...map.grants.map((g) => g.owner.toLowerCase()), ...map.authorizations.map((a) => a.owner.toLowerCase())]);
  return [...owners].sort((a, b) => Number(b === map.agent.address.toLowerCase()) - Number(a === map.agent.address.toLowerCase()));
}
