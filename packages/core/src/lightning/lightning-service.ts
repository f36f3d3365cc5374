import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { AirlockError, isAirlockError } from '../errors.ts';
import { BITCOIN_CHAINS, intentToJson, type Intent } from '../intent.ts';
import { countWritesFor, ledgerWritesFor, sessionScopeViolations, type EvaluationInput } from '../policy/index.ts';
import type { Decision } from '../policy/decision.ts';
import { normaliseResource } from '../policy/resource-pattern.ts';
import type { DecodedRequest } from '../ports/chain-adapter.ts';
import type { LightningBackend, LightningPaymentStatus } from '../ports/lightning-backend.ts';
import type { LightningPaymentRecord } from '../ports/lightning-payments.ts';
import type { ApprovalRecord, Session, StoreTx } from '../ports/store.ts';
import { COUNT_ASSET } from '../ports/ledger.ts';
import { receiptForSeq } from '../audit/stored-tree.ts';
import { assertAuditIntact } from '../service/audit-integrity.ts';
import type { ServiceDeps } from '../service/deps.ts';
import { denialBody, type AgentAuth, type DryRunOutcome, type SignOutcome, type SigningService } from '../service/signing-service.ts';
import { requestHash } from '../service/tokens.ts';
import { ancestorIdsOf } from '../service/session-chain.ts';
import { requiredQuorum } from '../approvals/quorum.ts';

export const LIGHTNING_ACTION = 'lightning.pay';

/** What an agent asks for. Amounts are decimal strings of millisatoshis (or bigint from in-process callers). */
export interface LightningPayInput {
  invoice: string;
  /** Only for an amountless invoice. */
  amountMsat?: string | bigint;
  /** The routing fee limit; default: `defaultFeePercent` of the amount, at least `minDefaultFeeMsat`. */
  maxFeeMsat?: string | bigint;
  /** L402: the resource paid for and the challenge's macaroon (its payment hash must be the invoice's). */
  l402?: L402Context;
}

export interface L402Context {
  resource: string;
  scheme: 'L402' | 'LSAT';
  macaroon: string;
  /** The payment hash the macaroon's identifier names (lowercase hex). */
  macaroonPaymentHash: string;
  /** The earliest expiry its caveats name (unix seconds), when any. */
  expiresAt?: number;
}

export interface LightningOptions {
  /** Undefined: Lightning is not configured and every payment is refused with `lightning_not_configured`. */
  backend?: LightningBackend;
  /** How long a pay call may take before the agent is answered `in_flight` (the hold stays). Default 60. */
  payTimeoutSeconds?: number;
  /**
   * A backend with no record of a payment is believed only once this long has passed after the pay call's
   * timeout (a request still travelling, a backend restarting). Default 300.
   */
  notFoundGraceSeconds?: number;
  /** Default routing fee limit as a percentage of the amount (default 1), and its floor (default 1000 msat). */
  defaultFeePercent?: number;
  minDefaultFeeMsat?: bigint;
  /**
   * How many in-flight payments one reconcile round looks up (default 200). Rounds page through all of them
   * (oldest first, wrapping around), so every payment in flight is looked up within ceil(n / this) rounds.
   */
  reconcileBatch?: number;
  /**
   * Payments one agent may have in flight at once (default 32). Each holds an HTLC on the node's channels until
   * it settles or fails, and a payee that holds its invoices (hold invoices) can keep one open for days: without a
   * bound, one agent paying such invoices (a prompt-injected agent, a hostile L402 server) ties up the node's
   * HTLC slots (483 per channel) and the whole fleet's Lightning stops. A budget does not bound it: the amounts
   * can be a satoshi each.
   */
  maxInFlightPerAgent?: number;
}

/** Turns the internal payload the lightning adapter decodes (the service supplies network and time). */
interface AdapterPayload {
  invoice: string;
  amountMsat?: bigint;
  maxFeeMsat: bigint;
  network: LightningBackend['network'];
  now: number;
}

export interface ReconcileLightningResult {
  checked: number;
  succeeded: number;
  failed: number;
  /** Lookups that failed (the holds stay). */
  errors: number;
}

const MSAT_PATTERN = /^(0|[1-9][0-9]{0,20})$/;
const HEX32 = /^[0-9a-f]{64}$/;

/** How a payment ends: succeeded (verified preimage, the fee charged, whether the backend reported it) or failed. */
interface Finish {
  state: 'succeeded' | 'failed';
  preimage?: string;
  feeMsat?: bigint;
  /** The backend did not say what fee it paid: `feeMsat` is the larger of the request's and the default limit. */
  feeUnreported?: true;
  failureReason?: string;
}

/** Times finish() runs its transaction when it rolls back on `conflict` (a concurrent finish, a deadlock broken by PostgreSQL). */
const FINISH_ATTEMPTS = 3;

/** How often a backend outage that lasts is told again (`alert.lightning` `backend_unavailable`, `reminder: true`). */
export const OUTAGE_REMINDER_MS = 3_600_000;

/**
 * Lightning payments for agents (`airlock.lightning`): decode the invoice -> (transaction: re-check the
 * credential, evaluate policy against fresh totals, append the audit entry, HOLD amount + fee limit) -> commit
 * -> pay through the backend -> (transaction: convert to amount + actual fee, or release on a definite
 * failure, with its audit entry). An unknown outcome leaves the hold in place; `reconcile` asks the backend
 * again later. Nothing is paid unless its hold and audit entry are durable.
 */
export class LightningService {
  private readonly deps: ServiceDeps;
  private readonly signing: SigningService;
  private readonly options: Required<Omit<LightningOptions, 'backend'>> & { backend?: LightningBackend };
  /** Payments whose pay call is running in this process (the reconciler leaves them to it). */
  private readonly executing = new Map<string, Promise<LightningPaymentRecord>>();
  /** Where the next reconcile round starts: after the last payment the previous round read (none: the oldest). */
  private reconcileCursor: { createdAt: number; id: string } | undefined;
  /**
   * The backend outage this instance last alerted about (`backend_unavailable`): when it began (the first round whose
   * lookups failed for a payment past its timeout) and when it was last told. Cleared by a round where no lookup
   * failed. Per instance: a restart, or another instance, alerts once more about the same outage.
   */
  private outage: { since: number; alertedAt: number } | undefined;

  constructor(deps: ServiceDeps, signing: SigningService, options: LightningOptions = {}) {
    this.deps = deps;
    this.signing = signing;
    this.options = {
      payTimeoutSeconds: options.payTimeoutSeconds ?? 60,
      notFoundGraceSeconds: options.notFoundGraceSeconds ?? 300,
      defaultFeePercent: options.defaultFeePercent ?? 1,
      minDefaultFeeMsat: options.minDefaultFeeMsat ?? 1000n,
      reconcileBatch: options.reconcileBatch ?? 200,
      maxInFlightPerAgent: options.maxInFlightPerAgent ?? 32,
      ...(options.backend ? { backend: options.backend } : {}),
    };
  }

