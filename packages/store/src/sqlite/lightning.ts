import { AirlockError, type LedgerWrite, type LightningFinish, type LightningPaymentFilter, type LightningPaymentRecord } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { LIGHTNING_COLUMNS, lightningFromRow, lightningInsertValues } from '../shared/lightning-rows.ts';
import { clampLimit } from '../shared/values.ts';
import { appendLedger } from './ledger.ts';
import type { SqliteDb } from './sqlite-db.ts';

export function getLightningPayment(db: SqliteDb, id: string): LightningPaymentRecord | undefined {
  const row = db.get('SELECT * FROM lightning_payments WHERE id = ?', id);
  return row && lightningFromRow(row);
}

export function activeLightningPayment(db: SqliteDb, paymentHash: string): LightningPaymentRecord | undefined {
  const row = db.get("SELECT * FROM lightning_payments WHERE payment_hash = ? AND state IN ('in_flight', 'succeeded')", paymentHash.toLowerCase());
  return row && lightningFromRow(row);
}

/** Every payment of this hash, oldest first (SQLite has one writer: the transaction already excludes others). */
export function lightningPaymentsByHash(db: SqliteDb, paymentHash: string): LightningPaymentRecord[] {
  return db.all('SELECT * FROM lightning_payments WHERE payment_hash = ? ORDER BY created_at, id', paymentHash.toLowerCase()).map(lightningFromRow);
}

export function listLightningPayments(db: SqliteDb, filter: LightningPaymentFilter): LightningPaymentRecord[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.agentId !== undefined) (where.push('agent_id = ?'), params.push(filter.agentId));
  if (filter.state !== undefined) (where.push('state = ?'), params.push(filter.state));
  if (filter.paymentHash !== undefined) (where.push('payment_hash = ?'), params.push(filter.paymentHash.toLowerCase()));
  params.push(clampLimit(filter.limit));
  return db.all(`SELECT * FROM lightning_payments ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`, ...params).map(lightningFromRow);
}

export function findL402Token(db: SqliteDb, agentId: string, origin: string, nowSeconds: number, resource?: string): LightningPaymentRecord | undefined {
  const row = db.get(
    `SELECT * FROM lightning_payments WHERE agent_id = ? AND origin = ? AND state = 'succeeded' AND l402_macaroon IS NOT NULL
       AND (l402_expires_at IS NULL OR l402_expires_at > ?) ORDER BY COALESCE(resource = ?, 0) DESC, created_at DESC, id DESC LIMIT 1`,
    agentId, origin, nowSeconds, resource ?? null,
  );
  return row && lightningFromRow(row);
}

export function holdLightningPayment(db: SqliteDb, p: LightningPaymentRecord, writes: LedgerWrite[]): void {
  if (p.state !== 'in_flight') throw new AirlockError('invalid_request', 'a new Lightning payment must be in flight');
  if (activeLightningPayment(db, p.paymentHash)) throw new AirlockError('conflict', 'a payment of this invoice is already in flight or succeeded');
  db.run(`INSERT INTO lightning_payments (${LIGHTNING_COLUMNS.join(', ')}) VALUES (${LIGHTNING_COLUMNS.map(() => '?').join(', ')})`, ...lightningInsertValues(p));
  for (const w of mergeLedgerWrites(writes)) {
    db.run(`INSERT INTO lightning_holds (payment_id, series, asset, amount, count, at, state) VALUES (?, ?, ?, ?, ?, ?, 'held')`, p.id, w.series, w.asset, w.amount.toString(), w.count, p.createdAt);
  }
}

export function finishLightningPayment(db: SqliteDb, id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number): LightningPaymentRecord {
  const current = getLightningPayment(db, id);
  if (!current) throw new AirlockError('not_found', 'no such Lightning payment');
  if (current.state !== 'in_flight') throw new AirlockError('conflict', `the Lightning payment is already ${current.state}`);
  db.run("UPDATE lightning_holds SET state = ? WHERE payment_id = ? AND state = 'held'", finish.state === 'succeeded' ? 'converted' : 'released', id);
  appendLedger(db, mergeLedgerWrites(charges), now, auditSeq);
  db.run(
    'UPDATE lightning_payments SET state = ?, fee_msat = ?, preimage = ?, failure_reason = ?, finished_seq = ?, updated_at = ? WHERE id = ?',
    finish.state, finish.feeMsat?.toString() ?? null, finish.preimage ?? null, finish.failureReason ?? null, auditSeq, now, id,
  );
  return getLightningPayment(db, id)!;
}

export function chargeLightningAfterFailure(db: SqliteDb, id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number): LightningPaymentRecord {
  const current = getLightningPayment(db, id);
  if (!current) throw new AirlockError('not_found', 'no such Lightning payment');
  if (current.state !== 'failed' || current.preimage !== undefined) throw new AirlockError('conflict', `the Lightning payment is ${current.state}${current.preimage !== undefined ? ' and already charged' : ''}`);
  appendLedger(db, mergeLedgerWrites(charges), now, auditSeq);
  // One payment in flight or succeeded per hash (the partial unique index): with another one active, it stays failed, charged.
  const other = activeLightningPayment(db, current.paymentHash);
  db.run(
    'UPDATE lightning_payments SET state = ?, fee_msat = ?, preimage = ?, finished_seq = ?, updated_at = ? WHERE id = ?',
    other ? 'failed' : 'succeeded', finish.feeMsat.toString(), finish.preimage, auditSeq, now, id,
  );
  return getLightningPayment(db, id)!;
}

export function countInFlightLightningPayments(db: SqliteDb, agentId: string): number {
  return Number(db.get("SELECT count(*) AS n FROM lightning_payments WHERE agent_id = ? AND state = 'in_flight'", agentId)!.n);
}

export function inFlightLightningPayments(db: SqliteDb, limit: number, after?: { createdAt: number; id: string }): LightningPaymentRecord[] {
  if (after) {
    return db.all("SELECT * FROM lightning_payments WHERE state = 'in_flight' AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?", after.createdAt, after.createdAt, after.id, clampLimit(limit)).map(lightningFromRow);
  }
  return db.all("SELECT * FROM lightning_payments WHERE state = 'in_flight' ORDER BY created_at, id LIMIT ?", clampLimit(limit)).map(lightningFromRow);
}

/** StoreTx.recordLightningAlert: true when the alert `key` of the payment was not recorded before. */
export function recordLightningAlert(db: SqliteDb, paymentId: string, key: string, at: number): boolean {
  if (!db.get('SELECT 1 AS one FROM lightning_payments WHERE id = ?', paymentId)) throw new AirlockError('not_found', 'no such Lightning payment');
  return db.run('INSERT INTO lightning_alerts (payment_id, alert_key, at) VALUES (?, ?, ?) ON CONFLICT (payment_id, alert_key) DO NOTHING', paymentId, key, at) === 1;
}
