// DAI's permit (`Permit(holder, spender, nonce, expiry, allowed)`, decoded as `dai.permit`) in the dependency map
// and the revocation planner, pure: the grant row, its liveness against a chain reader, the burn of its nonce and
// the lifecycle path's acceptance of what the planner asks the key to sign and send. The chain-side proof (a real
// DAI-style permit on anvil, revoked by `airlock agent revoke-all`) is packages/cli/src/revoke-all-dai.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nonceKey, type Intent } from '../intent.ts';
import type { ChainReader } from '../ports/chain-reader.ts';
import { classifyLifecycleCall, LIFECYCLE_SELECTORS } from '../lifecycle/lifecycle-calls.ts';
import { classifyLifecycleTypedData } from '../lifecycle/lifecycle-payloads.ts';
import { reconcileDependencyMap, type DependencyMap, type MappedGrant } from './dependency-map.ts';
import { grantsOf } from './grants.ts';
import { planRevocations } from './revocation-planner.ts';
import { SELECTORS, selectorOf } from './abi-words.ts';

const OWNER = '0x00000000000000000000000000000000000000a1';
const DAI = '0x00000000000000000000000000000000000000d1';
const SPENDER = '0x00000000000000000000000000000000000000c3';
const CHAIN = 'eip155:1';
const MAX = (1n << 256n) - 1n;
const DOMAIN = { name: 'Dai Stablecoin', version: '1' };
const origin = { agentId: 'ag_1', auditSeq: 9, nowMs: 7 };

/** The intent the EVM decoder makes of a DAI permit (chains/src/evm/typed-data-kinds.ts `daiPermit`). */
function daiIntent(allowed: boolean, expiry: bigint, nonce: bigint): Intent {
  const deadline = expiry === 0n ? undefined : Number(expiry);
  return {
    action: 'evm.typed_data', chain: CHAIN, kind: 'dai.permit', from: OWNER, to: SPENDER, spends: [],
    approvals: [{ asset: `${CHAIN}/erc20:${DAI}`, amount: allowed ? MAX : 0n, spender: SPENDER, unlimited: allowed, ...(deadline !== undefined ? { expiresAt: deadline } : {}) }],
    ...(deadline !== undefined ? { validity: { validBefore: deadline } } : {}),
    nonceKeys: [nonceKey('eip2612', CHAIN, DAI, OWNER, nonce)],
    typedData: { domain: { ...DOMAIN, chainId: 1, verifyingContract: DAI }, primaryType: 'Permit' },
    summary: '',
  };
}

function mapOf(grants: MappedGrant[]): DependencyMap {
  return { agent: { id: 'ag_1', name: 'a', address: OWNER, status: 'frozen' }, generatedAt: 0, reconciled: true, grants, authorizations: [], sessions: [], approvals: [], lightningPayments: [], nwcConnections: [], notes: [] };
}

function daiGrant(over: Partial<MappedGrant>): MappedGrant {
  return { agentId: 'ag_1', auditSeq: 1, index: 0, kind: 'dai.permit', chain: CHAIN, token: DAI, contract: DAI, owner: OWNER, spender: SPENDER, amount: MAX, unlimited: true, nonce: '0', domain: DOMAIN, createdAt: 0, ...over };
}

test("the DAI permit selector is the one of Dai.sol's permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)", () => {
  assert.equal(SELECTORS.daiPermit, '0x8fcbaf0c');
  assert.equal(SELECTORS.daiPermit, selectorOf('permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)'));
  assert.equal(LIFECYCLE_SELECTORS.daiPermit, SELECTORS.daiPermit);
});

test('grantsOf: a DAI permit with allowed = true is an unlimited grant (expiry 0: no deadline); allowed = false grants nothing', () => {
  const [forever] = grantsOf(daiIntent(true, 0n, 4n), origin);
  assert.deepEqual(forever, { agentId: 'ag_1', auditSeq: 9, index: 0, kind: 'dai.permit', chain: CHAIN, token: DAI, contract: DAI, owner: OWNER, spender: SPENDER, amount: MAX, unlimited: true, nonce: '4', domain: { ...DOMAIN, fields: ['name', 'version', 'chainId', 'verifyingContract'] }, createdAt: 7 });
  const [dated] = grantsOf(daiIntent(true, 1_900_000_000n, 5n), origin);
  assert.equal(dated!.deadline, 1_900_000_000);
  assert.equal(dated!.nonce, '5');
  assert.deepEqual(grantsOf(daiIntent(false, 0n, 6n), origin), []);
});