  /**
   * A replay (the same Idempotency-Key, or an invoice this agent already pays) hands back the payment, preimage
   * included: only to a session whose scope, and its ancestors', allows this payment, as the signing path's
   * replays (docs/architecture.md, "Replays"). Out of scope: a `sign.replay` deny entry and 403, nothing else.
   * In scope, the caller records its entry. Unlike a signing replay it charges no request count: it pays nothing
   * and releases nothing new, and NWC has every instance answer each request under one Idempotency-Key, so
   * counting replays would count one payment once per instance (rate limits tripping at 1/N of their rate).
   */
  private async replayOutOfScope(tx: StoreTx, auth: AgentAuth, fresh: { session?: Session; ancestors?: Session[] }, input: EvaluationInput, data: Record<string, unknown>, now: number): Promise<SignOutcome | undefined> {
    const violations = sessionScopeViolations(fresh.session!.scope, fresh.session!.id, input, fresh.ancestors);
    if (violations.length === 0) return undefined;
    const decision: Decision = { decision: 'deny', violations, allowedBy: [], policyVersion: `session:${fresh.session!.id}` };
    const entry = await tx.appendAudit({ at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: LIGHTNING_ACTION, decision: 'deny', data: { ...data, violations } });
    return { status: 403, body: denialBody(decision, entry.seq) };
  }

  get backend(): LightningBackend | undefined {
    return this.options.backend;
  }

  /**
   * Pays an invoice for an agent, under its policy. 200 paid, 202 in flight or waiting for approval, 403 denied.
   * `options.approvalLifetimeMs`: the longest an approval opened for this request may stay open (its deadline is the
   * sooner of that and the usual AIRLOCK_APPROVAL_TTL), for a caller whose client stops waiting at a known time (a
   * NIP-47 `expiration` tag). A lifetime, not a time: the caller's deadline is on the client's wall clock, the
   * approval's on this service's clock. It is not part of the request hash, so a replay under the same key matches.
   */
  async pay(auth: AgentAuth, input: LightningPayInput, idempotencyKey?: string, options: { approvalLifetimeMs?: number } = {}): Promise<SignOutcome> {
    assertAuditIntact(this.deps.auditIntegrity);
    const backend = this.requireBackend();
    const now = this.deps.clock.now();
    const reqHash = lightningRequestHash(input);
    let decoded: DecodedRequest;
    let payload: AdapterPayload;
    try {
      payload = this.adapterPayload(input, backend, now);
      decoded = this.decode(payload, auth, input.l402);
    } catch (e) {
      await this.signing.auditRefusal(auth, LIGHTNING_ACTION, reqHash, e, now);
      throw e;
    }
    const input0: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };

    type Outcome = { refused: AirlockError } | { execute: LightningPaymentRecord; auditSeq: number; allowedBy: string[]; policyVersion: string } | { answer: LightningPaymentRecord; auditSeq: number } | SignOutcome;
    const attempt = () => this.deps.store.transaction(async (tx): Promise<Outcome> => {
      const fresh = await this.signing.recheck(tx, auth, now, input0);
      if (fresh.error) {
        this.signing.credentials.forgetSession(auth.session.id);
        await this.signing.appendErrorEntry(tx, auth, LIGHTNING_ACTION, reqHash, fresh.error, now);
        return { refused: fresh.error };
      }
      if (idempotencyKey !== undefined) {
        const prior = await tx.getIdempotency(`agent:${auth.agent.id}`, idempotencyKey);
        if (prior) {
          if (prior.requestHash !== reqHash) {
            const error = new AirlockError('idempotency_conflict', 'This Idempotency-Key was already used with a different request.');
            await this.signing.appendErrorEntry(tx, auth, LIGHTNING_ACTION, reqHash, error, now, { idempotencyKey, originalSeq: prior.auditSeq });
            return { refused: error };
          }
          const body = prior.response.body as Record<string, unknown>;
          const paymentId = typeof body.paymentId === 'string' ? body.paymentId : undefined;
          const replayData = { originalSeq: prior.auditSeq, requestHash: reqHash, idempotencyKey, ...(paymentId ? { paymentId } : {}) };
          const outOfScope = await this.replayOutOfScope(tx, auth, fresh, input0, replayData, now);
          if (outOfScope) return outOfScope;
          const payment = paymentId ? await tx.getLightningPayment(paymentId) : undefined;
          // A stored refusal or approval hold is replayed as what it was (as the signing path's replays are).
          const decision = payment ? 'allow' : prior.response.status === 403 ? 'deny' : prior.response.status === 202 ? 'require_approval' : 'allow';
          const entry = await tx.appendAudit({ at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: LIGHTNING_ACTION, decision, data: replayData });
          if (payment) return { answer: payment, auditSeq: entry.seq };
          return { status: prior.response.status as SignOutcome['status'], body: { ...body, replayed: true, replayAuditSeq: entry.seq } };
        }
      }
      // One payment per invoice: the same agent asking again gets that payment (never a second one); another agent is refused.
      const active = await tx.activeLightningPayment(decoded.intent.lightning!.paymentHash);
      if (active) {
        if (active.agentId !== auth.agent.id) {
          const error = new AirlockError('lightning_payment_in_flight', 'This invoice is already being paid or was paid by another agent.');
          await this.signing.appendErrorEntry(tx, auth, LIGHTNING_ACTION, reqHash, error, now, { paymentHash: active.paymentHash });
          return { refused: error };
        }
        const replayData = { originalSeq: active.auditSeq, requestHash: reqHash, paymentId: active.id };
        const outOfScope = await this.replayOutOfScope(tx, auth, fresh, input0, replayData, now);
        if (outOfScope) return outOfScope;
        const entry = await tx.appendAudit({ at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: LIGHTNING_ACTION, decision: 'allow', data: replayData });
        return { answer: active, auditSeq: entry.seq };
      }
      // Read after recheck, which took the agent's lock (PostgreSQL): the agent's payments serialise here, so
      // requests at once cannot all see room under the bound.
      try {
        await this.assertRoomInFlight(tx, auth.agent.id);
      } catch (e) {
        if (!isAirlockError(e) || e.code !== 'lightning_too_many_in_flight') throw e;
        await this.signing.appendErrorEntry(tx, auth, LIGHTNING_ACTION, reqHash, e, now, e.details as Record<string, unknown>);
        return { refused: e };
      }
      return this.decide(tx, auth, fresh.session!, input0, decoded, reqHash, idempotencyKey, backend, input, now, options.approvalLifetimeMs);
    }, { affinity: auth.agent.id });
    let outcome: Outcome;
    try {
      outcome = await attempt();
    } catch (e) {
      // Another agent's payment of this invoice committed between our read and our hold (PostgreSQL: the unique
      // index on active payment hashes). Nothing of ours was written or paid; asked again, the answer is that
      // payment: refused with its code and audited for another agent, the payment itself for the same agent.
      if (!isAirlockError(e) || e.code !== 'conflict') throw e;
      outcome = await attempt();
    }

