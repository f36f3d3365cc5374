import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { ACTIONS, intentToJson, type Action, type Intent } from '../intent.ts';
import { normaliseResource } from '../policy/resource-pattern.ts';
import type { PaymentRecord } from '../ports/payments.ts';
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

/** What a request says beyond its payload. */
export interface SignContext {
  /** x402: the paid resource URL this payment is for (POST /v1/x402/pay, or `x402.resource` on /v1/sign/typed-data). */
  x402?: { resource: string; x402Version?: number; plan?: unknown };
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

  /**
   * Resolves a session token to its agent. Throws the reason it is not usable. `admit` runs once the token
   * is proven genuine and before anything is written: it may refuse (the per-session rate limit), so a
   * flood with a dead credential cannot append one `auth.refused` entry per request.
   */
  async authenticate(token: string, admit?: (auth: AgentAuth) => void): Promise<AgentAuth> {
    const parsed = parseSessionToken(token);
    if (!parsed) throw new AirlockError('unauthenticated', 'Missing or malformed session token.');
    const session = await this.deps.store.getSession(parsed.sessionId);
    if (!session || !constantTimeEqual(session.tokenHash, hashSecret(parsed.secret))) {
      throw new AirlockError('unauthenticated', 'Unknown session token.');
    }
    const agent = await this.deps.store.getAgent(session.agentId);
    if (!agent) throw new AirlockError('unauthenticated', 'Unknown session token.');
    admit?.({ agent, session });
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

  async sign(auth: AgentAuth, action: string, payload: unknown, idempotencyKey?: string, context: SignContext = {}): Promise<SignOutcome> {
    const now = this.deps.clock.now();
    // The x402 context is part of what was asked: a retry naming another resource is another request.
    const reqHash = requestHash(action, context.x402 ? { payload, x402: context.x402 } : payload, canonicalJson);
    let adapter: ChainAdapter;
    let decoded: DecodedRequest;
    try {
      adapter = this.adapterFor(action);
      decoded = adapter.decode(action as Action, payload, { address: auth.agent.address });
      attachPaymentContext(decoded.intent, context);
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
      const decision = await this.evaluateIn(tx, fresh.session!, input);
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

      if (decision.violations.some((v) => v.code === 'loop_guard_tripped')) await this.appendLoopGuardAlert(tx, auth, decoded.intent.payment?.resource, decision, entry.seq, now);

      let body: Record<string, unknown>;
      let status: SignOutcome['status'];
      if (decision.decision === 'allow') {
        const paymentId = await this.reserveSpend(tx, { agentId: auth.agent.id, sessionId: auth.session.id }, input, entry.seq, now, context.x402?.x402Version);
        status = 200;
        // The signature is produced after commit; a replay re-signs (RFC 6979 makes it identical).
        body = { decision: 'allow', auditSeq: entry.seq, resign: true, ...(paymentId !== undefined ? { paymentId } : {}) };
      } else if (decision.decision === 'require_approval') {
        const approval: ApprovalRecord = {
          id: this.deps.randomId('apr'),
          agentId: auth.agent.id,
          sessionId: auth.session.id,
          auditSeq: entry.seq,
          action,
          request: payload,
          digest,
          summary: { intent: intentToJson(decoded.intent), violations: decision.violations, policyVersion: decision.policyVersion, ...(context.x402?.plan !== undefined ? { x402: context.x402.plan } : {}) },
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
      if (status === 200) return this.release(auth, action, payload, adapter, decoded, Number(body.auditSeq), true, undefined, paymentExtra(body));
      return { status: status as SignOutcome['status'], body: { ...body, replayed: true } };
    }
    if (outcome.status !== 200) return { status: outcome.status, body: outcome.body };
    return this.release(auth, action, payload, adapter, decoded, Number(outcome.body.auditSeq), false, outcome.decision, paymentExtra(outcome.body));
  }

  /**
   * Where an allowed request's spend goes. An EIP-3009 authorization is a payment: its spend is HELD
   * (counted by every window) until the reconciler sees it settled (converted into ledger entries) or
   * expired unused (released). Signing the same authorization again reserves nothing more.
   * Everything else is charged to the ledger now.
   */
  async reserveSpend(tx: StoreTx, who: { agentId: string; sessionId: string }, input: EvaluationInput, auditSeq: number, now: number, x402Version?: number): Promise<string | undefined> {
    const { intent } = input;
    const payment = intent.payment;
    const spend = intent.spends[0];
    if (!payment || !spend || !isHeldPayment(intent)) {
      await tx.appendLedger(ledgerWritesFor(input), now, auditSeq);
      return undefined;
    }
    const token = spend.asset.slice(spend.asset.indexOf('/erc20:') + '/erc20:'.length);
    const existing = await tx.getPaymentByNonce(payment.network, token, intent.from, payment.nonce);
    if (existing) return existing.id;
    const record: PaymentRecord = {
      id: this.deps.randomId('pay'),
      agentId: who.agentId,
      sessionId: who.sessionId,
      auditSeq,
      protocol: 'x402',
      ...(x402Version !== undefined ? { x402Version } : {}),
      network: payment.network,
      asset: token,
      from: intent.from,
      to: payment.payTo,
      value: spend.amount,
      nonce: payment.nonce,
      validAfter: intent.validity?.validAfter ?? 0,
      validBefore: payment.validBefore,
      ...(payment.resource !== undefined ? { resource: payment.resource } : {}),
      ...(payment.origin !== undefined ? { origin: payment.origin } : {}),
      state: 'reserved',
      createdAt: now,
      updatedAt: now,
    };
    await tx.holdPayment(record, ledgerWritesFor(input));
    return record.id;
  }

  /** A runaway loop is an incident: the denial is on the record, and so is an alert an operator can query. */
  private async appendLoopGuardAlert(tx: StoreTx, auth: AgentAuth, resource: string | undefined, decision: Decision, requestSeq: number, now: number): Promise<void> {
    await tx.appendAudit({
      at: now,
      type: 'alert.loop_guard',
      actor: 'system',
      agentId: auth.agent.id,
      sessionId: auth.session.id,
      decision: 'deny',
      data: {
        requestSeq,
        ...(resource !== undefined ? { resource } : {}),
        violations: decision.violations.filter((v) => v.code === 'loop_guard_tripped'),
      },
    });
  }

  /**
   * Records a refusal decided outside `sign` (x402: no requirement was allowed, so nothing was signed),
   * with the loop-guard alert when one tripped. Returns the audit entry's seq.
   */
  async recordRefusal(auth: AgentAuth, type: string, decision: Decision, data: Record<string, unknown>, resource?: string): Promise<number> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const entry = await tx.appendAudit({ at: now, type, actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, decision: 'deny', data: { ...data, violations: decision.violations, policyVersion: decision.policyVersion } });
      if (decision.violations.some((v) => v.code === 'loop_guard_tripped')) await this.appendLoopGuardAlert(tx, auth, resource, decision, entry.seq, now);
      return entry.seq;
    });
  }

