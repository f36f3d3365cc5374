// Typed data that moves another account's funds. EIP-3009 and EIP-2612 name the account in the message
// (`from`, `authorizer`, `owner`) and the token checks the signature against it; with ERC-1271 (USDC v2.2's
// SignatureChecker) a contract wallet S whose owner is the agent's key accepts the agent's signature. Airlock held
// the payment under the agent's address while the token moved S's funds; the reconciler asked
// authorizationState(agent, nonce), the chain said unused, the hold was released as expired: value moved,
// nothing charged. Such requests are refused `invalid_request` at decoding (audited, nothing held or signed);
// the agent's own authorizations pay, are held and settle as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness } from './testing/harness.ts';

const S = '0x5555555555555555555555555555555555555555'; // a contract wallet the agent's key owns (ERC-1271)
const VALIDITY = 600;
const nonce = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

describe('typed data that names another account than the signer', () => {
  let h: Harness;
  let agent: { id: string; name: string; address: string };
  let token: string;
  // A chain double keyed by (from, nonce), as the token's authorizationState is.
  const used = new Set<string>();
  let wall = () => Math.floor(Date.now() / 1000);
  const chain = {
    supports: (n: string) => n === BASE,
    async latestBlockTimestamp() { return wall(); },
    async pinnedBlock() { return { tag: 'finalized', number: 100n, timestamp: wall() - 12 }; },
    async authorizationState(_n: string, _t: string, from: string, n: string) { return used.has(`${from.toLowerCase()}|${n.toLowerCase()}`); },
    async findAuthorizationUse(_n: string, _t: string, from: string, n: string) {
      return used.has(`${from.toLowerCase()}|${n.toLowerCase()}`) ? { transactionHash: `0x${'ab'.repeat(32)}`, blockNumber: 99n, transfer: { to: ALICE, value: 1_000_000n } } : undefined;
    },
  } as unknown as ChainReader;

  before(async () => {
    h = await startHarness({ store: 'sqlite', manualClock: true, chainReader: chain });
    wall = () => Math.floor(h.clock!.now() / 1000);
    const policy = { version: 1, rules: [
      { name: 'pay-alice', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization', 'eip3009.receive_with_authorization', 'eip2612.permit'], to: [ALICE] } },
      { name: 'cancel', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['CancelAuthorization'], domains: [{ chain_id: 8453, verifying_contract: USDC }] } },
      { name: 'daily', type: 'budget', asset: USDC_ASSET, max: '10000000', window: '24h' },
      { name: 'short', type: 'validity_window', max_seconds: VALIDITY },
    ] };
    ({ agent, token } = await provisionAgent(h, { policy, ttl: '7d' }));
  });
  after(async () => h.close());

  const payments = async () => (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments as { state: string; from: string; nonce: string }[];
  const charged = async () => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: USDC_ASSET, sinceMs: 0 }])))[0]!.amount;

  function withMessage(base: ReturnType<typeof usdcAuthorization>, primaryType: string, message: Record<string, unknown>, fields?: { name: string; type: string }[]) {
    const types = fields ? { [primaryType]: fields } : { [primaryType]: base.typedData.types.TransferWithAuthorization };
    return { typedData: { ...base.typedData, types, primaryType, message } };
  }

  async function refused(label: string, body: unknown, field: string) {
    const before = (await payments()).length;
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body });
    assert.equal(res.status, 400, `${label}: ${JSON.stringify(res.body).slice(0, 300)}`);
    assert.equal(res.body.error.code, 'invalid_request', label);
    assert.equal(res.body.error.details.field, `typedData.message.${field}`, label);
    assert.equal(res.body.error.details.signer, agent.address.toLowerCase(), label);
    assert.equal(res.body.signature, undefined, label);
    // Audited as a refusal; nothing held, nothing charged.
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
    assert.equal(audit.type, 'sign.request', label);
    assert.equal(audit.data.errorCode, 'invalid_request', label);
    assert.equal((await payments()).length, before, label);
    // A dry-run says the same.
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: body } });
    assert.equal(dry.status, 400, label);
    assert.equal(dry.body.error.code, 'invalid_request', label);
  }

  test("the reviewer's case: TransferWithAuthorization from S (funds S's, hold under the agent's address): refused, nothing held or charged; S's settlement finds nothing to release", async () => {
    const validBefore = wall() + VALIDITY;
    await refused('TransferWithAuthorization from S', usdcAuthorization(S, ALICE, 1_000_000n, validBefore, nonce(1)), 'from');
    // On chain S's authorization would have settled; the reconciler has no payment of the agent to misjudge.
    used.add(`${S}|${nonce(1)}`);
    h.clock!.advance((VALIDITY + 301) * 1000);
    await h.admin('POST', '/v1/x402/reconcile');
    assert.deepEqual(await payments(), []);
    assert.equal(await charged(), 0n);
  });

  test('ReceiveWithAuthorization from S, CancelAuthorization by S, an EIP-2612 Permit of S: refused with the field named', async () => {
    const base = usdcAuthorization(S, ALICE, 1n, wall() + VALIDITY, nonce(2));
    await refused('ReceiveWithAuthorization from S', withMessage(base, 'ReceiveWithAuthorization', base.typedData.message), 'from');
    await refused('CancelAuthorization by S', withMessage(base, 'CancelAuthorization', { authorizer: S, nonce: nonce(3) }, [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }]), 'authorizer');
    const permitFields = [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }];
    await refused('Permit of S', withMessage(base, 'Permit', { owner: S, spender: ALICE, value: '5', nonce: '0', deadline: String(wall() + 60) }, permitFields), 'owner');
    // Checksummed or lower case, the agent's own address is the signer: not refused for it.
    const own = await h.call('POST', '/v1/sign/typed-data', { token, body: withMessage(base, 'Permit', { owner: agent.address.toUpperCase().replace('0X', '0x'), spender: ALICE, value: '5', nonce: '0', deadline: String(wall() + 60) }, permitFields) });
    assert.equal(own.status, 200, JSON.stringify(own.body).slice(0, 300));
  });

  test('a lookalike type (a Permit with other fields) is not a standard that names its account: unknown typed data, judged by policy', async () => {
    const base = usdcAuthorization(S, ALICE, 1n, wall() + VALIDITY, nonce(4));
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: withMessage(base, 'Permit', { owner: S, spender: ALICE }, [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }]) });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'policy_denied');
    assert.equal(res.body.error.violations[0].code, 'unknown_typed_data');
  });

  test("the agent's own authorization: signed, held under its address, settled from its address and charged once", async () => {
    const validBefore = wall() + VALIDITY;
    const start = await charged(); // the permit of the test before
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(agent.address, ALICE, 1_000_000n, validBefore, nonce(5)) });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const [held] = await payments();
    assert.equal(held!.state, 'reserved');
    assert.equal(held!.from, agent.address.toLowerCase());
    assert.equal(await charged(), start + 1_000_000n);
    used.add(`${agent.address.toLowerCase()}|${nonce(5)}`);
    h.clock!.advance((VALIDITY + 301) * 1000);
    await h.admin('POST', '/v1/x402/reconcile');
    assert.equal((await payments())[0]!.state, 'settled');
    assert.equal(await charged(), start + 1_000_000n);
  });
});