    if ('refused' in outcome) throw outcome.refused;
    if ('answer' in outcome) return this.describe(await this.settleIfRunning(outcome.answer), { replayed: true, replayAuditSeq: outcome.auditSeq });
    if ('execute' in outcome) {
      const finished = await this.execute(outcome.execute);
      return this.describe(finished, { policyVersion: outcome.policyVersion, allowedBy: outcome.allowedBy, intent: intentToJson(decoded.intent) });
    }
    return outcome;
  }

  /** What policy would decide for this payment now, without holding or paying anything. */
  async dryRun(auth: AgentAuth, input: LightningPayInput): Promise<DryRunOutcome> {
    assertAuditIntact(this.deps.auditIntegrity);
    const backend = this.requireBackend();
    const now = this.deps.clock.now();
    const decoded = this.decode(this.adapterPayload(input, backend, now), auth, input.l402);
    const evaluation: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
    // What paying would meet, the circuit breakers included (screening writes nothing, only `record` does).
    const { decision } = await this.deps.store.transaction((tx) => this.signing.evaluateScreened(tx, auth.session, evaluation, auth.agent));
    const shadow = this.signing.shadows.comparisonsOf(decision);
    return { decision, intent: intentToJson(decoded.intent), digest: bytesToHex(decoded.digest), ...(shadow.length ? { shadow: [...shadow] } : {}) };
  }

  /** A payment by id, for the agent that made it (or an operator: pass no agent). */
  async getPayment(id: string, agentId?: string): Promise<SignOutcome> {
    const payment = await this.deps.store.getLightningPayment(id);
    if (!payment || (agentId !== undefined && payment.agentId !== agentId)) throw new AirlockError('not_found', 'No such Lightning payment.');
    return this.describe(payment, {}, { forAgent: agentId !== undefined, failureAsError: false });
  }

  /**
   * Asks the backend about payments still in flight (up to `limit` a round) and finishes those it has a
   * definite answer for. Rounds page through every payment in flight, oldest first, each round starting after
   * the last one the previous round read and starting over once the end is reached: however many payments one
   * agent keeps in flight (hold invoices that never settle), everyone else's are still looked up within
   * ceil(n / limit) rounds. Payments whose pay call is still running in this process are left to it.
   */
  async reconcile(limit = this.options.reconcileBatch): Promise<ReconcileLightningResult> {
    const backend = this.options.backend;
    const result: ReconcileLightningResult = { checked: 0, succeeded: 0, failed: 0, errors: 0 };
    if (!backend) return result;
    const batch = Math.max(1, Math.min(Math.floor(limit), 1000));
    const after = this.reconcileCursor;
    const inFlight = await this.deps.store.transaction((tx) => tx.inFlightLightningPayments(batch, after));
    const last = inFlight[inFlight.length - 1];
    // A short page reached the end: the next round starts over from the oldest.
    this.reconcileCursor = inFlight.length < batch || !last ? undefined : { createdAt: last.createdAt, id: last.id };
    let dueErrors = 0;
    for (const p of inFlight) {
      if (this.executing.has(p.id)) continue;
      result.checked += 1;
      let status: LightningPaymentStatus;
      try {
        status = await backend.lookup(p.paymentHash);
      } catch {
        result.errors += 1;
        if (this.deps.clock.now() >= p.createdAt + p.timeoutSeconds * 1000) dueErrors += 1;
        continue;
      }
      // One payment that cannot be concluded (a stored invoice that no longer decodes, a store error) must not stop
      // the round, every round, for every payment after it (found by review). Its hold stays: nothing is released on
      // an error; it counts as an error of the round and an operator is told once (`finish_error`).
      const finished = await this.conclude(p, status, 'lookup').catch(async (e: unknown) => {
        await this.alert(p, { reason: 'finish_error', errorCode: isAirlockError(e) ? e.code : 'internal' }).catch(() => {});
        return undefined;
      });
      if (!finished) {
        result.errors += 1;
        continue;
      }
      if (finished.state === 'succeeded') result.succeeded += 1;
      if (finished.state === 'failed') result.failed += 1;
    }
    await this.alertOutage(backend.kind, result, dueErrors);
    return result;
  }

  /**
   * `backend_unavailable`: the backend keeps a payment past its timeout unanswered. Told once when the outage is first
   * seen, then again every `OUTAGE_REMINDER_MS` while it lasts (not every round: a reconcile interval of seconds wrote
   * one entry, and fired `alert.*` webhooks, every few seconds). An outage ends with a round where no lookup failed (all
   * answered, or none to make); the next one is told again.
   */
  private async alertOutage(backendKind: string, round: ReconcileLightningResult, dueErrors: number): Promise<void> {
    const now = this.deps.clock.now();
    if (round.errors === 0) this.outage = undefined;
    if (dueErrors === 0) return;
    if (this.outage && now - this.outage.alertedAt < OUTAGE_REMINDER_MS) return;
    const since = this.outage?.since ?? now;
    await this.deps.store.transaction((tx) => tx.appendAudit({
      at: now, type: 'alert.lightning', actor: 'system',
      data: { reason: 'backend_unavailable', backend: backendKind, payments: dueErrors, since: new Date(since).toISOString(), ...(this.outage ? { reminder: true } : {}) },
    }));
    this.outage = { since, alertedAt: now };
  }

  /**
   * Inside an approval's transaction: the approval's holds were released (`convertHolds: false`) and the
   * payment is held here instead, in flight from now. `afterApproval` then pays it.
   */
  async holdApproved(tx: StoreTx, approval: ApprovalRecord, auditSeq: number): Promise<LightningPaymentRecord> {
    const backend = this.requireBackend();
    const request = approval.request as { payload: AdapterPayload & { amountMsat?: string; maxFeeMsat: string }; l402?: L402Context };
    // Trimmed: approvals stored before requests were trimmed hold the invoice as the agent sent it.
    const payload: AdapterPayload = { ...request.payload, invoice: request.payload.invoice.trim(), maxFeeMsat: BigInt(request.payload.maxFeeMsat), ...(request.payload.amountMsat !== undefined ? { amountMsat: BigInt(request.payload.amountMsat) } : {}) };
    const agent = await tx.getAgent(approval.agentId);
    if (!agent) throw new AirlockError('not_found', 'No such agent.');
    // The bound on payments in flight holds for approved ones too: requests waiting for a human are not in flight,
    // so any number could queue and one approval after another put them all out (found by review). Refused, the
    // grant rolls back and the approval stays pending, to be approved once one of the agent's payments has an answer.
    await this.assertRoomInFlight(tx, approval.agentId);
    // Decoded as it was when asked (the invoice may have aged since: its expiry is the backend's to judge now).
    const decoded = this.decode(payload, { agent, session: { id: approval.sessionId } as Session }, request.l402);
    if (bytesToHex(decoded.digest) !== approval.digest) throw new AirlockError('signature_check_failed', 'The stored request no longer decodes to the approved payment hash.');
    if (await tx.activeLightningPayment(decoded.intent.lightning!.paymentHash)) throw new AirlockError('lightning_payment_in_flight', 'This invoice is already being paid or was paid.');
    const input: EvaluationInput = { intent: decoded.intent, agentId: approval.agentId, sessionId: approval.sessionId, sessionAncestors: await ancestorIdsOf(tx, approval.sessionId), nowMs: this.deps.clock.now() };
    const record = this.newRecord(input, payload.invoice, backend, auditSeq, request.l402);
    await tx.holdLightningPayment(record, ledgerWritesFor(input));
    return record;
  }

  /** Throws `lightning_too_many_in_flight` when the agent already has the most payments in flight it may have. */
  private async assertRoomInFlight(tx: StoreTx, agentId: string): Promise<void> {
    const inFlight = await tx.countInFlightLightningPayments(agentId);
    const max = this.options.maxInFlightPerAgent;
    if (inFlight < max) return;
    throw new AirlockError('lightning_too_many_in_flight', `This agent already has ${inFlight} Lightning payments in flight (at most ${max}); nothing was held or paid. Retry once one has an answer.`, { details: { inFlight, max } });
  }

  /**
   * After an approval committed: pays, and answers what an approval's result records. That result is the
   * operator's view (operators read approvals): no preimage, no L402 credential. The agent reads those from its
   * payment (`paymentId`) or the token cache.
   */
  async afterApproval(record: LightningPaymentRecord): Promise<Record<string, unknown>> {
    const finished = await this.execute(record);
    return (await this.describe(finished, {}, { forAgent: false, failureAsError: false })).body;
  }

  /** Runs the pay call for a committed in-flight payment and finishes it on a definite answer. */
  private execute(record: LightningPaymentRecord): Promise<LightningPaymentRecord> {
    const backend = this.requireBackend();
    const running = (async () => {
      let status: LightningPaymentStatus;
      try {
        status = await backend.pay({
          invoice: record.invoice,
          paymentHash: record.paymentHash,
          ...(record.amountMsat !== undefined && this.amountless(record) ? { amountMsat: record.amountMsat } : {}),
          maxFeeMsat: record.maxFeeMsat,
          timeoutSeconds: record.timeoutSeconds,
        });
      } catch (e) {
        // The outcome is unknown: the hold stays; the reconciler asks the backend later.
        await this.alert(record, { reason: 'pay_call_failed', errorCode: isAirlockError(e) ? e.code : 'transport' });
        return record;
      }
      return this.conclude(record, status, 'pay');
    })().finally(() => this.executing.delete(record.id));
    this.executing.set(record.id, running);
    // The agent waits at most the pay timeout (plus a margin); the call itself runs on and finishes the payment.
    return withTimeout(running, (record.timeoutSeconds + 5) * 1000, record);
  }

  /**
   * A replay waits for the payment as long as its first caller does (until the pay timeout after it was made).
   * The pay call may not be registered here yet: the first request's hold committed just before the replay read
   * it and its pay call starts a moment later (seen on PostgreSQL), or it runs in another Airlock instance. Then
   * the store is read until the payment finishes or that deadline passes.
   */
  private async settleIfRunning(record: LightningPaymentRecord): Promise<LightningPaymentRecord> {
    const waitMs = record.createdAt + (record.timeoutSeconds + 5) * 1000 - this.deps.clock.now();
    const until = Date.now() + Math.max(0, waitMs);
    let current = record;
    while (current.state === 'in_flight' && Date.now() < until) {
      const running = this.executing.get(record.id);
      if (running) return withTimeout(running, until - Date.now(), current);
      await new Promise((r) => setTimeout(r, 50));
      current = (await this.deps.store.getLightningPayment(record.id)) ?? current;
    }
    return current;
  }

  /** Applies a backend answer: definite ones finish the payment (one transaction, with its audit entry). */
  private async conclude(record: LightningPaymentRecord, status: LightningPaymentStatus, source: 'pay' | 'lookup'): Promise<LightningPaymentRecord> {
    const now = this.deps.clock.now();
    if ((status.status === 'succeeded' || status.status === 'in_flight') && status.evidence === 'duplicate' && !(await this.madeByAirlock(record))) {
      // The backend refused this call as a duplicate of a payment no record of Airlock's made (the operator's lncli,
      // another application on the node): this request moved nothing, and that payment's preimage is not the
      // agent's (found by review: an agent was handed the operator's proof of payment, charged 1 msat for it).
      return this.finish(record, { state: 'failed', failureReason: 'paid_outside_airlock' }, source);
    }
    switch (status.status) {
      case 'in_flight':
        return record;
      case 'not_found': {
        // Believed only once the pay call cannot still be on its way to the backend.
        if (source !== 'lookup' || !this.graceOver(record, now)) return record;
        return this.finish(record, { state: 'failed', failureReason: 'not_found_after_grace' }, source);
      }
      case 'failed': {
        // The pay call's own answer is about this attempt. A failure read from the backend's records (a lookup,
        // or a backend's confirming lookup after a pay call without an answer) may be an EARLIER attempt's of
        // the same payment hash, read before this attempt's pay call reached the node or wallet: believed only
        // once that call cannot still be on its way, as `not_found` (a retry would otherwise be released on the
        // first attempt's failure and then paid). An NWC wallet's refusal or failure comes marked so too: it answers one
        // copy of the request, and another relay's copy may still be delivered and paid.
        const fromRecords = source === 'lookup' || status.evidence === 'lookup';
        if (fromRecords && !this.graceOver(record, now)) return record;
        return this.finish(record, { state: 'failed', failureReason: sanitiseReason(status.reason) }, fromRecords ? 'lookup' : source);
      }
      case 'succeeded': {
        const preimage = status.preimage.toLowerCase();
        if (!HEX32.test(preimage) || bytesToHex(sha256(hexToBytes(preimage))) !== record.paymentHash) {
          // A success Airlock cannot verify is no definite answer: the hold stays, an operator is told (once: the
          // reconciler reads the same answer every round, alert()).
          await this.alert(record, { reason: 'preimage_mismatch', source });
          return record;
        }
        if (status.amountMsat !== undefined && status.amountMsat !== record.amountMsat) {
          // Paid, but not the amount this request asked and holds: not this payment as Airlock knows it. The hold
          // stays (what it holds is no measure of what moved); an operator is told, once per reported amount.
          await this.alert(record, { reason: 'amount_mismatch', source, reportedMsat: status.amountMsat.toString() });
          return record;
        }
        if (status.feeUnreported) {
          // Paid, but the backend could not say what the route cost (an NWC wallet without `fees_paid`): the
          // request's limit is the agent's own choice (it may be 0) and that backend does not hold it, so at least
          // the default limit for the amount is charged (found by review), and operators are told (finishIn).
          const floor = this.defaultFeeLimit(record.amountMsat);
          const feeMsat = [status.feeMsat, record.maxFeeMsat, floor].reduce((a, b) => (a > b ? a : b));
          return this.finish(record, { state: 'succeeded', preimage, feeMsat, feeUnreported: true }, source);
        }
        return this.finish(record, { state: 'succeeded', preimage, feeMsat: status.feeMsat }, source);
      }
    }
  }

  /**
   * Whether another of Airlock's records of `record`'s payment hash (an earlier attempt) may have made the backend's
   * payment. Not every record of the hash may have: one that failed `paid_outside_airlock` moved nothing (its call was
   * refused as a duplicate), and neither did one that failed on its own pay call's definite answer. Counting those
   * let asking again, by the same agent or another, turn the operator's payment into the agent's success (found by
   * review: the preimage handed out, the agent charged, a `lightning.succeeded` entry for a payment Airlock never
   * made).
   */
  private async madeByAirlock(record: LightningPaymentRecord): Promise<boolean> {
    const ofHash = await this.deps.store.transaction((tx) => tx.lightningPaymentsByHash(record.paymentHash));
    for (const p of ofHash) {
      if (p.id !== record.id && (await this.mayHavePaid(p))) return true;
    }
    return false;
  }

  /**
   * Whether record `p` may have made a payment of its hash. Yes when in flight, succeeded, or failed and then charged
   * for a verified success (`preimage` recorded). A failed one only when its failure was concluded from the
   * backend's records (a lookup; `not_found_after_grace`; a failure read back after a refused duplicate): its pay
   * call may still have reached the node late, on this instance or another, or answered nobody. No when it failed
   * on its own pay call's answer (`evidence: 'pay'` in its `lightning.failed` entry): that call is over and moved
   * nothing, and `paid_outside_airlock` is such an answer (the call refused as a duplicate). A failed record whose
   * entry cannot be read counts (no evidence that it moved nothing).
   */
  private async mayHavePaid(p: LightningPaymentRecord): Promise<boolean> {
    if (p.state !== 'failed' || p.preimage !== undefined) return true;
    if (p.failureReason === 'paid_outside_airlock') return false;
    if (p.finishedSeq === undefined) return true;
    const [entry] = await this.deps.store.readAudit(p.finishedSeq, 1);
    const ownAnswer = entry?.seq === p.finishedSeq && entry.type === 'lightning.failed' && entry.data?.paymentId === p.id && entry.data.evidence === 'pay';
    return !ownAnswer;
  }

  /** Whether the pay call of `record` can no longer be on its way to the backend (its timeout and the grace passed). */
  private graceOver(record: LightningPaymentRecord, now: number): boolean {
    return now >= record.createdAt + (record.timeoutSeconds + this.options.notFoundGraceSeconds) * 1000;
  }

  private async finish(record: LightningPaymentRecord, finish: Finish, source: 'pay' | 'lookup'): Promise<LightningPaymentRecord> {
    const now = this.deps.clock.now();
    // A derived session's payment is charged to its ancestors too (ancestry never changes: read outside the transaction).
    const input = { ...this.inputOf(record), sessionAncestors: await ancestorIdsOf(this.deps.store, record.sessionId) };
    const charges = finish.state === 'succeeded' ? ledgerWritesFor(withFee(input, finish.feeMsat!)) : countWritesFor(input);
    // `conflict`: our transaction rolled back whole. Either another instance (its reconciler, or the pay call's own
    // answer) finished the payment between our read and our write, or PostgreSQL broke a deadlock by aborting ours
    // (a late charge waiting for the hash's lock while the holder waited for a row it had locked: found by review).
    // finishIn decides from the records it reads under lock, so running it again is safe: after another instance's
    // finish it returns what that one recorded; after a deadlock it records this outcome. Returning the record as it
    // stood after a deadlock lost a verified success: neither charged nor audited.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.finishIn(record, finish, source, charges, now);
      } catch (e) {
        if (!isAirlockError(e) || e.code !== 'conflict') throw e;
        if (attempt >= FINISH_ATTEMPTS) {
          const current = (await this.deps.store.getLightningPayment(record.id)) ?? record;
          // Still not concluded as this answer says: no definite record of it, so an operator must hear of it (the
          // reconciler asks again for a payment in flight; a late success for a failed record is only seen here).
          if (finish.state === 'succeeded' && current.preimage === undefined) await this.alert(current, { reason: 'finish_conflict', source });
          return current;
        }
      }
    }
  }

  private finishIn(record: LightningPaymentRecord, finish: Finish, source: 'pay' | 'lookup', charges: ReturnType<typeof ledgerWritesFor>, now: number): Promise<LightningPaymentRecord> {
    return this.deps.store.transaction(async (tx) => {
      // Every record of the payment hash, locked (PostgreSQL) until this transaction ends: whether the hash was
      // already charged is decided by one instance at a time, and the second reads what the first recorded.
      const ofHash = await tx.lightningPaymentsByHash(record.paymentHash, { forUpdate: true });
      const fresh = ofHash.find((p) => p.id === record.id);
      // One payment hash moves money once: when another record of it already carries the charge, this success
      // is that same payment, seen again (a retry the backend refused as a duplicate and read back, or a late
      // pay call): recorded, never charged twice.
      const chargedBy = finish.state === 'succeeded' ? chargerOf(ofHash, record.id) : undefined;
      if (fresh?.state === 'failed' && fresh.preimage === undefined && finish.state === 'succeeded') return this.chargeAfterFailure(tx, fresh, finish, source, charges, chargedBy, now);
      if (!fresh || fresh.state !== 'in_flight') return fresh ?? record;
      const entry = await tx.appendAudit({
        at: now,
        type: finish.state === 'succeeded' ? 'lightning.succeeded' : 'lightning.failed',
        actor: 'system',
        agentId: record.agentId,
        sessionId: record.sessionId,
        action: LIGHTNING_ACTION,
        data: {
          paymentId: record.id,
          paymentHash: record.paymentHash,
          requestSeq: record.auditSeq,
          amountMsat: record.amountMsat.toString(),
          maxFeeMsat: record.maxFeeMsat.toString(),
          evidence: source,
          backend: record.backend,
          // The preimage is half of an L402 credential: the log records only that it matched the hash.
          ...(finish.state === 'succeeded' ? { feeMsat: finish.feeMsat!.toString(), preimageVerified: true, ...(finish.feeUnreported ? { feeUnreported: true } : {}) } : { reason: finish.failureReason }),
          // Already charged (amount and fee) with that record: this one only releases its hold and counts its request.
          ...(chargedBy ? { chargedBy: chargedBy.id } : {}),
        },
      });
      // Succeeded all the same (the invoice is paid: this attempt's agent gets the preimage and its credential).
      const done = await tx.finishLightningPayment(record.id, finish, chargedBy ? charges.filter((w) => w.asset === COUNT_ASSET) : charges, now, entry.seq);
      if (!chargedBy && finish.state === 'succeeded') await this.alertOnFee(tx, record, finish, now);
      return done;
    });
  }

  /**
   * A verified success (the preimage hashes to the payment hash) for a payment already recorded failed: its
   * holds were released then, but money moved. Charged now, directly (the amount and the fee it cost; its
   * request counts stayed charged at the failure), with a `lightning.succeeded` entry (`afterFailed`) and an
   * alert for operators. Exactly once: the store moves only a failed record without a preimage, and a second
   * instance doing the same rolls back on `conflict` (finish() then reads what the first recorded). When
   * another record of the hash already carries the charge (`chargedBy`: a retry that succeeded, or an earlier
   * late success), it is that same payment: the preimage is recorded, nothing charged, and the entry and alert
   * say so (`chargedBy`, `alreadyCharged`).
   */
  private async chargeAfterFailure(tx: StoreTx, fresh: LightningPaymentRecord, finish: Finish, source: 'pay' | 'lookup', charges: ReturnType<typeof ledgerWritesFor>, chargedBy: LightningPaymentRecord | undefined, now: number): Promise<LightningPaymentRecord> {
    const feeMsat = finish.feeMsat!;
    const common = { paymentId: fresh.id, paymentHash: fresh.paymentHash, requestSeq: fresh.auditSeq, amountMsat: fresh.amountMsat.toString(), maxFeeMsat: fresh.maxFeeMsat.toString(), feeMsat: feeMsat.toString(), backend: fresh.backend };
    const entry = await tx.appendAudit({
      at: now, type: 'lightning.succeeded', actor: 'system', agentId: fresh.agentId, sessionId: fresh.sessionId, action: LIGHTNING_ACTION,
      data: { ...common, evidence: source, preimageVerified: true, ...(finish.feeUnreported ? { feeUnreported: true } : {}), afterFailed: true, ...(fresh.finishedSeq !== undefined ? { failedSeq: fresh.finishedSeq } : {}), failureReason: fresh.failureReason ?? 'unknown', ...(chargedBy ? { chargedBy: chargedBy.id } : {}) },
    });
    const done = await tx.chargeLightningAfterFailure(fresh.id, { preimage: finish.preimage!, feeMsat }, chargedBy ? [] : charges.filter((w) => w.asset !== COUNT_ASSET), now, entry.seq);
    await tx.appendAudit({
      at: now, type: 'alert.lightning', actor: 'system', agentId: fresh.agentId, sessionId: fresh.sessionId,
      data: { reason: 'succeeded_after_failed', ...common, succeededSeq: entry.seq, ...(fresh.finishedSeq !== undefined ? { failedSeq: fresh.finishedSeq } : {}), ...(done.state === 'failed' ? { anotherPaymentActive: true } : {}), ...(chargedBy ? { alreadyCharged: true, chargedBy: chargedBy.id } : {}) },
    });
    if (!chargedBy) await this.alertOnFee(tx, fresh, finish, now);
    return done;
  }

  /**
   * Tells operators when a charged fee is not what the request's limit promised: above it (the backend did not hold
   * the limit), or unknown (the backend did not say; what was charged is at least the default limit, not a figure).
   */
  private async alertOnFee(tx: StoreTx, record: LightningPaymentRecord, finish: Finish, now: number): Promise<void> {
    const feeMsat = finish.feeMsat!;
    if (!finish.feeUnreported && feeMsat <= record.maxFeeMsat) return;
    const reason = finish.feeUnreported ? 'fee_unreported' : 'fee_above_limit';
    await tx.appendAudit({ at: now, type: 'alert.lightning', actor: 'system', agentId: record.agentId, sessionId: record.sessionId, data: { reason, paymentId: record.id, feeMsat: feeMsat.toString(), maxFeeMsat: record.maxFeeMsat.toString(), backend: record.backend } });
  }

  /** The routing fee limit a request without one gets: `defaultFeePercent` of the amount, at least `minDefaultFeeMsat`. */
  private defaultFeeLimit(amountMsat: bigint): bigint {
    const percentPpm = BigInt(Math.round(this.options.defaultFeePercent * 10_000));
    const share = (amountMsat * percentPpm + 999_999n) / 1_000_000n;
    return share > this.options.minDefaultFeeMsat ? share : this.options.minDefaultFeeMsat;
  }

  /** A new request: evaluate, append the decision, then hold (allow) or hold for a human (approval). */
  private async decide(tx: StoreTx, auth: AgentAuth, session: Session, input: EvaluationInput, decoded: DecodedRequest, reqHash: string, idempotencyKey: string | undefined, backend: LightningBackend, request: LightningPayInput, now: number, approvalLifetimeMs?: number) {
    const { intent } = input;
    // Policy, then the detectors (a tripped circuit breaker refuses or holds this payment).
    const { decision, screening } = await this.signing.evaluateScreened(tx, session, input, auth.agent, ledgerWritesFor(input).map((w) => w.series));
    const digest = bytesToHex(decoded.digest);
    const entry = await tx.appendAudit({
      at: now, type: 'sign.request', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action: LIGHTNING_ACTION, decision: decision.decision,
      data: { intent: intentToJson(intent), violations: decision.violations, allowedBy: decision.allowedBy, policyVersion: decision.policyVersion, digest, requestHash: reqHash, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) },
    });
    if (screening) await this.signing.breakers.record(tx, screening, entry.seq, auth.session.id);
    await this.signing.recordShadow(tx, decision, { seq: entry.seq, agentId: auth.agent.id, at: now, action: LIGHTNING_ACTION }, intent.summary);
    let stored: { status: SignOutcome['status']; body: Record<string, unknown> };
    let result: { execute: LightningPaymentRecord; auditSeq: number; allowedBy: string[]; policyVersion: string } | SignOutcome;
    if (decision.decision === 'allow') {
      const record = this.newRecord(input, request.invoice.trim(), backend, entry.seq, request.l402);
      await tx.holdLightningPayment(record, ledgerWritesFor(input));
      stored = { status: 200, body: { decision: 'allow', paymentId: record.id, auditSeq: entry.seq } };
      result = { execute: record, auditSeq: entry.seq, allowedBy: decision.allowedBy, policyVersion: decision.policyVersion };
    } else if (decision.decision === 'require_approval') {
      const lightning = intent.lightning!;
      // Never open past the caller's deadline: approved after its client stopped waiting (and perhaps paid
      // elsewhere), the invoice would be paid twice (found by review). The stores refuse to approve at or after
      // expiresAt, and the expiry pass releases the hold.
      const lifetimeMs = approvalLifetimeMs !== undefined && Number.isFinite(approvalLifetimeMs) ? Math.min(this.deps.approvalTtlMs, Math.max(0, Math.floor(approvalLifetimeMs))) : this.deps.approvalTtlMs;
      const approval: ApprovalRecord = {
        id: this.deps.randomId('apr'),
        agentId: auth.agent.id,
        sessionId: auth.session.id,
        auditSeq: entry.seq,
        action: LIGHTNING_ACTION,
        // What paying later needs: the invoice and the figures it was judged with (no secret: an invoice is public).
        request: { payload: { invoice: request.invoice.trim(), maxFeeMsat: lightning.maxFeeMsat.toString(), network: lightning.network, now, ...(lightning.amountless ? { amountMsat: lightning.amountMsat.toString() } : {}) }, ...(request.l402 ? { l402: request.l402 } : {}) },
        digest,
        summary: { intent: intentToJson(intent), violations: decision.violations, policyVersion: decision.policyVersion },
        state: 'pending',
        createdAt: now,
        expiresAt: now + lifetimeMs,
      };
      // Fixed now: a later policy change does not move the quorum a pending request waits for.
      const quorum = requiredQuorum(decision.violations);
      if (quorum) approval.quorum = quorum;
      await tx.holdForApproval(approval, ledgerWritesFor(input));
      stored = {
        status: 202,
        body: { decision: 'require_approval', approvalId: approval.id, expiresAt: new Date(approval.expiresAt).toISOString(), violations: decision.violations, policyVersion: decision.policyVersion, auditSeq: entry.seq, intent: intentToJson(intent) },
      };
      result = stored;
    } else {
      stored = { status: 403, body: denialBody(decision, entry.seq) };
      result = stored;
    }
    if (idempotencyKey !== undefined) {
      await tx.putIdempotency({ scope: `agent:${auth.agent.id}`, key: idempotencyKey, requestHash: reqHash, digest, auditSeq: entry.seq, response: stored, createdAt: now });
    }
    return result;
  }

  /** The answer about a payment, as the agent (or an operator) sees it. */
  private async describe(p: LightningPaymentRecord, extra: Record<string, unknown>, view: { forAgent: boolean; failureAsError: boolean } = { forAgent: true, failureAsError: true }): Promise<SignOutcome> {
    const { forAgent } = view;
    const base: Record<string, unknown> = {
      decision: 'allow',
      paymentId: p.id,
      status: p.state,
      paymentHash: p.paymentHash,
      amountMsat: p.amountMsat.toString(),
      maxFeeMsat: p.maxFeeMsat.toString(),
      auditSeq: p.auditSeq,
      ...(p.finishedSeq !== undefined ? { finishedSeq: p.finishedSeq } : {}),
      ...extra,
    };
    if (p.state === 'succeeded') {
      const receipt = await receiptForSeq(this.deps.store, await this.requestSeqOf(p));
      Object.assign(base, { feeMsat: p.feeMsat!.toString(), ...(forAgent ? { preimage: p.preimage } : {}), receipt });
      if (p.l402 && forAgent) base.l402 = { authorization: `${p.l402.scheme} ${p.l402.macaroon}:${p.preimage}`, ...(p.l402.expiresAt !== undefined ? { expiresAt: p.l402.expiresAt } : {}) };
      return { status: 200, body: base };
    }
    if (p.state === 'failed') {
      if (!view.failureAsError) return { status: 200, body: { ...base, reason: p.failureReason ?? 'unknown' } };
      throw new AirlockError('lightning_payment_failed', `The payment failed (${p.failureReason ?? 'unknown'}); its hold was released and nothing was paid.`, { details: { paymentId: p.id, reason: p.failureReason ?? 'unknown', auditSeq: p.auditSeq, ...(p.finishedSeq !== undefined ? { finishedSeq: p.finishedSeq } : {}) } });
    }
    return { status: 202, body: base };
  }

  /**
   * The audit entry of the agent's request for this payment, which its receipt proves recorded. A payment an approval
   * granted is recorded under the `approval.granted` entry, an operator's entry the agent gets no receipt of (it names
   * the approvers): its request is the entry that grant names (`requestSeq`, the held `sign.request`). Found by review:
   * the receipt of an approved payment answered the agent 404.
   */
  private async requestSeqOf(p: LightningPaymentRecord): Promise<number> {
    const [entry] = await this.deps.store.readAudit(p.auditSeq, 1);
    const requestSeq = entry?.seq === p.auditSeq && entry.type === 'approval.granted' ? entry.data.requestSeq : undefined;
    return typeof requestSeq === 'number' ? requestSeq : p.auditSeq;
  }

  private newRecord(input: EvaluationInput, invoice: string, backend: LightningBackend, auditSeq: number, l402: L402Context | undefined): LightningPaymentRecord {
    const ln = input.intent.lightning!;
    const now = this.deps.clock.now();
    return {
      id: this.deps.randomId('lnp'),
      agentId: input.agentId,
      sessionId: input.sessionId,
      auditSeq,
      backend: backend.kind,
      network: input.intent.chain,
      paymentHash: ln.paymentHash,
      payee: ln.payee,
      invoice,
      amountMsat: ln.amountMsat,
      maxFeeMsat: ln.maxFeeMsat,
      state: 'in_flight',
      expiresAt: ln.expiresAt,
      timeoutSeconds: this.options.payTimeoutSeconds,
      ...(input.intent.payment?.resource !== undefined ? { resource: input.intent.payment.resource, origin: input.intent.payment.origin! } : {}),
      ...(l402 ? { l402: { scheme: l402.scheme, macaroon: l402.macaroon, ...(l402.expiresAt !== undefined ? { expiresAt: l402.expiresAt } : {}) } } : {}),
      createdAt: now,
      updatedAt: now,
    };
  }

  /** The evaluation input a stored payment was charged with (decoded again from its invoice, as of its creation). */
  private inputOf(p: LightningPaymentRecord): EvaluationInput {
    // The network the payment was made on (its CAIP-2 chain), not the backend's now: a reconfigured network must not
    // make a payment in flight undecodable, its outcome never recorded.
    const network = lightningNetworkOf(p.network) ?? this.requireBackend().network;
    // Decoded as of a moment it was valid: an approved payment may be recorded after its invoice expired (the
    // backend then refuses it, a definite failure), and its outcome must still be chargeable.
    const asOf = Math.min(p.createdAt, p.expiresAt * 1000 - 1);
    const payload: AdapterPayload = { invoice: p.invoice, maxFeeMsat: p.maxFeeMsat, network, now: asOf, ...(this.amountless(p) ? { amountMsat: p.amountMsat } : {}) };
    const decoded = this.adapter().decode(LIGHTNING_ACTION, payload, { address: '' });
    if (p.resource !== undefined) attachResource(decoded.intent, p.resource, p.l402 ? 'l402' : 'lightning');
    return { intent: decoded.intent, agentId: p.agentId, sessionId: p.sessionId, nowMs: p.createdAt };
  }

  private amountless(p: LightningPaymentRecord): boolean {
    // The human-readable part (before bech32's last `1`) carries the amount; without one it is only `ln` + currency.
    const invoice = p.invoice.toLowerCase();
    return /^ln(bc|tb|tbs|bcrt)$/.test(invoice.slice(0, invoice.lastIndexOf('1')));
  }

  private decode(payload: AdapterPayload, auth: Pick<AgentAuth, 'agent'> & { session: Pick<Session, 'id'> }, l402: L402Context | undefined): DecodedRequest {
    const decoded = this.adapter().decode(LIGHTNING_ACTION, payload, { address: auth.agent.address });
    assertRouteHintsAffordable(decoded.intent, this.options.backend);
    if (l402) {
      if (!HEX32.test(l402.macaroonPaymentHash) || l402.macaroonPaymentHash !== decoded.intent.lightning!.paymentHash) {
        throw new AirlockError('l402_payment_hash_mismatch', "The challenge's macaroon names another payment hash than its invoice: paying it would not buy this credential.");
      }
      attachResource(decoded.intent, l402.resource, 'l402');
    }
    return decoded;
  }

  private adapterPayload(input: LightningPayInput, backend: LightningBackend, now: number): AdapterPayload {
    if (typeof input.invoice !== 'string' || input.invoice.length === 0) throw new AirlockError('invalid_request', 'invoice must be a BOLT 11 invoice string.');
    const amountMsat = input.amountMsat === undefined ? undefined : msat(input.amountMsat, 'amountMsat');
    const explicitFee = input.maxFeeMsat === undefined ? undefined : msat(input.maxFeeMsat, 'maxFeeMsat');
    const payload: AdapterPayload = { invoice: input.invoice.trim(), maxFeeMsat: explicitFee ?? 0n, network: backend.network, now, ...(amountMsat !== undefined ? { amountMsat } : {}) };
    if (explicitFee === undefined) {
      // The default limit is a share of the amount, which only decoding tells: decode once for it.
      payload.maxFeeMsat = this.defaultFeeLimit(this.adapter().decode(LIGHTNING_ACTION, payload, { address: '' }).intent.lightning!.amountMsat);
    }
    return payload;
  }

  private adapter() {
    const adapter = this.deps.adapters.get('lightning');
    if (!adapter) throw new AirlockError('lightning_not_configured', 'No lightning adapter is configured.');
    return adapter;
  }

  private requireBackend(): LightningBackend {
    if (!this.options.backend) throw new AirlockError('lightning_not_configured', 'No Lightning backend is configured (AIRLOCK_LIGHTNING_BACKEND); nothing was paid.');
    return this.options.backend;
  }

  /**
   * Tells an operator about payment `p` (`alert.lightning`), once per distinct alert: its reason and figures (a
   * reported amount, an error code), whichever path saw it (`source` is not part of it). An answer the service cannot
   * accept keeps the hold and the reconciler reads it again every round; the store records each alert raised
   * (recordLightningAlert, in the entry's transaction), so a repeat appends nothing, also after a restart or in
   * another instance on the same store, and `alert.*` webhooks fire once. A changed figure is a new alert.
   */
  private async alert(p: LightningPaymentRecord, data: { reason: string; source?: string } & Record<string, unknown>): Promise<void> {
    const now = this.deps.clock.now();
    const { source: _source, ...figures } = data;
    const key = canonicalJson(figures);
    await this.deps.store.transaction(async (tx) => {
      if (!(await tx.recordLightningAlert(p.id, key, now))) return;
      await tx.appendAudit({ at: now, type: 'alert.lightning', actor: 'system', agentId: p.agentId, sessionId: p.sessionId, data: { paymentId: p.id, paymentHash: p.paymentHash, backend: p.backend, ...data } });
    });
  }
}

