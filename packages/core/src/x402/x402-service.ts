import { canonicalJson } from '../canonical-json.ts';
import { AirlockError } from '../errors.ts';
import type { Decision, Violation } from '../policy/decision.ts';
import type { EvaluationInput } from '../policy/index.ts';
import { normaliseResource } from '../policy/resource-pattern.ts';
import type { ChainReader } from '../ports/chain-reader.ts';
import type { PaymentRecord } from '../ports/payments.ts';
import type { IdempotencyRecord } from '../ports/store.ts';
import type { ServiceDeps } from '../service/deps.ts';
import type { AgentAuth, SignContext, SignOutcome, SigningService } from '../service/signing-service.ts';
import { requestHash } from '../service/tokens.ts';
import { buildPayment, paymentHeaderName, paymentPayload, type BuiltPayment } from './builder.ts';
import { classifyRequirement, type PaymentCandidate, type PaymentRequired, type RequirementSummary } from './requirements.ts';
import { PaymentReconciler, type ReconcileResult, type ReconcilerOptions } from './reconciler.ts';

export interface X402Options {
  /** base64(JSON) of a PaymentPayload: @x402/core's `encodePaymentSignatureHeader`, wired by the server. */
  encodePaymentHeader: (payload: Record<string, unknown>) => string;
  /** n bytes from a CSPRNG (authorization nonces). */
  randomBytes: (n: number) => Uint8Array;
  /** Chain access for the reconciler; without it every payment is converted at validBefore as assumed settled. */
  chain?: ChainReader;
  /** Release margin and trust thresholds of the reconciler (defaults in reconciler.ts). */
  reconcile?: ReconcilerOptions;
}

/** What the agent reported from the server's PAYMENT-RESPONSE (decoded at the HTTP edge). */
export interface SettlementReport {
  paymentId?: string;
  nonce?: string;
  response: { success?: unknown; transaction?: unknown; network?: unknown; payer?: unknown; errorReason?: unknown };
}

/** The payment chosen for a request, kept under the Idempotency-Key so a retry signs the same nonce. */
interface Plan {
  requirementIndex: number;
  built: BuiltPayment;
}

const PLAN_SCOPE = (agentId: string) => `x402:agent:${agentId}`;

/**
 * x402 on top of the signing service: picks the first requirement policy allows, builds the
 * authorization the reference client would build, signs it through the one signing path (same policy,
 * same reservation, same audit) and returns the header to send. Also takes settlement reports and
 * reconciles payments against the chain.
 */
export class X402Service {
  private readonly deps: ServiceDeps;
  private readonly signing: SigningService;
  private readonly options: X402Options;
  private reconciler: PaymentReconciler | undefined;

  constructor(deps: ServiceDeps, signing: SigningService, options: X402Options) {
    this.deps = deps;
    this.signing = signing;
    this.options = options;
  }

  async pay(auth: AgentAuth, resourceUrl: string, required: PaymentRequired, idempotencyKey?: string): Promise<SignOutcome> {
    if (!normaliseResource(resourceUrl)) throw new AirlockError('invalid_request', 'resource must be an absolute http(s) URL without credentials.');
    const input = { resource: resourceUrl, required };
    const reqHash = requestHash('x402.pay', input, canonicalJson);

    let plan: Plan | undefined;
    if (idempotencyKey !== undefined) {
      const prior = await this.deps.store.transaction((tx) => tx.getIdempotency(PLAN_SCOPE(auth.agent.id), idempotencyKey));
      if (prior) {
        const stored = await this.answerFromPlan(auth, reqHash, idempotencyKey, prior);
        if ('outcome' in stored) return stored.outcome;
        plan = stored.plan;
      }
    }
    if (!plan) {
      const chosen = await this.choose(auth, resourceUrl, required);
      const prior = idempotencyKey !== undefined ? await this.storePlan(auth, idempotencyKey, reqHash, chosen) : undefined;
      if (prior) {
        // A concurrent request under the same key stored its plan first: answered as if this one had come after it
        // (a retry follows its plan, so both sign the same nonce; a conflict or a stored refusal is audited). Found by
        // review: both had been answered here without an audit entry.
        const stored = await this.answerFromPlan(auth, reqHash, idempotencyKey!, prior);
        if ('outcome' in stored) return stored.outcome;
        plan = stored.plan;
      } else {
        if ('denied' in chosen) return chosen.denied;
        plan = chosen.plan;
      }
    }

    const candidate = this.candidateOf(required, plan.requirementIndex);
    // Kept in an approval's summary, so the header can be rebuilt once a human approves.
    const approvalPlan = { ...plan, x402Version: required.x402Version, requirement: candidate.raw, resourceUrl, ...(required.resource ? { resourceInfo: required.resource } : {}), ...(required.extensions ? { extensions: required.extensions } : {}) };
    const context: SignContext = { x402: { resource: resourceUrl, x402Version: required.x402Version, plan: approvalPlan } };
    const out = await this.signing.sign(auth, 'evm.typed_data', plan.built.request, idempotencyKey !== undefined ? `x402/${idempotencyKey}` : undefined, context);
    const chosenInfo = { x402Version: required.x402Version, requirementIndex: plan.requirementIndex, requirement: candidate.raw };
    if (out.status !== 200) return { status: out.status, body: { ...out.body, ...chosenInfo } };
    return { status: 200, body: this.assemble(candidate, required, resourceUrl, plan.built, out.body) };
  }

