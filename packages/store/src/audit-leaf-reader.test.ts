// The raw audit reader (what `audit verify` workers read) on SQLite and PostgreSQL: the same entries as
// `Store.readAuditLeaves`, in leaf order, page by page over any range; a deleted entry is simply absent
// (the verifier names it); a SQLite reader never creates or writes a database.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { entryFromLeafRow, type AuditEntryInput, type AuditLeafRow, type Store } from '@airlock/core';
import { openAuditLeafReader } from './audit-leaf-reader.ts';
import { openStore } from './index.ts';

const PG_URL = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const skipPg = process.env.AIRLOCK_SKIP_PG === '1' ? 'AIRLOCK_SKIP_PG=1' : false;
const dir = mkdtempSync(join(tmpdir(), 'airlock-leaf-reader-'));
const schema = `airlock_test_reader_${randomBytes(4).toString('hex')}`;
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (skipPg) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/** More entries than one page of either reader (2,048 on SQLite, 4,096 on PostgreSQL). */
const COUNT = 5000;

function entry(i: number): AuditEntryInput {
  const e: AuditEntryInput = { at: 1_767_225_600_000 + i, type: i % 7 === 0 ? 'agent.frozen' : 'sign.request', actor: i % 7 === 0 ? 'operator' : 'agent', data: { i, note: i % 11 === 0 ? 'é "quoted" \\ ok' : 'plain' } };
  if (i % 3 !== 0) e.agentId = `ag_${i % 50}`;
  if (i % 5 !== 0) e.sessionId = `ses_${i % 70}`;
  if (i % 2 === 0) e.action = 'evm.transaction';
  if (i % 4 !== 0) e.decision = i % 8 === 1 ? 'deny' : 'allow';
  return e;
}

async function rows(url: string, from: number, to: number): Promise<AuditLeafRow[][]> {
  const reader = await openAuditLeafReader(url);
  try {
    const pages: AuditLeafRow[][] = [];
    for await (const page of reader.pages(from, to)) pages.push(page);
    return pages;
  } finally {
    await reader.close();
  }
}

const stores: [name: string, url: string, dropTrigger: string, skip: string | false][] = [
  ['sqlite', `sqlite:${join(dir, 'audit.db')}`, 'DROP TRIGGER audit_entries_no_delete', false],
  ['postgres', `${PG_URL}?schema=${schema}`, 'DROP TRIGGER audit_entries_append_only ON audit_entries', skipPg],
];

for (const [name, url, dropTrigger, skip] of stores) {
  describe(`raw audit reader (${name})`, { skip }, () => {
    test('the entries readAuditLeaves returns, in leaf order, in pages, over the whole log and over a range', async () => {
      const store: Store = await openStore(url);
      try {
        await store.migrate();
        await store.transaction(async (tx) => {
          for (let i = 0; i < COUNT; i++) await tx.appendAudit(entry(i));
        });
        const { treeSize } = await store.auditHead();
        assert.equal(treeSize, COUNT);
        const expected = [...(await store.readAuditLeaves(0, 10_000)), ...(await store.readAuditLeaves(10_000, 10_000))];
        assert.equal(expected.length, COUNT);

        const pages = await rows(url, 0, COUNT);
        assert.ok(pages.length >= 2, 'more than one page');
        assert.deepEqual(pages.flat().map(entryFromLeafRow), expected);

        const [first] = pages[0]!;
        assert.deepEqual([typeof first![0], typeof first![1], typeof first![2], typeof first![4]], ['number', 'number', 'number', 'number'], 'integers as numbers');
        const middle = (await rows(url, 1234, 4321)).flat().map(entryFromLeafRow);
        assert.deepEqual(middle, expected.slice(1234, 4321));
        assert.deepEqual((await rows(url, COUNT, COUNT + 10)).flat(), [], 'past the end: nothing');
      } finally {
        await store.close();
      }
    });

    test('a deleted entry is absent from the pages (the verifier then names it missing)', async () => {
      const store = await openStore(url);
      try {
        await (store as unknown as { rawExec(sql: string): Promise<void> }).rawExec(`${dropTrigger}; DELETE FROM audit_entries WHERE leaf_index = 10`);
        const indexes = (await rows(url, 0, 20)).flat().map((r) => Number(r[1]));
        assert.deepEqual(indexes, [...Array(20).keys()].filter((i) => i !== 10));
      } finally {
        await store.close();
      }
    });
  });
}

test('raw audit reader (postgres): an error from the server rejects the page, and the reader goes on', { skip: skipPg }, async () => {
  const reader = await openAuditLeafReader(`${PG_URL}?schema=airlock_test_reader_no_such_schema`);
  try {
    await assert.rejects(async () => {
      for await (const _ of reader.pages(0, 10_000)) assert.fail('no rows from a schema without the table');
    });
    await assert.rejects(async () => {
      for await (const _ of reader.pages(0, 10)) assert.fail('no rows');
    }, 'the connection is usable again');
  } finally {
    await reader.close();
  }
});

test('raw audit reader (sqlite): a missing database is an error, and the reader does not create it', async () => {
  const path = join(dir, 'never-created.db');
  await assert.rejects(openAuditLeafReader(`sqlite:${path}`), { code: 'store_unavailable' });
  assert.equal(existsSync(path), false);
});