function msat(value: string | bigint, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n) throw new AirlockError('invalid_amount', `${name} must not be negative.`);
    return value;
  }
  if (typeof value !== 'string' || !MSAT_PATTERN.test(value)) throw new AirlockError('invalid_amount', `${name} must be a decimal string of millisatoshis.`);
  return BigInt(value);
}

/**
 * On a backend that holds no fee limit (NWC: `pay_invoice` has no such parameter), refuses an invoice with a route
 * hint that costs more than the fee limit held for the payment, before anything is held or paid. The payee writes
 * the hints (a hostile L402 server: a hop with a base fee of 4,294,967,295 msat), and such a wallet routes through
 * any of them and reports the fee after the fact, past the budget and the policy that judged `maxFeeMsat` (found by
 * review; a later review found a free decoy hint beside a costly real one passing a check of the cheapest). A
 * backend that holds the limit (LND, `fee_limit_msat`) needs no check: its node never pays more, and a payee with
 * public channels stays payable within the limit though one of its hints costs more. Only `decode` checks it: a
 * payment already recorded is re-decoded (inputOf) for what it was charged, never judged again.
 */
function assertRouteHintsAffordable(intent: Intent, backend: LightningBackend | undefined): void {
  const ln = intent.lightning!;
  if (backend?.enforcesMaxFee !== false || ln.routeHintFeeMsat === undefined || ln.routeHintFeeMsat <= ln.maxFeeMsat) return;
  throw new AirlockError('lightning_route_hint_fee_too_high', `A route hint of the invoice costs more than the routing fee limit (the costliest ${ln.routeHintFeeMsat} msat, the limit ${ln.maxFeeMsat} msat), and this Lightning backend cannot hold a wallet to the limit; nothing was held or paid.`, {
    details: { maxFeeMsat: ln.maxFeeMsat.toString(), routeHintFeeMsat: ln.routeHintFeeMsat.toString() },
    hints: ['Pay it only with a maxFeeMsat that covers every route hint (policy and budgets then judge that limit), or ask the payee for another invoice.'],
  });
}

