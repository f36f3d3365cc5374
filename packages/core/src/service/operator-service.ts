import { grantsOf } from '../dependencies/grants.ts';
import { canonicalJson } from '../canonical-json.ts';
import { receiptForSeq } from '../audit/stored-tree.ts';
import { bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError, isAirlockError } from '../errors.ts';
import type { Agent, AgentStatus, ApprovalRecord, PolicyRecord, Session, SessionScope, StoreTx } from '../ports/store.ts';
import type { AgentKey } from '../ports/agent-keys.ts';
import { ACTIONS, intentToJson, type Intent } from '../intent.ts';
import type { Violation } from '../policy/decision.ts';
import { normaliseResource } from '../policy/resource-pattern.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import { assertAgentLifecycle, assertSessionScope, diffPolicies, hashPolicy, parseDuration, parsePolicyText, validatePolicy, type PolicyWarning } from '../policy/index.ts';
import type { ServiceDeps } from './deps.ts';
import { FLEET_SCOPE, agentScope, labelOf } from './policy-layers.ts';
import { attachPaymentContext, isHeldPayment, type SigningService } from './signing-service.ts';
import { ledgerWritesFor, type EvaluationInput } from '../policy/index.ts';
import type { LedgerWrite } from '../ports/ledger.ts';
import { formatSessionToken, hashSecret } from './tokens.ts';
import { ancestorIdsOf, readAncestors } from './session-chain.ts';
import { assertSessionLabel } from './session-label.ts';
import { decodedForAnotherKey } from '../approvals/decoded-for.ts';
import { describeRequirement, quorumMet, requiredOfVotes, requiredQuorum, withOperatorApproval, type CountedVote, type QuorumRequirement } from '../approvals/quorum.ts';
import { breakerOpenViolation } from './circuit-breakers.ts';
import type { LightningPaymentRecord } from '../ports/lightning-payments.ts';
import type { LightningService } from '../lightning/lightning-service.ts';

export interface CreateAgentsInput {
  /** Explicit names, or `count` agents named `<prefix>-<id suffix>`. */
  names?: string[];
  count?: number;
  prefix?: string;
  labels?: Record<string, string>;
}

/** What `rotateAgentKey` did: the agent as it is now, the key it signed with before and the one it signs with now. */
export interface AgentKeyRotationResult {
  agent: Agent;
  previous: { keyIndex: number; address: string };
  current: { keyIndex: number; address: string };
  /** The agent's pending EVM approvals, denied by the rotation (reason `key_rotated`). */
  deniedApprovals: string[];
}

export interface IssueSessionInput {
  /** Lifetime, e.g. `1h`, `24h`, `7d` (at most 30 days). */
  ttl: string;
  actions: string[];
  chains?: string[];
  budgets?: SessionScope['budgets'];
  label?: string;
}

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const AGENT_ID_RE = /^ag_[0-9a-f]{16}$/;

/** A duration the operator gave (`field` names it): refused as bad input, not as a policy error. */
function requestDuration(value: string, field: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new AirlockError('invalid_request', `${field}: a positive duration such as 1h or 7d.`);
  }
}

/** A grant decided inside a transaction, before the signature: what `completeGrant` finishes after commit. */
export interface GrantedApproval {
  approval: ApprovalRecord;
  paymentId?: string | undefined;
  lightning?: LightningPaymentRecord;
  /** The approval was closed instead (its invoice is already paid, or the policy in force now denies it): thrown after commit. */
  closed?: AirlockError;
  /**
   * Nothing granted: the policy in force now holds the request for a quorum this grant does not meet, and the
   * approval stays pending for it (`raiseApprovalQuorum`). `refused` is thrown to an operator after commit; a vote
   * that led here was counted, and its caster is answered with the approval as it stands.
   */
  quorumRaised?: { refused: AirlockError };
}
/** Why a grant is refused under the policy in force (OperatorService.policyRecheck). */
interface PolicyRefusal {
  violations: Violation[];
  policyVersion?: string;
  reason: 'policy_denies' | 'policy_requires_quorum' | 'undecodable';
  /** `policy_requires_quorum`: the quorum the policy in force now requires, which this grant does not meet. */
  quorum?: QuorumRequirement[];
}

/**
 * What a grant's recheck judged (OperatorService.policyRecheck): the request as the policy in force decodes it, the
 * ledger writes that decoding charges, and the holds taken when it was asked (as the store merged them).
 */
interface JudgedCharge {
  intent: Intent;
  writes: LedgerWrite[];
  held: LedgerWrite[];
}

/** Who grants: the admin token (`by` only) or approvers whose counted votes met the quorum the request was held for. */
export interface Grantor {
  by: string;
  approvers?: string[];
  /** The counted votes (approvers' votes): judged again against the quorum the policy in force now requires. */
  votes?: readonly CountedVote[];
}

const MAX_BATCH = 10_000;
const MAX_SESSION_MS = 30 * 24 * 3600_000;

/** What operators do: agents, policies, sessions, approvals. Every change is audited. */
export class OperatorService {
  private readonly deps: ServiceDeps;
  private readonly signing: SigningService;
  /** Approved Lightning payments are paid through it (wired by the composition root). */
  private lightning: LightningService | undefined;

  constructor(deps: ServiceDeps, signing: SigningService, lightning?: LightningService) {
    this.deps = deps;
    this.signing = signing;
    this.lightning = lightning;
  }

