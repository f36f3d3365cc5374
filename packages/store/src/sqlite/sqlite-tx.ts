import type { AuditEntryOrigin, GrantRecord, QuorumRequirement, ThresholdBinding } from '@airlock/core';
import { AirlockError } from '@airlock/core';
import type {
  Agent, AgentStatus, ApprovalRecord, AuditEntry, AuditEntryInput, IdempotencyRecord, LedgerWrite, LightningFinish, LightningPaymentRecord, NonceClaim, PaymentRecord, PolicyRecord, Session, StoreTx, ChildSessionCounts,
  SettledTransfer, WindowQuery, WindowTotal, BreakerRecord, BreakerResetResult, BreakerTargets, DestinationPayers, ShadowOutcome, ShadowOutcomeCounts, ShadowPolicyRecord, WebhookEndpoint,
  ApprovalVote, Approver, ApproverStatus, LifecycleFinish, LifecycleJob, LifecycleSignature, AgentKey, ApprovalState, DeriveAgentAddress,
} from '@airlock/core';
import * as agentKeys from './agent-keys.ts';
import * as approvals from './approvals.ts';
import * as breakers from './breakers.ts';
import * as grants from './grants.ts';
import * as payments from './payments.ts';
import * as lightning from './lightning.ts';
import * as audit from './audit.ts';
import * as ledger from './ledger.ts';
import * as lifecycle from './lifecycle.ts';
import * as nonces from './nonces.ts';
import * as records from './records.ts';
import * as shadow from './shadow.ts';
import * as webhooks from './webhooks.ts';
import * as thresholdBindings from './threshold-bindings.ts';
import type { SqliteDb } from './sqlite-db.ts';
import { requireExclusive } from '../shared/exclusive-writes.ts';

/** The handle `SqliteStore.transaction` passes to its callback; dead once the transaction ends. */
export class SqliteStoreTx implements StoreTx {
  private readonly db: SqliteDb;
  private open = true;
  /** Whether this is a transaction run `exclusive` (shared-module requireExclusive). */
  private exclusive = false;

  constructor(db: SqliteDb) {
    this.db = db;
  }

  /** Marks the handle of a transaction run `{ exclusive: true }`: it may make the writes of ExclusiveWrite. */
  markExclusive(): this {
    this.exclusive = true;
    return this;
  }

  end(): void {
    this.open = false;
  }

