import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { AirlockError } from '@airlock/core';
import { checkLargeHistory, runConcurrentBudget, runStoreContract } from './contract.test-suite.ts';
import { checkConcurrentClaims } from './webhooks.contract.test-suite.ts';
import { checkConcurrentKeeps } from './released-signatures.contract.test-suite.ts';
import { checkLedgerUpgrade, checkLedgerUpgradeTo008 } from './ledger-upgrade.test-suite.ts';
import { checkAgentKeyBackfill, checkConcurrentRotations } from './agent-keys.contract.test-suite.ts';
import { runLightningStoreContract } from './lightning.contract.test-suite.ts';
import { checkOperatorFreezeBackfill } from './operator-freeze-migration.test-suite.ts';
import { postgresMigrations } from './postgres/migrations/index.ts';
import { openPostgresStore } from './postgres/postgres-store.ts';
import { agentLockKey } from './postgres/tx-locks.ts';
import { openStore } from './index.ts';

/**
 * Runs against a real PostgreSQL (AIRLOCK_TEST_PG_URL, default the local test database), each store
 * in a fresh `airlock_test_<random>` schema, all dropped at the end. An unreachable server FAILS the
 * run; set AIRLOCK_SKIP_PG=1 to skip on purpose.
 */
const url = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const skip = process.env.AIRLOCK_SKIP_PG === '1' ? 'AIRLOCK_SKIP_PG=1' : false;
const runId = randomBytes(4).toString('hex');
const schemas: string[] = [];
let n = 0;
const newSchema = () => {
  const name = `airlock_test_${runId}_${++n}`;
  schemas.push(name);
  return name;
};

if (!skip) {
  before(async () => {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (e) {
      throw new Error(`PostgreSQL is not reachable for the store tests (set AIRLOCK_TEST_PG_URL, or AIRLOCK_SKIP_PG=1 to skip): ${(e as Error).message}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  after(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  });

  runStoreContract('postgres', () => openPostgresStore({ connectionString: url, schema: newSchema() }));
  // Two instances (two pools) on one new schema for the races.
  runLightningStoreContract(() => openPostgresStore({ connectionString: url, schema: newSchema() }), {
    instances: () => { const schema = newSchema(); return Promise.all([0, 1].map(() => openPostgresStore({ connectionString: url, schema, poolSize: 4 }))); },
  });
}

test('postgres: two instances (two pools) on one schema still append exactly 50 of 200', { skip }, async () => {
  const schema = newSchema();
  const a = await openPostgresStore({ connectionString: url, schema, poolSize: 5 });
  const b = await openPostgresStore({ connectionString: url, schema, poolSize: 5 });
  try {
    await Promise.all([a.migrate(), b.migrate()]); // concurrent start: the migration lock applies 001 once
    assert.deepEqual(await runConcurrentBudget([a, b]), { appended: 50, total: 50 });
  } finally {
    await a.close();
    await b.close();
  }
});

test('postgres: three instances keeping released signatures for one audit entry at once all answer the first row', { skip }, async () => {
  const schema = newSchema();
  const stores = await Promise.all([0, 1, 2].map(() => openPostgresStore({ connectionString: url, schema, poolSize: 4 })));
  try {
    await Promise.all(stores.map((s) => s.migrate()));
    for (const seq of [1, 2, 3]) await checkConcurrentKeeps(stores, seq);
  } finally {
    for (const s of stores) await s.close();
  }
});

test('postgres: two instances claiming webhook deliveries at once never claim the same one', { skip }, async () => {
  const schema = newSchema();
  const a = await openPostgresStore({ connectionString: url, schema, poolSize: 5 });
  const b = await openPostgresStore({ connectionString: url, schema, poolSize: 5 });
  try {
    await Promise.all([a.migrate(), b.migrate()]);
    await checkConcurrentClaims([a, b]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('postgres: window totals stay exact over 100,000 ledger rows', { skip }, async () => {
  const store = await openPostgresStore({ connectionString: url, schema: newSchema() });
  try {
    await store.migrate();
    // Seeded in SQL (100k round trips would take minutes); rows follow exactly what appendLedger writes.
    await checkLargeHistory(store, async (series, asset, rows) => {
      await store.rawExec(`
        INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals)
        SELECT '${series}', i * 1000, i, i, jsonb_build_object('${asset}', jsonb_build_array('3', 1)),
               jsonb_build_object('${asset}', jsonb_build_array((3 * i)::text, i))
        FROM generate_series(1, ${rows}) AS i;
        ANALYZE ledger;`);
    });
  } finally {
    await store.close();
  }
});

/** A store whose schema is as of migration `version`, applied the way migrate() applies it, and a raw reader. */
async function storeAtVersion(version: number, fn: (h: { store: Awaited<ReturnType<typeof openPostgresStore>>; query: (sql: string) => Promise<Record<string, unknown>[]> }) => Promise<void>): Promise<void> {
  const schema = newSchema();
  const store = await openPostgresStore({ connectionString: url, schema });
  const reader = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await reader.connect();
  try {
    await store.rawExec('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    for (const [v, migration] of [...postgresMigrations].filter(([m]) => m <= version).sort(([x], [y]) => x - y)) {
      for (const sql of migration.statements) await store.rawExec(sql);
      await store.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${v}, '${migration.name}', 0)`);
    }
    await fn({ store, query: async (sql) => (await reader.query(sql)).rows });
  } finally {
    await reader.end();
    await store.close();
  }
}

