// Denial of service inside the body limit through EIP-712 typed data: viem re-encoded a struct's whole type
// string for every value of that struct, so 138 kB (a 120,000-character field name in a struct used by the
// 2,000 elements of an array) cost 40 s of hashing while every other request waited, before scope or policy
// ran. Typed data past a decoding limit (TYPED_DATA_LIMITS: names, field types, types, fields per type, the
// encodeType of any struct, values in the message) is refused `typed_data_too_large` (the limit in details)
// before anything is hashed, on every route that signs typed data; each struct's type hash is computed once
// per request. Within the limits, large real typed data (a Seaport order with 100 consideration items) signs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashTypedData, recoverAddress, type Hex } from 'viem';
import { encodeType } from '../../chains/src/evm/eip712-hash.ts';
import { TYPED_DATA_LIMITS } from '../../chains/src/evm/typed-data.ts';
import { provisionAgent, startHarness, usdcPolicy, type Harness } from './testing/harness.ts';
import { timed } from './testing/stall-probe.ts';

const SEAPORT = '0x0000000000000068f116a894984e2dba9b0ee3b4';
const seaportDomain = { name: 'Seaport', version: '1.6', chainId: 8453, verifyingContract: SEAPORT };
const SEAPORT_TYPES = {
  OrderComponents: [
    { name: 'offerer', type: 'address' }, { name: 'zone', type: 'address' }, { name: 'offer', type: 'OfferItem[]' },
    { name: 'consideration', type: 'ConsiderationItem[]' }, { name: 'orderType', type: 'uint8' }, { name: 'startTime', type: 'uint256' },
    { name: 'endTime', type: 'uint256' }, { name: 'zoneHash', type: 'bytes32' }, { name: 'salt', type: 'uint256' },
    { name: 'conduitKey', type: 'bytes32' }, { name: 'counter', type: 'uint256' },
  ],
  OfferItem: [
    { name: 'itemType', type: 'uint8' }, { name: 'token', type: 'address' }, { name: 'identifierOrCriteria', type: 'uint256' },
    { name: 'startAmount', type: 'uint256' }, { name: 'endAmount', type: 'uint256' },
  ],
  ConsiderationItem: [
    { name: 'itemType', type: 'uint8' }, { name: 'token', type: 'address' }, { name: 'identifierOrCriteria', type: 'uint256' },
    { name: 'startAmount', type: 'uint256' }, { name: 'endAmount', type: 'uint256' }, { name: 'recipient', type: 'address' },
  ],
};

/** The reviewer's shape: Main.list is n elements of E, and E's type string carries H and its field name. */
function stall(fieldName: string, n: number) {
  return {
    chainId: 8453,
    typedData: {
      domain: { name: 'x', chainId: 8453 },
      types: { Main: [{ name: 'list', type: 'E[]' }], E: [{ name: 'x', type: 'H[]' }], H: [{ name: fieldName, type: 'uint8' }] },
      primaryType: 'Main',
      message: { list: Array.from({ length: n }, () => ({ x: [] })) },
    },
  };
}

