import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { ACTIONS, intentToJson, type Action } from '../intent.ts';
import { AirlockError, isAirlockError } from '../errors.ts';
import type { ErrorCode } from '../codes.ts';
import type { DecodedRequest, SignResult, ChainAdapter } from '../ports/chain-adapter.ts';
import { ledgerViewFrom } from '../ports/ledger.ts';
import type { Agent, ApprovalRecord, Session, StoreTx } from '../ports/store.ts';
import type { Decision } from '../policy/decision.ts';
import { evaluatePolicy, ledgerWritesFor, requiredWindows, type EvaluationInput } from '../policy/index.ts';
import type { ServiceDeps } from './deps.ts';
import { PolicyLayerLoader } from './policy-layers.ts';
import { constantTimeEqual, hashSecret, parseSessionToken, requestHash } from './tokens.ts';

export interface AgentAuth {
  agent: Agent;
  session: Session;
}

/** An HTTP-shaped outcome: the server turns it into a response as is. */
export interface SignOutcome {
  status: 200 | 202 | 403;
  body: Record<string, unknown>;
}

export interface DryRunOutcome {
  decision: Decision;
  intent: unknown;
  digest: string;
}

/**
 * The hot path: authenticate -> decode -> (transaction: re-check credentials, idempotency,
 * evaluate policy against fresh ledger totals, reserve, append audit) -> commit -> sign -> verify -> respond.
 * Nothing is signed unless its reservation and audit entry are durable.
 */
export class SigningService {
  private readonly layers = new PolicyLayerLoader();
  private readonly deps: ServiceDeps;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  /** Resolves a session token to its agent. Throws the reason it is not usable. */
  async authenticate(token: string): Promise<AgentAuth> {
    const parsed = parseSessionToken(token);
    if (!parsed) throw new AirlockError('unauthenticated', 'Missing or malformed session token.');
    const session = await this.deps.store.getSession(parsed.sessionId);
    if (!session || !constantTimeEqual(session.tokenHash, hashSecret(parsed.secret))) {
      throw new AirlockError('unauthenticated', 'Unknown session token.');
    }
    const agent = await this.deps.store.getAgent(session.agentId);
    if (!agent) throw new AirlockError('unauthenticated', 'Unknown session token.');
    const now = this.deps.clock.now();
    try {
      checkUsable(agent, session, now);
    } catch (e) {
      // A genuine credential of a frozen/retired agent or a dead session: record the attempt (incident evidence).
      const code = (e as AirlockError).code;
      await this.deps.store.transaction((tx) =>
        tx.appendAudit({ at: now, type: 'auth.refused', actor: 'agent', agentId: agent.id, sessionId: session.id, decision: 'error', data: { errorCode: code } }),
      );
      throw e;
    }
    return { agent, session };
  }