function reader(state: { nonce: bigint; allowance: bigint; time: number }): ChainReader {
  return {
    supports: () => true,
    latestBlockTimestamp: async () => state.time,
    erc20Allowance: async () => state.allowance,
    eip2612Nonce: async () => state.nonce,
    authorizationState: async () => false,
    pinnedBlock: async () => ({ tag: 'finalized', number: 1n, timestamp: state.time }),
    findAuthorizationUse: async () => undefined,
  };
}

test('liveness: an unused DAI permit is live however late (expiry 0) or until its expiry; a used one is dead once the allowance is 0', async () => {
  const verdict = async (g: MappedGrant, state: { nonce: bigint; allowance: bigint; time: number }) => {
    const [r] = (await reconcileDependencyMap(mapOf([g]), reader(state))).grants;
    return [r!.live, r!.evidence?.reason, r!.evidence?.chainNonce];
  };
  const late = 4_000_000_000;
  assert.deepEqual(await verdict(daiGrant({ nonce: '2' }), { nonce: 2n, allowance: 0n, time: late }), [true, 'permit_unused', '2']);
  assert.deepEqual(await verdict(daiGrant({ nonce: '2', deadline: 1000 }), { nonce: 2n, allowance: 0n, time: 999 }), [true, 'permit_unused', '2']);
  assert.deepEqual(await verdict(daiGrant({ nonce: '2', deadline: 1000 }), { nonce: 2n, allowance: 0n, time: 1001 }), [false, 'permit_expired', '2']);
  assert.deepEqual(await verdict(daiGrant({ nonce: '2' }), { nonce: 3n, allowance: MAX, time: late }), [true, 'allowance_nonzero', '3']);
  assert.deepEqual(await verdict(daiGrant({ nonce: '2' }), { nonce: 3n, allowance: 0n, time: late }), [false, 'permit_used', '3']);
});