  /** The longest validity any validity_window rule of the agent's layers allows (the x402 builder clamps to it). */
  async maxValiditySeconds(auth: AgentAuth): Promise<number | undefined> {
    const layers = await this.deps.store.transaction((tx) => this.layers.load(tx, auth.agent.id, auth.session));
    let max: number | undefined;
    for (const { policy } of layers) {
      for (const rule of policy.rules) {
        if (rule.maxValiditySeconds !== undefined) max = max === undefined ? rule.maxValiditySeconds : Math.min(max, rule.maxValiditySeconds);
      }
    }
    return max;
  }

  /** Evaluates without reserving or signing. Same decode and policy as `sign`. */
  async dryRun(auth: AgentAuth, action: string, payload: unknown, context: SignContext = {}): Promise<DryRunOutcome> {
    const now = this.deps.clock.now();
    const decoded = this.adapterFor(action).decode(action as Action, payload, { address: auth.agent.address });
    attachPaymentContext(decoded.intent, context);
    const input: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
    const decision = await this.deps.store.transaction((tx) => this.evaluateIn(tx, auth.session, input));
    return { decision, intent: intentToJson(decoded.intent), digest: bytesToHex(decoded.digest) };
  }

  /** Policy against the layers and ledger totals as they are inside `tx` (the same code for sign and dry-run). */
  private async evaluateIn(tx: StoreTx, session: Session, input: EvaluationInput): Promise<Decision> {
    const layers = await this.layers.load(tx, input.agentId, session);
    const queries = requiredWindows(layers, input);
    const totals = queries.length ? await tx.windowTotals(queries) : [];
    return evaluatePolicy(layers, input, ledgerViewFrom(queries, totals));
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

  private async release(auth: AgentAuth, action: string, payload: unknown, adapter: ChainAdapter, decoded: DecodedRequest, auditSeq: number, replayed: boolean, decision?: Decision, extra: Record<string, unknown> = {}): Promise<SignOutcome> {
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
        ...extra,
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

/**
 * EIP-3009 authorizations are payments whose spend is held until the chain settles or expires them
 * (a single spend: the authorized transfer). Everything else is charged to the ledger when signed.
 */
export function isHeldPayment(intent: Intent): boolean {
  return intent.payment !== undefined && intent.spends.length === 1
    && (intent.kind === 'eip3009.transfer_with_authorization' || intent.kind === 'eip3009.receive_with_authorization');
}

/** The paymentId a stored allow body carries, to hand back on release and replay. */
function paymentExtra(body: Record<string, unknown>): Record<string, unknown> {
  return typeof body.paymentId === 'string' ? { paymentId: body.paymentId } : {};
}

/**
 * Fills the payment's resource and origin from the request context. Without a resource, rules that
 * require one do not match (fail closed). A resource on a request that is not a payment is refused:
 * the caller believes it is paying and it is not.
 */
export function attachPaymentContext(intent: Intent, context: SignContext): void {
  const url = context.x402?.resource;
  if (url === undefined) return;
  const normalised = normaliseResource(url);
  if (!normalised) throw new AirlockError('invalid_request', 'x402.resource must be an absolute http(s) URL without credentials.');
  if (!intent.payment) throw new AirlockError('invalid_request', 'x402.resource was given but the typed data is not an x402 payment authorization.');
  intent.payment.resource = normalised.resource;
  intent.payment.origin = normalised.origin;
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
