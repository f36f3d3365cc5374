import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '@airlock/core';
import { storeTarget } from './store-url.ts';

test('store URL: schema and prepared_statements are read off a PostgreSQL URL and not passed on to the driver', () => {
  assert.deepEqual(storeTarget('postgres://u@db:5432/airlock?schema=fleet&prepared_statements=off&sslmode=require'), {
    postgres: { connectionString: 'postgres://u@db:5432/airlock?sslmode=require', schema: 'fleet', preparedStatements: false },
  });
  assert.deepEqual(storeTarget('postgresql://u@db/airlock?prepared_statements=on'), { postgres: { connectionString: 'postgresql://u@db/airlock', preparedStatements: true } });
  assert.deepEqual(storeTarget('postgres://u@db/airlock'), { postgres: { connectionString: 'postgres://u@db/airlock' } });
});

test('store URL: prepared_statements other than on or off is refused with invalid_request, and the URL (its password) is not echoed', () => {
  assert.throws(
    () => storeTarget('postgres://u:s3cret@db/airlock?prepared_statements=maybe'),
    (e: unknown) => e instanceof AirlockError && e.code === 'invalid_request' && /prepared_statements/.test(e.message) && !e.message.includes('s3cret'),
  );
});
