import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AirlockError } from '@airlock/core';
import { bytesToHex, getAddress, hashTypedData } from 'viem';
import { createEvmAdapter } from './adapter.ts';
import { signer } from './test-key.ts';

const adapter = createEvmAdapter();
const usdc = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const bob = '0xb0b0000000000000000000000000000000000b0b';
const permit2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const weth = '0x4200000000000000000000000000000000000006';
const MAX256 = ((1n << 256n) - 1n).toString();
const MAX160 = ((1n << 160n) - 1n).toString();

function decode(payload: unknown) {
  return adapter.decode('evm.typed_data', payload, signer);
}
function rejects(payload: unknown, code: string, messagePart?: string) {
  assert.throws(() => decode(payload), (e: unknown) => {
    assert.ok(e instanceof AirlockError, String(e));
    assert.equal(e.code, code, e.message);
    if (messagePart) assert.ok(e.message.includes(messagePart), e.message);
    return true;
  });
}

const usdcDomain = { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: getAddress(usdc) };
const authorizationTypes = [
  { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
  { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
];
function authorization(primaryType: string) {
  return {
    typedData: {
      domain: usdcDomain,
      types: { [primaryType]: authorizationTypes },
      primaryType,
      message: { from: signer.address, to: getAddress(bob), value: '1500000', validAfter: 0, validBefore: '1800000000', nonce: `0x${'ab'.repeat(32)}` },
    },
  };
}

test('EIP-3009 TransferWithAuthorization and ReceiveWithAuthorization: authorization spend with validity', () => {
  for (const [primaryType, kind] of [['TransferWithAuthorization', 'eip3009.transfer_with_authorization'], ['ReceiveWithAuthorization', 'eip3009.receive_with_authorization']]) {
    const payload = authorization(primaryType as string);
    const { intent, digest } = decode(payload);
    assert.equal(intent.kind, kind);
    assert.equal(intent.chain, 'eip155:8453');
    assert.equal(intent.to, bob);
    assert.deepEqual(intent.spends, [{ asset: `eip155:8453/erc20:${usdc}`, amount: 1_500_000n, to: bob, kind: 'authorization' }]);
    assert.deepEqual(intent.validity, { validAfter: 0, validBefore: 1_800_000_000 });
    assert.deepEqual(intent.typedData, { primaryType, domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: usdc } });
    // The digest is the EIP-712 hash of what was sent (viem as the reference, values as the wallet would type them).
    const m = payload.typedData.message;
    const expected = hashTypedData({ domain: usdcDomain, types: payload.typedData.types, primaryType, message: { ...m, value: 1_500_000n, validAfter: 0n, validBefore: 1_800_000_000n } } as never);
    assert.equal(bytesToHex(digest), expected);
  }
});

test('EIP-2612 Permit: approval to the spender with deadline; max uint256 is unlimited', () => {
  const types = { Permit: [
    { name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' },
  ] };
  const message = { owner: signer.address, spender: bob, value: '1000', nonce: 0, deadline: 1_700_000_000 };
  const { intent } = decode({ typedData: { domain: usdcDomain, types, primaryType: 'Permit', message } });
  assert.equal(intent.kind, 'eip2612.permit');
  assert.equal(intent.to, bob);
  assert.deepEqual(intent.approvals, [{ asset: `eip155:8453/erc20:${usdc}`, amount: 1000n, spender: bob, unlimited: false, expiresAt: 1_700_000_000 }]);
  assert.deepEqual(intent.validity, { validBefore: 1_700_000_000 });
  assert.deepEqual(intent.spends, []);

  const unlimited = decode({ typedData: { domain: usdcDomain, types, primaryType: 'Permit', message: { ...message, value: MAX256, deadline: MAX256 } } }).intent;
  assert.equal(unlimited.approvals[0]?.unlimited, true);
  // A deadline of max uint256 means "never": it stays the largest representable time, not a wrapped small one.
  assert.equal(unlimited.validity?.validBefore, Number.MAX_SAFE_INTEGER);
  assert.match(unlimited.summary, /UNLIMITED/);

  // Lookalike: a type called Permit with different fields is not a permit.
  const lookalike = { Permit: [{ name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }] };
  const unknown = decode({ typedData: { domain: usdcDomain, types: lookalike, primaryType: 'Permit', message: { spender: bob, value: 1 } } }).intent;
  assert.equal(unknown.kind, 'typed_data.unknown');
  assert.deepEqual(unknown.approvals, []);
  // Same names, different order: a different type hash, so not EIP-2612 either.
  const reordered = { Permit: [...types.Permit].reverse() };
  assert.equal(decode({ typedData: { domain: usdcDomain, types: reordered, primaryType: 'Permit', message } }).intent.kind, 'typed_data.unknown');
  // Missing verifyingContract: the token is unknown, so refuse instead of guessing.
  rejects({ typedData: { domain: { name: 'X', chainId: 8453 }, types, primaryType: 'Permit', message } }, 'undecodable_payload', 'verifyingContract');
});

const permit2Domain = { name: 'Permit2', chainId: 8453, verifyingContract: permit2 };
const PermitDetails = [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' }];
const TokenPermissions = [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }];

test('Permit2 PermitSingle and PermitBatch: approvals per token, max uint160 is unlimited', () => {
  const single = decode({ typedData: {
    domain: permit2Domain,
    types: { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails },
    primaryType: 'PermitSingle',
    message: { details: { token: usdc, amount: MAX160, expiration: 1_900_000_000, nonce: 0 }, spender: bob, sigDeadline: 1_800_000_000 },
  } }).intent;
  assert.equal(single.kind, 'permit2.permit_single');
  assert.equal(single.to, bob);
  assert.deepEqual(single.approvals, [{ asset: `eip155:8453/erc20:${usdc}`, amount: (1n << 160n) - 1n, spender: bob, unlimited: true, expiresAt: 1_900_000_000 }]);
  assert.deepEqual(single.validity, { validBefore: 1_800_000_000 });

  const batch = decode({ typedData: {
    domain: permit2Domain,
    types: { PermitBatch: [{ name: 'details', type: 'PermitDetails[]' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails },
    primaryType: 'PermitBatch',
    message: { details: [{ token: usdc, amount: 5, expiration: 10, nonce: 0 }, { token: weth, amount: 6, expiration: 11, nonce: 1 }], spender: bob, sigDeadline: 99 },
  } }).intent;
  assert.equal(batch.kind, 'permit2.permit_batch');
  assert.deepEqual(batch.approvals.map((a) => [a.asset, a.amount, a.unlimited, a.expiresAt]), [
    [`eip155:8453/erc20:${usdc}`, 5n, false, 10], [`eip155:8453/erc20:${weth}`, 6n, false, 11],
  ]);

  // uint160 amounts above 2^160-1 are not valid Permit2 data.
  rejects({ typedData: {
    domain: permit2Domain,
    types: { PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }], PermitDetails },
    primaryType: 'PermitSingle',
    message: { details: { token: usdc, amount: (1n << 160n).toString(), expiration: 1, nonce: 0 }, spender: bob, sigDeadline: 1 },
  } }, 'invalid_amount', 'typedData.message.details.amount');
});

test('Permit2 PermitTransferFrom, batch and witness variants: authorization spends to the spender', () => {
  const transferFields = [{ name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }];
  const message = { permitted: { token: usdc, amount: '2500' }, spender: bob, nonce: '7', deadline: 1_800_000_000 };
  const plain = decode({ typedData: { domain: permit2Domain, types: { PermitTransferFrom: transferFields, TokenPermissions }, primaryType: 'PermitTransferFrom', message } }).intent;
  assert.equal(plain.kind, 'permit2.permit_transfer_from');
  assert.deepEqual(plain.spends, [{ asset: `eip155:8453/erc20:${usdc}`, amount: 2500n, to: bob, kind: 'authorization' }]);
  assert.deepEqual(plain.validity, { validBefore: 1_800_000_000 });

  const witness = decode({ typedData: {
    domain: permit2Domain,
    types: { PermitWitnessTransferFrom: [...transferFields, { name: 'witness', type: 'ExactInput' }], TokenPermissions, ExactInput: [{ name: 'recipient', type: 'address' }, { name: 'minOut', type: 'uint256' }] },
    primaryType: 'PermitWitnessTransferFrom',
    message: { ...message, witness: { recipient: bob, minOut: 1 } },
  } }).intent;
  assert.equal(witness.kind, 'permit2.permit_witness_transfer_from');
  assert.deepEqual(witness.spends, plain.spends);

  const batchFields = [{ name: 'permitted', type: 'TokenPermissions[]' }, ...transferFields.slice(1)];
  const batch = decode({ typedData: {
    domain: permit2Domain, types: { PermitBatchTransferFrom: batchFields, TokenPermissions }, primaryType: 'PermitBatchTransferFrom',
    message: { ...message, permitted: [{ token: usdc, amount: 1 }, { token: weth, amount: 2 }] },
  } }).intent;
  assert.equal(batch.kind, 'permit2.permit_transfer_from');
  assert.deepEqual(batch.spends.map((s) => [s.asset, s.amount, s.to]), [[`eip155:8453/erc20:${usdc}`, 1n, bob], [`eip155:8453/erc20:${weth}`, 2n, bob]]);

  // TokenPermissions with a different field list: not Permit2.
  const fake = decode({ typedData: { domain: permit2Domain, types: { PermitTransferFrom: transferFields, TokenPermissions: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint128' }] }, primaryType: 'PermitTransferFrom', message } }).intent;
  assert.equal(fake.kind, 'typed_data.unknown');
});

test('unknown typed data decodes as typed_data.unknown with domain info and no spends', () => {
  const { intent } = decode({ chainId: 10, typedData: {
    domain: { name: 'Some App', version: '1', salt: `0x${'01'.repeat(32)}` },
    types: { Login: [{ name: 'user', type: 'address' }, { name: 'at', type: 'uint64' }, { name: 'ok', type: 'bool' }, { name: 'tags', type: 'string[]' }] },
    primaryType: 'Login',
    message: { user: bob, at: 5, ok: true, tags: ['a'] },
  } });
  assert.equal(intent.kind, 'typed_data.unknown');
  assert.equal(intent.chain, 'eip155:10');
  assert.deepEqual(intent.spends, []);
  assert.deepEqual(intent.typedData, { primaryType: 'Login', domain: { name: 'Some App', version: '1', salt: `0x${'01'.repeat(32)}` } });
});

test('chain rules: domain chainId wins, must agree with chainId, and one of them is required', () => {
  const payload = authorization('TransferWithAuthorization');
  assert.equal(decode({ ...payload, chainId: 8453 }).intent.chain, 'eip155:8453');
  rejects({ ...payload, chainId: 1 }, 'chain_mismatch');
  const { chainId: _c, ...noChain } = usdcDomain;
  rejects({ typedData: { ...payload.typedData, domain: noChain } }, 'invalid_request', 'chainId');
  assert.equal(decode({ chainId: 'eip155:8453', typedData: { ...payload.typedData, domain: noChain } }).intent.chain, 'eip155:8453');
});

test('malformed typed data fails closed with the field path', () => {
  const base = authorization('TransferWithAuthorization').typedData;
  rejects({ typedData: { ...base, message: { ...base.message, value: '-5' } } }, 'invalid_amount', 'typedData.message.value');
  rejects({ typedData: { ...base, message: { ...base.message, to: '0x12' } } }, 'invalid_address', 'typedData.message.to');
  rejects({ typedData: { ...base, message: { ...base.message, nonce: '0x1234' } } }, 'invalid_hex', 'typedData.message.nonce');
  const { nonce: _n, ...missing } = base.message;
  rejects({ typedData: { ...base, message: missing } }, 'undecodable_payload', 'typedData.message.nonce');
  rejects({ typedData: { ...base, message: { ...base.message, memo: 'x' } } }, 'undecodable_payload', 'memo');
  rejects({ typedData: { ...base, primaryType: 'Nope' } }, 'undecodable_payload', 'primaryType');
  rejects({ typedData: { ...base, types: { TransferWithAuthorization: [{ name: 'x', type: 'Undefined' }] }, message: { x: 1 } } }, 'undecodable_payload', 'unknown type');
  rejects({ typedData: { ...base, types: { ...base.types, address: [{ name: 'a', type: 'uint8' }] } } }, 'undecodable_payload', 'type name');
  // An EIP712Domain that leaves out chainId would let the signature float across chains.
  rejects({ typedData: { ...base, types: { ...base.types, EIP712Domain: [{ name: 'name', type: 'string' }] } } }, 'undecodable_payload', 'EIP712Domain');
  rejects({ typedData: { ...base, domain: { ...usdcDomain, extra: 1 } } }, 'invalid_request', 'typedData.domain');
  rejects({ typedData: { ...base, domain: { ...usdcDomain, verifyingContract: '0xzz' } } }, 'invalid_address', 'typedData.domain.verifyingContract');
});

describe('struct types that recurse or nest too deep are refused (payload_too_deep), never a stack overflow', () => {
  const typed = (types: Record<string, { name: string; type: string }[]>, primaryType: string, message: unknown) => ({ typedData: { domain: { name: 'Tree', chainId: 8453 }, types, primaryType, message } });

  test('a struct that contains itself through an array', () => {
    rejects(typed({ Node: [{ name: 'value', type: 'uint256' }, { name: 'children', type: 'Node[]' }] }, 'Node', { value: 1, children: [{ value: 2, children: [] }] }), 'payload_too_deep', 'contains itself');
  });

  test('two structs that contain each other, one of them never reached from the primary type', () => {
    rejects(typed({ Mail: [{ name: 'x', type: 'uint8' }], A: [{ name: 'b', type: 'B[1]' }], B: [{ name: 'a', type: 'A' }] }, 'Mail', { x: 1 }), 'payload_too_deep', 'contains itself');
  });

  test('a chain of distinct struct types deeper than 64 levels (10,000 types)', () => {
    for (const n of [65, 10_000]) {
      const types: Record<string, { name: string; type: string }[]> = {};
      for (let i = 0; i < n; i++) types[`T${i}`] = [{ name: 'v', type: i + 1 < n ? `T${i + 1}` : 'uint8' }];
      rejects(typed(types, 'T0', { v: { v: 1 } }), 'payload_too_deep', 'deeper than 64');
    }
  });

  test('an array type with more than 64 dimensions', () => {
    rejects(typed({ Grid: [{ name: 'cells', type: `uint8${'[]'.repeat(1000)}` }] }, 'Grid', { cells: [] }), 'payload_too_deep', 'deeper than 64');
  });

  test('a deep but finite chain of struct types within the limit is still accepted', () => {
    const types: Record<string, { name: string; type: string }[]> = {};
    let message: unknown = { v: 1 };
    for (let i = 39; i >= 0; i--) {
      types[`T${i}`] = [{ name: 'v', type: i === 39 ? 'uint8' : `T${i + 1}` }];
      if (i < 39) message = { v: message };
    }
    const { intent } = decode(typed(types, 'T0', message));
    assert.equal(intent.kind, 'typed_data.unknown');
  });
});

test('EIP-3009 from, CancelAuthorization authorizer and EIP-2612 owner must be the signer (invalid_request naming the field)', () => {
  const other = '0x5555555555555555555555555555555555555555';
  for (const primaryType of ['TransferWithAuthorization', 'ReceiveWithAuthorization']) {
    const payload = authorization(primaryType);
    rejects({ typedData: { ...payload.typedData, message: { ...payload.typedData.message, from: other } } }, 'invalid_request', 'typedData.message.from is not the signing agent');
  }
  const cancelTypes = { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] };
  rejects({ typedData: { domain: usdcDomain, types: cancelTypes, primaryType: 'CancelAuthorization', message: { authorizer: other, nonce: `0x${'ab'.repeat(32)}` } } }, 'invalid_request', 'typedData.message.authorizer');
  assert.equal(decode({ typedData: { domain: usdcDomain, types: cancelTypes, primaryType: 'CancelAuthorization', message: { authorizer: getAddress(signer.address), nonce: `0x${'ab'.repeat(32)}` } } }).intent.kind, 'typed_data.unknown');
  const permitTypes = { Permit: [
    { name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' },
  ] };
  rejects({ typedData: { domain: usdcDomain, types: permitTypes, primaryType: 'Permit', message: { owner: other, spender: bob, value: '1', nonce: 0, deadline: 1 } } }, 'invalid_request', 'typedData.message.owner');
  // A lookalike (other fields) names no account the decoder knows: unknown typed data, left to policy.
  assert.equal(decode({ typedData: { domain: usdcDomain, types: { Permit: permitTypes.Permit.slice(0, 2) }, primaryType: 'Permit', message: { owner: other, spender: bob } } }).intent.kind, 'typed_data.unknown');
});

describe('decoding limits (typed_data_too_large, details.limit): at the limit decoded, one past refused', () => {
  const typed = (types: Record<string, { name: string; type: string }[]>, message: unknown) => ({ typedData: { domain: { name: 'L', chainId: 8453 }, types, primaryType: 'Main', message } });
  function tooLarge(payload: unknown, limit: string) {
    assert.throws(() => decode(payload), (e: unknown) => {
      assert.ok(e instanceof AirlockError, String(e));
      assert.equal(e.code, 'typed_data_too_large', e.message);
      assert.equal(e.details?.limit, limit);
      return true;
    });
  }
  test('nameLength: type and field names of 64 characters, not 65', () => {
    for (const n of [64, 65]) {
      const name = `N${'a'.repeat(n - 1)}`;
      const viaField = typed({ Main: [{ name, type: 'uint8' }] }, { [name]: 1 });
      const viaType = { typedData: { ...typed({ [name]: [{ name: 'v', type: 'uint8' }] }, { v: 1 }).typedData, primaryType: name } };
      if (n === 64) [viaField, viaType].forEach((p) => decode(p));
      else [viaField, viaType].forEach((p) => tooLarge(p, 'nameLength'));
    }
  });
  test('fieldsPerType and types: 64, not 65', () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'uint8' }));
    decode(typed({ Main: fields(64) }, Object.fromEntries(fields(64).map((f) => [f.name, 1]))));
    tooLarge(typed({ Main: fields(65) }, Object.fromEntries(fields(65).map((f) => [f.name, 1]))), 'fieldsPerType');
    const types = (n: number) => Object.fromEntries([['Main', [{ name: 'v', type: 'uint8' }]], ...Array.from({ length: n - 2 }, (_, i) => [`T${i}`, [{ name: 'v', type: 'uint8' }]])]);
    decode(typed(types(64), { v: 1 })); // with EIP712Domain, 64 types
    tooLarge(typed(types(65), { v: 1 }), 'types');
  });
  test('messageValues: 8,192 values, not 8,193 (the array itself counts)', () => {
    decode(typed({ Main: [{ name: 'list', type: 'uint8[]' }] }, { list: Array(8_190).fill(1) })); // Main + list + 8,190
    tooLarge(typed({ Main: [{ name: 'list', type: 'uint8[]' }] }, { list: Array(8_191).fill(1) }), 'messageValues');
  });
});
