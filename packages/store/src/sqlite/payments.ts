import { AirlockError, type LedgerWrite, type PaymentFilter, type PaymentRecord, type PaymentSummaryRow, type SettledTransfer } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { holdWrites, ledgerOnFinish, paymentFromRow, summarisePayments } from '../shared/rows.ts';
import { clampLimit } from '../shared/values.ts';
import { appendLedger } from './ledger.ts';
import type { SqliteDb } from './sqlite-db.ts';

export function getPayment(db: SqliteDb, id: string): PaymentRecord | undefined {
  const row = db.get('SELECT * FROM payments WHERE id = ?', id);
  return row && paymentFromRow(row);
}

export function getPaymentByNonce(db: SqliteDb, network: string, asset: string, from: string, nonce: string): PaymentRecord | undefined {
  const row = db.get('SELECT * FROM payments WHERE network = ? AND asset = ? AND "from" = ? AND nonce = ?', network, asset.toLowerCase(), from.toLowerCase(), nonce.toLowerCase());
  return row && paymentFromRow(row);
}

export function listPayments(db: SqliteDb, filter: PaymentFilter): PaymentRecord[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.agentId !== undefined) (where.push('agent_id = ?'), params.push(filter.agentId));
  if (filter.state !== undefined) (where.push('state = ?'), params.push(filter.state));
  if (filter.nonce !== undefined) (where.push('nonce = ?'), params.push(filter.nonce.toLowerCase()));
  params.push(clampLimit(filter.limit));
  return db.all(`SELECT * FROM payments ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`, ...params).map(paymentFromRow);
}

export function paymentSummary(db: SqliteDb, filter: { agentId?: string }): PaymentSummaryRow[] {
  const rows = filter.agentId === undefined
    ? db.all('SELECT agent_id, origin, network, asset, state, value, settled_value FROM payments')
    : db.all('SELECT agent_id, origin, network, asset, state, value, settled_value FROM payments WHERE agent_id = ?', filter.agentId);
  return summarisePayments(rows);
}

export function holdPayment(db: SqliteDb, p: PaymentRecord, writes: LedgerWrite[]): void {
  if (p.state !== 'reserved') throw new AirlockError('invalid_request', 'a new payment must be reserved');
  if (getPaymentByNonce(db, p.network, p.asset, p.from, p.nonce)) throw new AirlockError('conflict', 'a payment with this nonce already exists');
  db.run(
    `INSERT INTO payments (id, agent_id, session_id, audit_seq, protocol, x402_version, network, asset, "from", "to", value, nonce,
       valid_after, valid_before, resource, origin, state, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'x402', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?)`,
    p.id, p.agentId, p.sessionId, p.auditSeq, p.x402Version ?? null, p.network, p.asset.toLowerCase(), p.from.toLowerCase(), p.to.toLowerCase(),
    p.value.toString(), p.nonce.toLowerCase(), p.validAfter, p.validBefore, p.resource ?? null, p.origin ?? null, p.createdAt, p.updatedAt,
  );
  for (const w of mergeLedgerWrites(writes)) {
    db.run(`INSERT INTO payment_holds (payment_id, series, asset, amount, count, at, state) VALUES (?, ?, ?, ?, ?, ?, 'held')`, p.id, w.series, w.asset, w.amount.toString(), w.count, p.createdAt);
  }
}

export function finishPayment(db: SqliteDb, id: string, state: 'settled' | 'expired', now: number, auditSeq: number, settlementTx?: string, settled?: SettledTransfer): PaymentRecord {
  const current = getPayment(db, id);
  if (!current) throw new AirlockError('not_found', 'no such payment');
  if (current.state !== 'reserved') throw new AirlockError('conflict', `the payment is already ${current.state}`);
  const holds = holdWrites(db.all("SELECT series, asset, amount, count FROM payment_holds WHERE payment_id = ? AND state = 'held'", id));
  appendLedger(db, ledgerOnFinish(holds, state, current, settled), now, auditSeq);
  db.run("UPDATE payment_holds SET state = ? WHERE payment_id = ? AND state = 'held'", state === 'settled' ? 'converted' : 'released', id);
  db.run(
    'UPDATE payments SET state = ?, settlement_tx = COALESCE(?, settlement_tx), settled_value = ?, settled_to = ?, updated_at = ? WHERE id = ?',
    state, settlementTx ?? null, settled?.value.toString() ?? null, settled?.to.toLowerCase() ?? null, now, id,
  );
  return getPayment(db, id)!;
}

export function reportPaymentSettlement(db: SqliteDb, id: string, txHash: string, now: number): PaymentRecord {
  if (db.run('UPDATE payments SET reported_tx = ?, updated_at = ? WHERE id = ?', txHash, now, id) === 0) throw new AirlockError('not_found', 'no such payment');
  return getPayment(db, id)!;
}

export function reservedPayments(db: SqliteDb, limit: number, after?: { validBefore: number; id: string }): PaymentRecord[] {
  if (after) {
    return db.all(
      "SELECT * FROM payments WHERE state = 'reserved' AND (valid_before > ? OR (valid_before = ? AND id > ?)) ORDER BY valid_before, id LIMIT ?",
      after.validBefore, after.validBefore, after.id, clampLimit(limit),
    ).map(paymentFromRow);
  }
  return db.all("SELECT * FROM payments WHERE state = 'reserved' ORDER BY valid_before, id LIMIT ?", clampLimit(limit)).map(paymentFromRow);
}