test('postgres: migration 006 keeps every window total of a ledger written by the old code', { skip }, () =>
  storeAtVersion(5, (h) => checkLedgerUpgrade(h)));

test('postgres: migration 027 marks frozen agents the operator froze, never one only a tripped breaker holds', { skip }, () =>
  storeAtVersion(26, ({ store, query }) =>
    checkOperatorFreezeBackfill(store, () => store.migrate(), async () =>
      Object.fromEntries((await query('SELECT name, status, operator_frozen FROM agents')).map((r) => [String(r.name), [String(r.status), r.operator_frozen === true ? 1 : 0]])))));

// Version 8: the ledger as 006 left it, audit sequencing (008) in place.
test('postgres: migration 009 keeps every window total of a ledger written by the 006-008 code', { skip }, () =>
  storeAtVersion(8, (h) => checkLedgerUpgradeTo008(h)));

/**
 * No global lock (tx-locks.ts): four instances, each running several batches at once, charge agent series,
 * the striped fleet series, and some read the fleet total (which takes every fleet slot). Requests lock their
 * agent first, then series in whatever order their batch met them, so some could only wait out of order and
 * are retried; none may deadlock (PostgreSQL would abort a batch: store_unavailable), none may be lost, every
 * budget is exact and the audit tree has no gap.
 */
