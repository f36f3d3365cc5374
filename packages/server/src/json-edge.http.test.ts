// JSON at the edge: prototype keys anywhere and nesting past 64 levels are refused with a 400 and a
// stable code before anything reads the value (schema, decoder, request hash, policy, budget), in the
// body, in the base64 JSON of an x402 header, and in a policy document. Nothing is signed or charged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const domain = { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC };

/** A typed-data request whose message carries `inner` (the request hash covers all of it). */
function typedDataWith(inner: string): string {
  return `{"typedData":{"domain":${JSON.stringify(domain)},"types":{"Note":[{"name":"body","type":"string"}]},"primaryType":"Note","message":{"body":"x","extra":${inner}}}}`;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const requirement = { scheme: 'exact', network: 'eip155:8453', amount: '1', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`JSON at the edge (${store})`, () => {
    let h: Harness;
    let token: string;
    before(async () => {
      h = await startHarness({ store, manualClock: true });
      // Budget for exactly 10 units: anything a refused request consumed would show in the last test.
      token = (await provisionAgent(h, { policy: usdcPolicy({ daily: '10' }) })).token;
    });
    after(async () => h.close());

    const post = (path: string, raw: string, as = token) => h.call('POST', path, { token: as, raw });
    const transfer = JSON.stringify(usdcTransfer(ALICE, 1n));
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    // 40,000 levels of {"a": …} is as deep as an object body gets under the 256 KiB limit.
    const deepObject = `${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}`;

    const cases: [string, () => Promise<{ status: number; body: any }>, string][] = [
      ['__proto__ at the top level', () => post('/v1/sign/transaction', `{"__proto__":{"chainId":1},${transfer.slice(1)}`), 'forbidden_json_key'],
      ['__proto__ nested in the transaction', () => post('/v1/sign/transaction', transfer.replace('"transaction":{', '"transaction":{"__proto__":{"to":"0x2222222222222222222222222222222222222222"},')), 'forbidden_json_key'],
      ['__proto__ spelled with escapes deep in typed data', () => post('/v1/sign/typed-data', typedDataWith('{"a":[{"\\u005f_proto__":{"polluted":true}}]}')), 'forbidden_json_key'],
      ['constructor in typed data', () => post('/v1/sign/typed-data', typedDataWith('{"constructor":{"prototype":{"x":1}}}')), 'forbidden_json_key'],
      ['prototype as a struct type name', () => post('/v1/sign/typed-data', `{"typedData":{"domain":${JSON.stringify(domain)},"types":{"prototype":[{"name":"x","type":"uint8"}]},"primaryType":"prototype","message":{"x":1}}}`), 'forbidden_json_key'],
      ['a 100,000-deep array body', () => post('/v1/sign/transaction', deepArray), 'payload_too_deep'],
      ['a 100,000-deep array inside typed data (hashed before it is decoded)', () => post('/v1/sign/typed-data', typedDataWith(deepArray)), 'payload_too_deep'],
      ['a 40,000-deep object inside a dry-run', () => post('/v1/dry-run', `{"action":"evm.typed_data","payload":${typedDataWith(deepObject)}}`), 'payload_too_deep'],
      // body {1} typedData {2} message {3} extra [4 … 3+n]: 62 arrays make 65 levels, 61 make 64.
      ['65 levels, one past the limit', () => post('/v1/sign/typed-data', typedDataWith(`${'['.repeat(62)}${']'.repeat(62)}`)), 'payload_too_deep'],
      ['64 levels pass the edge (and the decoder refuses the unknown field)', () => post('/v1/sign/typed-data', typedDataWith(`${'['.repeat(61)}${']'.repeat(61)}`)), 'undecodable_payload'],
      ['a recursive typed-data struct', () => post('/v1/sign/typed-data', `{"typedData":{"domain":${JSON.stringify(domain)},"types":{"Node":[{"name":"v","type":"uint8"},{"name":"next","type":"Node[]"}]},"primaryType":"Node","message":{"v":1,"next":[{"v":2,"next":[]}]}}}`), 'payload_too_deep'],
      ['__proto__ in the x402 PAYMENT-REQUIRED header', () => h.call('POST', '/v1/x402/pay', { token, body: { resource: 'https://api.example.com/x', paymentRequired: b64(`{"x402Version":2,"__proto__":{"accepts":[]},"resource":{"url":"https://api.example.com/x"},"accepts":${JSON.stringify([requirement])}}`) } }), 'forbidden_json_key'],
      ['a deep x402 PAYMENT-REQUIRED header', () => h.call('POST', '/v1/x402/pay', { token, body: { resource: 'https://api.example.com/x', paymentRequired: b64(`{"x402Version":2,"accepts":${JSON.stringify([requirement])},"extensions":${'['.repeat(5000)}${']'.repeat(5000)}}`) } }), 'payload_too_deep'],
      ['__proto__ in a YAML policy source', () => h.call('POST', '/v1/policies/validate', { token: h.adminToken, body: { source: 'version: 1\nrules:\n  - name: r\n    type: allow\n    __proto__: {isAdmin: true}\n' } }), 'forbidden_json_key'],
      ['a deep YAML policy source', () => h.call('POST', '/v1/policies/validate', { token: h.adminToken, body: { source: `version: 1\nrules: ${'['.repeat(3000)}${']'.repeat(3000)}\n` } }), 'payload_too_deep'],
      ['constructor in a JSON policy document', () => h.call('PUT', '/v1/policies/fleet', { token: h.adminToken, raw: '{"document":{"version":1,"rules":[{"name":"r","type":"allow","constructor":{"name":"x"}}]}}' }), 'forbidden_json_key'],
    ];

    for (const [name, run, code] of cases) {
      test(`${name}: 400 ${code}, nothing signed`, async () => {
        const res = await run();
        assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
        assert.equal(res.body.error.code, code);
        assert.equal(typeof res.body.error.message, 'string');
        assert.ok(res.body.error.message.length < 200, 'the message does not echo the input');
        assert.equal(res.body.signature, undefined);
        assert.equal(res.body.signedTransaction, undefined);
      });
    }

    test('none of it was signed or charged: the whole 10 units are still available', async () => {
      // Only the two requests that passed the edge reached the decoder; it refused them, audited as errors.
      const { entries } = (await h.admin('GET', '/v1/audit?type=sign.request&limit=1000')).body;
      assert.deepEqual(entries.map((e: any) => [e.decision, e.data.errorCode]).sort(), [['error', 'payload_too_deep'], ['error', 'undecodable_payload']]);
      const allowed = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 10n) });
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(over.status, 403);
    });
  });
}
