import { AirlockError, canonicalJson, seriesFor, type BreakerRecord, type BreakerResetKeptFrozen, type BreakerResetResult, type BreakerState, type BreakerTargets, type DestinationPayers } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { BREAKER_INSERT_COLUMNS, breakerFromRow, breakerInsertValues } from '../shared/breaker-rows.ts';
import { clampLimit, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// Circuit breakers and destination first payers (schema 015; core/service/circuit-breakers.ts).

export function trippedBreakersFor(db: SqliteDb, agentId: string): BreakerRecord[] {
  return db.all(
    "SELECT b.* FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = ? AND b.state = 'tripped' ORDER BY b.tripped_at",
    agentId,
  ).map(breakerFromRow);
}

export function breakerTargets(db: SqliteDb, targets: BreakerTargets): string[] {
  let rows;
  if ('fleet' in targets) rows = db.all("SELECT id FROM agents WHERE status = 'active' ORDER BY id");
  else if ('group' in targets) {
    // An exact key match through json_each: no JSON path to quote.
    rows = db.all(
      "SELECT a.id FROM agents a WHERE a.status = 'active' AND EXISTS (SELECT 1 FROM json_each(a.labels) AS l WHERE l.key = ? AND l.value = ?) ORDER BY a.id",
      targets.group.label, targets.group.value,
    );
  } else {
    if (targets.agents.length === 0) return [];
    rows = db.all(`SELECT id FROM agents WHERE status = 'active' AND id IN (${targets.agents.map(() => '?').join(', ')}) ORDER BY id`, ...targets.agents);
  }
  return rows.map((r) => String(r.id));
}

export function tripBreaker(db: SqliteDb, record: BreakerRecord, freeze: boolean, now: number): void {
  const values = breakerInsertValues(record, canonicalJson) as SQLInputValue[];
  db.run(`INSERT INTO breakers (${BREAKER_INSERT_COLUMNS}) VALUES (${values.map(() => '?').join(', ')})`, ...values);
  for (const agentId of record.agents) {
    db.run('INSERT INTO breaker_agents (agent_id, breaker_id) VALUES (?, ?)', agentId, record.id);
    if (freeze) db.run("UPDATE agents SET status = 'frozen', updated_at = ? WHERE id = ? AND status = 'active'", now, agentId);
  }
}

export function getBreaker(db: SqliteDb, id: string): BreakerRecord | undefined {
  const row = db.get('SELECT * FROM breakers WHERE id = ?', id);
  return row ? breakerFromRow(row) : undefined;
}

export function listBreakers(db: SqliteDb, filter: { state?: BreakerState; limit?: number }): BreakerRecord[] {
  return db.all('SELECT * FROM breakers WHERE (?1 IS NULL OR state = ?1) ORDER BY tripped_at DESC, id DESC LIMIT ?2', filter.state ?? null, clampLimit(filter.limit)).map(breakerFromRow);
}

export function resetBreaker(db: SqliteDb, id: string, by: string, now: number, auditSeq: number): BreakerResetResult {
  const row = db.get("UPDATE breakers SET state = 'reset', reset_at = ?, reset_by = ?, reset_seq = ? WHERE id = ? AND state = 'tripped' RETURNING *", now, by, auditSeq, id);
  if (!row) {
    if (getBreaker(db, id)) throw new AirlockError('breaker_not_tripped', `Breaker ${id} was already reset.`);
    throw new AirlockError('not_found', 'No such breaker.');
  }
  const breaker = breakerFromRow(row);
  db.run('DELETE FROM breaker_agents WHERE breaker_id = ?', id);
  const unfrozen: string[] = [];
  const keptFrozen: BreakerResetKeptFrozen[] = [];
  if (breaker.action === 'freeze') {
    for (const agentId of [...new Set(breaker.agents)].sort()) {
      const agent = db.get('SELECT status, operator_frozen FROM agents WHERE id = ?', agentId);
      if (agent?.status !== 'frozen') continue;
      // Still frozen: unfrozen only if its sole reason was freeze breakers, neither the operator's own freeze
      // (operator_frozen, schema 026) nor another tripped freeze breaker holds it.
      const breakers = db.all(
        "SELECT b.id FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = ? AND b.state = 'tripped' AND b.action = 'freeze' ORDER BY b.tripped_at, b.id",
        agentId,
      ).map((r) => String(r.id));
      const operatorFreeze = toInt(agent.operator_frozen) === 1;
      if (operatorFreeze || breakers.length > 0) {
        keptFrozen.push({ agentId, operatorFreeze, breakers });
        continue;
      }
      const changed = db.get("UPDATE agents SET status = 'active', updated_at = ? WHERE id = ? AND status = 'frozen' AND operator_frozen = 0 RETURNING id", now, agentId);
      if (changed) unfrozen.push(agentId);
    }
  }
  return { breaker, unfrozen, keptFrozen };
}

/**
 * Paid before its payers were recorded: a ledger entry on the destination's fleet series older than its earliest
 * recorded payer (any entry, where none is recorded). By time, not by count: replays, granted approvals and a batch's
 * further calls charge the series without recording a payer, always after the screening that recorded one.
 */
const PAID_BEFORE_RECORDED = `SELECT EXISTS (
  SELECT 1 FROM ledger WHERE series = ?1 AND at < coalesce((SELECT min(first_at) FROM destination_payers WHERE destination = ?2), 9223372036854775807)
) AS x`;

/** A ledger entry on the series older than `?2` (DestinationPayers.paidBeforeWindow): holds are not read. */
const PAID_BEFORE_WINDOW = 'SELECT EXISTS (SELECT 1 FROM ledger WHERE series = ?1 AND at < ?2) AS x';

export function destinationPayers(db: SqliteDb, destinations: readonly string[], sinceMs: number, limit: number): Map<string, DestinationPayers> {
  const out = new Map<string, DestinationPayers>();
  for (const destination of destinations) {
    const series = seriesFor.withDestination(seriesFor.fleet(), destination);
    const agents = db.all('SELECT agent_id FROM destination_payers WHERE destination = ? AND first_at >= ? ORDER BY first_at LIMIT ?', destination, sinceMs, limit).map((r) => String(r.agent_id));
    const paidBeforeRecorded = toInt(db.get(PAID_BEFORE_RECORDED, series, destination)?.x ?? 0) === 1;
    const paidBeforeWindow = toInt(db.get(PAID_BEFORE_WINDOW, series, sinceMs)?.x ?? 0) === 1;
    out.set(destination, { agents, paidBeforeRecorded, paidBeforeWindow });
  }
  return out;
}

export function recordDestinationPayers(db: SqliteDb, agentId: string, destinations: readonly string[], at: number, auditSeq: number): void {
  for (const destination of destinations) {
    db.run(
      'INSERT INTO destination_payers (destination, agent_id, first_at, audit_seq, payments) VALUES (?, ?, ?, ?, 1) ON CONFLICT (destination, agent_id) DO UPDATE SET payments = payments + 1',
      destination, agentId, at, auditSeq,
    );
  }
}