test('postgres: four instances with no global lock: agent and fleet budgets exact, no deadlock, a gap-free audit tree', { skip }, async () => {
  const schema = newSchema();
  const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ connectionString: url, schema, poolSize: 6 })));
  try {
    for (const s of stores) await s.migrate();
    const AGENTS = 12;
    const AGENT_CAP = 9;
    // High enough never to bind: the fleet-budget requests' reads are checked for serialisation below; the
    // race torture checks that a binding fleet cap is spent to the unit.
    const FLEET_CAP = 1_000;
    const attempts = 400;
    const agentSeries = (a: number) => `agent:ag_${a}`;
    const fleetReadsThatCharged: number[] = [];
    const results = await Promise.all(Array.from({ length: attempts }, (_, i) => {
      const agent = (i * 7) % AGENTS;
      // Every third request is under a fleet-wide budget (reads the fleet total); the rest only charge it.
      const fleetBudget = i % 3 === 0;
      return stores[i % stores.length]!.transaction(async (tx) => {
        await tx.getAgent(`ag_${agent}`);
        const queries = [{ series: agentSeries(agent), asset: '*', sinceMs: 0 }, ...(fleetBudget ? [{ series: 'fleet', asset: '*', sinceMs: 0 }] : [])];
        const [own, fleet] = await tx.windowTotals(queries);
        await new Promise((resolve) => setImmediate(resolve));
        if (own!.count >= AGENT_CAP || (fleet && fleet.count >= FLEET_CAP)) return 'refused';
        if (fleet) fleetReadsThatCharged.push(fleet.count);
        const entry = await tx.appendAudit({ at: 1_000 + i, type: 'race.test', actor: 'system', agentId: `ag_${agent}`, data: { i } });
        // A series this request did not read, and one other agent's: taken after the fleet slots, out of order.
        await tx.appendLedger([
          { series: agentSeries(agent), asset: '*', amount: 1n, count: 1 },
          { series: 'fleet', asset: '*', amount: 1n, count: 1 },
          { series: `${agentSeries(agent)}|to:0xabc`, asset: '*', amount: 1n, count: 1 },
        ], 1_000 + i, entry.seq);
        return 'charged';
      });
    }));
    const charged = results.filter((r) => r === 'charged').length;
    const totals = await stores[0]!.transaction((tx) => tx.windowTotals([
      { series: 'fleet', asset: '*', sinceMs: 0 },
      ...Array.from({ length: AGENTS }, (_, a) => ({ series: agentSeries(a), asset: '*', sinceMs: 0 })),
    ]));
    assert.equal(totals[0]!.count, charged, 'the striped fleet series sums to every charge');
    assert.ok(charged <= AGENTS * AGENT_CAP);
    for (let a = 0; a < AGENTS; a++) assert.ok(totals[a + 1]!.count <= AGENT_CAP, `agent ${a} charged ${totals[a + 1]!.count} > ${AGENT_CAP}`);
    // Fleet totals are read under every fleet slot: two fleet-budget requests that charged never saw the same
    // total (each saw the charges before it, its own came after), and none saw more than was ever charged.
    // i % 3 === 0 picks agents 0, 3, 6 and 9 (agent = 7i mod 12), and every request of theirs: each charges its cap.
    assert.equal(fleetReadsThatCharged.length, 4 * AGENT_CAP);
    assert.equal(new Set(fleetReadsThatCharged).size, fleetReadsThatCharged.length, 'two fleet-budget requests read the same fleet total');
    assert.ok(fleetReadsThatCharged.every((c) => c < charged));
    const leaves = await stores[1]!.readAuditLeaves(0, attempts + 1);
    assert.deepEqual(leaves.map((e) => e.leafIndex), Array.from({ length: charged }, (_, k) => k), 'one leaf per charge, no gap');
    assert.equal(new Set(leaves.map((e) => e.seq)).size, charged);
  } finally {
    for (const s of stores) await s.close();
  }
});

