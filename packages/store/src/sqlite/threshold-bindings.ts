import type { ThresholdBinding } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { THRESHOLD_BINDING_COLUMNS, thresholdBindingFromRow, thresholdBindingValues } from '../shared/threshold-binding-rows.ts';
import type { SqliteDb } from './sqlite-db.ts';

// Threshold bindings (schema 020; core/ports/threshold-keys.ts).

export function getThresholdBinding(db: SqliteDb, agentId: string, namespace: string): ThresholdBinding | undefined {
  const row = db.get(`SELECT ${THRESHOLD_BINDING_COLUMNS} FROM threshold_bindings WHERE agent_id = ? AND namespace = ?`, agentId, namespace);
  return row && thresholdBindingFromRow(row);
}

export function putThresholdBinding(db: SqliteDb, b: ThresholdBinding): void {
  db.run(`INSERT OR REPLACE INTO threshold_bindings (${THRESHOLD_BINDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ...(thresholdBindingValues(b) as SQLInputValue[]));
}

export function deleteThresholdBinding(db: SqliteDb, agentId: string, namespace: string): ThresholdBinding | undefined {
  const existing = getThresholdBinding(db, agentId, namespace);
  if (existing) db.run('DELETE FROM threshold_bindings WHERE agent_id = ? AND namespace = ?', agentId, namespace);
  return existing;
}