  private live(): SqliteDb {
    if (!this.open) throw new AirlockError('internal', 'a StoreTx was used after its transaction ended');
    return this.db;
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    return records.getAgentById(this.live(), id);
  }
  async getSession(id: string): Promise<Session | undefined> {
    return records.getSession(this.live(), id);
  }
  async liveSessionsOf(agentId: string, now: number): Promise<Session[]> {
    return records.listSessions(this.live(), { agentId, now });
  }
  async auditEntryOrigin(seq: number): Promise<AuditEntryOrigin | undefined> {
    return audit.auditEntryOrigin(this.live(), seq);
  }
  async getPolicy(scope: string): Promise<PolicyRecord | undefined> {
    return records.getPolicy(this.live(), scope);
  }
  async setAgentStatus(id: string, status: AgentStatus, now: number): Promise<Agent> {
    requireExclusive(this.exclusive, 'setAgentStatus');
    return records.setAgentStatus(this.live(), id, status, now);
  }
  async listAgentKeys(agentId: string): Promise<AgentKey[]> {
    return agentKeys.listAgentKeys(this.live(), agentId);
  }
  async findAgentKey(address: string): Promise<AgentKey | undefined> {
    return agentKeys.findAgentKey(this.live(), address);
  }
  async rotateAgentKey(agentId: string, deriveAddress: DeriveAgentAddress, now: number): Promise<{ agent: Agent; previous: AgentKey; current: AgentKey }> {
    requireExclusive(this.exclusive, 'rotateAgentKey');
    return agentKeys.rotateAgentKey(this.live(), agentId, deriveAddress, now);
  }
  async retireAgentKey(agentId: string, keyIndex: number, now: number): Promise<AgentKey> {
    return agentKeys.retireAgentKey(this.live(), agentId, keyIndex, now);
  }
  async listApprovals(filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]> {
    return approvals.listApprovals(this.live(), filter);
  }
  async putPolicy(record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord> {
    requireExclusive(this.exclusive, 'putPolicy');
    return records.putPolicy(this.live(), record);
  }
  async createSession(session: Session): Promise<void> {
    await records.createSession(this.live(), session);
  }
  async revokeSession(id: string, now: number): Promise<Session> {
    requireExclusive(this.exclusive, 'revokeSession');
    return records.revokeSession(this.live(), id, now);
  }
  async listShadowPolicies(): Promise<ShadowPolicyRecord[]> {
    return shadow.listShadowPolicies(this.live());
  }
  async putShadowPolicy(record: ShadowPolicyRecord): Promise<void> {
    shadow.putShadowPolicy(this.live(), record);
  }
  async deleteShadowPolicy(scope: string): Promise<ShadowPolicyRecord | undefined> {
    return shadow.deleteShadowPolicy(this.live(), scope);
  }
  async shadowOutcomeCounts(shadowId: string): Promise<ShadowOutcomeCounts> {
    return shadow.shadowOutcomeCounts(this.live(), shadowId);
  }
  async appendShadowOutcomes(outcomes: readonly ShadowOutcome[]): Promise<void> {
    shadow.appendShadowOutcomes(this.live(), outcomes);
  }
  async sessionDescendants(id: string): Promise<Session[]> {
    return records.sessionDescendants(this.live(), id);
  }
  async childSessionCounts(parentId: string, now: number): Promise<ChildSessionCounts> {
    return records.childSessionCounts(this.live(), parentId, now);
  }
  async sessionTreeDerivations(rootId: string, atMost: number): Promise<number> {
    return records.sessionTreeDerivations(this.live(), rootId, atMost);
  }
  async getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined> {
    return records.getIdempotency(this.live(), scope, key);
  }
  async putIdempotency(record: IdempotencyRecord): Promise<void> {
    records.putIdempotency(this.live(), record);
  }
  async getNonceClaims(keys: readonly string[]): Promise<NonceClaim[]> {
    return nonces.getNonceClaims(this.live(), keys);
  }
  async claimNonces(claims: readonly NonceClaim[]): Promise<void> {
    nonces.claimNonces(this.live(), claims);
  }
  async releaseNonceClaims(keys: readonly string[]): Promise<void> {
    nonces.releaseNonceClaims(this.live(), keys);
  }
  async windowTotals(queries: WindowQuery[]): Promise<WindowTotal[]> {
    return ledger.windowTotals(this.live(), queries);
  }
  async appendLedger(writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
    ledger.appendLedger(this.live(), writes, at, auditSeq);
  }
  async holdForApproval(approval: ApprovalRecord, writes: LedgerWrite[]): Promise<void> {
    approvals.holdForApproval(this.live(), approval, writes);
  }
  async approvalHolds(approvalId: string): Promise<LedgerWrite[]> {
    return approvals.approvalHolds(this.live(), approvalId);
  }
  /** `lock` needs nothing here: BEGIN IMMEDIATE already made this the only writer. */
  async getApproval(id: string, _options?: { lock?: boolean }): Promise<ApprovalRecord | undefined> {
    return approvals.getApproval(this.live(), id);
  }
  async decideApproval(id: string, state: 'approved' | 'denied' | 'expired', by: string, now: number, auditSeq: number, options: { convertHolds?: boolean } = {}): Promise<ApprovalRecord> {
    return approvals.decideApproval(this.live(), id, state, by, now, auditSeq, options.convertHolds ?? true);
  }
  async setApprovalResult(id: string, result: unknown): Promise<void> {
    approvals.setApprovalResult(this.live(), id, result);
  }
  async overdueApprovals(now: number, limit: number): Promise<ApprovalRecord[]> {
    return approvals.overdueApprovals(this.live(), now, limit);
  }
  async raiseApprovalQuorum(id: string, quorum: QuorumRequirement[]): Promise<ApprovalRecord> {
    return approvals.raiseApprovalQuorum(this.live(), id, quorum);
  }
  async recordApprovalVote(vote: ApprovalVote): Promise<void> {
    approvals.recordApprovalVote(this.live(), vote);
  }
  async getApprover(idOrName: string): Promise<Approver | undefined> {
    return approvals.getApprover(this.live(), idOrName);
  }
  async createApprover(approver: Approver): Promise<void> {
    approvals.createApprover(this.live(), approver);
  }
  async setApproverStatus(id: string, status: ApproverStatus, now: number): Promise<Approver> {
    requireExclusive(this.exclusive, 'setApproverStatus');
    return approvals.setApproverStatus(this.live(), id, status, now);
  }
  async holdPayment(payment: PaymentRecord, writes: LedgerWrite[]): Promise<void> {
    payments.holdPayment(this.live(), payment, writes);
  }
  async getPayment(id: string): Promise<PaymentRecord | undefined> {
    return payments.getPayment(this.live(), id);
  }
  async getPaymentByNonce(network: string, asset: string, from: string, nonce: string): Promise<PaymentRecord | undefined> {
    return payments.getPaymentByNonce(this.live(), network, asset, from, nonce);
  }
  async finishPayment(id: string, state: 'settled' | 'expired', now: number, auditSeq: number, settlementTx?: string, settled?: SettledTransfer): Promise<PaymentRecord> {
    return payments.finishPayment(this.live(), id, state, now, auditSeq, settlementTx, settled);
  }
  async reportPaymentSettlement(id: string, txHash: string, now: number): Promise<PaymentRecord> {
    return payments.reportPaymentSettlement(this.live(), id, txHash, now);
  }
  async holdLightningPayment(payment: LightningPaymentRecord, writes: LedgerWrite[]): Promise<void> {
    lightning.holdLightningPayment(this.live(), payment, writes);
  }
  async getLightningPayment(id: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.getLightningPayment(this.live(), id);
  }
  async activeLightningPayment(paymentHash: string): Promise<LightningPaymentRecord | undefined> {
    return lightning.activeLightningPayment(this.live(), paymentHash);
  }
  async lightningPaymentsByHash(paymentHash: string, _opts?: { forUpdate?: boolean }): Promise<LightningPaymentRecord[]> {
    return lightning.lightningPaymentsByHash(this.live(), paymentHash);
  }
  async finishLightningPayment(id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord> {
    return lightning.finishLightningPayment(this.live(), id, finish, charges, now, auditSeq);
  }
  async chargeLightningAfterFailure(id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number): Promise<LightningPaymentRecord> {
    return lightning.chargeLightningAfterFailure(this.live(), id, finish, charges, now, auditSeq);
  }
  async countInFlightLightningPayments(agentId: string): Promise<number> {
    return lightning.countInFlightLightningPayments(this.live(), agentId);
  }
  async inFlightLightningPayments(limit: number, after?: { createdAt: number; id: string }): Promise<LightningPaymentRecord[]> {
    return lightning.inFlightLightningPayments(this.live(), limit, after);
  }
  async recordLightningAlert(paymentId: string, key: string, at: number): Promise<boolean> {
    return lightning.recordLightningAlert(this.live(), paymentId, key, at);
  }
  async reservedPayments(limit: number, after?: { validBefore: number; id: string }): Promise<PaymentRecord[]> {
    return payments.reservedPayments(this.live(), limit, after);
  }
  // One writer: a detector's figures are as exact as a budget's.
  async detectorTotals(queries: WindowQuery[]): Promise<WindowTotal[]> {
    return ledger.detectorTotals(this.live(), queries);
  }
  async destinationPayers(destinations: readonly string[], sinceMs: number, limit: number): Promise<Map<string, DestinationPayers>> {
    return breakers.destinationPayers(this.live(), destinations, sinceMs, limit);
  }
  async recordGrants(list: readonly GrantRecord[]): Promise<void> {
    grants.recordGrants(this.live(), list);
  }
  async getThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return thresholdBindings.getThresholdBinding(this.live(), agentId, namespace);
  }
  async putThresholdBinding(binding: ThresholdBinding): Promise<void> {
    thresholdBindings.putThresholdBinding(this.live(), binding);
  }
  async deleteThresholdBinding(agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
    return thresholdBindings.deleteThresholdBinding(this.live(), agentId, namespace);
  }
  async recordDestinationPayers(agentId: string, destinations: readonly string[], at: number, auditSeq: number): Promise<void> {
    breakers.recordDestinationPayers(this.live(), agentId, destinations, at, auditSeq);
  }
  async trippedBreakersFor(agentId: string): Promise<BreakerRecord[]> {
    return breakers.trippedBreakersFor(this.live(), agentId);
  }
  async breakerTargets(targets: BreakerTargets): Promise<string[]> {
    return breakers.breakerTargets(this.live(), targets);
  }
  async tripBreaker(record: BreakerRecord, options: { freeze: boolean; now: number }): Promise<void> {
    breakers.tripBreaker(this.live(), record, options.freeze, options.now);
  }
  async getBreaker(id: string): Promise<BreakerRecord | undefined> {
    return breakers.getBreaker(this.live(), id);
  }
  async resetBreaker(id: string, by: string, now: number, auditSeq: number): Promise<BreakerResetResult> {
    return breakers.resetBreaker(this.live(), id, by, now, auditSeq);
  }
  async compareAndSetMeta(key: string, expected: string, value: string): Promise<boolean> {
    return records.compareAndSetMeta(this.live(), key, expected, value);
  }
  async appendAudit(entry: AuditEntryInput): Promise<AuditEntry> {
    return audit.appendAudit(this.live(), entry);
  }
  async createWebhookEndpoint(endpoint: Omit<WebhookEndpoint, 'cursor'>): Promise<WebhookEndpoint> {
    return webhooks.createWebhookEndpoint(this.live(), endpoint);
  }
  async getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined> {
    return webhooks.getWebhookEndpoint(this.live(), id);
  }
  async rotateWebhookSecret(id: string, now: number): Promise<WebhookEndpoint> {
    return webhooks.rotateWebhookSecret(this.live(), id, now);
  }
  async removeWebhookEndpoint(id: string, now: number): Promise<WebhookEndpoint> {
    return webhooks.removeWebhookEndpoint(this.live(), id, now);
  }
  async insertLifecycleJob(job: LifecycleJob): Promise<void> {
    lifecycle.insertLifecycleJob(this.live(), job);
  }
  async getLifecycleJob(id: string): Promise<LifecycleJob | undefined> {
    return lifecycle.getLifecycleJob(this.live(), id);
  }
  async openLifecycleJobs(agentId: string): Promise<LifecycleJob[]> {
    return lifecycle.openLifecycleJobs(this.live(), agentId);
  }
  async recordLifecycleSignature(id: string, signature: LifecycleSignature, now: number): Promise<LifecycleJob | undefined> {
    return lifecycle.recordLifecycleSignature(this.live(), id, signature, now);
  }
  async finishLifecycleJob(id: string, finish: LifecycleFinish, now: number, auditSeq: number): Promise<LifecycleJob> {
    return lifecycle.finishLifecycleJob(this.live(), id, finish, now, auditSeq);
  }
}
