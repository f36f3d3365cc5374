// A Safe gas refund (SafeTx gasPrice > 0) is value the Safe pays out: `gasPrice x gas` of `gasToken` (native when
// zero) to `refundReceiver`, or to whoever submits the transaction (tx.origin) when that is zero. Found by review
// (Medium): the refund was read as a network fee, so its token was no moved asset (a `deny {assets: [USDT]}` did not
// catch a refund paying USDT, at any gasPrice; a refund rule with `assets: [USDC]` granted no refund at all, so
// operators left `assets` out and granted refunds in every token), and a refund to tx.origin passed
// `destinations allow: $partners`. Now the refund's token is a moved asset (asset denies and allow-rule `assets` see
// it), a refund to tx.origin fails closed against a destinations allowlist and touches every `to` deny and
// destinations denylist (it may be anyone), and a refund to a named receiver is a counterparty like any payee.
// Over HTTP, on SQLite and PostgreSQL: each refusal names its rule and code, is audited, and signs nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi, verifyTypedData, type Address, type Hex } from 'viem';
import { safeTx, safeTxTypedData } from '../../x402-testbed/src/safe.ts';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const SAFE = '0x5afe00000000000000000000000000000000beef';
const USDT = '0xfde4c96c8593536e31f229ea8f37b2ada2699bb2';
const USDT_ASSET = `${BASE}/erc20:${USDT}`;
const NATIVE_ASSET = `${BASE}/slip44:60`;
const RELAYER = '0x3333333333333333333333333333333333333333';
const ZERO = '0x0000000000000000000000000000000000000000';
const ERC20 = parseAbi(['function transfer(address to, uint256 value) returns (bool)']);
const DOMAIN = { chain_id: 8453, verifying_contract: SAFE };

let nonce = 0;
/** A SafeTx paying ALICE 1 USDC, with a gas refund of `gasPrice` per gas in `gasToken` to `refundReceiver`. */
function refundTx(refund: { safeTxGas: string; gasPrice: string; gasToken: Address; refundReceiver: Address }) {
  return {
    typedData: safeTxTypedData(SAFE, 8453, safeTx({
      to: USDC, data: encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [ALICE, 1_000_000n] }),
      safeTxGas: BigInt(refund.safeTxGas), gasPrice: BigInt(refund.gasPrice), gasToken: refund.gasToken, refundReceiver: refund.refundReceiver, nonce: BigInt(nonce++),
    })),
  };
}
/** The reviewer's attack: gasPrice is free, so the refund can be any amount of any token. */
const usdtToOrigin = () => refundTx({ safeTxGas: '1000000000000', gasPrice: '1000000000000', gasToken: USDT, refundReceiver: ZERO });
/** A modest refund (about 50,000 base units) in `gasToken` to `refundReceiver`. */
const small = (gasToken: Address, refundReceiver: Address) => refundTx({ safeTxGas: '0', gasPrice: '1', gasToken, refundReceiver });

const coSign = { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [DOMAIN] };
const PAYS_PARTNERS = { name: 'treasury-pays-partners', type: 'allow', match: { ...coSign, kinds: ['erc20.transfer'], to: '$partners', assets: [USDC_ASSET] } };
const refundsIn = (assets?: string[]) => ({ name: 'relayer-refunds', type: 'allow', match: { ...coSign, kinds: ['safe.gas_refund'], ...(assets ? { assets } : {}) } });
const NO_USDT = { name: 'no-usdt', type: 'deny', match: { assets: [USDT_ASSET] } };
const PARTNERS_ONLY = { name: 'partners-only', type: 'destinations', allow: '$partners' };
const USDC_LIMITS = [
  { name: 'usdc-per-request', type: 'max_amount', asset: USDC_ASSET, max: '100000000' },
  { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '500000000', window: '24h', scope: 'agent' },
];
/** The reviewer's agent policy; `refundAssets` narrows the refund rule. */
const policy = (opts: { refundAssets?: string[]; extra?: { name: string; [k: string]: unknown }[]; without?: string[] } = {}) => ({
  version: 1,
  sets: { partners: [ALICE, RELAYER] },
  rules: [PAYS_PARTNERS, refundsIn(opts.refundAssets), NO_USDT, PARTNERS_ONLY, ...USDC_LIMITS, ...(opts.extra ?? [])].filter((r) => !(opts.without ?? []).includes(r.name)),
});