  /** The 200 body once the authorization is signed. Also used to finish an approved payment. */
  assemble(candidate: PaymentCandidate, required: Pick<PaymentRequired, 'resource' | 'extensions'>, resourceUrl: string, built: BuiltPayment, signed: Record<string, unknown>): Record<string, unknown> {
    const signature = String(signed.signature);
    const payload = paymentPayload(candidate, required, resourceUrl, built, signature);
    return {
      decision: 'allow',
      ...(typeof signed.paymentId === 'string' ? { paymentId: signed.paymentId } : {}),
      x402Version: candidate.x402Version,
      header: { name: paymentHeaderName(candidate.x402Version), value: this.options.encodePaymentHeader(payload) },
      payload,
      requirementIndex: candidate.index,
      requirement: candidate.raw,
      ...(built.method === 'eip3009' ? { authorization: built.authorization } : { permit2Authorization: built.authorization }),
      signature,
      auditSeq: signed.auditSeq,
      ...(signed.receipt !== undefined ? { receipt: signed.receipt } : {}),
      ...(signed.policyVersion !== undefined ? { policyVersion: signed.policyVersion, allowedBy: signed.allowedBy } : {}),
      intent: signed.intent,
      ...(signed.replayed ? { replayed: true } : {}),
    };
  }

  /**
   * For an approved x402 payment (`GET /v1/approvals/:id`): the header and payload, rebuilt from the plan
   * kept in the approval summary and the signature in its result. Undefined for other approvals.
   */
  approvedPayment(summary: unknown, result: unknown): Record<string, unknown> | undefined {
    const plan = (summary as { x402?: Plan & { resourceUrl: string; resourceInfo?: Record<string, unknown>; extensions?: Record<string, unknown>; x402Version?: 1 | 2; requirement?: Record<string, unknown> } } | undefined)?.x402;
    const { signature, paymentId } = (result ?? {}) as { signature?: unknown; paymentId?: unknown };
    if (!plan || typeof signature !== 'string' || !plan.requirement || !plan.x402Version) return undefined;
    const classified = classifyRequirement(plan.requirement, plan.requirementIndex, plan.x402Version);
    if (!('candidate' in classified)) return undefined;
    const payload = paymentPayload(classified.candidate, { ...(plan.resourceInfo ? { resource: plan.resourceInfo } : {}), ...(plan.extensions ? { extensions: plan.extensions } : {}) }, plan.resourceUrl, plan.built, signature);
    return { header: { name: paymentHeaderName(plan.x402Version), value: this.options.encodePaymentHeader(payload) }, payload, ...(typeof paymentId === 'string' ? { paymentId } : {}) };
  }

  private candidateOf(required: PaymentRequired, index: number): PaymentCandidate {
    const raw = required.accepts[index];
    const classified = raw && classifyRequirement(raw, index, required.x402Version);
    if (!classified || !('candidate' in classified)) throw new AirlockError('internal', 'the stored x402 plan no longer matches its requirements');
    return classified.candidate;
  }

