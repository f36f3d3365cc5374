// Bad input gets a clear error with a stable code and changes nothing: no budget, no signature.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

describe('bad input', () => {
  let h: Harness;
  let token: string;
  let agentName: string;
  before(async () => {
    h = await startHarness({ manualClock: true });
    // Budget for exactly 10 units: any consumption by a bad request would show in the final check.
    const p = await provisionAgent(h, { policy: usdcPolicy({ daily: '10' }) });
    token = p.token;
    agentName = p.agent.name;
  });
  after(async () => h.close());

  const sign = (body: unknown, path = '/v1/sign/transaction', raw?: string) => h.call('POST', path, raw !== undefined ? { token, raw } : { token, body });
  const tx = (patch: Record<string, unknown>) => {
    const base = usdcTransfer(ALICE, 1n);
    return { ...base, transaction: { ...base.transaction, ...patch } };
  };

  const cases: [string, () => Promise<{ status: number; body: any }>, number, string][] = [
    ['malformed JSON', () => sign(undefined, '/v1/sign/transaction', '{"chainId": 8453,'), 400, 'invalid_json'],
    ['wrong top-level type', () => sign(undefined, '/v1/sign/transaction', '[1,2,3]'), 400, 'invalid_request'],
    ['wrong field type', () => sign({ chainId: 8453, transaction: 'not an object' }), 400, 'invalid_request'],
    ['invalid address', () => sign(tx({ to: '0x1234' })), 400, 'invalid_address'],
    ['invalid hex data', () => sign(tx({ data: '0xzz' })), 400, 'invalid_hex'],
    ['unknown chain', () => sign({ ...usdcTransfer(ALICE, 1n), chainId: 'solana:mainnet' }), 400, 'unsupported_chain'],
    ['negative amount', () => sign(tx({ value: '-1' })), 400, 'invalid_amount'],
    ['overflowing amount', () => sign(tx({ value: (2n ** 256n).toString() })), 400, 'invalid_amount'],
    ['fractional amount', () => sign(tx({ value: '1.5' })), 400, 'invalid_amount'],
    ['truncated ERC-20 calldata', () => sign(tx({ data: '0xa9059cbb' + '00'.repeat(40) })), 400, 'undecodable_payload'],
    // ERC-20 calldata is read word by word: a recipient word with dirty high bytes (which a token contract
    // ignores) and a word appended after the amount are not the canonical encoding, so they are refused.
    ['ERC-20 transfer with dirty high bytes in the recipient word', () => sign(tx({ data: `0xa9059cbb${'ff'.repeat(12)}${ALICE.slice(2).toLowerCase()}${'1'.padStart(64, '0')}` })), 400, 'undecodable_payload'],
    ['ERC-20 transfer with a word after the amount', () => sign(tx({ data: `${usdcTransfer(ALICE, 1n).transaction.data}${'0'.repeat(63)}5` })), 400, 'undecodable_payload'],
    ['unknown action in dry-run', () => h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.raw_hash', payload: {} } }), 400, 'invalid_request'],
    ['no raw-hash endpoint', () => h.call('POST', '/v1/sign/hash', { token, body: { hash: '0x' + '11'.repeat(32) } }), 404, 'not_found'],
    ['oversized body', () => sign(undefined, '/v1/sign/transaction', JSON.stringify({ chainId: 8453, transaction: { data: '0x' + 'ab'.repeat(300_000) } })), 413, 'body_too_large'],
    ['no token', () => h.call('POST', '/v1/sign/transaction', { body: usdcTransfer(ALICE, 1n) }), 401, 'unauthenticated'],
    ['garbage token', () => h.call('POST', '/v1/sign/transaction', { token: 'ses_0123456789abcdef.' + 'A'.repeat(43), body: usdcTransfer(ALICE, 1n) }), 401, 'unauthenticated'],
    ['session token on an admin route', () => h.call('GET', '/v1/agents', { token }), 403, 'forbidden'],
    ['admin token on an agent route', () => h.call('POST', '/v1/sign/transaction', { token: h.adminToken, body: usdcTransfer(ALICE, 1n) }), 403, 'forbidden'],
    // Regressions found by the torture harness's fuzzing:
    ['an unknown key the decoder would never see', () => sign({ ...usdcTransfer(ALICE, 1n), sneaky: true }), 400, 'invalid_request'],
    ['__proto__ as the primary type', () => sign({ typedData: { domain: { chainId: 8453 }, types: { A: [{ name: 'x', type: 'uint256' }] }, primaryType: '__proto__', message: { x: '1' } } }, '/v1/sign/typed-data'), 400, 'undecodable_payload'],
    ['a policy with an unknown YAML alias', () => h.call('POST', '/v1/policies/validate', { token: h.adminToken, body: { source: 'version: 1\nrules:\n  - <<: *missing\n' } }).then((r) => (r.body.valid === false ? { status: 400, body: { error: r.body.error } } : r)), 400, 'invalid_policy'],
    ['unknown typed data', () => sign({ typedData: { domain: { chainId: 8453, verifyingContract: USDC }, types: { Drain: [{ name: 'all', type: 'bool' }] }, primaryType: 'Drain', message: { all: true } } }, '/v1/sign/typed-data'), 403, 'policy_denied'],
  ];

  for (const [name, run, status, code] of cases) {
    test(`${name}: ${status} ${code}, nothing signed`, async () => {
      const res = await run();
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
      assert.equal(typeof res.body.error.message, 'string');
      assert.equal(res.body.signature, undefined);
      assert.equal(res.body.signedTransaction, undefined);
    });
  }

  test('decode failures that reached the signer are audited with their code', async () => {
    const entries = (await h.admin('GET', `/v1/audit?agent=${agentName}&decision=error&limit=1000`)).body.entries;
    const codes = new Set(entries.map((e: any) => e.data.errorCode));
    for (const c of ['invalid_address', 'invalid_hex', 'invalid_amount', 'undecodable_payload', 'unsupported_chain']) assert.ok(codes.has(c), c);
  });

  test('none of it consumed budget: the whole 10 units are still available', async () => {
    const res = await sign(usdcTransfer(ALICE, 10n));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  test('a frozen agent and an expired session are refused with their code', async () => {
    const p = await provisionAgent(h, { policy: usdcPolicy(), ttl: '1m' });
    await h.admin('POST', `/v1/agents/${p.agent.name}/freeze`);
    const frozen = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) });
    assert.equal(frozen.status, 403);
    assert.equal(frozen.body.error.code, 'agent_frozen');
    await h.admin('POST', `/v1/agents/${p.agent.name}/unfreeze`);
    h.clock!.advance(61_000);
    const expired = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 1n) });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error.code, 'session_expired');
  });

  test('errors never echo secrets: a token-like value in a bad field is not in the response', async () => {
    const secret = 'ses_0123456789abcdef.' + 'S'.repeat(43);
    const res = await sign(tx({ to: secret }));
    assert.equal(res.status, 400);
    assert.ok(!JSON.stringify(res.body).includes('S'.repeat(20)));
  });
});
