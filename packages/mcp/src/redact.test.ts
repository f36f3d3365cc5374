import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockApiError } from '@airlock/sdk';
import { createRedactor } from './redact.ts';
import { describeError, failure } from './results.ts';
import { BaseError } from 'viem';

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

// Found by review: the key was cut only together with its path prefix ("v3/<key>"), so an RPC error that echoed the
// bare key reached the model through a chain_error hint.
test('an RPC key alone (path segment, query value, password) is replaced too, as it reaches the model in a chain_error', () => {
  const key = '0123456789abcdef0123456789abcdef';
  const redact = createRedactor({ token: TOKEN, rpc: new Map([[8453, RPC], [1, 'https://eth.example.com/rpc?chain=mainnet&apikey=QmFzZTY0S2V5V2l0aFBsdXMrU2xhc2g%3D'], [10, 'https://user:p4ssw0rd-very-long-secret@op.example.com/']]) });
  const error = describeError(new BaseError('RPC Request failed.', { details: `invalid project id ${key}; key QmFzZTY0S2V5V2l0aFBsdXMrU2xhc2g= unknown; auth p4ssw0rd-very-long-secret refused` }));
  const result = failure(error, redact);
  const text = JSON.stringify(result);
  for (const secret of [key, 'QmFzZTY0S2V5V2l0aFBsdXMrU2xhc2g=', 'p4ssw0rd-very-long-secret']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  assert.deepEqual((result.structuredContent as { error: { hints: string[] } }).error.hints, ['invalid project id [rpc key]; key [rpc key] unknown; auth [rpc key] refused']);
  // Short pieces (a path word, a query name) are left alone.
  assert.equal(redact('chain=mainnet, path /rpc'), 'chain=mainnet, path /rpc');
});