test('postgres: a request that meets a lock it may not wait for is rolled back and runs again in a later batch, charged once', { skip }, async () => {
  const store = await openPostgresStore({ connectionString: url, schema: newSchema(), poolSize: 4 });
  // Another instance's transaction, played by a session-level advisory lock on agent B's key (the same key
  // space as the batches' transaction locks).
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    await store.migrate();
    await other.query('SELECT pg_advisory_lock($1::int8)', [String(agentLockKey('ag_b'))]);
    const series = (agent: string) => ({ series: `agent:${agent}`, asset: '*', sinceMs: 0 });
    const charge = (agent: string, at: number) => async (tx: Parameters<Parameters<typeof store.transaction>[0]>[0]) => {
      await tx.getAgent(agent);
      const [before] = await tx.windowTotals([series(agent)]);
      const entry = await tx.appendAudit({ at, type: 'retry.test', actor: 'system', agentId: agent, data: {} });
      await tx.appendLedger([{ series: `agent:${agent}`, asset: '*', amount: 5n, count: 1 }], at, entry.seq);
      return before!.count;
    };
    let attemptsB = 0;
    // Same affinity, same event-loop turn: one batch. A locks its agent, then its series (a higher key class);
    // B's agent key is below what the batch holds, so B may only try it, finds it taken, and is retried.
    const a = store.transaction(charge('ag_a', 1_000), { affinity: 'one-lane' });
    const b = store.transaction(async (tx) => {
      attemptsB++;
      return charge('ag_b', 2_000)(tx);
    }, { affinity: 'one-lane' });
    let bSettled = false;
    void b.finally(() => (bSettled = true));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('A waited for B: the batch blocked on a lock below what it held')), 5_000).unref());
    assert.equal(await Promise.race([a, timeout]), 0, 'A commits without waiting for B');
    // B's retry runs first in the next batch, holding nothing, so it waits for the lock instead of retrying.
    while (attemptsB < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(bSettled, false, 'B waits for the other transaction');
    await other.query('SELECT pg_advisory_unlock($1::int8)', [String(agentLockKey('ag_b'))]);
    assert.equal(await b, 0);
    assert.equal(attemptsB, 2, 'B ran once in the first batch (rolled back) and once in the next');
    const totals = await store.transaction((tx) => tx.windowTotals([series('ag_a'), series('ag_b')]));
    assert.deepEqual(totals.map((t) => [t.count, t.amount]), [[1, 5n], [1, 5n]], 'each charged exactly once');
    const leaves = await store.readAuditLeaves(0, 10);
    assert.deepEqual(leaves.map((e) => [e.leafIndex, e.agentId]), [[0, 'ag_a'], [1, 'ag_b']], 'one audit entry each: the rolled-back attempt left none');
  } finally {
    await other.end();
    await store.close();
  }
});

test('postgres: a window read kept for a batch is not reused for an asset its series sends to the asset\'s own series', { skip }, async () => {
  const store = await openPostgresStore({ connectionString: url, schema: newSchema(), poolSize: 4 });
  try {
    await store.migrate();
    // Forty tokens, one per charge: the series keeps 32 assets (the count among them) and the rest go apart.
    const token = (i: number) => `eip155:8453/erc20:0x${i.toString(16).padStart(40, '0')}`;
    for (let i = 1; i <= 40; i++) {
      await store.transaction((tx) => tx.appendLedger([{ series: 'agent:ag_j', asset: token(i), amount: BigInt(i), count: 1 }, { series: 'agent:ag_j', asset: '*', amount: 0n, count: 1 }], 1_000 + i, i));
    }
    const window = { series: 'agent:ag_j', asset: token(40), sinceMs: 0 };
    // Same affinity, same event-loop turn: one batch. The first read is kept for the batch; the second request
    // asks the same window and must not be answered from it without the token's own series.
    const read = () => store.transaction(async (tx) => (await tx.windowTotals([window], { charging: ['agent:ag_j'] }))[0], { affinity: 'one-lane' });
    const [first, second] = await Promise.all([read(), read()]);
    assert.deepEqual(first, { amount: 40n, count: 1 });
    assert.deepEqual(second, { amount: 40n, count: 1 }, 'the batch\'s second read');
  } finally {
    await store.close();
  }
});

test('postgres: rotations of one agent from three instances on one schema each take their own key index', { skip }, async () => {
  const schema = newSchema();
  const stores = await Promise.all(Array.from({ length: 3 }, () => openPostgresStore({ connectionString: url, schema, poolSize: 4 })));
  try {
    await Promise.all(stores.map((s) => s.migrate()));
    await checkConcurrentRotations(stores);
  } finally {
    for (const s of stores) await s.close();
  }
});

test('postgres: migration 017 backfills the key registry with the key each agent has', { skip }, () =>
  storeAtVersion(16, ({ store }) => checkAgentKeyBackfill(store)));

