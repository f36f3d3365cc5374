// SafeTx decoding (Safe 1.3+ EIP-712) and how policy grants its calls. The on-chain side (a real Safe executing
// what was co-signed) is packages/x402-testbed/src/safe-multisig.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AirlockError } from '@airlock/core';
import type { Intent } from '@airlock/core';
import { bytesToHex, concat, encodeFunctionData, encodePacked, erc20Abi, hashTypedData, size, type Address, type Hex } from 'viem';
import { decide, input, layer } from '../../../core/src/policy/testing/fixtures.ts';
import { createEvmAdapter } from './adapter.ts';
import { signer } from './test-key.ts';

const adapter = createEvmAdapter();
const SAFE = '0x5afe00000000000000000000000000000000cafe' as Address;
const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913' as Address;
const BOB = '0xb0b0000000000000000000000000000000000b0b' as Address;
const EVIL = '0x3333333333333333333333333333333333333333' as Address;
const ZERO = '0x0000000000000000000000000000000000000000' as Address;
const MULTI_SEND_141 = '0x38869bf66a61cf6bdb996a6ae40d5853fd43b526' as Address; // safe-deployments: 1.4.1 canonical
const MULTI_SEND_CALL_ONLY_150 = '0xa83c336b20401af773b6219ba5027174338d1836' as Address;
const USDC_ASSET = `eip155:8453/erc20:${USDC}`;

const FIELDS = [
  ['to', 'address'], ['value', 'uint256'], ['data', 'bytes'], ['operation', 'uint8'], ['safeTxGas', 'uint256'],
  ['baseGas', 'uint256'], ['gasPrice', 'uint256'], ['gasToken', 'address'], ['refundReceiver', 'address'], ['nonce', 'uint256'],
].map(([name, type]) => ({ name: name!, type: type! }));

function safeTx(message: Record<string, unknown>, over: { fields?: { name: string; type: string }[]; domain?: Record<string, unknown> } = {}) {
  return {
    typedData: {
      domain: over.domain ?? { chainId: 8453, verifyingContract: SAFE },
      types: { SafeTx: over.fields ?? FIELDS },
      primaryType: 'SafeTx',
      // An `undefined` in `message` leaves that field out.
      message: Object.fromEntries(Object.entries({ value: '0', data: '0x', operation: 0, safeTxGas: '0', baseGas: '0', gasPrice: '0', gasToken: ZERO, refundReceiver: ZERO, nonce: '7', ...message }).filter(([, v]) => v !== undefined)),
    },
  };
}
const transfer = (to: Address, amount: bigint): Hex => encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
const approve = (spender: Address, amount: bigint): Hex => encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [spender, amount] });
function multiSend(entries: { operation?: number; to: Address; value?: bigint; data?: Hex }[], trailing: Hex = '0x'): Hex {
  const packed = concat([...entries.map((e) => encodePacked(['uint8', 'address', 'uint256', 'uint256', 'bytes'], [e.operation ?? 0, e.to, e.value ?? 0n, BigInt(size(e.data ?? '0x')), e.data ?? '0x'])), trailing]);
  return encodeFunctionData({ abi: [{ type: 'function', name: 'multiSend', stateMutability: 'payable', inputs: [{ name: 'transactions', type: 'bytes' }], outputs: [] }], args: [packed] });
}
const decode = (payload: unknown) => adapter.decode('evm.typed_data', payload, signer);
function rejects(payload: unknown, messagePart: string) {
  assert.throws(() => decode(payload), (e: unknown) => {
    assert.ok(e instanceof AirlockError, String(e));
    assert.equal(e.code, 'undecodable_payload', e.message);
    assert.ok(e.message.includes(messagePart), e.message);
    return true;
  });
}
const callsOf = (i: Intent) => i.safe!.calls.map((c) => `${c.kind} ${c.to ?? '-'} ${c.spends.map((s) => `${s.amount}/${s.kind}`).join('+')}`);