describe('EIP-712 decoding limits over HTTP', () => {
  let h: Harness;
  let token: string;
  let agent: { id: string; address: string };
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
    const policy = { ...usdcPolicy(), rules: [
      ...usdcPolicy().rules,
      { name: 'main', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Main'], domains: [{ chain_id: 8453, name: 'x' }] } },
      { name: 'seaport', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['OrderComponents'], domains: [{ chain_id: 8453, verifying_contract: SEAPORT }] } },
    ] };
    ({ token, agent } = await provisionAgent(h, { policy }));
  });
  after(async () => h.close());

  /**
   * Sends `body` to /v1/sign/typed-data and, 20 ms later, asks GET /v1/session with the same token: the
   * refusal comes fast, the event loop is never held long, and the other request is answered meanwhile.
   */
  async function refusedFast(label: string, body: unknown, limit: string) {
    const bytes = JSON.stringify(body).length;
    let probeMs = Number.POSITIVE_INFINITY;
    const { result: res, ms, stallMs } = await timed(label, async () => {
      const start = performance.now();
      const attack = h.call('POST', '/v1/sign/typed-data', { token, body });
      await new Promise((r) => setTimeout(r, 20));
      const probe = h.call('GET', '/v1/session', { token }).then((r) => {
        probeMs = performance.now() - start;
        return r;
      });
      const [a, p] = await Promise.all([attack, probe]);
      assert.equal(p.status, 200);
      return a;
    }, (r) => `${bytes} bytes, ${r.status} ${r.body.error?.code ?? ''} ${r.body.error?.details?.limit ?? ''}`);
    assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.error.code, 'typed_data_too_large');
    assert.equal(res.body.error.details.limit, limit);
    assert.equal(res.body.error.details.max, TYPED_DATA_LIMITS[limit as keyof typeof TYPED_DATA_LIMITS]);
    assert.ok(res.body.error.details.found > res.body.error.details.max);
    assert.match(res.body.error.message, new RegExp(`limit ${limit}`));
    assert.equal(res.body.signature, undefined);
    assert.ok(ms < 1_000, `${label}: answered after ${ms.toFixed(0)} ms`);
    assert.ok(stallMs < 1_000, `${label}: the event loop was blocked ${stallMs.toFixed(0)} ms`);
    assert.ok(probeMs < 1_000, `${label}: GET /v1/session answered after ${probeMs.toFixed(0)} ms`);
    // Refused as bad input: audited with its code, nothing signed.
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
    assert.equal(audit.type, 'sign.request');
    assert.equal(audit.data.errorCode, 'typed_data_too_large');
    return res;
  }

  test("the reviewer's request (a 120,000-character field name, 2,000 elements, 138 kB; 40 s of hashing before): refused at once, nameLength", async () => {
    await refusedFast('120,000-character field name x 2,000 elements', stall('a'.repeat(120_000), 2_000), 'nameLength');
  });

  test('a 120,000-character type name, a 300-character field type: nameLength, typeLength', async () => {
    const long = 'H'.repeat(120_000);
    await refusedFast('120,000-character type name', { chainId: 8453, typedData: { domain: { name: 'x', chainId: 8453 }, types: { Main: [{ name: 'list', type: `${long}[]` }], [long]: [{ name: 'a', type: 'uint8' }] }, primaryType: 'Main', message: { list: [] } } }, 'nameLength');
    await refusedFast('a field type of 300 characters', { chainId: 8453, typedData: { domain: { name: 'x', chainId: 8453 }, types: { Main: [{ name: 'list', type: `uint8[${'0'.repeat(290)}1]` }] }, primaryType: 'Main', message: { list: [1] } } }, 'typeLength');
  });

  test('within the name limits, 65 types, 65 fields, an encodeType over 8 KiB, more values than 8,192: each refused by its limit', async () => {
    const domain = { name: 'x', chainId: 8453 };
    const types65: Record<string, { name: string; type: string }[]> = { Main: [{ name: 'v', type: 'uint8' }] };
    for (let i = 0; i < 64; i++) types65[`T${i}`] = [{ name: 'v', type: 'uint8' }];
    await refusedFast('65 types', { chainId: 8453, typedData: { domain, types: types65, primaryType: 'Main', message: { v: 1 } } }, 'types');
    const wide = Array.from({ length: 65 }, (_, i) => ({ name: `f${i}`, type: 'uint8' }));
    await refusedFast('65 fields', { chainId: 8453, typedData: { domain, types: { Main: wide }, primaryType: 'Main', message: Object.fromEntries(wide.map((f) => [f.name, 1])) } }, 'fieldsPerType');
    // Two structs of 60 fields with 64-character names: each alone is about 4,500 characters, Main uses both.
    const fields = (p: string) => Array.from({ length: 60 }, (_, i) => ({ name: `${p}${String(i).padStart(63, '0')}`, type: 'uint256' }));
    await refusedFast('encodeType over 8 KiB', { chainId: 8453, typedData: { domain, types: { Main: [{ name: 'a', type: 'A' }, { name: 'b', type: 'B' }], A: fields('a'), B: fields('b') }, primaryType: 'Main', message: { a: {}, b: {} } } }, 'encodedTypeLength');
    // The reviewer's shape with short names: 4,200 elements of {x: []} are 8,401 values.
    await refusedFast('8,401 values', stall('a', 4_200), 'messageValues');
    // An array longer than what is left is refused before any element is read.
    await refusedFast('a flat array of 9,000 numbers', { chainId: 8453, typedData: { domain, types: { Main: [{ name: 'list', type: 'uint8[]' }] }, primaryType: 'Main', message: { list: Array(9_000).fill(1) } } }, 'messageValues');
  });

  test('eth_signTypedData_v4 (JSON-RPC) refuses the same request with the same code and limit', async () => {
    const { typedData } = stall('a'.repeat(120_000), 2_000);
    const { result: res, ms } = await timed('eth_signTypedData_v4, 120,000-character field name', () => h.call('POST', '/v1/rpc/8453', { token, body: { jsonrpc: '2.0', id: 1, method: 'eth_signTypedData_v4', params: [agent.address, JSON.stringify(typedData)] } }));
    assert.equal(res.body.result, undefined);
    assert.equal(res.body.error.data.code, 'typed_data_too_large');
    assert.equal(res.body.error.data.limit, 'nameLength');
    assert.ok(ms < 1_000);
  });

  test('at the limits, typed data still signs: 4,000 elements of a struct with a 64-character field name; a Seaport order with 100 consideration items', async () => {
    const check = async (label: string, body: { typedData: Record<string, unknown> }) => {
      const { result: res, stallMs } = await timed(label, () => h.call('POST', '/v1/sign/typed-data', { token, body }), (r) => `${JSON.stringify(body).length} bytes, ${r.status}`);
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.ok(stallMs < 1_000, `${label}: the event loop was blocked ${stallMs.toFixed(0)} ms`);
      // The signature is over EIP-712's digest as viem computes it.
      const digest = hashTypedData(body.typedData as never);
      assert.equal((await recoverAddress({ hash: digest, signature: res.body.signature as Hex })).toLowerCase(), agent.address.toLowerCase());
    };
    await check('4,000 elements, 64-character field name (8,001 values)', stall('a'.repeat(64), 4_000));
    // Near both limits at once: 2,700 elements of a struct whose encodeType has about 8,000 characters (viem
    // alone re-encodes and hashes that string for each element: seconds).
    const many = (p: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${p}${String(i).padStart(63, '0')}`, type: 'uint256' }));
    const wideTypes = { Main: [{ name: 'list', type: 'E[]' }], E: [{ name: 'x', type: 'H[]' }, { name: 'y', type: 'G[]' }], H: many('h', 60), G: many('g', 48) };
    assert.ok(encodeType('E', wideTypes).length > 7_900 && encodeType('Main', wideTypes).length <= TYPED_DATA_LIMITS.encodedTypeLength);
    await check('2,700 elements of a struct with an 8,000-character encodeType', { typedData: { domain: { name: 'x', chainId: 8453 }, types: wideTypes, primaryType: 'Main', message: { list: Array.from({ length: 2_700 }, () => ({ x: [], y: [] })) } } });
    const item = (i: number) => ({ itemType: 1, token: `0x${'12'.repeat(20)}`, identifierOrCriteria: '0', startAmount: String(1_000 + i), endAmount: String(1_000 + i), recipient: `0x${(i + 1).toString(16).padStart(40, '0')}` });
    await check('Seaport order, 100 consideration items', { typedData: {
      domain: seaportDomain, types: SEAPORT_TYPES, primaryType: 'OrderComponents',
      message: {
        offerer: agent.address, zone: `0x${'00'.repeat(20)}`, offer: [{ itemType: 2, token: `0x${'34'.repeat(20)}`, identifierOrCriteria: '7', startAmount: '1', endAmount: '1' }],
        consideration: Array.from({ length: 100 }, (_, i) => item(i)), orderType: 0, startTime: '1700000000', endTime: '1900000000',
        zoneHash: `0x${'00'.repeat(32)}`, salt: '42', conduitKey: `0x${'00'.repeat(32)}`, counter: '0',
      },
    } });
  });
});