test('postgres: statements are prepared once per connection; one that a schema change made stale fails once and is prepared afresh, and with prepared_statements off none is kept', { skip }, async () => {
  // One connection each, so every read meets what the one before prepared. Read inside transactions: a pooled
  // connection whose statement failed stays in the pool there (a failed one-off query's connection is dropped).
  const schema = newSchema();
  const prepared = await openPostgresStore({ connectionString: url, schema, poolSize: 1 });
  const unnamed = await openPostgresStore({ connectionString: url, schema, poolSize: 1, preparedStatements: false });
  const other = new pg.Client({ connectionString: url });
  const read = (store: typeof prepared) => store.transaction((tx) => tx.getAgent('ag_prepared000001'));
  try {
    await prepared.migrate();
    await unnamed.migrate();
    await other.connect();
    await prepared.createAgents([{ id: 'ag_prepared000001', name: 'prepared', labels: {} }], (a, k) => `0x${a.toString(16).padStart(32, '0')}${k.toString(16).padStart(8, '0')}`, 1000);
    for (let i = 0; i < 3; i++) assert.equal((await read(prepared))?.name, 'prepared');
    assert.equal((await read(unnamed))?.name, 'prepared');

    // Another instance (a newer version) adds a column: `SELECT *` prepared earlier now returns another row type,
    // which PostgreSQL refuses to run (0A000). Only a statement that was prepared can fail this way.
    await other.query(`ALTER TABLE "${schema}".agents ADD COLUMN added_later text`);
    await assert.rejects(read(prepared), (e: unknown) => e instanceof AirlockError && e.code === 'internal');
    for (let i = 0; i < 3; i++) assert.equal((await read(prepared))?.name, 'prepared', 'prepared afresh under a new name');
    assert.equal((await read(unnamed))?.name, 'prepared', 'an unnamed statement is planned on every run');
  } finally {
    await other.end().catch(() => undefined);
    await prepared.close();
    await unnamed.close();
  }
});

