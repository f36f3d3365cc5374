import { AirlockError, type LedgerWrite, type LightningFinish, type LightningPaymentFilter, type LightningPaymentRecord } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { LIGHTNING_COLUMNS, lightningFromRow, lightningInsertValues } from '../shared/lightning-rows.ts';
import { clampLimit } from '../shared/values.ts';
import { appendLedger, lockForWrites, type DeferredAppend } from './ledger.ts';
import { paymentHashLockKey, type TxLocks } from './tx-locks.ts';
import type { Q } from './pg-query.ts';

// Amounts come back as text: `pg` would hand numeric over as strings anyway, and never as JS numbers.
const COLUMNS = LIGHTNING_COLUMNS.map((c) => (c.endsWith('_msat') ? `${c}::text AS ${c}` : c)).join(', ');

export async function getLightningPayment(q: Q, id: string, forUpdate = false): Promise<LightningPaymentRecord | undefined> {
  const [row] = await q(`SELECT ${COLUMNS} FROM lightning_payments WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return row && lightningFromRow(row);
}

export async function activeLightningPayment(q: Q, paymentHash: string): Promise<LightningPaymentRecord | undefined> {
  const [row] = await q(`SELECT ${COLUMNS} FROM lightning_payments WHERE payment_hash = $1 AND state IN ('in_flight', 'succeeded')`, [paymentHash.toLowerCase()]);
  return row && lightningFromRow(row);
}

/**
 * Every payment of this hash, oldest first. `forUpdate`: each row locked (in one order, so two lockers of one hash
 * never deadlock on each other) until the transaction ends: two instances deciding whether a hash is already
 * charged serialize here, and the second reads what the first recorded (READ COMMITTED re-reads a row it waited for).
 */
export async function lightningPaymentsByHash(q: Q, paymentHash: string, forUpdate = false): Promise<LightningPaymentRecord[]> {
  // Locked in the order returned (the sort keys never change): every locker of one hash takes them in one order.
  const rows = await q(`SELECT ${COLUMNS} FROM lightning_payments WHERE payment_hash = $1 ORDER BY created_at, id${forUpdate ? ' FOR UPDATE' : ''}`, [paymentHash.toLowerCase()]);
  return rows.map(lightningFromRow);
}

export async function listLightningPayments(q: Q, filter: LightningPaymentFilter): Promise<LightningPaymentRecord[]> {
  const rows = await q(
    `SELECT ${COLUMNS} FROM lightning_payments WHERE ($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR state = $2) AND ($4::text IS NULL OR payment_hash = $4)
     ORDER BY created_at DESC, id LIMIT $3`,
    [filter.agentId ?? null, filter.state ?? null, clampLimit(filter.limit), filter.paymentHash?.toLowerCase() ?? null],
  );
  return rows.map(lightningFromRow);
}

export async function findL402Token(q: Q, agentId: string, origin: string, nowSeconds: number, resource?: string): Promise<LightningPaymentRecord | undefined> {
  const [row] = await q(
    `SELECT ${COLUMNS} FROM lightning_payments WHERE agent_id = $1 AND origin = $2 AND state = 'succeeded' AND l402_macaroon IS NOT NULL
       AND (l402_expires_at IS NULL OR l402_expires_at > $3) ORDER BY COALESCE(resource = $4::text, false) DESC, created_at DESC, id DESC LIMIT 1`,
    [agentId, origin, nowSeconds, resource ?? null],
  );
  return row && lightningFromRow(row);
}

export async function holdLightningPayment(q: Q, locks: TxLocks, p: LightningPaymentRecord, writes: LedgerWrite[]): Promise<void> {
  if (p.state !== 'in_flight') throw new AirlockError('invalid_request', 'a new Lightning payment must be in flight');
  const merged = mergeLedgerWrites(writes);
  await lockForWrites(locks, merged);
  // The hash's lock, held to COMMIT: a late success being charged meanwhile (chargeLightningAfterFailure) sees this payment.
  await locks.acquire({ keys: [paymentHashLockKey(p.paymentHash)] });
  // The partial UNIQUE index on payment_hash (in flight or succeeded) turns a second payment of one invoice into `conflict`.
  const n = LIGHTNING_COLUMNS.length;
  await q(
    `WITH p AS (
       INSERT INTO lightning_payments (${LIGHTNING_COLUMNS.join(', ')}) VALUES (${LIGHTNING_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id, created_at
     )
     INSERT INTO lightning_holds (payment_id, series, asset, amount, count, at, state)
     SELECT p.id, w.series, w.asset, w.amount, w.count, p.created_at, 'held'
     FROM p, unnest($${n + 1}::text[], $${n + 2}::text[], $${n + 3}::numeric[], $${n + 4}::bigint[]) AS w(series, asset, amount, count)`,
    [...lightningInsertValues(p), merged.map((w) => w.series), merged.map((w) => w.asset), merged.map((w) => w.amount.toString()), merged.map((w) => w.count)],
  );
}

export async function finishLightningPayment(q: Q, locks: TxLocks, id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number, deferTo?: DeferredAppend): Promise<LightningPaymentRecord> {
  const current = await getLightningPayment(q, id, true);
  if (!current) throw new AirlockError('not_found', 'no such Lightning payment');
  if (current.state !== 'in_flight') throw new AirlockError('conflict', `the Lightning payment is already ${current.state}`);
  await q(`UPDATE lightning_holds SET state = $2 WHERE payment_id = $1 AND state = 'held'`, [id, finish.state === 'succeeded' ? 'converted' : 'released']);
  await appendLedger(q, locks, mergeLedgerWrites(charges), now, auditSeq, deferTo);
  await q(
    'UPDATE lightning_payments SET state = $2, fee_msat = $3, preimage = $4, failure_reason = $5, finished_seq = $6, updated_at = $7 WHERE id = $1',
    [id, finish.state, finish.feeMsat?.toString() ?? null, finish.preimage ?? null, finish.failureReason ?? null, auditSeq, now],
  );
  return (await getLightningPayment(q, id))!;
}

export async function chargeLightningAfterFailure(q: Q, locks: TxLocks, id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number, deferTo?: DeferredAppend): Promise<LightningPaymentRecord> {
  // FOR UPDATE: two instances charging the same late success serialize here, and the second sees it charged.
  const current = await getLightningPayment(q, id, true);
  if (!current) throw new AirlockError('not_found', 'no such Lightning payment');
  if (current.state !== 'failed' || current.preimage !== undefined) throw new AirlockError('conflict', `the Lightning payment is ${current.state}${current.preimage !== undefined ? ' and already charged' : ''}`);
  await appendLedger(q, locks, mergeLedgerWrites(charges), now, auditSeq, deferTo);
  // One payment in flight or succeeded per hash (the partial unique index): with another one active, it stays failed,
  // charged. The hash's lock first: a new payment of the hash not committed yet is invisible to the read below, and
  // the UPDATE to `succeeded` then failed on the index once it committed (found by the store contract suite's race):
  // the late success was neither recorded nor charged. Holds take the same lock, so the read sees them.
  await locks.acquire({ keys: [paymentHashLockKey(current.paymentHash)] });
  const other = await activeLightningPayment(q, current.paymentHash);
  await q(
    'UPDATE lightning_payments SET state = $2, fee_msat = $3, preimage = $4, finished_seq = $5, updated_at = $6 WHERE id = $1',
    [id, other ? 'failed' : 'succeeded', finish.feeMsat.toString(), finish.preimage, auditSeq, now],
  );
  return (await getLightningPayment(q, id))!;
}

export async function countInFlightLightningPayments(q: Q, agentId: string): Promise<number> {
  const [row] = await q("SELECT count(*)::int AS n FROM lightning_payments WHERE agent_id = $1 AND state = 'in_flight'", [agentId]);
  return Number(row!.n);
}

export async function inFlightLightningPayments(q: Q, limit: number, after?: { createdAt: number; id: string }): Promise<LightningPaymentRecord[]> {
  const rows = after
    ? await q(`SELECT ${COLUMNS} FROM lightning_payments WHERE state = 'in_flight' AND (created_at, id) > ($2::bigint, $3::text) ORDER BY created_at, id LIMIT $1`, [clampLimit(limit), after.createdAt, after.id])
    : await q(`SELECT ${COLUMNS} FROM lightning_payments WHERE state = 'in_flight' ORDER BY created_at, id LIMIT $1`, [clampLimit(limit)]);
  return rows.map(lightningFromRow);
}

/**
 * StoreTx.recordLightningAlert: true when the alert `key` of the payment was not recorded before. A concurrent
 * insert of the same key (another instance) makes this one wait for its transaction: after its commit nothing is
 * inserted (false), after its rollback this one inserts.
 */
export async function recordLightningAlert(q: Q, paymentId: string, key: string, at: number): Promise<boolean> {
  const [row] = await q(
    `WITH ins AS (
       INSERT INTO lightning_alerts (payment_id, alert_key, at) SELECT id, $2, $3 FROM lightning_payments WHERE id = $1
       ON CONFLICT (payment_id, alert_key) DO NOTHING RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM ins) AS inserted, EXISTS (SELECT 1 FROM lightning_payments WHERE id = $1) AS known`,
    [paymentId, key, at],
  );
  if (!row?.known) throw new AirlockError('not_found', 'no such Lightning payment');
  return row.inserted === true;
}