  async sign(auth: AgentAuth, action: string, payload: unknown, idempotencyKey?: string): Promise<SignOutcome> {
    const now = this.deps.clock.now();
    const reqHash = requestHash(action, payload, canonicalJson);
    let adapter: ChainAdapter;
    let decoded: DecodedRequest;
    try {
      adapter = this.adapterFor(action);
      decoded = adapter.decode(action as Action, payload, { address: auth.agent.address });
    } catch (e) {
      // Bad input that reached the signer is recorded, then refused. Nothing is reserved.
      await this.auditRefusal(auth, action, reqHash, e, now);
      throw e;
    }

    const outcome = await this.deps.store.transaction(async (tx) => {
      const fresh = await this.recheck(tx, auth, now);
      if (fresh.error) return { refused: fresh.error, entry: await this.appendErrorEntry(tx, auth, action, reqHash, fresh.error, now) };

      if (idempotencyKey !== undefined) {
        const prior = await tx.getIdempotency(idempotencyScope(auth), idempotencyKey);
        if (prior) {
          if (prior.requestHash !== reqHash) {
            throw new AirlockError('idempotency_conflict', 'This Idempotency-Key was already used with a different request.');
          }
          return { replay: prior };
        }
      }

      const input: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
      const layers = await this.layers.load(tx, auth.agent.id, fresh.session!);
      const queries = requiredWindows(layers, input);
      const totals = queries.length ? await tx.windowTotals(queries) : [];
      const decision = evaluatePolicy(layers, input, ledgerViewFrom(queries, totals));
      const digest = bytesToHex(decoded.digest);

      const entry = await tx.appendAudit({
        at: now,
        type: 'sign.request',
        actor: 'agent',
        agentId: auth.agent.id,
        sessionId: auth.session.id,
        action,
        decision: decision.decision,
        data: {
          intent: intentToJson(decoded.intent),
          violations: decision.violations,
          allowedBy: decision.allowedBy,
          policyVersion: decision.policyVersion,
          digest,
          requestHash: reqHash,
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        },
      });

      let body: Record<string, unknown>;
      let status: SignOutcome['status'];
      if (decision.decision === 'allow') {
        await tx.appendLedger(ledgerWritesFor(input), now, entry.seq);
        status = 200;
        // The signature is produced after commit; a replay re-signs (RFC 6979 makes it identical).
        body = { decision: 'allow', auditSeq: entry.seq, resign: true };
      } else if (decision.decision === 'require_approval') {
        const approval: ApprovalRecord = {
          id: this.deps.randomId('apr'),
          agentId: auth.agent.id,
          sessionId: auth.session.id,
          auditSeq: entry.seq,
          action,
          request: payload,
          digest,
          summary: { intent: intentToJson(decoded.intent), violations: decision.violations, policyVersion: decision.policyVersion },
          state: 'pending',
          createdAt: now,
          expiresAt: now + this.deps.approvalTtlMs,
        };
        await tx.holdForApproval(approval, ledgerWritesFor(input));
        status = 202;
        body = {
          decision: 'require_approval',
          approvalId: approval.id,
          expiresAt: new Date(approval.expiresAt).toISOString(),
          violations: decision.violations,
          policyVersion: decision.policyVersion,
          auditSeq: entry.seq,
          intent: intentToJson(decoded.intent),
        };
      } else {
        status = 403;
        body = denialBody(decision, entry.seq);
      }
      if (idempotencyKey !== undefined) {
        await tx.putIdempotency({ scope: idempotencyScope(auth), key: idempotencyKey, requestHash: reqHash, auditSeq: entry.seq, response: { status, body }, createdAt: now });
      }
      return { status, body, decision };
    });

    if ('refused' in outcome) throw outcome.refused;
    if ('replay' in outcome && outcome.replay) {
      const { status } = outcome.replay.response;
      const body = outcome.replay.response.body as Record<string, unknown>;
      if (status === 200) return this.release(auth, action, payload, adapter, decoded, Number(body.auditSeq), true);
      return { status: status as SignOutcome['status'], body: { ...body, replayed: true } };
    }
    if (outcome.status !== 200) return { status: outcome.status, body: outcome.body };
    return this.release(auth, action, payload, adapter, decoded, Number(outcome.body.auditSeq), false, outcome.decision);
  }

  /** Evaluates without reserving or signing. Same decode and policy as `sign`. */
  async dryRun(auth: AgentAuth, action: string, payload: unknown): Promise<DryRunOutcome> {
    const now = this.deps.clock.now();
    const decoded = this.adapterFor(action).decode(action as Action, payload, { address: auth.agent.address });
    const input: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
    const decision = await this.deps.store.transaction(async (tx) => {
      const layers = await this.layers.load(tx, auth.agent.id, auth.session);
      const queries = requiredWindows(layers, input);
      const totals = queries.length ? await tx.windowTotals(queries) : [];
      return evaluatePolicy(layers, input, ledgerViewFrom(queries, totals));
    });
    return { decision, intent: intentToJson(decoded.intent), digest: bytesToHex(decoded.digest) };
  }

  /** Signs a decoded request whose reservation is committed, verifies, and returns the result. */
  async signCommitted(agent: Agent, action: string, payload: unknown, expectedDigest?: string): Promise<{ adapter: ChainAdapter; decoded: DecodedRequest; result: SignResult }> {
    const adapter = this.adapterFor(action);
    const decoded = adapter.decode(action as Action, payload, { address: agent.address });
    if (expectedDigest !== undefined && bytesToHex(decoded.digest) !== expectedDigest) {
      throw new AirlockError('signature_check_failed', 'The stored request no longer decodes to the approved digest.');
    }
    const path = adapter.derivationPath(agent.accountIndex, agent.keyIndex);
    const signature = await this.deps.keys.signDigest(path, decoded.digest, 'ecdsa-secp256k1');
    const result = adapter.finalize(action as Action, payload, decoded, signature, { address: agent.address });
    return { adapter, decoded, result };
  }