const outcome = (r: { status: number; body: any }) => ({
  status: r.status,
  codes: r.status === 200 || r.status === 202 ? [] : (r.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort(),
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a Safe gas refund is a payment: its token is a moved asset, its receiver a counterparty (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(() => h?.close());

    async function agentUnder(doc: unknown) {
      const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['evm.typed_data'] });
      const sign = (body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body });
      const denials = async () => ((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=1000`)).body.entries as any[]).filter((e) => e.decision === 'deny');
      return { agent, sign, denials };
    }

    /** Refused with exactly `codes`, no signature, and audited as a denial. */
    async function assertRefused(r: { status: number; body: any }, codes: string[]) {
      assert.deepEqual(outcome(r), { status: 403, codes: [...codes].sort() }, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'policy_denied');
      assert.equal(r.body.signature, undefined);
    }

    test("the reviewer's attack: a USDT refund at any gasPrice to tx.origin is refused by the USDT deny and the partners allowlist", async () => {
      const { sign, denials } = await agentUnder(policy());
      const r = await sign(usdtToOrigin());
      await assertRefused(r, ['agent/no-usdt denied_by_rule', 'agent/partners-only destination_not_allowed']);
      assert.match(r.body.error.violations.find((v: any) => v.code === 'destination_not_allowed').message, /tx\.origin/);
      assert.equal((await denials()).length, 1);
    });

    test('a USDT refund to a named partner is still refused by the USDT deny (agent layer)', async () => {
      const { sign } = await agentUnder(policy());
      await assertRefused(await sign(small(USDT, RELAYER)), ['agent/no-usdt denied_by_rule']);
    });

    test('a refund to tx.origin fails closed against the allowlist even in an allowed token', async () => {
      const { sign } = await agentUnder(policy({ refundAssets: [USDC_ASSET] }));
      const r = await sign(small(USDC, ZERO));
      await assertRefused(r, ['agent/partners-only destination_not_allowed']);
    });

    test('a refund to a named receiver outside the allowlist is refused as a counterparty', async () => {
      const { sign } = await agentUnder(policy({ refundAssets: [USDC_ASSET] }));
      await assertRefused(await sign(small(USDC, MALLORY)), ['agent/partners-only destination_not_allowed']);
    });

    test('a refund to tx.origin touches a `to` deny and a destinations denylist (it may be anyone, listed ones included)', async () => {
      const toDeny = await agentUnder(policy({ refundAssets: [USDC_ASSET], without: ['partners-only'], extra: [{ name: 'no-mallory', type: 'deny', match: { to: [MALLORY] } }] }));
      await assertRefused(await toDeny.sign(small(USDC, ZERO)), ['agent/no-mallory denied_by_rule']);
      const denylist = await agentUnder(policy({ refundAssets: [USDC_ASSET], without: ['partners-only'], extra: [{ name: 'sanctioned', type: 'destinations', deny: [MALLORY] }] }));
      await assertRefused(await denylist.sign(small(USDC, ZERO)), ['agent/sanctioned destination_denied']);
      // A refund to a named receiver that is not listed touches neither.
      assert.deepEqual(outcome(await toDeny.sign(small(USDC, RELAYER))), { status: 200, codes: [] });
      assert.deepEqual(outcome(await denylist.sign(small(USDC, RELAYER))), { status: 200, codes: [] });
    });

    test('a refund rule with assets: [USDC] grants a USDC refund to a partner (signed), and no refund in USDT or the native coin', async () => {
      const { agent, sign } = await agentUnder(policy({ refundAssets: [USDC_ASSET], without: ['no-usdt'] }));
      const body = small(USDC, RELAYER);
      const r = await sign(body);
      assert.deepEqual(outcome(r), { status: 200, codes: [] }, JSON.stringify(r.body));
      const refund = r.body.intent.safe.calls.find((c: any) => c.kind === 'safe.gas_refund');
      assert.equal(refund.to, RELAYER);
      assert.equal(refund.spends[0].asset, USDC_ASSET);
      assert.ok(await verifyTypedData({ address: agent.address, ...body.typedData, signature: r.body.signature as Hex }));
      await assertRefused(await sign(small(USDT, RELAYER)), ['agent/default safe_refund_not_allowed']);
      await assertRefused(await sign(small(ZERO, RELAYER)), ['agent/default safe_refund_not_allowed']);
    });

    test('a USDC refund counts against the USDC cap', async () => {
      const { sign } = await agentUnder(policy({ refundAssets: [USDC_ASSET] }));
      // 1 USDC paid to ALICE plus a refund of (50,000 + copying data) x 2,000 base units: over the 100 USDC cap.
      await assertRefused(await sign(refundTx({ safeTxGas: '0', gasPrice: '2000', gasToken: USDC, refundReceiver: RELAYER })), ['agent/usdc-per-request amount_exceeds_max']);
    });

    test('a fleet deny of USDT catches a USDT refund the agent policy allows', async () => {
      const { sign } = await agentUnder(policy({ without: ['no-usdt'] }));
      assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [NO_USDT] } })).status, 200);
      try {
        await assertRefused(await sign(small(USDT, RELAYER)), ['fleet/no-usdt denied_by_rule']);
        // The same payment with a USDC refund signs.
        assert.deepEqual(outcome(await sign(small(USDC, RELAYER))), { status: 200, codes: [] });
      } finally {
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
      }
    });
  });
}
