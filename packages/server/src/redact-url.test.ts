// redactUrl is how a store URL reaches the start banner, `airlock init`, `airlock store migrate` and `airlock restore`:
// nothing node-postgres would read as a secret may survive it (packages/cli/src/secrets-redaction.test.ts drives
// the same through the CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl } from './config.ts';

test('credentials in the authority: ***@, whatever the password holds', () => {
  assert.equal(redactUrl('postgres://airlock:s3cret@db.internal:5432/airlock?schema=airlock'), 'postgres://***@db.internal:5432/airlock?schema=airlock');
  // An unencoded @ in the password: the parser splits at the last one, so nothing of the password is left.
  assert.equal(redactUrl('postgres://postgres:Pa@ssTail987@127.0.0.1:5432/test?schema=s2'), 'postgres://***@127.0.0.1:5432/test?schema=s2');
  assert.equal(redactUrl('postgresql://only-a-user@db/airlock'), 'postgresql://***@db/airlock');
  assert.equal(redactUrl('postgres://db.internal/airlock?schema=airlock&prepared_statements=off'), 'postgres://db.internal/airlock?schema=airlock&prepared_statements=off');
});

test('secrets in the query (node-postgres reads ?password= as the password) are dropped; the rest is kept', () => {
  assert.equal(redactUrl('postgres://postgres@127.0.0.1:5432/test?schema=s&password=PgQuerySecret123'), 'postgres://***@127.0.0.1:5432/test?schema=s');
  const out = redactUrl('postgres://db/airlock?PASSWORD=a&password=b&sslpassword=c&passfile=/p&sslkey=/k&api_token=d&client_secret=e&sslmode=require&application_name=airlock&schema=x');
  assert.equal(out, 'postgres://db/airlock?sslmode=require&application_name=airlock&schema=x');
});

test('a URL that does not parse, or whose password would spill into the path, query or fragment: a fixed text', () => {
  for (const url of [
    'postgres://u:12/Spill987@db/airlock', // parses as host u, port 12, path /Spill987@db/airlock
    'postgres://u:12?Spill987@db/airlock',
    'postgres://u:12#Spill987@db/airlock',
    'postgres://u:pa/Spill987@db/airlock', // does not parse at all
    'not a url Spill987',
  ]) assert.equal(redactUrl(url), '(unparsable store URL)', url);
  assert.equal(redactUrl('postgres://u:p@db/airlock#Spill987'), 'postgres://***@db/airlock');
});

test('sqlite: URLs are a path and stay as they are', () => {
  assert.equal(redactUrl('sqlite:./airlock.db'), 'sqlite:./airlock.db');
  assert.equal(redactUrl('sqlite::memory:'), 'sqlite::memory:');
  assert.equal(redactUrl('sqlite:///var/lib/airlock/airlock.db'), 'sqlite:///var/lib/airlock/airlock.db');
});