describe('SafeTx decoding', () => {
  test('a CALL paying USDC: one call from the Safe, the digest is the EIP-712 SafeTx hash, the Safe nonce is claimed', () => {
    const payload = safeTx({ to: USDC, data: transfer(BOB, 60n) });
    const { intent, digest } = decode(payload);
    assert.equal(intent.kind, 'safe.transaction');
    assert.equal(intent.from, signer.address.toLowerCase());
    assert.deepEqual(callsOf(intent), [`erc20.transfer ${BOB} 60/transfer`]);
    assert.equal(intent.safe!.calls[0]!.from, SAFE);
    assert.deepEqual(intent.safe!.calls[0]!.typedData, { primaryType: 'SafeTx', domain: { chainId: 8453, verifyingContract: SAFE } });
    assert.deepEqual(intent.spends, [{ asset: USDC_ASSET, amount: 60n, to: BOB, kind: 'transfer' }]);
    assert.deepEqual(intent.nonceKeys, [`safe|eip155:8453|${SAFE}|${signer.address.toLowerCase()}|7`]);
    const td = payload.typedData;
    assert.equal(bytesToHex(digest), hashTypedData({ ...td, message: { ...td.message, operation: 0 } } as never));
    assert.match(intent.summary, /^co-sign Safe 0x5afe.* transaction #7 on eip155:8453: transfer 60 of /);
  });

  test('native value and an approval count as spend and exposure of the Safe', () => {
    assert.deepEqual(callsOf(decode(safeTx({ to: BOB, value: '5' })).intent), [`native.transfer ${BOB} 5/value`]);
    const { intent } = decode(safeTx({ to: USDC, data: approve(EVIL, 9n) }));
    assert.deepEqual(intent.approvals, [{ asset: USDC_ASSET, amount: 9n, spender: EVIL, unlimited: false }]);
  });

  test('a MultiSend batch is each of its entries; spends add up', () => {
    const data = multiSend([{ to: USDC, data: transfer(BOB, 1n) }, { to: BOB, value: 2n }, { to: USDC, data: transfer(EVIL, 3n) }]);
    const { intent } = decode(safeTx({ to: MULTI_SEND_CALL_ONLY_150, operation: 1, data }));
    assert.equal(intent.safe!.multiSend, MULTI_SEND_CALL_ONLY_150);
    assert.deepEqual(callsOf(intent), [`erc20.transfer ${BOB} 1/transfer`, `native.transfer ${BOB} 2/value`, `erc20.transfer ${EVIL} 3/transfer`]);
    assert.deepEqual(intent.spends.map((s) => s.amount), [1n, 2n, 3n]);
    assert.equal(intent.to, undefined);
  });

  test('MultiSend (not CallOnly) entries may DELEGATECALL: such an entry is a contract.delegatecall call', () => {
    const { intent } = decode(safeTx({ to: MULTI_SEND_141, operation: 1, data: multiSend([{ operation: 1, to: EVIL, data: '0x12345678' }]) }));
    assert.deepEqual(callsOf(intent), [`contract.delegatecall ${EVIL} `]);
  });

  test('a DELEGATECALL to anything but a canonical MultiSend is a contract.delegatecall call that moves nothing readable', () => {
    const { intent } = decode(safeTx({ to: USDC, operation: 1, data: transfer(EVIL, 500n) }));
    assert.deepEqual(callsOf(intent), [`contract.delegatecall ${USDC} `]);
    assert.equal(intent.safe!.operation, 'delegatecall');
    // MultiSend's address with other calldata is not a batch either.
    assert.equal(decode(safeTx({ to: MULTI_SEND_141, operation: 1, data: '0xdeadbeef' })).intent.safe!.calls[0]!.kind, 'contract.delegatecall');
  });

  test('a gas refund is a safe.gas_refund call at its worst case, to refundReceiver (or no one named for tx.origin)', () => {
    const { intent } = decode(safeTx({ to: USDC, data: transfer(BOB, 1n), gasPrice: '10', gasToken: USDC, refundReceiver: EVIL, safeTxGas: '100000', baseGas: '20000' }));
    const refund = intent.safe!.calls[1]!;
    assert.equal(refund.kind, 'safe.gas_refund');
    assert.equal(refund.to, EVIL);
    // (safeTxGas + 50,000 overhead + data copy (69 bytes: 4 words: 6*4 + 16/512) + baseGas) x gasPrice. A token
    // transfer out of the Safe, not a network fee: its asset is a moved asset for policy.
    assert.deepEqual(refund.spends, [{ asset: USDC_ASSET, amount: (100_000n + 50_000n + 24n + 20_000n) * 10n, to: EVIL, kind: 'transfer' }]);
    const toOrigin = decode(safeTx({ to: BOB, gasPrice: '1' })).intent.safe!.calls[1]!;
    assert.equal(toOrigin.to, undefined);
    assert.equal(toOrigin.spends[0]!.asset, 'eip155:8453/slip44:60');
    assert.equal(toOrigin.spends[0]!.kind, 'value');
  });

  test('what Airlock does not read is refused, never left as unknown typed data', () => {
    const dataGas = FIELDS.map((f) => (f.name === 'baseGas' ? { name: 'dataGas', type: 'uint256' } : f));
    rejects(safeTx({ to: BOB, dataGas: '0', baseGas: undefined }, { fields: dataGas }), 'Safe 1.3+ fields');
    rejects({ ...safeTx({ to: BOB }, { domain: { verifyingContract: SAFE } }), chainId: 8453 }, 'exactly chainId and verifyingContract');
    rejects(safeTx({ to: BOB }, { domain: { name: 'Safe', chainId: 8453, verifyingContract: SAFE } }), 'exactly chainId and verifyingContract');
    rejects(safeTx({ to: BOB, operation: 2 }), 'operation must be 0 (CALL) or 1 (DELEGATECALL)');
    rejects(safeTx({ to: EVIL, operation: 1, value: '1' }), 'must be 0 with DELEGATECALL');
    rejects(safeTx({ to: MULTI_SEND_CALL_ONLY_150, operation: 1, data: multiSend([{ operation: 1, to: EVIL }]) }), 'which MultiSendCallOnly reverts on');
    rejects(safeTx({ to: MULTI_SEND_141, operation: 1, data: multiSend([{ operation: 1, to: MULTI_SEND_CALL_ONLY_150 }]) }), 'nests another MultiSend');
    rejects(safeTx({ to: MULTI_SEND_141, operation: 1, data: multiSend([{ to: ZERO, value: 1n }]) }), 'zero address');
    rejects(safeTx({ to: MULTI_SEND_141, operation: 1, data: multiSend([{ to: BOB }], '0x00') }), 'truncated');
    const lyingEntry = encodePacked(['uint8', 'address', 'uint256', 'uint256', 'bytes'], [0, BOB, 0n, 255n, '0xaabb']);
    const lying = encodeFunctionData({ abi: [{ type: 'function', name: 'multiSend', stateMutability: 'payable', inputs: [{ name: 'transactions', type: 'bytes' }], outputs: [] }], args: [lyingEntry] });
    rejects(safeTx({ to: MULTI_SEND_141, operation: 1, data: lying }), 'runs past the batch');
  });
});

describe('policy over a SafeTx', () => {
  const SAFE_RULE = { name: 'treasury', type: 'allow', match: { primary_types: ['SafeTx'], domains: [{ verifying_contract: SAFE }], kinds: ['erc20.transfer'], to: [BOB] } };
  const doc = (...rules: unknown[]) => ({ version: 1, rules });
  const evaluate = (policy: unknown, payload: unknown) => decide([layer('agent', policy)], input(decode(payload).intent));
  const found = (d: ReturnType<typeof decide>) => d.violations.map((v) => `${v.rule} ${v.code}`);

  test('a rule written for the agent\'s own transfers does not grant co-signing: a Safe call needs primary_types and domains', () => {
    const payload = safeTx({ to: USDC, data: transfer(BOB, 5n) });
    assert.deepEqual(found(evaluate(doc({ name: 'pay-bob', type: 'allow', match: { kinds: ['erc20.transfer'], to: [BOB] } }), payload)), ['agent/default no_matching_allow_rule']);
    assert.equal(evaluate(doc(SAFE_RULE), payload).decision, 'allow');
    // Another Safe's transaction is not this rule's.
    assert.equal(evaluate(doc(SAFE_RULE), safeTx({ to: USDC, data: transfer(BOB, 5n) }, { domain: { chainId: 8453, verifyingContract: EVIL } })).decision, 'deny');
  });

  test('a batch is allowed only if every call is; the whole is capped by its sum; a deny touching one call denies', () => {
    const batch = safeTx({ to: MULTI_SEND_CALL_ONLY_150, operation: 1, data: multiSend([{ to: USDC, data: transfer(BOB, 40n) }, { to: USDC, data: transfer(BOB, 40n) }]) });
    assert.equal(evaluate(doc(SAFE_RULE), batch).decision, 'allow');
    const cap = { name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '50' };
    assert.deepEqual(found(evaluate(doc(SAFE_RULE, cap), batch)), ['agent/cap amount_exceeds_max']);
    const deny = { name: 'no-native', type: 'deny', match: { kinds: ['native.transfer'] } };
    const mixed = safeTx({ to: MULTI_SEND_CALL_ONLY_150, operation: 1, data: multiSend([{ to: USDC, data: transfer(BOB, 1n) }, { to: BOB, value: 1n }]) });
    const both = { ...SAFE_RULE, match: { ...SAFE_RULE.match, kinds: ['erc20.transfer', 'native.transfer'] } };
    assert.deepEqual(found(evaluate(doc(both, deny), mixed)), ['agent/no-native denied_by_rule']);
  });

  test('DELEGATECALL and refunds are granted only by rules naming them (and the exact target)', () => {
    const delegate = safeTx({ to: EVIL, operation: 1, data: '0x12345678' });
    const byKind = { name: 'dc', type: 'allow', match: { primary_types: ['SafeTx'], domains: [{ verifying_contract: SAFE }], kinds: ['contract.delegatecall'] } };
    assert.deepEqual(found(evaluate(doc(byKind), delegate)), ['agent/default delegatecall_not_allowed']);
    const exact = { ...byKind, match: { ...byKind.match, contracts: [EVIL] } };
    assert.equal(evaluate(doc(exact), delegate).decision, 'allow');
    assert.equal(evaluate(doc({ ...byKind, match: { ...byKind.match, contracts: [BOB] } }), delegate).decision, 'deny');

    const refunded = safeTx({ to: USDC, data: transfer(BOB, 1n), gasPrice: '1', gasToken: USDC, refundReceiver: EVIL });
    assert.deepEqual(found(evaluate(doc(SAFE_RULE), refunded)), ['agent/default safe_refund_not_allowed']);
    const refunds = { name: 'refunds', type: 'allow', match: { primary_types: ['SafeTx'], domains: [{ verifying_contract: SAFE }], kinds: ['safe.gas_refund'], to: [BOB] } };
    assert.deepEqual(found(evaluate(doc(SAFE_RULE, refunds), refunded)), ['agent/default safe_refund_not_allowed'], 'refunds to BOB only');
  });
});
