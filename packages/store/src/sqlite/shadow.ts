import { canonicalJson, type ShadowOutcome, type ShadowOutcomeCounts, type ShadowPolicyRecord } from '@airlock/core';
import { OUTCOME_COLUMNS, shadowCountsFromRows, shadowOutcomeFromRow, shadowOutcomeValues, shadowPolicyFromRow } from '../shared/shadow-rows.ts';
import type { SqliteDb } from './sqlite-db.ts';

export function listShadowPolicies(db: SqliteDb): ShadowPolicyRecord[] {
  return db.all('SELECT * FROM shadow_policies ORDER BY scope').map(shadowPolicyFromRow);
}

export function getShadowPolicy(db: SqliteDb, scope: string): ShadowPolicyRecord | undefined {
  const row = db.get('SELECT * FROM shadow_policies WHERE scope = ?', scope);
  return row && shadowPolicyFromRow(row);
}

export function putShadowPolicy(db: SqliteDb, record: ShadowPolicyRecord): void {
  deleteShadowPolicy(db, record.scope);
  db.run(
    'INSERT INTO shadow_policies (scope, id, hash, document, source, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    record.scope, record.id, record.hash, canonicalJson(record.document ?? null), record.source ?? null, record.author, record.createdAt,
  );
}

export function deleteShadowPolicy(db: SqliteDb, scope: string): ShadowPolicyRecord | undefined {
  const row = db.get('DELETE FROM shadow_policies WHERE scope = ? RETURNING *', scope);
  if (!row) return undefined;
  const record = shadowPolicyFromRow(row);
  db.run('DELETE FROM shadow_outcomes WHERE shadow_id = ?', record.id);
  return record;
}

export function shadowOutcomeCounts(db: SqliteDb, shadowId: string): ShadowOutcomeCounts {
  return shadowCountsFromRows(db.all('SELECT kind, count(*) AS n FROM shadow_outcomes WHERE shadow_id = ? GROUP BY kind', shadowId));
}

export function listShadowDifferences(db: SqliteDb, shadowId: string, filter: { afterSeq?: number; limit: number }): ShadowOutcome[] {
  return db
    .all("SELECT * FROM shadow_outcomes WHERE shadow_id = ? AND audit_seq > ? AND kind <> 'same' ORDER BY audit_seq LIMIT ?", shadowId, filter.afterSeq ?? 0, filter.limit)
    .map(shadowOutcomeFromRow);
}

// The candidate must still be staged (another instance may have unstaged it since this one cached it).
const INSERT_OUTCOME = `INSERT INTO shadow_outcomes (${OUTCOME_COLUMNS.join(', ')})
  SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM shadow_policies WHERE id = ?)
  ON CONFLICT DO NOTHING`;

export function appendShadowOutcomes(db: SqliteDb, outcomes: readonly ShadowOutcome[]): void {
  for (const o of outcomes) db.run(INSERT_OUTCOME, ...shadowOutcomeValues(o), o.shadowId);
}