  async createAgents(input: CreateAgentsInput, actor: string): Promise<Agent[]> {
    // An empty list of names is a mistake, not a request for one agent named by default.
    if (input.names !== undefined && input.names.length === 0 && input.count === undefined) throw new AirlockError('invalid_request', 'names: at least one name (or give count).');
    const names = input.names ?? [];
    const count = input.count ?? (names.length ? 0 : 1);
    if (!Number.isSafeInteger(count) || count < 0 || names.length + count > MAX_BATCH || names.length + count === 0) {
      throw new AirlockError('invalid_request', `count must be between 1 and ${MAX_BATCH}.`);
    }
    const prefix = input.prefix ?? 'agent';
    const toCreate = [
      ...names.map((name) => ({ id: this.deps.randomId('ag'), name })),
      ...Array.from({ length: count }, () => {
        const id = this.deps.randomId('ag');
        // The whole 64-bit id, not a part of it: with 8 hex digits a batch of 10,000 collided with itself about
        // once in 90 batches (birthday bound n^2 / 2^33), and against a store of a million agents nearly always.
        return { id, name: `${prefix}-${id.slice(3)}` };
      }),
    ];
    const seen = new Set<string>();
    for (const a of toCreate) {
      if (!NAME_RE.test(a.name)) throw new AirlockError('invalid_request', 'Agent names are 1-64 chars of a-z, 0-9, _ . - and start with a letter or digit.');
      // Names that scopes and look-ups already read as something else (found by review): `fleet` named the fleet
      // policy in PUT /v1/policies/fleet, and a name shaped like an agent id resolved to that other agent.
      if (a.name === FLEET_SCOPE || AGENT_ID_RE.test(a.name)) throw new AirlockError('invalid_request', `The agent name ${a.name === FLEET_SCOPE ? '"fleet" is reserved (the fleet policy scope)' : 'has the form of an agent id (ag_ and 16 hex digits)'}; choose another.`);
      if (seen.has(a.name)) throw new AirlockError('conflict', 'Duplicate agent name in the batch.');
      seen.add(a.name);
    }
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter) throw new AirlockError('internal', 'EVM adapter not configured.');
    const agents = await this.deps.store.createAgents(
      toCreate.map((a) => ({ ...a, labels: input.labels ?? {} })),
      async (accountIndex, keyIndex) => adapter.addressFromPublicKey(await this.deps.keys.getPublicKey(adapter.derivationPath(accountIndex, keyIndex))),
      this.deps.clock.now(),
    );
    await this.audit('agent.created', actor, undefined, {
      agents: agents.map((a) => ({ id: a.id, name: a.name, accountIndex: a.accountIndex, address: a.address })),
    });
    return agents;
  }

  async getAgent(idOrName: string): Promise<Agent> {
    const agent = await this.deps.store.getAgent(idOrName);
    if (!agent) throw new AirlockError('not_found', 'No such agent.');
    return agent;
  }

  async setAgentStatus(idOrName: string, status: AgentStatus, actor: string): Promise<Agent> {
    const agent = await this.getAgent(idOrName);
    if (agent.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot change status.');
    const type = status === 'frozen' ? 'agent.frozen' : status === 'active' ? 'agent.unfrozen' : 'agent.retired';
    const updated = await this.audited(type, actor, agent.id, async (tx, now) => {
      // Read again under the exclusive lock: a retirement that committed since the read above is final (found by
      // review: a freeze that read the agent active wrote `frozen` over `retired`, and an unfreeze then let the
      // retired agent's key sign again).
      const current = await tx.getAgent(agent.id);
      if (!current) throw new AirlockError('not_found', 'No such agent.');
      if (current.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot change status.');
      // A freeze is the operator's own also when a breaker froze the agent already (frozen -> frozen): the store marks
      // it so, and no breaker reset undoes it; an unfreeze clears the mark (found by review: the reset set it active).
      const updated = await tx.setAgentStatus(agent.id, status, now);
      // Retirement is final: every credential of the agent dies with it, listed and revoked under the same lock (a
      // session issued while the retirement waited is among them; one issued after it is refused by issueSession).
      const revoked = status === 'retired' ? (await tx.liveSessionsOf(agent.id, now)).map((s) => s.id) : [];
      for (const id of revoked) await tx.revokeSession(id, now);
      return { result: updated, data: { from: current.status, to: status, ...(revoked.length ? { revokedSessions: revoked } : {}) } };
    }, { exclusive: true });
    // This instance answers the agent's next request from the store (every instance re-reads it in the signing transaction).
    this.signing.credentials.forgetAgent(agent.id);
    return updated;
  }

  /**
   * Rotates the agent's EVM key (m/44'/60'/{account}'/0/{keyIndex}): the next key index it never had, in one
   * exclusive transaction with its `agent.key_rotated` entry. Its pending EVM approvals were decoded for the old
   * address: they are denied in the same transaction (`approval.denied`, reason `key_rotated`), so no approval
   * granted later signs with a key its request was not decoded for. A frozen agent can be rotated (the incident
   * case) and stays frozen; a retired one cannot (`agent_retired`). Bitcoin and Nostr keys are per account and
   * do not change. Sessions stay valid: from the next request they sign with the new key.
   */
  /**
   * `expectKeyIndex`: rotate only if the agent still signs with that key index, else `conflict` (the rotation
   * scheduler runs on every instance: the first one rotates, the others find the key already moved on).
   */
  async rotateAgentKey(agentIdOrName: string, actor: string, options: { expectKeyIndex?: number } = {}): Promise<AgentKeyRotationResult> {
    const { id } = await this.getAgent(agentIdOrName);
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter) throw new AirlockError('internal', 'EVM adapter not configured.');
    const derive = async (accountIndex: number, keyIndex: number) => adapter.addressFromPublicKey(await this.deps.keys.getPublicKey(adapter.derivationPath(accountIndex, keyIndex)));
    const now = this.deps.clock.now();
    const result = await this.deps.store.transaction(async (tx) => {
      const agent = await tx.getAgent(id);
      if (!agent) throw new AirlockError('not_found', 'No such agent.');
      if (agent.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent keeps its last key; it cannot be rotated.');
      if (options.expectKeyIndex !== undefined && agent.keyIndex !== options.expectKeyIndex) {
        throw new AirlockError('conflict', `The agent's key was rotated meanwhile (it signs with key index ${agent.keyIndex} now).`);
      }
      const { agent: rotated, previous, current } = await tx.rotateAgentKey(agent.id, derive, now);
      const deniedApprovals = await this.denyPendingEvmApprovals(tx, agent.id, actor, now);
      await tx.appendAudit({
        at: now, type: 'agent.key_rotated', actor: 'operator', agentId: agent.id,
        data: { previous: keyRef(previous), current: keyRef(current), ...(deniedApprovals.length ? { deniedApprovals } : {}), by: actor },
      });
      return { agent: rotated, previous: keyRef(previous), current: keyRef(current), deniedApprovals };
    }, { exclusive: true });
    // This instance signs the agent's next request with the new key (other instances find out in the signing transaction).
    this.signing.credentials.forgetAgent(id);
    return result;
  }

  /** Every key the agent ever had, oldest first, with its state (ports/agent-keys.ts). */
  async listAgentKeys(agentIdOrName: string): Promise<{ agent: Agent; keys: AgentKey[] }> {
    const agent = await this.getAgent(agentIdOrName);
    return { agent, keys: await this.deps.store.listAgentKeys(agent.id) };
  }

  /** The agent that has or ever had this EVM address, with that key; undefined when no agent ever did. */
  async findAgentByAddress(address: string): Promise<{ agent: Agent; key: AgentKey } | undefined> {
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new AirlockError('invalid_address', 'address: expected 0x and 40 hex digits.');
    const key = await this.deps.store.findAgentKey(address);
    const agent = key && (await this.deps.store.getAgent(key.agentId));
    return key && agent ? { agent, key } : undefined;
  }

  /**
   * Marks one of the agent's keys `retired` (nothing is left at its address: the lifecycle sweep calls this once
   * it has emptied it), audited `agent.key_retired`. Idempotent; the signing key of an agent that is not retired
   * is refused (`conflict`: rotate first).
   */
  async retireAgentKey(agentIdOrName: string, keyIndex: number, actor: string): Promise<AgentKey> {
    const agent = await this.getAgent(agentIdOrName);
    const existing = (await this.deps.store.listAgentKeys(agent.id)).find((k) => k.keyIndex === keyIndex);
    if (existing?.state === 'retired') return existing;
    return this.audited('agent.key_retired', actor, agent.id, async (tx, now) => {
      const key = await tx.retireAgentKey(agent.id, keyIndex, now);
      return { result: key, data: { keyIndex, address: key.address } };
    });
  }

  /** Denies the agent's pending EVM approvals inside a rotation (their requests name the old key). */
  private async denyPendingEvmApprovals(tx: StoreTx, agentId: string, actor: string, now: number): Promise<string[]> {
    const denied: string[] = [];
    for (;;) {
      const pending = (await tx.listApprovals({ state: 'pending', agentId, limit: 1000 })).filter((a) => a.action.startsWith('evm.') && !denied.includes(a.id));
      if (pending.length === 0) return denied;
      for (const a of pending) {
        const entry = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'operator', agentId, sessionId: a.sessionId, action: a.action, decision: 'deny', data: { approvalId: a.id, requestSeq: a.auditSeq, by: actor, reason: 'key_rotated' } });
        await tx.decideApproval(a.id, 'denied', actor, now, entry.seq);
        denied.push(a.id);
      }
    }
  }

  /**
   * Parses and validates a document (YAML/JSON text or data): it compiles, its registered ABIs parse
   * (through the EVM adapter), and the warnings say what it lets through unchecked.
   * Throws invalid_policy with the exact path.
   */
  validatePolicy(source: string | unknown): { document: unknown; warnings: PolicyWarning[] } {
    const document = typeof source === 'string' ? parsePolicyText(source) : source;
    const checkAbis = this.deps.adapters.get('eip155')?.checkAbis;
    const { warnings } = validatePolicy(document, checkAbis);
    return { document, warnings };
  }

  /**
   * Validates, stores a new version (unless identical to the current one) and audits it. `alsoInTransaction`
   * runs in the transaction that stores it (promoting a shadow policy unstages it there).
   */
  async setPolicy(scope: string, source: string | unknown, actor: string, options: { alsoInTransaction?: (tx: StoreTx, now: number, stored: PolicyRecord) => Promise<void> } = {}): Promise<{ record: Omit<PolicyRecord, 'document'>; changed: boolean; warnings: PolicyWarning[] }> {
    const resolved = await this.resolveScope(scope);
    const { document, warnings } = this.validatePolicy(source);
    if (resolved !== FLEET_SCOPE) assertAgentLifecycle(document);
    const hash = hashPolicy(document);
    const current = await this.deps.store.getPolicy(resolved);
    if (current && current.hash === hash) return { record: strip(current), changed: false, warnings };
    const record = await this.audited('policy.set', actor, resolved.startsWith('agent:') ? resolved.slice(6) : undefined, async (tx, now) => {
      const stored = await tx.putPolicy({ scope: resolved, hash, document: JSON.parse(canonicalJson(document)), ...(typeof source === 'string' ? { source } : {}), author: actor, createdAt: now });
      await options.alsoInTransaction?.(tx, now, stored);
      return { result: stored, data: { scope: resolved, version: stored.version, hash, label: labelOf(stored), previousVersion: current?.version ?? null } };
    }, { exclusive: true });
    return { record: strip(record), changed: true, warnings };
  }

  async getPolicy(scope: string, version?: number): Promise<PolicyRecord> {
    const record = await this.deps.store.getPolicy(await this.resolveScope(scope), version);
    if (!record) throw new AirlockError('not_found', 'No policy at this scope/version.');
    return record;
  }

  async listPolicyVersions(scope: string) {
    return this.deps.store.listPolicyVersions(await this.resolveScope(scope));
  }

  async diffPolicy(scope: string, from: number, to?: number): Promise<string> {
    const a = await this.getPolicy(scope, from);
    const b = await this.getPolicy(scope, to);
    return diffPolicies(a.document, b.document);
  }

  async issueSession(agentIdOrName: string, input: IssueSessionInput, actor: string): Promise<{ session: Session; token: string }> {
    const agent = await this.getAgent(agentIdOrName);
    if (agent.status !== 'active') throw new AirlockError(agent.status === 'frozen' ? 'agent_frozen' : 'agent_retired');
    const ttlMs = requestDuration(input.ttl, 'ttl');
    if (ttlMs > MAX_SESSION_MS) throw new AirlockError('invalid_request', 'ttl: at most 30d.');
    if (!input.actions.length || !input.actions.every((a) => (ACTIONS as readonly string[]).includes(a))) {
      throw new AirlockError('invalid_request', `actions: each must be one of ${ACTIONS.join(', ')}.`);
    }
    const budgets = input.budgets ?? [];
    for (const [i, b] of budgets.entries()) {
      requestDuration(b.window, `budgets[${i}].window`);
      if (!/^\d{1,78}$/.test(b.max)) throw new AirlockError('invalid_amount', 'budgets[].max must be a non-negative integer string.');
    }
    const scope: SessionScope = { actions: [...new Set(input.actions)], chains: input.chains ?? [], budgets };
    assertSessionScope(scope);
    assertSessionLabel(input.label);
    const now = this.deps.clock.now();
    const secret = this.deps.randomSecret();
    const session: Session = {
      id: this.deps.randomId('ses'),
      agentId: agent.id,
      tokenHash: hashSecret(secret),
      scope,
      createdAt: now,
      expiresAt: now + ttlMs,
      ...(input.label ? { label: input.label } : {}),
    };
    await this.audited('session.issued', actor, agent.id, async (tx) => {
      // Read again in the transaction: an agent frozen or retired since the read above gets no new session (found
      // by review: a session issued while a retirement committed outlived it, live in every listing).
      const current = await tx.getAgent(agent.id);
      if (current?.status !== 'active') throw new AirlockError(current?.status === 'frozen' ? 'agent_frozen' : current ? 'agent_retired' : 'not_found');
      await tx.createSession(session);
      return { result: undefined, data: { sessionId: session.id, scope: session.scope, expiresAt: session.expiresAt } };
    });
    return { session, token: formatSessionToken(session.id, secret) };
  }

  /** Revokes the session and, in the same transaction, every session derived from it (named in the audit entry). */
  async revokeSession(id: string, actor: string): Promise<Session> {
    const existing = await this.deps.store.getSession(id);
    if (!existing) throw new AirlockError('not_found', 'No such session.');
    if (existing.revokedAt !== undefined) return existing; // revoking twice changes nothing and records nothing
    let descendants: string[] = [];
    const revoked = await this.audited('session.revoked', actor, existing.agentId, async (tx, now) => {
      descendants = (await tx.sessionDescendants(id)).filter((s) => s.revokedAt === undefined).map((s) => s.id);
      return { result: await tx.revokeSession(id, now), data: { sessionId: id, ...(descendants.length ? { descendants } : {}) } };
    }, { exclusive: true });
    for (const sessionId of [id, ...descendants]) this.signing.credentials.forgetSession(sessionId);
    return revoked;
  }

  async listSessions(agentIdOrName?: string, includeInactive = false): Promise<Session[]> {
    const agentId = agentIdOrName ? (await this.getAgent(agentIdOrName)).id : undefined;
    return this.deps.store.listSessions({ ...(agentId ? { agentId } : {}), includeInactive, now: this.deps.clock.now() });
  }

  /**
   * Approves a pending request with the admin token: it is charged as the policy in force decodes it (grantIn),
   * then signed. A request held by a tier with a quorum is refused (`quorum_required`): only the approvers' signed
   * votes grant it (ApproverService), so the admin token cannot stand in for them; where it also needs the
   * operator, the approve is recorded alongside the votes (approveAlongsideQuorum). A request the policy in force
   * now denies, or now holds for a quorum (one added since the request was held), is closed as denied and refused
   * (`approval_policy_denies`, grantIn).
   */
  async approve(id: string, actor: string): Promise<ApprovalRecord> {
    await this.expireOverdue();
    const now = this.deps.clock.now();
    const granted = await this.deps.store.transaction(async (tx): Promise<GrantedApproval | { recorded: ApprovalRecord }> => {
      // Locked as a vote locks it: the operator's approve and a last vote cast at the same time see each other.
      const pending = await tx.getApproval(id, { lock: true });
      if (!pending) throw new AirlockError('not_found', 'No such approval.');
      if (pending.state !== 'pending') throw new AirlockError('approval_not_pending');
      if (pending.quorum) return this.approveAlongsideQuorum(tx, pending, now, actor);
      const blocked = await this.grantBlocker(tx, pending);
      if (blocked) throw blocked;
      return this.grantIn(tx, pending, now, { by: actor });
    });
    return 'recorded' in granted ? granted.recorded : this.completeGrant(granted);
  }

  /**
   * The admin token's approve of a quorum approval. Only one that also needs the operator (its `operator`
   * requirement: a tier without a quorum that no quorum of its own or a more trusted layer stands in for,
   * quorum.ts) takes it: recorded on the approval (`approval.operator_approved`), it grants when the counted votes
   * already meet the rest, else the approval stays pending for them (`recorded`). Any other is refused
   * (`quorum_required`).
   */
  private async approveAlongsideQuorum(tx: StoreTx, pending: ApprovalRecord, now: number, actor: string): Promise<GrantedApproval | { recorded: ApprovalRecord }> {
    const asked = pending.quorum!.find((q) => q.operator !== undefined && q.operator.approvedBy === undefined);
    if (!asked) {
      const needs = pending.quorum!.filter((q) => !q.operator).map(describeRequirement).join(' and ');
      const given = pending.quorum!.some((q) => q.operator) ? " (the operator's approval is recorded already)" : '';
      throw new AirlockError('quorum_required', `This approval needs signed approver votes (${needs}); the admin token cannot approve it${given}.`, { hints: ['Approvers vote with `airlock approvals vote <id> approve --key <file>`; the admin token may still deny.'] });
    }
    const quorum = withOperatorApproval(pending.quorum, undefined, actor)!;
    // The votes that count, as ApproverService counts them: those of approvers still active.
    const counted: (CountedVote & { name: string })[] = [];
    for (const v of pending.votes ?? []) if ((await tx.getApprover(v.approverId))?.status === 'active') counted.push({ ...v, name: v.approver });
    const completes = quorumMet(quorum, counted);
    // What would stop the grant stops the approve that completes it, as it stops the last vote (it can be given again).
    const blocked = completes ? await this.grantBlocker(tx, pending) : undefined;
    if (blocked) throw blocked;
    await tx.appendAudit({ at: now, type: 'approval.operator_approved', actor: 'operator', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, data: { approvalId: pending.id, requestSeq: pending.auditSeq, rule: asked.rule, by: actor } });
    const recorded = await tx.raiseApprovalQuorum(pending.id, quorum);
    if (!completes) return { recorded };
    const names = [...new Set(counted.filter((v) => v.decision === 'approve').map((v) => v.name))];
    return this.grantIn(tx, recorded, now, { by: actor, approvers: names, votes: counted });
  }

  /** Why a pending approval cannot be granted now (an inactive agent, a revoked or expired session), or undefined. */
  async grantBlocker(tx: StoreTx, pending: ApprovalRecord): Promise<AirlockError | undefined> {
    const agent = await tx.getAgent(pending.agentId);
    if (!agent || agent.status !== 'active') return new AirlockError(agent?.status === 'retired' ? 'agent_retired' : 'agent_frozen', 'The agent is not active; deny the approval or unfreeze the agent first.');
    // A freeze breaker left tripped after the agent was unfrozen by hand still refuses the agent's fresh requests and
    // replays (breaker_open); a grant, by the admin token or by approvers' votes, must not get past it either.
    const freezing = (await tx.trippedBreakersFor(pending.agentId)).filter((b) => b.action === 'freeze');
    if (freezing.length > 0) {
      return new AirlockError('breaker_freezes_agent', `Breaker ${freezing[0]!.id} (${freezing[0]!.detector}) froze this agent and is still tripped; reset it (POST /v1/breakers/${freezing[0]!.id}/reset) or deny the approval.`, { details: { breakers: freezing.map((b) => b.id) } });
    }
    // Revoking a session revokes what it asked for: its pending requests cannot be approved any more.
    const session = await tx.getSession(pending.sessionId);
    if (!session || session.revokedAt !== undefined || (await readAncestors(tx, session)).some((a) => a.revokedAt !== undefined)) {
      return new AirlockError('session_revoked', 'The session that made this request (or one it derives from) was revoked; deny the approval.');
    }
    // An expired session has no more authority than a revoked one: it could not ask for this now, so it cannot be
    // granted it (a sibling session of the agent could otherwise collect the signature; found by review).
    if (session.expiresAt <= this.deps.clock.now()) {
      return new AirlockError('session_expired', 'The session that made this request has expired; deny the approval (the agent can ask again with a live session).');
    }
    return undefined;
  }

  /**
   * Grants a pending approval inside the caller's transaction (after `grantBlocker` found nothing): the
   * `approval.granted` entry, the decision, and the spend charged for the request as the policy in force decodes it
   * (its holds converted, or released and the recheck's writes charged where they differ), or reserved as a payment
   * where the request is one. Before anything is granted the request is judged again under the policy in force now
   * (`policyRecheck`): if that denies it, the approval is closed as denied instead (`closed`:
   * `approval_policy_denies`). The caller commits, then hands the answer to `completeGrant`, which signs.
   * `grantor.approvers`: the approvers whose votes met the quorum (named in the entry).
   */
  async grantIn(tx: StoreTx, pending: ApprovalRecord, now: number, grantor: Grantor): Promise<GrantedApproval> {
    const id = pending.id;
    const agent = (await tx.getAgent(pending.agentId))!;
    // A Lightning payment asked for twice while waiting: once one of its approvals is paid (or paying), the others
    // can buy nothing. They are closed here, their holds released, instead of staying pending (and held) until
    // they expire.
    const superseded = pending.action === 'lightning.pay' ? await tx.activeLightningPayment(pending.digest) : undefined;
    if (superseded) {
      const closing = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'system', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'deny', data: { approvalId: id, requestSeq: pending.auditSeq, by: 'system', reason: 'invoice_already_paid', paymentId: superseded.id, approvedBy: grantor.by } });
      const approval = await tx.decideApproval(id, 'denied', 'system', now, closing.seq);
      return { approval, closed: new AirlockError('lightning_payment_in_flight', `This invoice is already paid or being paid (payment ${superseded.id}); the approval was closed and its hold released.`, { details: { approvalId: id, paymentId: superseded.id } }) };
    }
    // An L402 payment whose macaroon expired while it waited buys a credential the server refuses: the agent would
    // pay, be charged and have to buy a fresh challenge (found by review; `/v1/l402/pay` refuses an expired one up
    // front). Closed here, its hold released, nothing paid.
    const l402ExpiresAt = pending.action === 'lightning.pay' ? (pending.request as { l402?: { expiresAt?: number } }).l402?.expiresAt : undefined;
    if (l402ExpiresAt !== undefined && l402ExpiresAt * 1000 <= now) {
      const closing = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'system', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'deny', data: { approvalId: id, requestSeq: pending.auditSeq, by: 'system', reason: 'l402_token_expired', expiredAt: new Date(l402ExpiresAt * 1000).toISOString(), approvedBy: grantor.by } });
      const approval = await tx.decideApproval(id, 'denied', 'system', now, closing.seq);
      return { approval, closed: new AirlockError('l402_token_expired', "The challenge's macaroon expired while the payment waited for approval (a *_valid_until caveat); the approval was closed and its hold released, nothing was paid. The agent can ask again with a fresh challenge.", { details: { approvalId: id, auditSeq: closing.seq } }) };
    }
    // Judged again under the policy in force now: a policy tightened while the request waited (a lower cap, a
    // deny rule, a frozen recipient list) refuses it here, whoever approves. The approval is closed as denied and
    // its hold released in this transaction, which commits; the refusal is thrown after (completeGrant).
    const { refusal, policyVersion: judgedUnder, judged } = await this.policyRecheck(tx, pending, agent, now, grantor);
    if (refusal?.reason === 'policy_requires_quorum') return this.raiseQuorum(tx, pending, refusal, now, grantor);
    if (refusal) {
      const { violations, policyVersion, reason } = refusal;
      const rules = [...new Set(violations.map((v) => v.rule))];
      const closing = await tx.appendAudit({
        at: now, type: 'approval.denied', actor: 'system', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'deny',
        data: { approvalId: id, requestSeq: pending.auditSeq, by: 'system', reason, rules, violations, ...(policyVersion !== undefined ? { policyVersion } : {}), approvedBy: grantor.by, ...(grantor.approvers ? { approvers: grantor.approvers } : {}) },
      });
      const approval = await tx.decideApproval(id, 'denied', 'system', now, closing.seq);
      const first = violations[0]!;
      const details = { approvalId: id, auditSeq: closing.seq, reason, rules, ...(policyVersion !== undefined ? { policyVersion } : {}) };
      // A stored request that no longer decodes to what was held (rewritten in the store) is no policy matter: it is
      // refused with the code the signing check gives it.
      let closed: AirlockError;
      if (reason === 'undecodable') {
        closed = new AirlockError('signature_check_failed', `Refused by ${first.rule}: ${first.message}. The approval was closed as denied and its hold released; nothing was signed.`, { violations, details });
      } else {
        closed = new AirlockError('approval_policy_denies', `Refused: the policy changed since the request was held and now denies it (${first.rule}: ${first.message}). The approval was closed as denied and its hold released; nothing was signed.`, { violations, details });
      }
      return { approval, closed };
    }
    // An approved payment keeps its payment lifecycle: the approval's holds move to a payment record (held until the
    // chain settles or expires it) instead of becoming final spend now; so does an approved Lightning payment.
    const payment = pending.action === 'lightning.pay' ? undefined : this.approvedPayment(pending, agent);
    // Anything else is charged for the request as the policy in force decodes it, which is what the recheck judged
    // against the budgets. The holds were taken when it was asked, and a policy that registered an ABI since reads
    // spends in calldata the holds never counted (found by review: held as moving nothing, a 10 USDC payment was
    // judged as 10 USDC at grant and charged 0, and three of them left a 10 USDC daily budget). Where the two differ,
    // the holds are released and the judged writes charged instead, in this transaction; the grant's entry names the
    // spends it charged, as the request's entry names what it was held as.
    const charged = pending.action !== 'lightning.pay' && !payment && judged && !sameLedgerWrites(judged.writes, judged.held) ? judged : undefined;
    const entry = await tx.appendAudit({ at: now, type: 'approval.granted', actor: 'operator', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'allow', data: { approvalId: id, requestSeq: pending.auditSeq, digest: pending.digest, by: grantor.by, ...(grantor.approvers ? { approvers: grantor.approvers } : {}), ...(judgedUnder !== undefined ? { policyVersion: judgedUnder } : {}), ...(charged ? { chargedSpends: (intentToJson(charged.intent) as { spends: unknown }).spends } : {}) } });
    if (pending.action === 'lightning.pay') {
      // An approved Lightning payment is held as a payment in flight (the approval's holds move to it), then paid.
      if (!this.lightning) throw new AirlockError('lightning_not_configured', 'No Lightning backend is configured; deny the approval or configure one.');
      const approval = await tx.decideApproval(id, 'approved', grantor.by, now, entry.seq, { convertHolds: false });
      return { approval, lightning: await this.lightning.holdApproved(tx, pending, entry.seq) };
    }
    // What the approved request grants to others (allowances, permits) joins the dependency map now.
    await this.recordApprovedGrants(tx, pending, agent, entry.seq, now);
    if (!payment) {
      const approval = await tx.decideApproval(id, 'approved', grantor.by, now, entry.seq, { convertHolds: !charged });
      if (charged) await tx.appendLedger(charged.writes, now, entry.seq);
      return { approval };
    }
    const decided = await tx.decideApproval(id, 'approved', grantor.by, now, entry.seq, { convertHolds: false });
    payment.input.sessionAncestors = await ancestorIdsOf(tx, pending.sessionId);
    const paymentId = await this.signing.reserveSpend(tx, { agentId: pending.agentId, sessionId: pending.sessionId }, payment.input, entry.seq, now, payment.x402Version);
    return { approval: decided, paymentId };
  }

  /**
   * A quorum added or raised while the request waited, which this grant does not meet: the approval stays pending
   * with its hold, now for that quorum (as a fresh request would be held), and the votes already cast count toward
   * it. Closing it instead made the agent ask again and the new quorum's approvers start over. A grant by votes that
   * the operator is now required for (a tier without a quorum, a breaker tripped since) is raised the same way, to
   * the operator's requirement, which the operator's approve then meets (approveAlongsideQuorum).
   */
  private async raiseQuorum(tx: StoreTx, pending: ApprovalRecord, refusal: PolicyRefusal, now: number, grantor: Grantor): Promise<GrantedApproval> {
    const { violations, policyVersion } = refusal;
    const quorum = refusal.quorum!;
    const rules = [...new Set(violations.map((v) => v.rule))];
    const entry = await tx.appendAudit({
      at: now, type: 'approval.quorum_raised', actor: 'system', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'require_approval',
      data: { approvalId: pending.id, requestSeq: pending.auditSeq, rules, quorum, ...(pending.quorum ? { previous: pending.quorum } : {}), ...(policyVersion !== undefined ? { policyVersion } : {}), attemptedBy: grantor.by, ...(grantor.approvers ? { approvers: grantor.approvers } : {}) },
    });
    const approval = await tx.raiseApprovalQuorum(pending.id, quorum);
    const needs = quorum.map((q) => `${describeRequirement(q)} (${q.rule})`).join(' and ');
    const details = { approvalId: pending.id, auditSeq: entry.seq, reason: 'policy_requires_quorum', rules, quorum, ...(policyVersion !== undefined ? { policyVersion } : {}) };
    // Only a grant by votes is raised to the operator (requiredOfVotes): approvers' votes never stand in for it.
    const operator = quorum.find((q) => q.operator !== undefined && q.operator.approvedBy === undefined);
    const refused = operator
      ? new AirlockError('quorum_required', `What holds the request now (the policy in force, or a breaker tripped since it was held) requires the operator's approval (${needs}), which approvers' votes do not give. Nothing was signed; the approval stays pending (its hold kept) until the operator approves it, it is denied or it expires.`, {
        violations, details, hints: ['The operator approves with `airlock approvals approve <id>` (the admin token), or denies.'],
      })
      : new AirlockError('quorum_required', `The policy changed since the request was held and now requires signed approver votes (${needs}), which this grant does not meet. Nothing was signed; the approval stays pending (its hold kept) until those votes are cast, it is denied or it expires.`, {
        violations, details, hints: ['Approvers vote with `airlock approvals vote <id> approve --key <file>`; the admin token may still deny.'],
      });
    return { approval, quorumRaised: { refused } };
  }

  /** After the grant committed: signs (or pays) and stores the result on the approval. */
  async completeGrant(granted: GrantedApproval): Promise<ApprovalRecord> {
    const { approval, paymentId } = granted;
    const id = approval.id;
    if (granted.closed) throw granted.closed;
    if (granted.quorumRaised) throw granted.quorumRaised.refused;
    if (granted.lightning) {
      const stored = await this.lightning!.afterApproval(granted.lightning);
      await this.deps.store.transaction((tx) => tx.setApprovalResult(id, stored));
      return { ...approval, result: stored };
    }
    const agent = await this.getAgent(approval.agentId);
    let signed: Awaited<ReturnType<SigningService['signCommitted']>>;
    try {
      // Granted, then the key rotated before this signature: the request was decoded for the old key (a rotation
      // denies what is still pending, this closes the gap between a grant's commit and its signature).
      const decodedFor = decodedForAnotherKey(approval, agent.address);
      if (decodedFor !== undefined) {
        throw new AirlockError('key_rotated', "Refused by agent_keys/rotated: the agent's key was rotated after this approval was granted; nothing was signed.", { details: { rule: 'agent_keys/rotated', address: decodedFor, currentAddress: agent.address } });
      }
      signed = await this.signing.signCommitted(agent, approval.action, approval.request, approval.auditSeq, approval.digest, id);
    } catch (e) {
      // As on the direct path: the spend stays reserved (conservative), the failure is on the record.
      const now2 = this.deps.clock.now();
      await this.deps.store.transaction((tx) => tx.appendAudit({ at: now2, type: 'sign.failed', actor: 'system', agentId: approval.agentId, sessionId: approval.sessionId, action: approval.action, decision: 'error', data: { approvalId: id, errorCode: e instanceof AirlockError ? e.code : 'internal' } }));
      throw e;
    }
    const { result, decoded } = signed;
    const receipt = await receiptForSeq(this.deps.store, approval.auditSeq);
    const stored = { ...result, auditSeq: approval.auditSeq, receipt, digest: approval.digest, summary: decoded.intent.summary, ...(paymentId !== undefined ? { paymentId } : {}) };
    await this.deps.store.transaction((tx) => tx.setApprovalResult(id, stored));
    return { ...approval, result: stored };
  }

  async deny(id: string, actor: string, reason?: string): Promise<ApprovalRecord> {
    await this.expireOverdue();
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const pending = await tx.getApproval(id);
      if (!pending) throw new AirlockError('not_found', 'No such approval.');
      if (pending.state !== 'pending') throw new AirlockError('approval_not_pending');
      const entry = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'operator', agentId: pending.agentId, sessionId: pending.sessionId, action: pending.action, decision: 'deny', data: { approvalId: id, requestSeq: pending.auditSeq, by: actor, ...(reason ? { reason } : {}) } });
      return tx.decideApproval(id, 'denied', actor, now, entry.seq);
    });
  }

  /**
   * Expires overdue approvals and releases their reservations. Called on a timer and before approval actions, on
   * every instance: the store hands this pass only approvals it holds and that are still pending (overdueApprovals),
   * so passes on two instances split them, and the action that ran this pass is never refused over another approval.
   */
  async expireOverdue(): Promise<number> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const overdue = await tx.overdueApprovals(now, 500);
      for (const a of overdue) {
        const entry = await tx.appendAudit({ at: now, type: 'approval.expired', actor: 'system', agentId: a.agentId, sessionId: a.sessionId, action: a.action, decision: 'deny', data: { approvalId: a.id, requestSeq: a.auditSeq } });
        await tx.decideApproval(a.id, 'expired', 'system', now, entry.seq);
      }
      return overdue.length;
    });
  }

  /**
   * The pending approval's request judged under the policy in force now: `refusal` when that denies it (the
   * violations), else the `policyVersion` it was judged under (named in the `approval.granted` entry). The stored request is decoded again as it was when asked (the agent's signer now; an
   * x402 payment's resource, an L402 challenge's resource) and evaluated against every layer as a fresh request
   * is (fleet, agent, the session's scope and its ancestors'), with the approval's own hold taken out of the
   * totals: the budgets count the request once, as itself. The detectors are not run again (a breaker that froze
   * the agent is grantBlocker's `agent_frozen`). A request that no longer decodes to the held digest is refused
   * (`undecodable`), never granted. Where the policy now holds the request for a quorum of approvers
   * (`requiredQuorum`, as a fresh request would be held), the grant must meet that quorum: the admin token never
   * does, approvers' votes must meet every requirement; otherwise `policy_requires_quorum` (a quorum added or
   * raised after the request was held cannot be bypassed by the weaker grant it was held for). Votes must also meet
   * the operator where the operator now decides (`requiredOfVotes`: a tier without a quorum, or a `require_approval`
   * breaker open now, read here for a grant by votes only).
   */
  private async policyRecheck(tx: StoreTx, pending: ApprovalRecord, agent: Agent, now: number, grantor: Grantor): Promise<{ refusal?: PolicyRefusal; policyVersion?: string; judged?: JudgedCharge }> {
    const session = await tx.getSession(pending.sessionId);
    if (!session) return { refusal: { reason: 'undecodable', violations: [{ rule: 'approvals/recheck', code: 'held_request_undecodable', message: 'the session that made this request no longer exists' }] } };
    const decoded = await this.decodeApproval(tx, pending, agent);
    if ('undecodable' in decoded) {
      const e = decoded.undecodable;
      return { refusal: { reason: 'undecodable', violations: [{ rule: 'approvals/recheck', code: 'held_request_undecodable', message: `the held request no longer decodes (${e.code}): ${e.message}` }] } };
    }
    const input: EvaluationInput = { intent: decoded.intent, agentId: pending.agentId, sessionId: pending.sessionId, nowMs: now };
    // The approval's held amounts count in every window while it waits, whatever their age, and its count in the
    // windows its time is in: taken out where they count.
    const held = await tx.approvalHolds(pending.id);
    const decision = await this.signing.evaluateHeld(tx, session, input, held, { held: true, at: pending.createdAt });
    // A grant by votes also answers to the `require_approval` breakers open now: one tripped since the request was
    // held holds it for the operator, as it holds a fresh request (evaluateHeld runs no detectors). The operator's own
    // approve needs no such read: the operator is who a breaker holds requests for.
    const breakerHolds = grantor.votes && decision.decision !== 'deny' ? (await tx.trippedBreakersFor(pending.agentId)).filter((b) => b.action === 'require_approval').map(breakerOpenViolation) : [];
    const holds = [...(decision.decision === 'require_approval' ? decision.violations : []), ...breakerHolds];
    if (holds.length > 0) {
      // Votes meet only what approvers may grant: where the operator decides (a tier without a quorum, a breaker),
      // the operator is required (requiredOfVotes). The operator's approval carries over: given before (stored on the
      // approval) or by this grant (the admin token).
      const quorum = withOperatorApproval(grantor.votes ? requiredOfVotes(holds) : requiredQuorum(holds), pending.quorum, grantor.votes ? undefined : grantor.by);
      if (quorum && !(grantor.votes && quorumMet(quorum, grantor.votes))) {
        const named = new Set(quorum.map((q) => q.rule));
        const violations = holds.filter((v) => named.has(v.rule));
        return { refusal: { reason: 'policy_requires_quorum', violations, quorum, policyVersion: decision.policyVersion } };
      }
    }
    // Read after the evaluation: it decoded calls against the layers' ABIs and named the session's ancestors in `input`.
    if (decision.decision !== 'deny') return { policyVersion: decision.policyVersion, judged: { intent: input.intent, writes: ledgerWritesFor(input), held } };
    const violations = decision.violations.length > 0 ? decision.violations : [{ rule: 'policy', code: 'denied_by_rule' as const, message: 'denied by policy' }];
    return { refusal: { reason: 'policy_denies', violations, policyVersion: decision.policyVersion } };
  }

  /**
   * A pending approval's request decoded again into its intent, with the context it was judged with. An error
   * of the decoding itself (or another digest than the one held) is `undecodable`; anything else (no adapter,
   * the key backend unreachable) is thrown: the transaction rolls back and the approval stays pending.
   */
  private async decodeApproval(tx: StoreTx, pending: ApprovalRecord, agent: Agent): Promise<{ intent: Intent } | { undecodable: AirlockError }> {
    let intent: Intent;
    let digest: string;
    if (pending.action === 'lightning.pay') {
      const adapter = this.deps.adapters.get('lightning');
      if (!adapter) throw new AirlockError('lightning_not_configured', 'No lightning adapter is configured; deny the approval or configure one.');
      try {
        ({ intent, digest } = decodeLightningApproval(adapter, pending, agent));
      } catch (e) {
        if (!isAirlockError(e)) throw e;
        return { undecodable: e };
      }
    } else {
      const held = await this.signing.decodeHeld(tx, agent, pending.action, pending.request);
      if ('undecodable' in held) return held;
      ({ intent } = held.decoded);
      digest = bytesToHex(held.decoded.digest);
      // An x402 payment was judged with its resource (rules on resources and origins, per-origin budgets, the loop guard).
      const resource = (pending.summary as { intent?: { payment?: { resource?: unknown } } } | undefined)?.intent?.payment?.resource;
      try {
        if (typeof resource === 'string') attachPaymentContext(intent, { x402: { resource } });
      } catch (e) {
        if (!isAirlockError(e)) throw e;
        return { undecodable: e };
      }
    }
    if (digest !== pending.digest) return { undecodable: new AirlockError('signature_check_failed', 'the stored request decodes to another digest than the one held') };
    return { intent };
  }

  /** The evaluation input of an approval whose request is an EIP-3009 payment, or undefined. */
  private async recordApprovedGrants(tx: StoreTx, pending: ApprovalRecord, agent: Agent, auditSeq: number, now: number): Promise<void> {
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter || (pending.action !== 'evm.transaction' && pending.action !== 'evm.typed_data')) return;
    const { intent } = adapter.decode(pending.action, pending.request, { address: agent.address });
    const grants = grantsOf(intent, { agentId: pending.agentId, auditSeq, nowMs: now });
    if (grants.length > 0) await tx.recordGrants(grants);
  }

  private approvedPayment(pending: ApprovalRecord, agent: Agent): { input: EvaluationInput; x402Version?: number } | undefined {
    const adapter = this.deps.adapters.get('eip155');
    if (!adapter || pending.action !== 'evm.typed_data') return undefined;
    const { intent } = adapter.decode('evm.typed_data', pending.request, { address: agent.address });
    const summary = pending.summary as { intent?: { payment?: { resource?: string } }; x402?: { x402Version?: number } } | undefined;
    const resource = summary?.intent?.payment?.resource;
    if (resource !== undefined) attachPaymentContext(intent, { x402: { resource } });
    if (!isHeldPayment(intent)) return undefined;
    const x402Version = summary?.x402?.x402Version;
    return { input: { intent, agentId: pending.agentId, sessionId: pending.sessionId, nowMs: this.deps.clock.now() }, ...(x402Version !== undefined ? { x402Version } : {}) };
  }

  /** `fleet`, or `agent:<id>` of an agent named by id, name or `agent:<id or name>` (not_found otherwise). */
  async resolveScope(scope: string): Promise<string> {
    if (scope === FLEET_SCOPE) return FLEET_SCOPE;
    const name = scope.startsWith('agent:') ? scope.slice(6) : scope;
    return agentScope((await this.getAgent(name)).id);
  }

  /** Appends an operator audit entry on its own (for changes too large for one transaction: bulk creation). */
  private async audit(type: string, actor: string, agentId: string | undefined, data: Record<string, unknown>): Promise<void> {
    await this.audited(type, actor, agentId, async () => ({ result: undefined, data }));
  }

  /**
   * Runs an operator change and appends its audit entry in one transaction: both commit, or neither.
   * `exclusive`: a change every signing transaction reads (an agent's status, a session, a policy). On
   * PostgreSQL it then waits for the signing batches running now and holds new ones back, so once it returns
   * no signing transaction that read the state before it can still commit (docs/architecture.md).
   */
  private async audited<T>(type: string, actor: string, agentId: string | undefined, change: (tx: StoreTx, now: number) => Promise<{ result: T; data: Record<string, unknown> }>, options: { exclusive?: boolean } = {}): Promise<T> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const { result, data } = await change(tx, now);
      await tx.appendAudit({ at: now, type, actor: 'operator', ...(agentId ? { agentId } : {}), data: { ...data, by: actor } });
      return result;
    }, options.exclusive ? { exclusive: true } : {});
  }
}