  /** Evaluates each requirement in order; the first one policy allows (or sends to approval) wins. */
  private async choose(auth: AgentAuth, resourceUrl: string, required: PaymentRequired): Promise<{ plan: Plan } | { denied: SignOutcome }> {
    const maxValidity = await this.signing.maxValiditySeconds(auth);
    const nowSeconds = Math.floor(this.deps.clock.now() / 1000);
    const context: SignContext = { x402: { resource: resourceUrl, x402Version: required.x402Version } };
    const listing: (RequirementSummary & { violations?: Violation[]; skipped?: string })[] = [];
    const violations: Violation[] = [];
    let policyVersion = '';
    const evaluated: Decision[] = [];
    // A refused requirement's input: the refusal is screened with it (refusal_run counts it as a refused signing request).
    let refusedInput: EvaluationInput | undefined;
    for (const [index, raw] of required.accepts.entries()) {
      const classified = classifyRequirement(raw, index, required.x402Version);
      if ('skipped' in classified) {
        listing.push({ ...classified.summary, skipped: classified.skipped });
        continue;
      }
      const built = buildPayment(classified.candidate, auth.agent.address, this.options.randomBytes(32), nowSeconds, maxValidity);
      const { outcome: { decision }, input } = await this.signing.dryRunWithInput(auth, 'evm.typed_data', built.request, context);
      policyVersion = decision.policyVersion;
      if (decision.decision !== 'deny') return { plan: { requirementIndex: index, built } };
      refusedInput ??= input;
      evaluated.push(decision);
      listing.push({ ...classified.summary, violations: decision.violations });
      violations.push(...decision.violations);
    }
    const refused: Decision = { decision: 'deny', violations, allowedBy: [], policyVersion };
    const normalised = normaliseResource(resourceUrl)!;
    // Audited, and screened by the detectors like a refused signing request (a refusal_run counts it, and may trip
    // on it). A requirement-less refusal (every one skipped as unsupported) was refused by no policy: not screened.
    const { auditSeq, decision } = await this.signing.recordRefusal(auth, 'x402.pay', refused, { resource: normalised.resource, x402Version: required.x402Version, requirements: listing }, normalised.resource, evaluated, refusedInput);
    const recorded = decision.violations;
    const reasons = listing.map((r) => (r.skipped ? `#${r.index} skipped (${r.skipped})` : `#${r.index} denied by ${r.violations?.[0]?.rule}: ${r.violations?.[0]?.message}`));
    return {
      denied: {
        status: 403,
        body: {
          decision: 'deny',
          error: { code: 'policy_denied', message: `No payment requirement is allowed: ${reasons.join('; ')}`, violations: recorded, requirements: listing },
          ...(policyVersion ? { policyVersion } : {}),
          auditSeq,
        },
      },
    };
  }

