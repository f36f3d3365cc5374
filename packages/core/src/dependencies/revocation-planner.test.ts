// The revocation planner and the grant extractor, pure (issue 14). The chain-side proof is in
// packages/server/src/dependency-map.http.test.ts (anvil); here: ordering, grouping, what is not planned and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent } from '../intent.ts';
import { PERMIT2_ADDRESS } from '../x402/requirements.ts';
import type { DependencyMap, MappedAuthorization, MappedGrant } from './dependency-map.ts';
import { grantsOf } from './grants.ts';
import { planRevocations, splitSignature } from './revocation-planner.ts';
import { SELECTORS, selectorOf } from './abi-words.ts';

const OWNER = '0x00000000000000000000000000000000000000a1';
const TOKEN = '0x00000000000000000000000000000000000000b2';
const SPENDER = '0x00000000000000000000000000000000000000c3';
const CHAIN = 'eip155:8453';

function grant(over: Partial<MappedGrant>): MappedGrant {
  return { agentId: 'ag_1', auditSeq: 1, index: 0, kind: 'erc20.approve', chain: CHAIN, token: TOKEN, contract: TOKEN, owner: OWNER, spender: SPENDER, amount: 5n, unlimited: false, createdAt: 0, ...over };
}

function mapOf(grants: MappedGrant[], authorizations: MappedAuthorization[] = []): DependencyMap {
  return { agent: { id: 'ag_1', name: 'a', address: OWNER, status: 'frozen' }, generatedAt: 0, reconciled: true, grants, authorizations, sessions: [], approvals: [], lightningPayments: [], nwcConnections: [], notes: [] };
}

test('selectors are the well-known ones (ERC-20, EIP-2612, EIP-3009, Permit2)', () => {
  assert.equal(SELECTORS.erc20Approve, '0x095ea7b3');
  assert.equal(SELECTORS.eip2612Permit, '0xd505accf');
  assert.equal(SELECTORS.eip3009CancelAuthorization, '0x5a049a70');
  assert.equal(SELECTORS.permit2Lockdown, '0xcc53287f');
  assert.equal(SELECTORS.permit2InvalidateNonces, '0x65d9723c');
  assert.equal(SELECTORS.permit2InvalidateUnorderedNonces, '0x3ff9dcb1');
  assert.equal(selectorOf('transfer(address,uint256)'), '0xa9059cbb');
});

test('dead grants need nothing; live and unknown ones are planned; one approve(spender, 0) per token and spender', () => {
  const plan = planRevocations(mapOf([
    grant({ auditSeq: 1, live: true }),
    grant({ auditSeq: 2, kind: 'erc20.increase_allowance', live: 'unknown' }),
    grant({ auditSeq: 3, spender: '0x00000000000000000000000000000000000000d4', live: false }),
  ]), { nowSeconds: 1000 });
  assert.deepEqual(plan.alreadyDead, [{ auditSeq: 3, index: 0, kind: 'erc20.approve' }]);
  assert.equal(plan.steps.length, 1);
  const step = plan.steps[0]!;
  assert.equal(step.type, 'transaction');
  assert.deepEqual(step.grants.map((g) => g.auditSeq), [1, 2]);
  if (step.type !== 'transaction') return;
  assert.equal(step.call.to, TOKEN);
  assert.equal(step.call.data, `0x095ea7b3${SPENDER.slice(2).padStart(64, '0')}${'0'.repeat(64)}`);
});

test('outstanding EIP-2612 permits: every nonce from the chain\'s next one to the highest is burnt, in order, then approve(spender, 0)', () => {
  const evidence = { reason: 'permit_unused', message: '', chainNonce: '3' };
  const plan = planRevocations(mapOf([
    grant({ auditSeq: 4, kind: 'eip2612.permit', nonce: '5', domain: { name: 'USD Coin', version: '2' }, deadline: 2000, live: true, evidence }),
  ]), { nowSeconds: 1000 });
  const burns = plan.steps.filter((s) => s.type === 'signature_then_transaction');
  assert.deepEqual(burns.map((s) => s.type === 'signature_then_transaction' && s.typedData.message.nonce), ['3', '4', '5']);
  const last = burns[2]!;
  if (last.type !== 'signature_then_transaction') return;
  assert.deepEqual(last.typedData.message, { owner: OWNER, spender: SPENDER, value: '0', nonce: '5', deadline: '4600' });
  assert.deepEqual(last.typedData.domain, { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: TOKEN });
  const sig = `0x${'11'.repeat(32)}${'22'.repeat(32)}1b`;
  const call = last.buildCall(sig);
  assert.equal(call.data.slice(0, 10), '0xd505accf');
  assert.equal(call.data.length, 10 + 7 * 64);
  assert.equal(plan.steps.at(-1)!.purpose.startsWith('approve('), true);
  assert.throws(() => last.buildCall('0x1234'), RangeError);
});

