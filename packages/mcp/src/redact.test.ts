import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockApiError } from '@airlock/sdk';
import { createRedactor } from './redact.ts';
import { describeError, failure } from './results.ts';

const TOKEN = 'ses_0123456789abcdef.S7L4jY0jQx2m9bZk1v8W3nR5tP6uA0cD4eF7gH2iJ5k';
const RPC = 'https://base-mainnet.example.com/v3/0123456789abcdef0123456789abcdef';

test('the token, its secret half and an RPC URL with a key are replaced wherever they appear', () => {
  const redact = createRedactor({ token: TOKEN, rpc: new Map([[8453, RPC]]) });
  const text = `Bearer ${TOKEN}; secret ${TOKEN.split('.')[1]}; request to ${RPC} failed; path v3/0123456789abcdef0123456789abcdef`;
  const out = redact(text);
  assert.equal(out, 'Bearer [session token]; secret [session token]; request to [rpc eip155:8453] failed; path [rpc path]');
});

test('a failure result passes through the redactor, in structuredContent and in text', () => {
  const redact = createRedactor({ token: TOKEN, rpc: new Map() });
  const result = failure(describeError(new AirlockApiError(500, 'internal', `upstream echoed ${TOKEN}`)), redact);
  assert.equal(result.isError, true);
  assert.ok(!JSON.stringify(result).includes(TOKEN.split('.')[1]!));
  assert.equal((result.structuredContent as { error: { message: string } }).error.message, 'upstream echoed [session token]');
});
