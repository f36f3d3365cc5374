// Valid seed inputs for mutation fuzzing, and the mutation arbitraries. A mutation picks any node of a
// valid request (an object key, an array slot, a leaf) and replaces, deletes or extends it with a hostile
// value, so most cases get deep into a decoder before they go wrong.
import fc from 'fast-check';
import { ALICE, USDC, usdcAuthorization, usdcPolicy, usdcTransfer } from '../../packages/server/src/testing/harness.ts';

const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const SPENDER = '0x4444444444444444444444444444444444444444';
const DOMAIN_USDC = { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC };
const DOMAIN_PERMIT2 = { name: 'Permit2', chainId: 8453, verifyingContract: PERMIT2 };
const PERMIT_DETAILS = [
  { name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' },
];
const TOKEN_PERMISSIONS = [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }];
const far = String(Math.floor(Date.now() / 1000) + 3600);

export const transactionSeeds: unknown[] = [
  usdcTransfer(ALICE, 1_000_000n, 3),
  { chainId: 8453, transaction: { type: 'eip1559', to: ALICE, value: '1000', nonce: 1, gas: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' } },
  { chainId: 1, transaction: { type: 'legacy', to: ALICE, value: '0x10', nonce: '0x2', gas: 21000, gasPrice: '1000000000' } },
  { chainId: 8453, transaction: { type: 'eip2930', to: USDC, data: `0x095ea7b3${SPENDER.slice(2).padStart(64, '0')}${'f'.repeat(64)}`, nonce: 0, gas: '60000', gasPrice: '1', accessList: [{ address: USDC, storageKeys: [`0x${'00'.repeat(32)}`] }] } },
  { chainId: 8453, transaction: { type: 'eip1559', data: '0x6080604052', nonce: 0, gas: '100000', maxFeePerGas: '1', maxPriorityFeePerGas: '1' } },
  { chainId: 8453, serializedTransaction: '0x02e98221050380830f42408252089411111111111111111111111111111111111111118203e880c0' },
];

export const typedDataSeeds: unknown[] = [
  usdcAuthorization(ALICE, ALICE, 1_000_000n, Number(far)),
  {
    typedData: {
      domain: DOMAIN_USDC,
      types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
      primaryType: 'Permit',
      message: { owner: ALICE, spender: SPENDER, value: '5000000', nonce: '0', deadline: far },
    },
  },
  {
    typedData: {
      domain: DOMAIN_PERMIT2,
      types: { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS },
      primaryType: 'PermitSingle',
      message: { details: { token: USDC, amount: '1000000', expiration: far, nonce: '0' }, spender: SPENDER, sigDeadline: far },
    },
  },
  {
    typedData: {
      domain: DOMAIN_PERMIT2,
      types: { PermitBatch: [{ name: 'details', type: 'PermitDetails[]' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails: PERMIT_DETAILS },
      primaryType: 'PermitBatch',
      message: { details: [{ token: USDC, amount: '1000000', expiration: far, nonce: '0' }, { token: ALICE, amount: '1', expiration: far, nonce: '1' }], spender: SPENDER, sigDeadline: far },
    },
  },
  {
    typedData: {
      domain: DOMAIN_PERMIT2,
      types: { PermitTransferFrom: [{ name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }], TokenPermissions: TOKEN_PERMISSIONS },
      primaryType: 'PermitTransferFrom',
      message: { permitted: { token: USDC, amount: '1000000' }, spender: SPENDER, nonce: '7', deadline: far },
    },
  },
  {
    typedData: {
      domain: DOMAIN_PERMIT2,
      types: {
        PermitBatchWitnessTransferFrom: [{ name: 'permitted', type: 'TokenPermissions[]' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }, { name: 'witness', type: 'Order' }],
        TokenPermissions: TOKEN_PERMISSIONS,
        Order: [{ name: 'id', type: 'bytes32' }, { name: 'tags', type: 'string[]' }, { name: 'amounts', type: 'int64[2]' }],
      },
      primaryType: 'PermitBatchWitnessTransferFrom',
      message: { permitted: [{ token: USDC, amount: '1' }], spender: SPENDER, nonce: '8', deadline: far, witness: { id: `0x${'12'.repeat(32)}`, tags: ['a', 'b'], amounts: ['-1', '2'] } },
    },
  },
  { chainId: 8453, typedData: { domain: { name: 'Mail', version: '1' }, types: { Mail: [{ name: 'contents', type: 'string' }, { name: 'blob', type: 'bytes' }] }, primaryType: 'Mail', message: { contents: 'hi', blob: '0x00ff' } } },
];

export const messageSeeds: unknown[] = [
  { chainId: 8453, message: 'Sign in to example.com\nNonce: 42' },
  { chainId: 1, message: { raw: '0xdeadbeef' } },
  { chainId: 8453, message: '' },
];

export const policySeeds: unknown[] = [
  usdcPolicy({ approvalAbove: '50000000' }),
  {
    version: 1,
    sets: { partners: [ALICE], bad: [SPENDER] },
    rules: [
      { name: 'allow-calls', type: 'allow', match: { chains: ['eip155:8453'], kinds: ['contract.call', 'erc20.approve'], contracts: [USDC] } },
      { name: 'no-bad', type: 'deny', match: { to: '$bad' } },
      { name: 'rate', type: 'rate_limit', max: 10, window: '1m', scope: 'session' },
      { name: 'approvals', type: 'approvals', max: '1000000', allow_unlimited: false, spenders: [SPENDER] },
      { name: 'validity', type: 'validity_window', max: '1h' },
      { name: 'fleet-budget', type: 'budget', asset: `eip155:8453/erc20:${USDC}`, max: '9', window: '7d', scope: 'fleet', per_destination: true },
    ],
  },
];

/** Values that have broken parsers before: edge numbers, near-miss hex, type confusion, prototype keys. */
const HOSTILE = [
  null, true, false, 0, -1, 1.5, 1e21, 2 ** 53, 2 ** 53 + 2, -0, Number.MAX_VALUE, [], {}, [[[]]], '', ' ', '0', '-0', '-1', '1.5', '1e18', '0x', '0x0', '0x00', '0X10',
  '0x-1', '0xg', ' 0x1', '0x1 ', '00', '+1', '1_000', 'NaN', 'Infinity', (2n ** 256n).toString(), (2n ** 256n - 1n).toString(), `0x1${'0'.repeat(64)}`, `0x${'f'.repeat(64)}`,
  `0x${'f'.repeat(63)}`, `0x${'ab'.repeat(20)}`, `0x${'AB'.repeat(20)}`, `0x${'ab'.repeat(19)}`, `0x${'ab'.repeat(21)}`, '0x0000000000000000000000000000000000000000',
  'eip155:8453', 'eip155:0', 'eip155:-1', 'eip155:99999999999999999999', 'solana:mainnet', 8453, 0x7fffffff, 2 ** 32, 'legacy', 'eip1559', 'eip2930', 'eip4844', 'eip7702',
  'address', 'uint256', 'uint0', 'uint257', 'int8', 'bytes0', 'bytes33', 'bytes32', 'string', 'bool', 'address[]', 'uint256[0]', 'uint256[99999999]', 'Self', 'Self[]',
  'EIP712Domain', 'TransferWithAuthorization', 'Permit', 'PermitSingle', '__proto__', 'constructor', 'prototype', 'toString', '\u0000', '\ud800', '🙂', 'a'.repeat(10_000),
  { __proto__: { polluted: true } }, { raw: '0x' }, { name: 'x', type: 'x' }, [{ name: 'x', type: 'uint256' }], { '': '' },
];

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }).map((n) => n.toString()) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 300n }).map((n) => `0x${n.toString(16)}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

interface Mutation {
  op: 'set' | 'delete' | 'add' | 'wrap';
  at: number;
  key: string;
  value: unknown;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('set', 'set', 'set', 'delete', 'add', 'wrap'),
  at: fc.nat(),
  key: fc.oneof(fc.constantFrom('to', 'value', 'data', 'type', 'name', 'chainId', 'nonce', 'from', '__proto__', 'constructor', 'raw', 'gasPrice', 'blobs', 'authorizationList', 'v', 'r'), fc.string({ maxLength: 8 })),
  value: hostileValue,
});

/** Every container (object or array) in a JSON tree, with the key to reach each child. */
function slots(node: unknown, out: [container: any, key: string | number][] = []): [any, string | number][] {
  if (Array.isArray(node)) node.forEach((child, i) => (out.push([node, i]), slots(child, out)));
  else if (node && typeof node === 'object') for (const k of Object.keys(node)) out.push([node, k]), slots((node as any)[k], out);
  return out;
}

function apply(seed: unknown, mutations: Mutation[]): unknown {
  const root = { root: structuredClone(seed) };
  for (const mutation of mutations) {
    // A private copy: hostile constants are shared between cases and must never be mutated in place.
    const m = { ...mutation, value: structuredClone(mutation.value) };
    const all = slots(root);
    if (all.length === 0) break; // the root itself was deleted
    const [container, key] = all[m.at % all.length]!;
    if (m.op === 'set') container[key] = m.value;
    else if (m.op === 'delete') Array.isArray(container) ? container.splice(Number(key), 1) : delete container[key];
    else if (m.op === 'wrap') container[key] = [container[key]];
    else {
      const target = container[key];
      if (Array.isArray(target)) target.push(m.value);
      // An own property even for "__proto__", as JSON.parse would create it.
      else if (target && typeof target === 'object') Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      else container[key] = { [m.key]: m.value };
    }
  }
  return root.root;
}

/** Mutants of the seeds, plus a share of entirely random JSON; always JSON-shaped, as an HTTP body would be. */
export function mutantsOf(seeds: unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([s, ms]) => apply(s, ms)) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  ).map((value) => {
    try {
      return JSON.parse(JSON.stringify(value) ?? 'null');
    } catch {
      return value;
    }
  });
}