test('postgres: a request that locked its series with its agent (lockAhead) reads its windows after those locks: a charge another instance commits while it waits is counted', { skip }, async () => {
  const schema = newSchema();
  const a = await openPostgresStore({ connectionString: url, schema, poolSize: 4 });
  const b = await openPostgresStore({ connectionString: url, schema, poolSize: 4 });
  try {
    await a.migrate();
    await b.migrate();
    const window = { series: 'agent:ag_x', asset: '*', sinceMs: 0 };
    // Instance B charges ag_x's series and holds its transaction open. It takes the series' lock only (as a
    // writer that does not read the agent would), so A's agent lock does not keep A out: only the series lock does.
    let commitB!: () => void;
    const holdB = new Promise<void>((resolve) => (commitB = resolve));
    let bCharged!: () => void;
    const charged = new Promise<void>((resolve) => (bCharged = resolve));
    const bDone = b.transaction(async (tx) => {
      await tx.windowTotals([window], { charging: ['agent:ag_x'] });
      const entry = await tx.appendAudit({ at: 1_000, type: 'lock.test', actor: 'system', agentId: 'ag_x', data: {} });
      await tx.appendLedger([{ series: 'agent:ag_x', asset: '*', amount: 7n, count: 1 }], 1_000, entry.seq);
      bCharged();
      await holdB;
    });
    await charged;
    // A: the signing path's order. The series lock is waited for in the agent's statement; the window read
    // that follows (with the fleet slot and the series only charged) must see B's charge once B commits.
    let aRead = false;
    const aDone = a.transaction(async (tx) => {
      tx.lockAhead?.(['agent:ag_x', 'fleet']);
      await tx.getAgent('ag_x');
      const [total] = await tx.windowTotals([window], { charging: ['agent:ag_x', 'fleet'] });
      aRead = true;
      return total!;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(aRead, false, 'A waits for the series B holds');
    commitB();
    await bDone;
    const total = await aDone;
    assert.deepEqual([total.count, total.amount], [1, 7n], "A's window counts the charge B committed while A waited");
  } finally {
    await a.close();
    await b.close();
  }
});

// A batch ends with its ledger and audit inserts sent together (one round trip), then COMMIT. If either insert
// fails, nothing of the batch is stored, every request in it is refused, and the next batch commits normally.
test('postgres: a batch whose ledger or audit insert fails at its end (the two sent together) stores nothing and answers nobody with success', { skip }, async () => {
  const schema = newSchema();
  const store = await openPostgresStore({ connectionString: url, schema, poolSize: 4 });
  const admin = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await admin.connect();
  try {
    await store.migrate();
    // A fault in each insert, set off by what one request writes (a poisoned audit type or ledger amount).
    for (const [table, poisoned] of [['audit_entries', "NEW.type = 'poison'"], ['ledger', "NEW.charges::text LIKE '%666%'"]]) {
      await admin.query(`CREATE FUNCTION test_poison_${table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF ${poisoned} THEN RAISE EXCEPTION 'injected fault in ${table}'; END IF; RETURN NEW; END $$`);
      await admin.query(`CREATE TRIGGER test_poison BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION test_poison_${table}()`);
    }
    const series = { series: 'agent:ag_a', asset: '*', sinceMs: 0 };
    const request = (type: string, amount: bigint) => store.transaction(async (tx) => {
      const entry = await tx.appendAudit({ at: 1_000, type, actor: 'system', agentId: 'ag_a', data: {} });
      await tx.appendLedger([{ series: series.series, asset: '*', amount, count: 1 }], 1_000, entry.seq);
      return entry.seq;
    }, { affinity: 'one-lane' });
    for (const [poisonType, poisonAmount] of [['poison', 5n], ['fine', 666n]] as const) {
      // Same affinity, same event-loop turn: one batch of three, the middle one poisoned.
      const results = await Promise.allSettled([request('fine', 5n), request(poisonType, poisonAmount), request('fine', 5n)]);
      for (const r of results) {
        assert.equal(r.status, 'rejected', 'no request of a batch that did not commit is answered with success');
        assert.equal(((r as PromiseRejectedResult).reason as AirlockError).code, 'store_unavailable');
      }
      const [total] = await store.transaction((tx) => tx.windowTotals([series]));
      assert.deepEqual([total!.count, total!.amount], [0, 0n], 'no ledger entry of the batch is stored');
      assert.equal((await store.readAuditLeaves(0, 10)).length, 0, 'no audit entry of the batch is stored');
    }
    // The store goes on: the next batch commits, and its entry takes leaf 0 (the failed batches used none).
    await request('fine', 5n);
    const [total] = await store.transaction((tx) => tx.windowTotals([series]));
    assert.deepEqual([total!.count, total!.amount], [1, 5n]);
    assert.deepEqual((await store.readAuditLeaves(0, 10)).map((e) => e.leafIndex), [0]);
  } finally {
    await admin.end();
    await store.close();
  }
});

// COMMIT is not sent behind the audit insert: while that insert waits for the leaf counter (another instance's
// batch holds it), this side may give up on the connection (here a client-side query timeout, which ends it).
// The batch must then not be committed by the server later on, since its callers were told it failed.
test('postgres: a batch that gives up on its connection while its audit insert waits for the counter is not committed later', { skip }, async () => {
  const schema = await migratedSchema();
  const store = await openPostgresStore({ connectionString: `${url}?query_timeout=1500`, schema, poolSize: 4 });
  const other = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  // pg_stat_activity is read outside any transaction: inside one it stays as it was at its first read.
  const watcher = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await other.connect();
  await watcher.connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT * FROM audit_leaf_counter FOR UPDATE');
    const write = store.transaction(async (tx) => {
      const entry = await tx.appendAudit({ at: 1_000, type: 'given.up', actor: 'system', agentId: 'ag_a', data: {} });
      await tx.appendLedger([{ series: 'agent:ag_a', asset: '*', amount: 5n, count: 1 }], 1_000, entry.seq);
      return entry.seq;
    });
    void write.catch(() => undefined);
    // The hazard needs the batch's audit insert waiting for the counter when its connection is given up.
    const backend = await pollFor(async () => {
      const rows = (await watcher.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE '%audit_leaf_counter%'",
        [`airlock:${schema}`],
      )).rows;
      return rows[0]?.pid as number | undefined;
    });
    await assert.rejects(write, (e: AirlockError) => e.code === 'store_unavailable');
    // The other instance's batch commits; the given-up one, had its COMMIT been on the wire, would follow it.
    await other.query('COMMIT');
    await pollFor(async () => (await watcher.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [backend])).rows.length === 0 || undefined);
    assert.equal((await watcher.query('SELECT count(*)::int AS n FROM audit_entries')).rows[0].n, 0, 'no audit entry of the given-up batch');
    assert.equal((await watcher.query('SELECT count(*)::int AS n FROM ledger')).rows[0].n, 0, 'no ledger entry of the given-up batch');
  } finally {
    await other.end();
    await watcher.end();
    await store.close();
  }
});