test('what cannot be planned is reported with a reason, never dropped', () => {
  const plan = planRevocations(mapOf(
    [
      grant({ auditSeq: 5, kind: 'eip2612.permit', nonce: '0', live: true, evidence: { reason: 'permit_unused', message: '' } }),
      grant({ auditSeq: 6, kind: 'eip2612.permit', token: '0x00000000000000000000000000000000000000e5', contract: '0x00000000000000000000000000000000000000e5', nonce: '100', domain: { name: 'T', version: '1' }, live: true, evidence: { reason: 'permit_unused', message: '', chainNonce: '0' } }),
      grant({ auditSeq: 7, chain: 'solana:mainnet', live: true }),
    ],
    [{ paymentId: 'pay_1', auditSeq: 8, chain: CHAIN, token: TOKEN, owner: OWNER, to: SPENDER, value: 1n, nonce: `0x${'ab'.repeat(32)}`, validAfter: 0, validBefore: 2000, live: true }],
  ), { nowSeconds: 1000 });
  assert.deepEqual(plan.unplanned.map((u) => [u.reason, u.grants.map((g) => g.auditSeq)]), [
    ['not_evm', [7]],
    ['domain_unknown', [8]],
    ['domain_unknown', [5]],
    ['nonce_range_too_large', [6]],
  ]);
});

// Found by review (with the chainless EIP-3009 cancel): a burn permit or a CancelAuthorization is signed under
// {name, version, chainId, verifyingContract}; under a salted domain it would not verify, so it is not planned.
test('a salted (or otherwise shaped) domain is unplanned as domain_unsupported: EIP-2612 and DAI burns, a chain-bound cancel', () => {
  const salt = `0x${'5a'.repeat(32)}`;
  const salted = { name: 'T', version: '1', salt, fields: ['name', 'version', 'chainId', 'verifyingContract', 'salt'] };
  const plan = planRevocations(mapOf(
    [
      grant({ auditSeq: 5, kind: 'eip2612.permit', nonce: '0', domain: salted, live: true, evidence: { reason: 'permit_unused', message: '' } }),
      grant({ auditSeq: 6, kind: 'dai.permit', token: '0x00000000000000000000000000000000000000e5', contract: '0x00000000000000000000000000000000000000e5', nonce: '0', domain: { name: 'Dai', version: '1', fields: ['name', 'version', 'verifyingContract'] }, live: true, evidence: { reason: 'permit_unused', message: '' } }),
    ],
    [{ paymentId: 'pay_1', auditSeq: 8, chain: CHAIN, token: TOKEN, owner: OWNER, to: SPENDER, value: 1n, nonce: `0x${'ab'.repeat(32)}`, validAfter: 0, validBefore: 2000, domain: salted, live: true }],
  ), { nowSeconds: 1000 });
  assert.deepEqual(plan.unplanned.map((u) => [u.reason, u.grants.map((g) => g.auditSeq)]), [
    ['domain_unsupported', [8]],
    ['domain_unsupported', [5]],
    ['domain_unsupported', [6]],
  ]);
  assert.match(plan.unplanned[0]!.message, /salt/);
  // Only the approve(spender, 0) steps of the two permits remain.
  assert.deepEqual(plan.steps.map((s) => s.type), ['transaction', 'transaction']);
});