/** The Lightning network of a CAIP-2 chain id (a payment record's `network`), when it is one. */
function lightningNetworkOf(chain: string): LightningBackend['network'] | undefined {
  const found = (Object.entries(BITCOIN_CHAINS) as [string, string][]).find(([, id]) => id === chain)?.[0];
  return found === 'bitcoin' || found === 'testnet' || found === 'signet' || found === 'regtest' ? found : undefined;
}

/** The L402 resource: the payment rules (resource patterns, per-origin budgets, the loop guard) read it. */
function attachResource(intent: Intent, url: string, protocol: 'l402' | 'lightning'): void {
  const normalised = normaliseResource(url);
  if (!normalised) throw new AirlockError('invalid_request', 'The L402 resource must be an absolute http(s) URL without credentials.');
  intent.payment = { ...intent.payment!, protocol, resource: normalised.resource, origin: normalised.origin };
}

/** The same intent with the routing fee it really cost (what the ledger is charged when it succeeds). */
function withFee(input: EvaluationInput, feeMsat: bigint): EvaluationInput {
  const spends = input.intent.spends.map((s) => (s.kind === 'fee' ? { ...s, amount: feeMsat } : s));
  return { ...input, intent: { ...input.intent, spends } };
}

/**
 * The request hash of a payment's input (its Idempotency-Key's binding): the wallet service keeps a refusal made
 * before `pay` under the same hash, so a later delivery is answered it rather than `idempotency_conflict`.
 */