  private async release(auth: AgentAuth, action: string, payload: unknown, adapter: ChainAdapter, decoded: DecodedRequest, auditSeq: number, replayed: boolean, decision?: Decision): Promise<SignOutcome> {
    let result: SignResult;
    try {
      const path = adapter.derivationPath(auth.agent.accountIndex, auth.agent.keyIndex);
      const signature = await this.deps.keys.signDigest(path, decoded.digest, 'ecdsa-secp256k1');
      result = adapter.finalize(action as Action, payload, decoded, signature, { address: auth.agent.address });
    } catch (e) {
      // The reservation stays (conservative: budget counted, nothing signed); the failure is audited.
      const now = this.deps.clock.now();
      await this.deps.store.transaction((tx) =>
        tx.appendAudit({ at: now, type: 'sign.failed', actor: 'system', agentId: auth.agent.id, sessionId: auth.session.id, action, decision: 'error', data: { auditSeq, errorCode: isAirlockError(e) ? e.code : 'internal' } }),
      );
      if (isAirlockError(e)) throw e;
      throw new AirlockError('internal', 'Signing failed; nothing was returned.', { cause: e });
    }
    return {
      status: 200,
      body: {
        decision: 'allow',
        ...result,
        auditSeq,
        ...(decision ? { policyVersion: decision.policyVersion, allowedBy: decision.allowedBy } : {}),
        intent: intentToJson(decoded.intent),
        ...(replayed ? { replayed: true } : {}),
      },
    };
  }

  private adapterFor(action: string): ChainAdapter {
    if (!(ACTIONS as readonly string[]).includes(action)) throw new AirlockError('unsupported_action', 'Unknown action.');
    const namespace = action.startsWith('evm.') ? 'eip155' : action.split('.')[0]!;
    const adapter = this.deps.adapters.get(namespace);
    if (!adapter || !adapter.actions.includes(action as Action)) throw new AirlockError('unsupported_action', 'No adapter for this action.');
    return adapter;
  }

  /** Credentials are checked again inside the transaction: a freeze or revoke wins over an in-flight request. */
  private async recheck(tx: StoreTx, auth: AgentAuth, now: number): Promise<{ session?: Session; error?: AirlockError }> {
    const [agent, session] = await Promise.all([tx.getAgent(auth.agent.id), tx.getSession(auth.session.id)]);
    if (!agent || !session) return { error: new AirlockError('unauthenticated', 'Unknown session token.') };
    try {
      checkUsable(agent, session, now);
    } catch (e) {
      return { error: e as AirlockError };
    }
    return { session };
  }

  private async auditRefusal(auth: AgentAuth, action: string, reqHash: string, e: unknown, now: number): Promise<void> {
    if (!isAirlockError(e)) return;
    await this.deps.store.transaction((tx) => this.appendErrorEntry(tx, auth, action, reqHash, e, now));
  }

  private appendErrorEntry(tx: StoreTx, auth: AgentAuth, action: string, reqHash: string, e: AirlockError, now: number) {
    return tx.appendAudit({
      at: now,
      type: 'sign.request',
      actor: 'agent',
      agentId: auth.agent.id,
      sessionId: auth.session.id,
      action,
      decision: 'error',
      data: { errorCode: e.code as ErrorCode, message: e.message, requestHash: reqHash },
    });
  }
}

export function checkUsable(agent: Agent, session: Session, now: number): void {
  if (session.revokedAt !== undefined) throw new AirlockError('session_revoked');
  if (session.expiresAt <= now) throw new AirlockError('session_expired');
  if (agent.status === 'frozen') throw new AirlockError('agent_frozen');
  if (agent.status === 'retired') throw new AirlockError('agent_retired');
}

function idempotencyScope(auth: AgentAuth): string {
  return `agent:${auth.agent.id}`;
}

export function denialBody(decision: Decision, auditSeq: number): Record<string, unknown> {
  const first = decision.violations[0];
  return {
    decision: 'deny',
    error: {
      code: 'policy_denied',
      message: first ? `Denied by ${first.rule}: ${first.message}` : 'Denied by policy.',
      violations: decision.violations,
    },
    policyVersion: decision.policyVersion,
    auditSeq,
  };
}