test('plan: outstanding DAI permit nonces are burnt in order from the chain\'s nonce with allowed = false, then approve(spender, 0)', () => {
  const other = '0x00000000000000000000000000000000000000e4';
  const evidence = (chainNonce: string) => ({ reason: 'permit_unused', message: '', chainNonce });
  const plan = planRevocations(mapOf([
    daiGrant({ auditSeq: 3, nonce: '4', live: true, evidence: evidence('2') }),
    daiGrant({ auditSeq: 4, nonce: '2', spender: other, live: true, evidence: evidence('2') }),
    daiGrant({ auditSeq: 5, nonce: '1', live: false, evidence: { reason: 'permit_used', message: '', chainNonce: '2' } }),
  ]), { nowSeconds: 1000 });
  assert.deepEqual(plan.alreadyDead, [{ auditSeq: 5, index: 0, kind: 'dai.permit' }]);
  assert.deepEqual(plan.unplanned, []);
  const burns = plan.steps.filter((s) => s.type === 'signature_then_transaction');
  assert.deepEqual(burns.map((s) => s.type === 'signature_then_transaction' && [s.typedData.message.nonce, s.typedData.message.spender, s.grants.map((g) => 'auditSeq' in g && g.auditSeq)]), [
    ['2', other, [4]],
    ['3', OWNER, [3, 4]], // a gap nonce: burnt too (DAI requires nonce == nonces[holder]), naming the group
    ['4', SPENDER, [3]],
  ]);
  const step = burns[0]!;
  if (step.type !== 'signature_then_transaction') return;
  assert.deepEqual(step.typedData, {
    domain: { name: 'Dai Stablecoin', version: '1', chainId: 1, verifyingContract: DAI },
    types: { Permit: [{ name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' }] },
    primaryType: 'Permit',
    message: { holder: OWNER, spender: other, nonce: '2', expiry: '4600', allowed: false },
  });
  const call = step.buildCall(`0x${'11'.repeat(32)}${'22'.repeat(32)}1c`);
  const word = (n: bigint | number) => BigInt(n).toString(16).padStart(64, '0');
  assert.deepEqual(call, { chain: CHAIN, to: DAI, value: 0n, data: `0x8fcbaf0c${OWNER.slice(2).padStart(64, '0')}${other.slice(2).padStart(64, '0')}${word(2)}${word(4600)}${word(0)}${word(28)}${'11'.repeat(32)}${'22'.repeat(32)}` });
  // approve(spender, 0) too, once per spender: a permit may have been submitted before its nonce was burnt.
  const approvals = plan.steps.filter((s) => s.type === 'transaction').map((s) => s.type === 'transaction' && s.call.data);
  assert.deepEqual(approvals, [SPENDER, other].map((sp) => `0x095ea7b3${sp.slice(2).padStart(64, '0')}${word(0)}`));
});

test('plan: DAI permits without a nonce or a domain on record, or too many nonces to burn, are reported, not dropped', () => {
  const plan = planRevocations(mapOf([
    daiGrant({ auditSeq: 6, nonce: undefined, live: 'unknown' }),
    daiGrant({ auditSeq: 7, token: '0x00000000000000000000000000000000000000f7', contract: '0x00000000000000000000000000000000000000f7', domain: undefined, live: 'unknown' }),
    daiGrant({ auditSeq: 8, token: '0x00000000000000000000000000000000000000f8', contract: '0x00000000000000000000000000000000000000f8', nonce: '40', live: true, evidence: { reason: 'permit_unused', message: '', chainNonce: '0' } }),
  ]), { nowSeconds: 1000 });
  assert.deepEqual(plan.unplanned.map((u) => [u.reason, u.grants.map((g) => g.auditSeq), u.purpose.startsWith('burn the outstanding DAI permit nonces')]), [
    ['nonce_unknown', [6], true],
    ['domain_unknown', [7], true],
    ['nonce_range_too_large', [8], true],
  ]);
  // Their allowances are still zeroed.
  assert.equal(plan.steps.filter((s) => s.type === 'transaction').length, 3);
});

test('the lifecycle path accepts exactly what the DAI burn asks the key to sign and send, and refuses a DAI permit that grants', () => {
  const plan = planRevocations(mapOf([daiGrant({ nonce: '0', live: true, evidence: { reason: 'permit_unused', message: '', chainNonce: '0' } })]), { nowSeconds: 1000 });
  const step = plan.steps[0]!;
  if (step.type !== 'signature_then_transaction') throw new Error('expected a burn first');
  const payload = JSON.parse(JSON.stringify({ typedData: step.typedData }));
  assert.match(classifyLifecycleTypedData(payload, OWNER), /^DAI permit allowed = false \(nonce 0\)/);
  const refused = (p: unknown, from = OWNER) => assert.throws(() => classifyLifecycleTypedData(p, from), (e: any) => e.code === 'lifecycle_kind_refused', JSON.stringify(p));
  const withMessage = (m: Record<string, unknown>) => ({ typedData: { ...payload.typedData, message: { ...payload.typedData.message, ...m } } });
  refused(withMessage({ allowed: true }));
  refused(withMessage({ allowed: 'false' })); // the string is not the boolean the contract hashes
  refused(withMessage({ holder: SPENDER }));
  refused(withMessage({ extra: '1' }));
  refused(withMessage({ nonce: '01' }));
  refused(payload, SPENDER); // another key's permit
  refused({ typedData: { ...payload.typedData, types: { Permit: payload.typedData.types.Permit.slice(0, 4) } } });

  const sig = `0x${'11'.repeat(32)}${'22'.repeat(32)}1b`;
  const call = step.buildCall(sig);
  const who = { from: OWNER, current: OWNER };
  const asCall = (data: string) => ({ to: DAI, value: 0n, data });
  const intent: Intent = { action: 'evm.transaction', chain: CHAIN, kind: 'contract.call', from: OWNER, to: DAI, spends: [], approvals: [], summary: '' };
  assert.deepEqual(classifyLifecycleCall(intent, asCall(call.data), who), { kind: 'revocation', amount: 0n, summary: `DAI permit allowed = false of ${SPENDER} on ${DAI}` });
  const words = call.data.slice(10).match(/.{64}/g)!;
  const withWord = (i: number, w: string) => `${call.data.slice(0, 10)}${words.map((x, j) => (j === i ? w : x)).join('')}`;
  const refusedCall = (data: string) => assert.throws(() => classifyLifecycleCall(intent, asCall(data), who), (e: any) => e.code === 'lifecycle_kind_refused', data);
  refusedCall(withWord(4, '1'.padStart(64, '0'))); // allowed = true
  refusedCall(withWord(0, SPENDER.slice(2).padStart(64, '0'))); // another holder
  refusedCall(`${call.data}00`); // not the canonical encoding
  refusedCall(call.data.slice(0, -64)); // a word short
});