export function lightningRequestHash(input: LightningPayInput): string {
  return requestHash(LIGHTNING_ACTION, jsonInput(input), canonicalJson);
}

function jsonInput(input: LightningPayInput): unknown {
  return {
    invoice: input.invoice,
    ...(input.amountMsat !== undefined ? { amountMsat: String(input.amountMsat) } : {}),
    ...(input.maxFeeMsat !== undefined ? { maxFeeMsat: String(input.maxFeeMsat) } : {}),
    ...(input.l402 ? { l402: { resource: input.l402.resource, scheme: input.l402.scheme, macaroon: input.l402.macaroon } } : {}),
  };
}

/** A backend's failure word, kept short and plain (it lands in audit entries and answers). */
function sanitiseReason(reason: string): string {
  const clean = String(reason).toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 64);
  return clean.length > 0 ? clean : 'unknown';
}

/**
 * The record that carries the charge of a payment hash, other than `selfId`: one charged at its success
 * (`succeeded`) or after its failure (`failed` with the preimage chargeAfterFailure recorded). Every path into
 * those states charges only when no other record of the hash is in one, so the hash is charged exactly once;
 * with several (a later one recorded uncharged), the earliest finished is named.
 */
function chargerOf(ofHash: LightningPaymentRecord[], selfId: string): LightningPaymentRecord | undefined {
  const charged = ofHash.filter((p) => p.id !== selfId && (p.state === 'succeeded' || (p.state === 'failed' && p.preimage !== undefined)));
  return charged.sort((a, b) => (a.finishedSeq ?? 0) - (b.finishedSeq ?? 0))[0];
}

function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<T>((resolve) => { timer = setTimeout(() => resolve(fallback), ms); timer.unref?.(); })]).finally(() => clearTimeout(timer));
}
