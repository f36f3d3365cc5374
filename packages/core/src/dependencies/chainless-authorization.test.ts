// A chainless EIP-3009 authorization (an EIP-712 domain without chainId, granted by `allow_chainless_domains`) as a
// grant, pure: recorded by `grantsOf` (a chain-bound one is a payment instead), and planned as a CancelAuthorization
// under the same chainless domain on the chain the request named, the other chains reported. Through HTTP, on both
// stores: packages/server/src/chainless-authorization-dependencies.http.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent } from '../intent.ts';
import type { DependencyMap, MappedGrant } from './dependency-map.ts';
import { grantsOf } from './grants.ts';
import { planRevocations } from './revocation-planner.ts';

const OWNER = '0x00000000000000000000000000000000000000a1';
const TOKEN = '0x00000000000000000000000000000000000000b2';
const PAYEE = '0x00000000000000000000000000000000000000c3';
const CHAIN = 'eip155:8453';
const NONCE = `0x${'0b'.repeat(32)}`;

function authorization(chainId: number | undefined): Intent {
  return {
    action: 'evm.typed_data', chain: CHAIN, kind: 'eip3009.transfer_with_authorization', from: OWNER, to: PAYEE, summary: '',
    spends: [{ asset: `${CHAIN}/erc20:${TOKEN}`, amount: 800n, to: PAYEE, kind: 'authorization' }], approvals: [],
    validity: { validAfter: 0, validBefore: 5000 },
    payment: { protocol: 'x402', payTo: PAYEE, network: CHAIN, nonce: NONCE, validBefore: 5000 },
    typedData: { primaryType: 'TransferWithAuthorization', domain: { name: 'USD Coin', version: '2', verifyingContract: TOKEN, ...(chainId !== undefined ? { chainId } : {}) } },
  } as Intent;
}

function mapOf(grants: MappedGrant[]): DependencyMap {
  return { agent: { id: 'ag_1', name: 'a', address: OWNER, status: 'frozen' }, generatedAt: 0, reconciled: true, grants, authorizations: [], sessions: [], approvals: [], lightningPayments: [], nwcConnections: [], notes: [] };
}

const origin = { agentId: 'ag_1', auditSeq: 9, nowMs: 7 };

test('grantsOf: a chainless EIP-3009 authorization is a grant row; a chain-bound one is a payment, not a grant', () => {
  assert.deepEqual(grantsOf(authorization(undefined), origin), [{
    agentId: 'ag_1', auditSeq: 9, index: 0, kind: 'eip3009.authorization', chain: CHAIN, token: TOKEN, contract: TOKEN, owner: OWNER, spender: PAYEE,
    amount: 800n, unlimited: false, deadline: 5000, nonce: NONCE, domain: { name: 'USD Coin', version: '2', fields: ['name', 'version', 'verifyingContract'] }, createdAt: 7,
  }]);
  assert.deepEqual(grantsOf(authorization(8453), origin), []);
});

test('planner: the cancellation is signed under the chainless domain and sent on the chain the request named; the other chains are reported', () => {
  const [grant] = grantsOf(authorization(undefined), origin);
  const plan = planRevocations(mapOf([{ ...grant!, live: true }]), { nowSeconds: 1000 });
  assert.equal(plan.steps.length, 1);
  const step = plan.steps[0]!;
  assert.equal(step.type, 'signature_then_transaction');
  if (step.type !== 'signature_then_transaction') return;
  assert.equal(step.chain, CHAIN);
  // Without chainId: the token checks the cancellation under the domain separator the authorization verified under.
  assert.deepEqual(step.typedData.domain, { name: 'USD Coin', version: '2', verifyingContract: TOKEN });
  assert.deepEqual(step.typedData.message, { authorizer: OWNER, nonce: NONCE });
  const call = step.buildCall(`0x${'11'.repeat(32)}${'22'.repeat(32)}1b`);
  assert.deepEqual([call.chain, call.to, call.data.slice(0, 10)], [CHAIN, TOKEN, '0x5a049a70']);
  assert.deepEqual(plan.unplanned.map((u) => [u.reason, u.grants]), [['chainless_other_chains', [{ auditSeq: 9, index: 0, kind: 'eip3009.authorization' }]]]);
});

test('planner: used on the chain it names, it is not cancelled there (that call reverts) but still reported for the others; expired, it needs nothing', () => {
  const [grant] = grantsOf(authorization(undefined), origin);
  const used = planRevocations(mapOf([{ ...grant!, live: 'unknown', evidence: { reason: 'authorization_used', message: '' } }]), { nowSeconds: 1000 });
  assert.deepEqual([used.steps.length, used.unplanned.map((u) => u.reason)], [0, ['chainless_other_chains']]);
  const expired = planRevocations(mapOf([grant!]), { nowSeconds: 5000 });
  assert.deepEqual([expired.steps.length, expired.unplanned.length, expired.alreadyDead], [0, 0, [{ auditSeq: 9, index: 0, kind: 'eip3009.authorization' }]]);
});

// Found by review: the grant kept only name and version, so a salted domain was "cancelled" under the domain without
// its salt (a signature the token rejects) and the step reported submitted while the authorization stayed usable.
test('planner: over a salted domain (recorded with its salt and fields) it is unplanned as domain_unsupported, never cancelled under another domain', () => {
  const salt = `0x${'5a'.repeat(32)}`;
  const salted = authorization(undefined);
  salted.typedData!.domain.salt = salt;
  const [grant] = grantsOf(salted, origin);
  assert.deepEqual(grant!.domain, { name: 'USD Coin', version: '2', salt, fields: ['name', 'version', 'verifyingContract', 'salt'] });
  const plan = planRevocations(mapOf([{ ...grant!, live: true }]), { nowSeconds: 1000 });
  assert.deepEqual(plan.steps, []);
  assert.deepEqual(plan.unplanned.map((u) => [u.reason, u.grants]), [['domain_unsupported', [{ auditSeq: 9, index: 0, kind: 'eip3009.authorization' }]]]);
  assert.match(plan.unplanned[0]!.message, /salt/);
  // Another shape (here a chainId on a chainless grant row) is refused too; a row recorded before `fields` is planned as before.
  const shaped = planRevocations(mapOf([{ ...grant!, domain: { name: 'USD Coin', version: '2', fields: ['name', 'version', 'chainId', 'verifyingContract'] }, live: true }]), { nowSeconds: 1000 });
  assert.deepEqual([shaped.steps.length, shaped.unplanned.map((u) => u.reason)], [0, ['domain_unsupported']]);
  const legacy = planRevocations(mapOf([{ ...grant!, domain: { name: 'USD Coin', version: '2' }, live: true }]), { nowSeconds: 1000 });
  assert.deepEqual([legacy.steps.length, legacy.unplanned.map((u) => u.reason)], [1, ['chainless_other_chains']]);
});
