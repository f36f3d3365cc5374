// Schema 026 on SQLite (the scenario: operator-freeze-migration.test-suite.ts; PostgreSQL's 027 runs it in postgres.test.ts).
import { test } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { sqliteMigrations } from './migrations/index.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { checkOperatorFreezeBackfill } from '../operator-freeze-migration.test-suite.ts';

test('sqlite: migration 026 marks frozen agents the operator froze, never one only a tripped breaker holds', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'airlock-opf-')), 'airlock.db');
  const store = await openSqliteStore(path);
  try {
    await store.rawExec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
    for (const [version, migration] of [...sqliteMigrations].filter(([v]) => v < 26).sort(([x], [y]) => x - y)) {
      for (const sql of migration.statements) await store.rawExec(sql);
      await store.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${version}, '${migration.name}', 0)`);
    }
    const db = () => new DatabaseSync(path, { readOnly: true });
    await checkOperatorFreezeBackfill(store, () => store.migrate(), async () => {
      const reader = db();
      try {
        return Object.fromEntries((reader.prepare('SELECT name, status, operator_frozen FROM agents').all() as { name: string; status: string; operator_frozen: number }[]).map((r) => [r.name, [r.status, r.operator_frozen]]));
      } finally {
        reader.close();
      }
    });
  } finally {
    await store.close();
  }
});