// A COMMIT whose answer does not come back in time may have been carried out: the callers are told exactly that
// (and, as ever, nothing was released), not that nothing was recorded. Here the server does commit, slowly.
test('postgres: a COMMIT whose answer is lost is reported as "may or may not have been recorded", and here it was', { skip }, async () => {
  const schema = await migratedSchema();
  const admin = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await admin.connect();
  // A commit that takes a second: a deferred constraint trigger runs at COMMIT.
  await admin.query("CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$");
  await admin.query('CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON audit_entries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()');
  await admin.query('CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON agents DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()');
  const store = await openPostgresStore({ connectionString: `${url}?query_timeout=500`, schema, poolSize: 2 });
  try {
    const write = store.transaction(async (tx) => {
      const entry = await tx.appendAudit({ at: 1_000, type: 'slow.commit', actor: 'system', data: {} });
      await tx.appendLedger([{ series: 'agent:ag_a', asset: '*', amount: 5n, count: 1 }], 1_000, entry.seq);
      return entry.seq;
    });
    await assert.rejects(write, (e: AirlockError) => e.code === 'store_unavailable' && /may or may not have been recorded/.test(e.message));
    await pollFor(async () => ((await admin.query('SELECT count(*)::int AS n FROM audit_entries')).rows[0].n === 1 ? true : undefined));
    assert.equal((await admin.query('SELECT count(*)::int AS n FROM ledger')).rows[0].n, 1, 'committed whole');
    // An operator's write (its own transaction, not a batch) is reported the same way.
    await assert.rejects(
      store.createAgents([{ id: 'ag_slow', name: 'slow', labels: {} }], () => `0x${'11'.repeat(20)}`, 1_000),
      (e: AirlockError) => e.code === 'store_unavailable' && /may or may not have been recorded/.test(e.message),
    );
    await pollFor(async () => ((await admin.query("SELECT count(*)::int AS n FROM agents WHERE id = 'ag_slow'")).rows[0].n === 1 ? true : undefined));
  } finally {
    await admin.end();
    await store.close();
  }
});

/**
 * A new schema, migrated by a store without a query timeout (migrations wait for a database-wide lock that other
 * test files may hold), for a store opened on it with one.
 */
async function migratedSchema(): Promise<string> {
  const schema = newSchema();
  const migrator = await openPostgresStore({ connectionString: url, schema, poolSize: 1 });
  try {
    await migrator.migrate();
  } finally {
    await migrator.close();
  }
  return schema;
}

/** Polls `read` every 20 ms until it gives a value (10 s at most). */
async function pollFor<T>(read: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('timed out waiting');
}
