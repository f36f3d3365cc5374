// How PostgreSQL's own refusals map to stable codes, on a real server (AIRLOCK_TEST_PG_URL, default the local test
// database): a value too large to index fails the same way on every attempt, so it must not say "retry".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { isConnectionError, mapPgError } from './pg-errors.ts';

const PG_URL = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

test('a key over the 2,704-byte index limit (SQLSTATE 54000, program_limit_exceeded) is invalid_request, not store_unavailable', async () => {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query('CREATE TEMP TABLE oversized_key (series text PRIMARY KEY)');
    // Random hex: PostgreSQL compresses an index key before it measures it.
    const refused = await client.query('INSERT INTO oversized_key VALUES ($1)', [randomBytes(4_000).toString('hex')]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal((refused as { code?: string } | undefined)?.code, '54000', String(refused));
    const mapped = mapPgError(refused);
    assert.equal(mapped.code, 'invalid_request');
    assert.equal(mapped.message, 'a value is larger than the store can hold or index');
    assert.equal(isConnectionError(refused), false);
  } finally {
    await client.end();
  }
});
