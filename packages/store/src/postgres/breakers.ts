import { AirlockError, canonicalJson, seriesFor, type BreakerRecord, type BreakerResetKeptFrozen, type BreakerResetResult, type BreakerState, type BreakerTargets, type DestinationPayers } from '@airlock/core';
import { BREAKER_INSERT_COLUMNS, breakerFromRow, breakerInsertValues } from '../shared/breaker-rows.ts';
import { clampLimit } from '../shared/values.ts';
import type { Q } from './pg-query.ts';
import { FLEET_SLOTS, fleetShard } from './tx-locks.ts';

// Circuit breakers and destination first payers (schema 016; core/service/circuit-breakers.ts). Agent rows are
// frozen and unfrozen here inside batch transactions: rows are locked in id order, so two trips never deadlock.

export async function trippedBreakersFor(q: Q, agentId: string): Promise<BreakerRecord[]> {
  const rows = await q(
    "SELECT b.* FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = $1 AND b.state = 'tripped' ORDER BY b.tripped_at",
    [agentId],
  );
  return rows.map(breakerFromRow);
}

export async function breakerTargets(q: Q, targets: BreakerTargets): Promise<string[]> {
  let rows;
  if ('fleet' in targets) rows = await q("SELECT id FROM agents WHERE status = 'active' ORDER BY id");
  else if ('group' in targets) rows = await q("SELECT id FROM agents WHERE status = 'active' AND labels ->> $1 = $2 ORDER BY id", [targets.group.label, targets.group.value]);
  else {
    if (targets.agents.length === 0) return [];
    rows = await q("SELECT id FROM agents WHERE status = 'active' AND id = ANY($1::text[]) ORDER BY id", [[...targets.agents]]);
  }
  return rows.map((r) => String(r.id));
}