/**
 * A held Lightning payment decoded again as LightningService.holdApproved decodes it (the invoice as of when it
 * was asked; an L402 challenge's macaroon must name its payment hash, and its resource is the payment's).
 */
function decodeLightningApproval(adapter: ChainAdapter, pending: ApprovalRecord, agent: Agent): { intent: Intent; digest: string } {
  const request = pending.request as { payload?: { invoice?: unknown; maxFeeMsat?: unknown; amountMsat?: unknown; network?: unknown; now?: unknown }; l402?: { resource?: unknown; macaroonPaymentHash?: unknown } } | undefined;
  const stored = request?.payload;
  if (!stored || typeof stored.invoice !== 'string' || typeof stored.maxFeeMsat !== 'string' || (stored.amountMsat !== undefined && typeof stored.amountMsat !== 'string')) {
    throw new AirlockError('undecodable_payload', 'the stored Lightning request is malformed');
  }
  let amounts: { maxFeeMsat: bigint; amountMsat?: bigint };
  try {
    amounts = { maxFeeMsat: BigInt(stored.maxFeeMsat), ...(stored.amountMsat !== undefined ? { amountMsat: BigInt(stored.amountMsat) } : {}) };
  } catch {
    throw new AirlockError('undecodable_payload', 'the stored Lightning request has a malformed amount');
  }
  const payload = { ...stored, invoice: stored.invoice.trim(), ...amounts };
  const decoded = adapter.decode('lightning.pay', payload, { address: agent.address });
  const l402 = request?.l402;
  if (l402) {
    if (l402.macaroonPaymentHash !== decoded.intent.lightning?.paymentHash) throw new AirlockError('l402_payment_hash_mismatch', "the challenge's macaroon names another payment hash than its invoice");
    const normalised = typeof l402.resource === 'string' ? normaliseResource(l402.resource) : undefined;
    if (!normalised) throw new AirlockError('invalid_request', 'the L402 resource is not an absolute http(s) URL');
    decoded.intent.payment = { ...decoded.intent.payment!, protocol: 'l402', resource: normalised.resource, origin: normalised.origin };
  }
  return { intent: decoded.intent, digest: bytesToHex(decoded.digest) };
}

function keyRef(key: AgentKey): { keyIndex: number; address: string } {
  return { keyIndex: key.keyIndex, address: key.address };
}

function strip(record: PolicyRecord): Omit<PolicyRecord, 'document'> {
  const { document: _document, source: _source, ...rest } = record;
  return rest;
}

/** Whether two sets of ledger writes charge the same amount and count to every (series, asset). */
function sameLedgerWrites(a: readonly LedgerWrite[], b: readonly LedgerWrite[]): boolean {
  const merged = (writes: readonly LedgerWrite[]) => {
    const byKey = new Map<string, { amount: bigint; count: number }>();
    for (const w of writes) {
      const key = `${w.series}\u0000${w.asset}`;
      const prev = byKey.get(key) ?? { amount: 0n, count: 0 };
      byKey.set(key, { amount: prev.amount + w.amount, count: prev.count + w.count });
    }
    return byKey;
  };
  const left = merged(a);
  const right = merged(b);
  if (left.size !== right.size) return false;
  for (const [key, w] of left) {
    const other = right.get(key);
    if (!other || other.amount !== w.amount || other.count !== w.count) return false;
  }
  return true;
}
