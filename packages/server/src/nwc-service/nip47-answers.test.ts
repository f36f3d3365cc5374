// The NIP-47 answers for Airlock's outcomes (the table in nip47-answers.ts), row by row, and read back by
// Airlock's own NWC client (lightning/nwc-outcomes.ts): a wallet service and a client of the same house must
// agree on what is final and what needs a lookup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, type ApprovalRecord, type LightningPaymentRecord, type Violation } from '@airlock/core';
import { judgePayReply } from '../lightning/nwc-outcomes.ts';
import { Nip47Refusal, payInvoiceResult, refusalFor, transactionOf, transactionOfApproval } from './nip47-answers.ts';

const budget: Violation = { rule: 'agent/daily', code: 'budget_exceeded', message: 'over', limit: '100', used: '90', requested: '20' };
const rate: Violation = { rule: 'fleet/burst', code: 'rate_limit_exceeded', message: 'too often' };
const payee: Violation = { rule: 'agent/only-shops', code: 'destination_not_allowed', message: 'not a shop' };
const denied = (violations: Violation[]) => ({ status: 403 as const, body: { decision: 'deny', error: { code: 'policy_denied', message: `Denied by ${violations[0]!.rule}: ${violations[0]!.message}`, violations } } });
const refusalOf = (f: () => unknown): Nip47Refusal => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Nip47Refusal, String(e));
    return e;
  }
  assert.fail('expected a refusal');
};

test('a policy denial is QUOTA_EXCEEDED only when budgets and rate limits alone stand in the way; the message names every rule', () => {
  const quota = refusalOf(() => payInvoiceResult(denied([budget, rate])));
  assert.equal(quota.code, 'QUOTA_EXCEEDED');
  assert.equal(quota.message, 'policy_denied: Denied by agent/daily: over [agent/daily: budget_exceeded; fleet/burst: rate_limit_exceeded]');
  const restricted = refusalOf(() => payInvoiceResult(denied([budget, payee])));
  assert.equal(restricted.code, 'RESTRICTED', 'waiting for the budget would not help');
  assert.match(restricted.message, /\[agent\/daily: budget_exceeded; agent\/only-shops: destination_not_allowed\]$/);
  assert.equal(refusalFor(new AirlockError('policy_denied', 'Denied.', { violations: [rate] })).code, 'QUOTA_EXCEEDED');
});

test('paid: the preimage and the fee as a JSON number; approval and in flight are OTHER with their own code, failure PAYMENT_FAILED', () => {
  assert.deepEqual(payInvoiceResult({ status: 200, body: { status: 'succeeded', preimage: 'ab'.repeat(32), feeMsat: '60' } }), { preimage: 'ab'.repeat(32), fees_paid: 60 });
  const held = refusalOf(() => payInvoiceResult({ status: 202, body: { decision: 'require_approval', approvalId: 'apr_1' } }));
  assert.deepEqual([held.code, held.message.split(':')[0]], ['OTHER', 'approval_required']);
  const flying = refusalOf(() => payInvoiceResult({ status: 202, body: { decision: 'allow', status: 'in_flight', paymentId: 'lnp_1' } }));
  assert.deepEqual([flying.code, flying.message.split(':')[0]], ['OTHER', 'payment_in_flight']);
  const failed = refusalOf(() => payInvoiceResult({ status: 200, body: { status: 'failed', reason: 'no_route' } }));
  assert.equal(failed.code, 'PAYMENT_FAILED');
});

test('errors: dead credentials UNAUTHORIZED, unusable invoices OTHER, a definite failure PAYMENT_FAILED, the rest INTERNAL without details', () => {
  const code = (e: unknown) => refusalFor(e).code;
  for (const c of ['session_revoked', 'session_expired', 'agent_frozen', 'agent_retired'] as const) assert.equal(code(new AirlockError(c)), 'UNAUTHORIZED', c);
  for (const c of ['invoice_expired', 'invoice_malformed', 'invoice_wrong_network', 'invoice_amount_mismatch', 'invalid_amount'] as const) assert.equal(code(new AirlockError(c)), 'OTHER', c);
  assert.equal(code(new AirlockError('lightning_payment_failed')), 'PAYMENT_FAILED');
  assert.equal(code(new AirlockError('lightning_payment_in_flight')), 'RESTRICTED');
  assert.equal(code(new AirlockError('audit_integrity_failed')), 'INTERNAL');
  const bug = refusalFor(new Error('secret stack detail'));
  assert.equal(bug.code, 'INTERNAL');
  assert.ok(!bug.message.includes('secret stack detail'), 'an unexpected error says nothing of itself');
  assert.equal(refusalFor(new AirlockError('session_revoked', 'The session credential was revoked.')).message, 'session_revoked: The session credential was revoked.');
});