  /** Stores the plan (or the denial) under the key; returns the record stored first when another request won. */
  private async storePlan(auth: AgentAuth, key: string, reqHash: string, chosen: { plan: Plan } | { denied: SignOutcome }): Promise<IdempotencyRecord | undefined> {
    const response = 'plan' in chosen ? { status: 200, body: chosen.plan as unknown } : { status: chosen.denied.status, body: chosen.denied.body as unknown };
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      // Reading the agent takes its lock (PostgreSQL), which serialises its idempotency keys: without it two requests
      // under one key both found none and the second insert failed as an unaudited `409 conflict`.
      await tx.getAgent(auth.agent.id);
      const existing = await tx.getIdempotency(PLAN_SCOPE(auth.agent.id), key);
      if (existing) return existing;
      const auditSeq = 'denied' in chosen ? Number(chosen.denied.body.auditSeq) : 0;
      await tx.putIdempotency({ scope: PLAN_SCOPE(auth.agent.id), key, requestHash: reqHash, auditSeq, response: JSON.parse(JSON.stringify(response)), createdAt: now });
      return undefined;
    }, { affinity: auth.agent.id });
  }

  /**
   * A request whose Idempotency-Key already holds a plan, read before choosing or met when storing its own: the
   * stored plan to sign, or the answer without signing, audited (a different request under the key is thrown as
   * `idempotency_conflict`; a stored refusal or hold is replayed with its `sign.replay` entry). As on the signing
   * routes (found by review: a conflict and a replayed refusal had left no entry, first in sequence, then in a race).
   */
  private async answerFromPlan(auth: AgentAuth, reqHash: string, idempotencyKey: string, prior: IdempotencyRecord): Promise<{ plan: Plan } | { outcome: SignOutcome }> {
    if (prior.requestHash !== reqHash) {
      const conflict = new AirlockError('idempotency_conflict', 'This Idempotency-Key was already used with a different request.');
      throw await this.auditPlanAnswer(auth, reqHash, idempotencyKey, prior.auditSeq, conflict);
    }
    if (prior.response.status === 200) return { plan: prior.response.body as Plan };
    const status = prior.response.status as SignOutcome['status'];
    const replayAuditSeq = await this.auditPlanAnswer(auth, reqHash, idempotencyKey, prior.auditSeq, status === 202 ? 'require_approval' : 'deny');
    if (typeof replayAuditSeq !== 'number') throw replayAuditSeq;
    return { outcome: { status, body: { ...(prior.response.body as Record<string, unknown>), replayed: true, replayAuditSeq } } };
  }

  /**
   * The audit entry of an x402 request answered from its Idempotency-Key's stored plan without signing: a
   * `sign.request` error entry for a conflict (returned, to be thrown), a `sign.replay` entry (its seq returned) for a
   * stored refusal or hold. The session is checked again first; a dead one is audited and returned instead.
   */
  private auditPlanAnswer(auth: AgentAuth, reqHash: string, idempotencyKey: string, originalSeq: number, outcome: AirlockError | 'deny' | 'require_approval'): Promise<number | AirlockError> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const fresh = await this.signing.recheck(tx, auth, now);
      const error = fresh.error ?? (outcome instanceof AirlockError ? outcome : undefined);
      if (error) {
        await this.signing.appendErrorEntry(tx, auth, 'x402.pay', reqHash, error, now, { idempotencyKey, originalSeq });
        return error;
      }
      // A derived session collects only its own requests' answers and those of sessions below it, as a signature's
      // replay (the plan's key is the agent's: a child under its parent's key met the parent's hold and approval id).
      const violations = await this.signing.replayOriginCheck(tx, fresh.session ?? auth.session, originalSeq);
      if (violations.length > 0) {
        const refused = await tx.appendAudit({
          at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: 'x402.pay', decision: 'deny',
          data: { originalSeq, requestHash: reqHash, idempotencyKey, violations },
        });
        return new AirlockError('policy_denied', `Denied by ${violations[0]!.rule}: ${violations[0]!.message}`, { violations, details: { auditSeq: refused.seq } });
      }
      const entry = await tx.appendAudit({
        at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: 'x402.pay', decision: outcome as 'deny' | 'require_approval',
        data: { originalSeq, requestHash: reqHash, idempotencyKey },
      });
      return entry.seq;
    }, { affinity: auth.agent.id });
  }

  /** Links the settlement transaction the agent saw in PAYMENT-RESPONSE to its payment (audited). */
  async reportSettlement(auth: AgentAuth, report: SettlementReport): Promise<{ paymentId: string; state: string; transaction: string | null }> {
    const payment = await this.findPayment(auth, report);
    const tx = report.response.transaction;
    const txHash = typeof tx === 'string' && /^0x[0-9a-fA-F]{64}$/.test(tx) ? tx.toLowerCase() : undefined;
    const success = report.response.success === true;
    const now = this.deps.clock.now();
    const updated = await this.deps.store.transaction(async (stx) => {
      const entry = await stx.appendAudit({
        at: now, type: 'x402.settlement_reported', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id,
        data: {
          paymentId: payment.id, success, ...(txHash ? { transaction: txHash } : {}),
          ...(typeof report.response.network === 'string' ? { network: wellFormedPrefix(report.response.network, 64) } : {}),
          ...(typeof report.response.errorReason === 'string' ? { errorReason: wellFormedPrefix(report.response.errorReason, 200) } : {}),
        },
      });
      void entry;
      return txHash && success ? stx.reportPaymentSettlement(payment.id, txHash, now) : payment;
    });
    return { paymentId: updated.id, state: updated.state, transaction: updated.reportedTx ?? null };
  }

  private async findPayment(auth: AgentAuth, report: SettlementReport): Promise<PaymentRecord> {
    let payment: PaymentRecord | undefined;
    if (report.paymentId !== undefined) payment = await this.deps.store.getPayment(report.paymentId);
    else if (report.nonce !== undefined) {
      const nonce = report.nonce.toLowerCase();
      payment = (await this.deps.store.listPayments({ agentId: auth.agent.id, nonce, limit: 10 }))[0];
    } else throw new AirlockError('invalid_request', 'Give paymentId or nonce.');
    // An agent sees only its own payments; others look like they do not exist.
    if (!payment || payment.agentId !== auth.agent.id) throw new AirlockError('not_found', 'No such payment.');
    return payment;
  }

  /**
   * One reconciliation round over reserved payments (rules in reconciler.ts): at most `limit` of them (default
   * the reconciler's batchSize), each round continuing where the previous one stopped.
   */
  async reconcile(limit?: number): Promise<ReconcileResult> {
    // One reconciler for the service's life: it keeps the paging cursor from round to round.
    this.reconciler ??= new PaymentReconciler(this.deps, this.options.chain, this.options.reconcile);
    return this.reconciler.run(limit);
  }
}

/**
 * At most `max` UTF-16 units of a string from outside, never ending in half a surrogate pair (a plain slice cut an
 * emoji in two, and the audit entry then held a lone surrogate), and with any lone surrogate replaced.
 */
function wellFormedPrefix(text: string, max: number): string {
  let cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut.toWellFormed();
}