test('Permit2: outstanding permits are invalidated, every live pair locked down in one call, transfer signatures invalidated by bitmap', () => {
  const other = '0x00000000000000000000000000000000000000f6';
  const plan = planRevocations(mapOf([
    grant({ auditSeq: 9, kind: 'permit2.permit', contract: PERMIT2_ADDRESS, nonce: '2', live: true, evidence: { reason: 'permit_unused', message: '', chainNonce: '2' } }),
    grant({ auditSeq: 10, kind: 'permit2.approve', contract: PERMIT2_ADDRESS, spender: other, live: true, evidence: { reason: 'allowance_nonzero', message: '' } }),
    grant({ auditSeq: 11, kind: 'permit2.transfer', contract: PERMIT2_ADDRESS, nonce: String(256n * 3n + 7n), live: true }),
    grant({ auditSeq: 12, kind: 'permit2.transfer', contract: PERMIT2_ADDRESS, nonce: String(256n * 3n + 9n), live: 'unknown' }),
  ]), { nowSeconds: 1000 });
  const calls = plan.steps.map((s) => (s.type === 'transaction' ? s.call.data : ''));
  assert.equal(calls.length, 3);
  assert.equal(calls[0], `0x65d9723c${TOKEN.slice(2).padStart(64, '0')}${SPENDER.slice(2).padStart(64, '0')}${(3n).toString(16).padStart(64, '0')}`);
  assert.equal(calls[1], `0x3ff9dcb1${(3n).toString(16).padStart(64, '0')}${((1n << 7n) | (1n << 9n)).toString(16).padStart(64, '0')}`);
  assert.equal(calls[2], `0xcc53287f${(32n).toString(16).padStart(64, '0')}${(2n).toString(16).padStart(64, '0')}${TOKEN.slice(2).padStart(64, '0')}${SPENDER.slice(2).padStart(64, '0')}${TOKEN.slice(2).padStart(64, '0')}${other.slice(2).padStart(64, '0')}`);
});

test('splitSignature normalises v', () => {
  assert.equal(splitSignature(`0x${'11'.repeat(64)}00`).v, 27);
  assert.equal(splitSignature(`0x${'11'.repeat(64)}1c`).v, 28);
  assert.throws(() => splitSignature(`0x${'11'.repeat(64)}05`), RangeError);
});

function intent(over: Partial<Intent>): Intent {
  return { action: 'evm.transaction', chain: CHAIN, kind: 'erc20.transfer', from: OWNER, spends: [], approvals: [], summary: '', ...over };
}

test('grantsOf: a transfer grants nothing; a Permit2 approve transaction is recognised from its calldata', () => {
  const origin = { agentId: 'ag_1', auditSeq: 3, nowMs: 7 };
  assert.equal(grantsOf(intent({}), origin).length, 0);
  // approve(spender, 0) revokes: it grants nothing and is not a row.
  const asset = `${CHAIN}/erc20:${TOKEN}`;
  assert.equal(grantsOf(intent({ kind: 'erc20.approve', to: SPENDER, approvals: [{ asset, amount: 0n, spender: SPENDER, unlimited: false }] }), origin).length, 0);
  assert.equal(grantsOf(intent({ kind: 'erc20.approve', to: SPENDER, approvals: [{ asset, amount: 1n, spender: SPENDER, unlimited: false }] }), origin).length, 1);
  const data = `0x87517c45${TOKEN.slice(2).padStart(64, '0')}${SPENDER.slice(2).padStart(64, '0')}${(500n).toString(16).padStart(64, '0')}${(9999n).toString(16).padStart(64, '0')}`;
  const [g] = grantsOf(intent({ kind: 'contract.call', to: PERMIT2_ADDRESS, call: { contract: PERMIT2_ADDRESS, selector: '0x87517c45', data } }), origin);
  assert.deepEqual({ kind: g!.kind, token: g!.token, spender: g!.spender, amount: g!.amount, expiresAt: g!.expiresAt, contract: g!.contract }, { kind: 'permit2.approve', token: TOKEN, spender: SPENDER, amount: 500n, expiresAt: 9999, contract: PERMIT2_ADDRESS });
  // The same selector on another contract is not Permit2.
  assert.equal(grantsOf(intent({ kind: 'contract.call', to: TOKEN, call: { contract: TOKEN, selector: '0x87517c45', data } }), origin).length, 0);
  // Dirty address words are not an address: nothing recorded rather than a wrong row.
  const dirty = `0x87517c45${'ff'.repeat(12)}${TOKEN.slice(2)}${data.slice(10 + 64)}`;
  assert.equal(grantsOf(intent({ kind: 'contract.call', call: { contract: PERMIT2_ADDRESS, selector: '0x87517c45', data: dirty } }), origin).length, 0);
});
