// A migrated, empty store of either kind plus a raw connection to it, for filling tables with direct SQL
// (orders of magnitude faster than the service path) before timing what the service does on top of them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import pg from 'pg';
import type { Store } from '../../packages/core/src/index.ts';
import { openStore } from '../../packages/store/src/index.ts';
import { pgSchemaUrl } from '../../packages/server/src/testing/harness.ts';

export type StoreKind = 'sqlite' | 'postgres';

export interface ScratchStore {
  kind: StoreKind;
  url: string;
  /** Runs `fill` on a raw connection (the store is closed meanwhile on SQLite), then reopens the store. */
  fill(fill: RawFill): Promise<void>;
  /** The same in two steps, for filling several stores from one stream of rows. */
  openRaw(): Promise<RawConnection>;
  store(): Store;
  close(): Promise<void>;
}

export interface RawFill {
  /** SQLite: a DatabaseSync inside one transaction. */
  sqlite?(db: DatabaseSync): void;
  /** PostgreSQL: a client with search_path set to the scratch schema. */
  postgres?(client: pg.Client): Promise<void>;
}

export type RawConnection = { kind: 'sqlite'; db: DatabaseSync; close(): Promise<void> } | { kind: 'postgres'; client: pg.Client; close(): Promise<void> };

export async function scratchStore(kind: StoreKind): Promise<ScratchStore> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-'));
  const schema = kind === 'postgres' ? await pgSchemaUrl('airlock_bench') : undefined;
  const url = schema ? schema.url : `sqlite:${join(dir, 'airlock.db')}`;
  let store = await openStore(url);
  await store.migrate();
  const scratch: ScratchStore = {
    kind,
    url,
    store: () => store,
    async openRaw(): Promise<RawConnection> {
      if (kind === 'sqlite') {
        await store.close();
        const db = new DatabaseSync(url.slice('sqlite:'.length));
        // Bulk load only: the rows are regenerated if the machine dies, so no fsync per commit.
        db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN');
        return {
          kind,
          db,
          async close() {
            db.exec('COMMIT');
            db.close();
            store = await openStore(url);
          },
        };
      }
      const u = new URL(url);
      const name = u.searchParams.get('schema')!;
      u.searchParams.delete('schema');
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      await client.query(`SET search_path TO ${name}`);
      return {
        kind,
        client,
        async close() {
          await client.query('ANALYZE');
          await client.end();
        },
      };
    },
    async fill(f) {
      const raw = await scratch.openRaw();
      if (raw.kind === 'sqlite') f.sqlite!(raw.db);
      else await f.postgres!(raw.client);
      await raw.close();
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      await schema?.drop();
    },
  };
  return scratch;
}

/** Inserts rows through one prepared statement (SQLite). */
export function insertAll(db: DatabaseSync, sql: string, rows: Iterable<SQLInputValue[]>): void {
  const statement = db.prepare(sql);
  for (const row of rows) statement.run(...row);
}