export async function tripBreaker(q: Q, record: BreakerRecord, freeze: boolean, now: number): Promise<void> {
  const values = breakerInsertValues(record, canonicalJson);
  await q(`INSERT INTO breakers (${BREAKER_INSERT_COLUMNS}) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  await q('INSERT INTO breaker_agents (agent_id, breaker_id) SELECT a, $2 FROM unnest($1::text[]) AS a', [record.agents, record.id]);
  if (freeze) {
    await q(
      `UPDATE agents SET status = 'frozen', updated_at = $2
       WHERE id IN (SELECT id FROM agents WHERE id = ANY($1::text[]) AND status = 'active' ORDER BY id FOR UPDATE)`,
      [record.agents, now],
    );
  }
}

export async function getBreaker(q: Q, id: string): Promise<BreakerRecord | undefined> {
  const [row] = await q('SELECT * FROM breakers WHERE id = $1', [id]);
  return row ? breakerFromRow(row) : undefined;
}

export async function listBreakers(q: Q, filter: { state?: BreakerState; limit?: number }): Promise<BreakerRecord[]> {
  const rows = await q('SELECT * FROM breakers WHERE ($1::text IS NULL OR state = $1) ORDER BY tripped_at DESC, id DESC LIMIT $2', [filter.state ?? null, clampLimit(filter.limit)]);
  return rows.map(breakerFromRow);
}

export async function resetBreaker(q: Q, id: string, by: string, now: number, auditSeq: number): Promise<BreakerResetResult> {
  // The row lock of this UPDATE decides between two operators resetting at once.
  const [row] = await q("UPDATE breakers SET state = 'reset', reset_at = $2, reset_by = $3, reset_seq = $4 WHERE id = $1 AND state = 'tripped' RETURNING *", [id, now, by, auditSeq]);
  if (!row) {
    if (await getBreaker(q, id)) throw new AirlockError('breaker_not_tripped', `Breaker ${id} was already reset.`);
    throw new AirlockError('not_found', 'No such breaker.');
  }
  const breaker = breakerFromRow(row);
  await q('DELETE FROM breaker_agents WHERE breaker_id = $1', [id]);
  if (breaker.action !== 'freeze' || breaker.agents.length === 0) return { breaker, unfrozen: [], keptFrozen: [] };
  // Its agents still frozen, locked in id order (as a trip locks them), with why each is frozen: the operator's own
  // freeze (operator_frozen, schema 027) and the other tripped freeze breakers holding it. Unfrozen only where
  // neither holds it.
  const frozen = await q(
    `SELECT a.id, a.operator_frozen,
       ARRAY(SELECT b.id FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id
             WHERE ba.agent_id = a.id AND b.state = 'tripped' AND b.action = 'freeze' ORDER BY b.tripped_at, b.id) AS breakers
     FROM agents a WHERE a.id = ANY($1::text[]) AND a.status = 'frozen'
     ORDER BY a.id FOR UPDATE OF a`,
    [breaker.agents],
  );
  const keptFrozen: BreakerResetKeptFrozen[] = [];
  const release: string[] = [];
  for (const r of frozen) {
    const agentId = String(r.id);
    const operatorFreeze = r.operator_frozen === true;
    const breakers = ((r.breakers as string[] | null) ?? []).map(String);
    if (operatorFreeze || breakers.length > 0) keptFrozen.push({ agentId, operatorFreeze, breakers });
    else release.push(agentId);
  }
  const unfrozen = release.length === 0 ? [] : await q(
    "UPDATE agents SET status = 'active', updated_at = $2 WHERE id = ANY($1::text[]) AND status = 'frozen' AND NOT operator_frozen RETURNING id",
    [release, now],
  );
  keptFrozen.sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  return { breaker, unfrozen: unfrozen.map((r) => String(r.id)).sort(), keptFrozen };
}

/**
 * `paid_before_window`: a ledger entry on those series older than the window (`$2`), holds not read.
 * `paid_before`: a ledger entry on the destination's fleet series (any of its physical series: the stripes and the
 * unstriped rows written before them, tx-locks.ts) older than its earliest recorded payer (any entry, where none is
 * recorded). By time, not by count: replays, granted approvals and a batch's further calls charge the series
 * without recording a payer, always after the screening that recorded one.
 */
export async function destinationPayers(q: Q, destinations: readonly string[], sinceMs: number, limit: number): Promise<Map<string, DestinationPayers>> {
  const out = new Map<string, DestinationPayers>(destinations.map((d) => [d, { agents: [], paidBeforeRecorded: false, paidBeforeWindow: false }]));
  if (destinations.length === 0) return out;
  const physical: string[] = [];
  const ordinals: number[] = [];
  destinations.forEach((d, i) => {
    const series = seriesFor.withDestination(seriesFor.fleet(), d);
    for (const s of [series, ...Array.from({ length: FLEET_SLOTS }, (_, slot) => fleetShard(series, slot))]) {
      physical.push(s);
      ordinals.push(i + 1);
    }
  });
  const rows = await q(
    `SELECT u.d AS destination, p.agents,
       EXISTS (SELECT 1 FROM unnest($4::text[], $5::bigint[]) AS ps(series, ord)
               WHERE ps.ord = u.ord AND EXISTS (SELECT 1 FROM ledger l WHERE l.series = ps.series AND l.at < f.first_at)) AS paid_before,
       EXISTS (SELECT 1 FROM unnest($4::text[], $5::bigint[]) AS ps(series, ord)
               WHERE ps.ord = u.ord AND EXISTS (SELECT 1 FROM ledger l WHERE l.series = ps.series AND l.at < $2)) AS paid_before_window
     FROM unnest($1::text[]) WITH ORDINALITY AS u(d, ord)
     CROSS JOIN LATERAL (SELECT coalesce(min(first_at), 9223372036854775807) AS first_at FROM destination_payers WHERE destination = u.d) AS f
     CROSS JOIN LATERAL (SELECT array_agg(agent_id) AS agents FROM (SELECT agent_id FROM destination_payers WHERE destination = u.d AND first_at >= $2 ORDER BY first_at LIMIT $3) AS x) AS p`,
    [[...destinations], sinceMs, limit, physical, ordinals],
  );
  for (const r of rows) out.set(String(r.destination), { agents: ((r.agents as string[] | null) ?? []).map(String), paidBeforeRecorded: r.paid_before === true, paidBeforeWindow: r.paid_before_window === true });
  return out;
}

export async function recordDestinationPayers(q: Q, agentId: string, destinations: readonly string[], at: number, auditSeq: number): Promise<void> {
  if (destinations.length === 0) return;
  await q(
    `INSERT INTO destination_payers (destination, agent_id, first_at, audit_seq, payments) SELECT d, $2, $3, $4, 1 FROM unnest($1::text[]) AS d
     ON CONFLICT (destination, agent_id) DO UPDATE SET payments = destination_payers.payments + 1`,
    [[...destinations], agentId, at, auditSeq],
  );
}