test("Airlock's own NWC client reads these answers as meant: refusals final, in flight and approval to be confirmed", () => {
  const hash = 'cd'.repeat(32);
  const reply = (r: Nip47Refusal) => judgePayReply({ resultType: 'pay_invoice', error: { code: r.code, message: r.message } }, hash).kind;
  assert.equal(reply(refusalOf(() => payInvoiceResult(denied([payee])))), 'refused');
  assert.equal(reply(refusalOf(() => payInvoiceResult(denied([budget])))), 'refused');
  assert.equal(reply(refusalFor(new AirlockError('session_revoked'))), 'refused');
  assert.equal(reply(refusalOf(() => payInvoiceResult({ status: 202, body: { status: 'in_flight' } }))), 'confirm', 'in flight is never read as failed');
  assert.equal(reply(refusalOf(() => payInvoiceResult({ status: 202, body: { decision: 'require_approval' } }))), 'confirm');
  assert.equal(reply(refusalFor(new AirlockError('lightning_payment_failed'))), 'confirm', 'then lookup_invoice says failed');
});

const payment = (over: Partial<LightningPaymentRecord>): LightningPaymentRecord => ({
  id: 'lnp_1', agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 5, backend: 'lnd', network: 'bip122:x', paymentHash: 'ef'.repeat(32), payee: '02'.padEnd(66, '1'),
  invoice: 'lnbcrt1…', amountMsat: 50_000n, maxFeeMsat: 1_000n, state: 'in_flight', expiresAt: 1_800_000_000, timeoutSeconds: 60, createdAt: 1_700_000_000_123, updatedAt: 1_700_000_009_999, ...over,
});

test('a payment as a NIP-47 transaction: pending holds no fee and no preimage; settled has both and settled_at', () => {
  const pending = transactionOf(payment({}));
  assert.deepEqual(pending, { type: 'outgoing', state: 'pending', invoice: 'lnbcrt1…', payment_hash: 'ef'.repeat(32), amount: 50_000, fees_paid: 0, created_at: 1_700_000_000, expires_at: 1_800_000_000 });
  const settled = transactionOf(payment({ state: 'succeeded', preimage: '12'.repeat(32), feeMsat: 60n }), 'coffee');
  assert.deepEqual([settled.state, settled.preimage, settled.fees_paid, settled.settled_at, settled.description], ['settled', '12'.repeat(32), 60, 1_700_000_009, 'coffee']);
  assert.equal(transactionOf(payment({ state: 'failed', failureReason: 'no_route' })).state, 'failed');
  assert.throws(() => transactionOf(payment({ amountMsat: 2n ** 60n })), /too large for a JSON number/, 'never a rounded amount');
});

test('an approval request: pending while an operator may approve, failed once denied or expired, nothing once approved', () => {
  const approval = (state: ApprovalRecord['state']): ApprovalRecord => ({
    id: 'apr_1', agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 3, action: 'lightning.pay', digest: 'ef'.repeat(32), state, createdAt: 1_700_000_000_000, expiresAt: 1_700_000_900_000,
    request: { payload: { invoice: 'lnbcrt70u1…', maxFeeMsat: '1000' } },
    summary: { intent: { lightning: { paymentHash: 'ef'.repeat(32), amountMsat: '70000', expiresAt: 1_700_003_600 } } },
  });
  assert.deepEqual(transactionOfApproval(approval('pending')), { type: 'outgoing', state: 'pending', invoice: 'lnbcrt70u1…', payment_hash: 'ef'.repeat(32), amount: 70_000, fees_paid: 0, created_at: 1_700_000_000, expires_at: 1_700_003_600 });
  assert.equal(transactionOfApproval(approval('denied'))?.state, 'failed');
  assert.equal(transactionOfApproval(approval('expired'))?.state, 'failed');
  assert.equal(transactionOfApproval(approval('approved')), undefined);
});

test('a refusal kept under a request\'s key before any decision is answered again with its own code, as it was first', () => {
  const kept = (code: string, message: string) => ({ status: 403 as const, body: { decision: 'deny', error: { code, message }, auditSeq: 7, replayed: true } });
  const frozen = refusalOf(() => payInvoiceResult(kept('agent_frozen', 'The agent is frozen.')));
  assert.deepEqual([frozen.code, frozen.message], ['UNAUTHORIZED', 'agent_frozen: The agent is frozen.']);
  assert.deepEqual(frozen, refusalFor(new AirlockError('agent_frozen', 'The agent is frozen.')), 'the same answer as the first time');
  const overRate = refusalOf(() => payInvoiceResult(kept('rate_limited', 'too many requests')));
  assert.deepEqual([overRate.code, overRate.message], ['RATE_LIMITED', 'rate_limited: too many requests']);
  const unmarked = refusalOf(() => payInvoiceResult({ status: 403, body: { decision: 'deny' } }));
  assert.deepEqual([unmarked.code, unmarked.message], ['RESTRICTED', 'policy_denied: Denied by policy.']);
});
