// Every example policy in README.md, docs/policy.md and docs/x402.md, extracted AS WRITTEN, set over HTTP and
// attacked with what it is meant to stop, on SQLite and PostgreSQL. Copying an example must be safe.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbiItem } from 'viem';
import { generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import * as nip44 from 'nostr-tools/nip44';
import { docPolicies, docPolicy } from './testing/doc-policies.ts';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, verifyAirlockPsbt, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { LightningNetwork, SimulatedBackend, TestNode } from '../../../testing/lightning-network.ts';
import { ALICE, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const WETH = '0x4200000000000000000000000000000000000006';
const DAI = '0x50c5725949a6f0c72e6c4a641f24049a917db0cb';
const ROUTER = '0x2626664c2603336e57b271c5c0b26f421741e481';
const STRANGER = '0x3333333333333333333333333333333333333333';
const MIXER = '0x8589427373d6d84e98730d7795d8f6f8731fda16';
const MAX_UINT256 = (1n << 256n) - 1n;
const NEVER = MAX_UINT256.toString();
const soon = () => Math.floor(Date.now() / 1000) + 300;

/** The examples this file attacks; the docs must keep every one of them (and may add more only with a test). */
const EXPECTED = [
  'README.md#Five-minute walkthrough',
  'docs/policy.md#Fleet ceilings (restrict-only)',
  'docs/policy.md#A trading agent',
  'docs/policy.md#An x402 paying agent',
  'docs/policy.md#A Nostr agent',
  'docs/policy.md#A Lightning paying agent',
  'docs/policy.md#Approvals by stakes',
  'docs/policy.md#A Bitcoin paying agent',
  'docs/policy.md#A smart-account agent',
  'docs/policy.md#A fleet with circuit breakers',
  'docs/policy.md#A fleet lifecycle: treasury, sweeps, caps and orphans',
  'docs/x402.md#Operator policy',
];

const EXACT_INPUT_SINGLE = parseAbiItem('function exactInputSingle((address tokenIn, address tokenOut, uint24 fee, address recipient, uint256 amountIn, uint256 amountOutMinimum, uint160 sqrtPriceLimitX96) params) payable returns (uint256 amountOut)');

function swap(p: { recipient: string; amountIn: bigint; amountOutMinimum?: bigint; tokenIn?: string; tokenOut?: string; nonce?: number }) {
  const data = encodeFunctionData({
    abi: [EXACT_INPUT_SINGLE],
    args: [{ tokenIn: (p.tokenIn ?? USDC) as `0x${string}`, tokenOut: (p.tokenOut ?? WETH) as `0x${string}`, fee: 500, recipient: p.recipient as `0x${string}`, amountIn: p.amountIn, amountOutMinimum: p.amountOutMinimum ?? 1n, sqrtPriceLimitX96: 0n }],
  });
  return { chainId: 8453, transaction: { type: 'eip1559', to: ROUTER, value: '0', data: data as string, nonce: p.nonce ?? 0, gas: '300000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

function erc20Call(token: string, selector: string, to: string, amount: bigint, chainId = 8453) {
  const data = `${selector}${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId, transaction: { type: 'eip1559', to: token, value: '0', data, nonce: 0, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}
const transfer = (token: string, to: string, amount: bigint, chainId?: number) => erc20Call(token, '0xa9059cbb', to, amount, chainId);
const approve = (token: string, spender: string, amount: bigint) => erc20Call(token, '0x095ea7b3', spender, amount);

/** EIP-3009 authorization of any token (domain name as the token has it). */
function authorization(token: string, name: string, from: string, to: string, value: bigint, validBefore: number | string, nonce = `0x${'ab'.repeat(32)}`) {
  const req = usdcAuthorization(from, to, value, 0, nonce);
  return { typedData: { ...req.typedData, domain: { name, version: '2', chainId: 8453, verifyingContract: token }, message: { ...req.typedData.message, validBefore: String(validBefore) } } };
}

/** The friend the Nostr example lists: the pubkey of secret key 1, so this test can play the friend's side. */
const NOSTR_FRIEND_SECRET = Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0));
const NOSTR_FRIEND = getPublicKey(NOSTR_FRIEND_SECRET);
const NOSTR_STRANGER = getPublicKey(generateSecretKey());
const unixNow = () => Math.floor(Date.now() / 1000);
const nostrEvent = (kind: number, content: string, tags: string[][] = [], createdAt = unixNow()) => ({ kind, tags, content, created_at: createdAt });

/** An EntryPoint v0.8 user operation of `sender` running `calls` through execute/executeBatch (Simple7702Account's ABI). */
const ACCOUNT_ABI = [parseAbiItem('function execute(address target, uint256 value, bytes data)'), parseAbiItem('function executeBatch((address target, uint256 value, bytes data)[] calls)')];
// Airlock signs one operation per account and nonce (another one over a signed nonce is nonce_reused): each
// operation here gets a nonce of its own.
let nextOperationNonce = 0;
function userOperation(sender: string, calls: { to: string; data: string }[], over: Record<string, string> = {}) {
  const callData = calls.length === 1
    ? encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'execute', args: [calls[0]!.to as `0x${string}`, 0n, calls[0]!.data as `0x${string}`] })
    : encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'executeBatch', args: [calls.map((c) => ({ target: c.to as `0x${string}`, value: 0n, data: c.data as `0x${string}` }))] });
  return {
    chainId: 8453, entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8',
    userOperation: { sender, nonce: String(nextOperationNonce++), callData, callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000', ...over },
  };
}
const usdcCall = (to: string, amount: bigint) => ({ to: USDC, data: transfer(USDC, to, amount).transaction.data });

const codesOf = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`);

test('the docs hold exactly the example policies this file attacks', () => {
  assert.deepEqual(docPolicies().map((p) => p.key).sort(), [...EXPECTED].sort());
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`example policies as written (${store})`, () => {
    let h: Harness;
    // The Lightning example's payees are the nodes of secrets 1 and 2; the backend pays on mainnet, as the example's asset says.
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 100n;
    const secret = (n: number) => Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? n : 0));
    const knownNode = ln.payee(new TestNode(secret(1)));
    const otherKnownNode = ln.payee(new TestNode(secret(2)));
    const strangerNode = ln.payee();
    before(async () => {
      h = await startHarness({ store, lightningBackend: new SimulatedBackend(ln, 'bitcoin') });
    });
    after(async () => h.close());

    const sign = (token: string, body: unknown) => h.call('POST', '/v1/sign/transaction', { token, body });
    const signTyped = (token: string, body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body });

    test('every example is accepted over HTTP without warnings', async () => {
      for (const key of EXPECTED) {
        const res = await h.admin('POST', '/v1/policies/validate', { source: docPolicy(key).source });
        assert.equal(res.body.valid, true, `${key}: ${JSON.stringify(res.body)}`);
        assert.deepEqual(res.body.warnings, [], key);
      }
    });

    test('PUT answers what an unsafe policy lets through (the README policy before issue 7), and still stores it', async () => {
      const unsafe = docPolicy('README.md#Five-minute walkthrough').document as { rules: { name: string; match?: Record<string, unknown> }[] };
      const loose = { ...unsafe, rules: unsafe.rules.filter((r) => r.name !== 'short-auth').map((r) => (r.match ? { ...r, match: { ...r.match, assets: undefined } } : r)) };
      const { agent } = await provisionAgent(h);
      const res = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: JSON.parse(JSON.stringify(loose)) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.changed, true);
      assert.deepEqual(res.body.warnings.map((w: any) => [w.code, w.rule, w.path]), [
        ['allow_without_assets', 'usdc-to-partners', 'rules[0].match'],
        ['validity_unbounded', 'usdc-to-partners', 'rules[0].match'],
      ]);
      const capless = { version: 1, rules: [{ name: 'dai', type: 'allow', match: { kinds: ['erc20.transfer'], assets: [`eip155:8453/erc20:${DAI}`] } }] };
      const again = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: capless });
      assert.deepEqual(again.body.warnings.map((w: any) => [w.code, w.path]), [['value_without_cap', 'rules[0].match.assets[0]'], ['value_without_budget', 'rules[0].match.assets[0]']]);
    });

    test('README walkthrough: 50 USDC to a partner is signed; 1,000,000 WETH and never-expiring authorizations are refused', async () => {
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('README.md#Five-minute walkthrough').document });
      const ok = await sign(token, usdcTransfer(ALICE, 50_000_000n));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.allowedBy, ['agent/usdc-to-partners']);

      const weth = await sign(token, transfer(WETH, ALICE, 1_000_000n * 10n ** 18n, 8453));
      assert.equal(weth.status, 403);
      assert.deepEqual(codesOf(weth), ['agent/default no_matching_allow_rule']);

      const otherToken = await signTyped(token, authorization(DAI, 'Dai Stablecoin', agent.address, ALICE, 1_000_000n, NEVER));
      assert.equal(otherToken.status, 403);
      assert.ok(codesOf(otherToken).includes('agent/default no_matching_allow_rule'), JSON.stringify(otherToken.body));

      const neverExpiring = await signTyped(token, usdcAuthorization(agent.address, ALICE, 1_000_000n, Number.MAX_SAFE_INTEGER));
      assert.equal(neverExpiring.status, 403);
      assert.deepEqual(codesOf(neverExpiring), ['agent/short-auth validity_too_long']);

      const tooMuch = await sign(token, usdcTransfer(ALICE, 100_000_001n, 1));
      assert.deepEqual(codesOf(tooMuch), ['agent/usdc-per-request amount_exceeds_max']);
    });

    test('trading agent: a swap back to the agent is signed and counted; other recipients, tokens, sizes and "any price" are refused', async () => {
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#A trading agent').document });
      const ok = await sign(token, swap({ recipient: agent.address, amountIn: 50_000_000n, amountOutMinimum: 15_000_000_000_000_000n }));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.allowedBy, ['agent/swap']);
      assert.equal(ok.body.intent.call.functionName, 'exactInputSingle');
      assert.equal(ok.body.intent.call.args.params.recipient, agent.address);
      assert.deepEqual(ok.body.intent.spends.filter((s: any) => s.kind === 'transfer'), [{ asset: `eip155:8453/erc20:${USDC}`, amount: '50000000', to: agent.address, kind: 'transfer' }]);

      const toAttacker = await sign(token, swap({ recipient: STRANGER, amountIn: 50_000_000n, nonce: 1 }));
      assert.equal(toAttacker.status, 403);
      assert.deepEqual(codesOf(toAttacker), ['agent/swap argument_constraint_failed']);
      assert.match(toAttacker.body.error.violations[0].message, /params\.recipient/);

      const anyPrice = await sign(token, swap({ recipient: agent.address, amountIn: 50_000_000n, amountOutMinimum: 0n, nonce: 1 }));
      assert.deepEqual(codesOf(anyPrice), ['agent/swap argument_constraint_failed']);
      assert.match(anyPrice.body.error.violations[0].message, /params\.amountOutMinimum/);

      const worthless = await sign(token, swap({ recipient: agent.address, amountIn: 50_000_000n, tokenOut: STRANGER, nonce: 1 }));
      assert.deepEqual(codesOf(worthless), ['agent/swap argument_constraint_failed']);

      const sellsWeth = await sign(token, swap({ recipient: agent.address, amountIn: 10n ** 24n, tokenIn: WETH, tokenOut: USDC, nonce: 1 }));
      assert.equal(sellsWeth.status, 403);
      assert.deepEqual(codesOf(sellsWeth), ['agent/default contract_call_not_allowed']);

      const huge = await sign(token, swap({ recipient: agent.address, amountIn: 1_000_000_000_000n, nonce: 1 }));
      assert.equal(huge.status, 403);
      assert.ok(codesOf(huge).includes('agent/swap-size amount_exceeds_max'), JSON.stringify(huge.body));
      assert.ok(codesOf(huge).includes('agent/daily budget_exceeded'), JSON.stringify(huge.body));

      const bigApproval = await sign(token, approve(USDC, ROUTER, 1_000_000_000n));
      assert.ok(codesOf(bigApproval).includes('agent/approvals approval_exceeds_cap'), JSON.stringify(bigApproval.body));
      const unlimited = await sign(token, approve(USDC, ROUTER, MAX_UINT256));
      assert.ok(codesOf(unlimited).includes('agent/approvals unlimited_approval'), JSON.stringify(unlimited.body));

      // Calldata that claims exactInputSingle but does not decode against the registered ABI: fail closed.
      const truncated = swap({ recipient: agent.address, amountIn: 1n, nonce: 1 });
      truncated.transaction.data = truncated.transaction.data.slice(0, 10 + 64 * 3);
      const bad = await sign(token, truncated);
      assert.equal(bad.status, 403);
      assert.deepEqual(codesOf(bad), ['agent/abis.swap-router abi_decode_failed']);

      // The 50 USDC swap was charged: the dry-run of 1,950 USDC more is still within the daily 2,000; 1,950.000001 is not.
      const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: swap({ recipient: agent.address, amountIn: 1_950_000_001n, nonce: 1 }) } });
      const budget = dry.body.decision.violations.find((v: any) => v.code === 'budget_exceeded');
      assert.deepEqual({ rule: budget.rule, used: budget.used, requested: budget.requested }, { rule: 'agent/daily', used: '50000000', requested: '1950000001' });
    });

    test('x402 paying agent (docs/policy.md): known payee within price and validity only', async () => {
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#An x402 paying agent').document });
      const ok = await signTyped(token, usdcAuthorization(agent.address, ALICE, 1_000_000n, soon()));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const stranger = await signTyped(token, usdcAuthorization(agent.address, STRANGER, 1_000_000n, soon(), `0x${'01'.repeat(32)}`));
      assert.ok(codesOf(stranger).includes('agent/payees destination_not_allowed'), JSON.stringify(stranger.body));
      const never = await signTyped(token, usdcAuthorization(agent.address, ALICE, 1_000_000n, Number.MAX_SAFE_INTEGER, `0x${'02'.repeat(32)}`));
      assert.deepEqual(codesOf(never), ['agent/short-auth validity_too_long']);
      const pricey = await signTyped(token, usdcAuthorization(agent.address, ALICE, 1_000_001n, soon(), `0x${'03'.repeat(32)}`));
      assert.deepEqual(codesOf(pricey), ['agent/per-call amount_exceeds_max']);
      const dai = await signTyped(token, authorization(DAI, 'Dai Stablecoin', agent.address, ALICE, 1_000_000n, soon(), `0x${'04'.repeat(32)}`));
      assert.deepEqual(codesOf(dai), ['agent/default no_matching_allow_rule']);
    });

    test('x402 operator policy (docs/x402.md): listed resources and payee, bounded price and validity', async () => {
      const API = 'https://api.example.com/data/quote';
      const PAYEE = '0xa11ce00000000000000000000000000000000a11';
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('docs/x402.md#Operator policy').document });
      const pay = (typedData: unknown, resource = API) => signTyped(token, { ...(typedData as object), x402: { resource } });
      const ok = await pay(usdcAuthorization(agent.address, PAYEE, 50_000n, soon()));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const outside = await pay(usdcAuthorization(agent.address, PAYEE, 50_000n, soon(), `0x${'01'.repeat(32)}`), 'https://api.example.com/admin');
      assert.deepEqual(codesOf(outside), ['agent/pay-our-apis resource_not_allowed']);
      const stranger = await pay(usdcAuthorization(agent.address, STRANGER, 50_000n, soon(), `0x${'02'.repeat(32)}`));
      assert.ok(codesOf(stranger).includes('agent/payees destination_not_allowed'), JSON.stringify(stranger.body));
      const never = await pay(usdcAuthorization(agent.address, PAYEE, 50_000n, Number.MAX_SAFE_INTEGER, `0x${'03'.repeat(32)}`));
      assert.deepEqual(codesOf(never), ['agent/short-auth validity_too_long']);
      const pricey = await pay(usdcAuthorization(agent.address, PAYEE, 1_000_001n, soon(), `0x${'04'.repeat(32)}`));
      assert.ok(codesOf(pricey).includes('agent/max-price amount_exceeds_max'), JSON.stringify(pricey.body));
      const dai = await pay(authorization(DAI, 'Dai Stablecoin', agent.address, PAYEE, 50_000n, soon(), `0x${'05'.repeat(32)}`));
      assert.deepEqual(codesOf(dai), ['agent/default no_matching_allow_rule']);
    });

    // Last: a fleet policy applies to every agent of this harness.
    test('Lightning paying agent (docs/policy.md): known nodes paid, strangers, big payments, fee and expiry games and a drained origin refused', async () => {
      const { token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#A Lightning paying agent').document, actions: ['lightning.pay'] });
      const pay = (body: unknown) => h.call('POST', '/v1/lightning/pay', { token, body });
      const invoice = (node: typeof knownNode, amountMsat: bigint, over: Record<string, unknown> = {}) => node.invoice({ amountMsat, network: 'bitcoin', ...over }).invoice;
      const paid = await pay({ invoice: invoice(knownNode, 20_000n) });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.equal((await pay({ invoice: invoice(otherKnownNode, 20_000n) })).status, 200);
      assert.deepEqual(codesOf(await pay({ invoice: invoice(strangerNode, 20_000n) })), ['agent/default no_matching_allow_rule']);
      assert.deepEqual(codesOf(await pay({ invoice: invoice(knownNode, 150_000n) })), ['agent/per-payment amount_exceeds_max']);
      assert.deepEqual(codesOf(await pay({ invoice: invoice(knownNode, 30_000n), maxFeeMsat: '1600' })), ['agent/routing routing_fee_exceeds_cap']);
      assert.deepEqual(codesOf(await pay({ invoice: invoice(knownNode, 20_000n, { expirySeconds: 20 }) })), ['agent/routing invoice_expiry_out_of_bounds']);
      assert.deepEqual(codesOf(await pay({ invoice: invoice(knownNode, 20_000n, { expirySeconds: 7 * 86_400 }) })), ['agent/routing invoice_expiry_out_of_bounds']);
      assert.deepEqual(codesOf(await pay({ invoice: knownNode.invoice({ network: 'bitcoin' }).invoice, amountMsat: '20000' })), ['agent/default amountless_invoice_not_allowed']);
      const big = await pay({ invoice: invoice(knownNode, 60_000n) });
      assert.equal(big.status, 202, JSON.stringify(big.body));
      assert.equal(big.body.violations[0].rule, 'agent/big-by-hand');
    });

    test('Bitcoin paying agent (docs/policy.md): suppliers paid (signatures checked by bitcoinjs), a hidden stranger, big amounts, greedy fees, SIGHASH_SINGLE refused, a big one held', async () => {
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#A Bitcoin paying agent').document, actions: ['bitcoin.psbt'] });
      const wallet = TestWallet.fromMnemonic(h.mnemonic, 'bitcoin', agent.accountIndex);
      const chain = new BitcoinTestChain('bitcoin');
      const [supplier, taprootSupplier] = ['bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu', 'bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr'];
      const stranger = TestWallet.stranger('not a supplier', 'bitcoin').receive('p2wpkh').address;
      let index = 0;
      /** One coin of the agent (value = outputs + fee) paying `outs`, with its change back to the agent. */
      const psbt = (outs: [string, bigint][], fee = 500n, opts: { sighashType?: number } = {}) => {
        const sent = outs.reduce((s, [, v]) => s + v, 0n);
        const change = 10_000n;
        const input = fundedInput(chain, wallet.receive('p2wpkh', index++), sent + change + fee, opts);
        return buildPsbt(chain, [input], [...outs.map(([to, v]) => payTo(chain, to, v)), walletOutput(wallet.change('p2wpkh', index), change)]).toBase64();
      };
      const sign = (body: unknown) => h.call('POST', '/v1/sign/psbt', { token, body });
      const sent = psbt([[supplier, 20_000n], [taprootSupplier, 5_000n]]);
      const paid = await sign({ psbt: sent, network: 'bitcoin' });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.deepEqual(verifyAirlockPsbt(paid.body.psbt, { chain, sent }).signedInputs, [0]);
      assert.deepEqual(codesOf(await sign({ psbt: psbt([[supplier, 20_000n], [stranger, 1_000n]]), network: 'bitcoin' })), ['agent/default no_matching_allow_rule']);
      assert.deepEqual(codesOf(await sign({ psbt: psbt([[supplier, 60_000n]]), network: 'bitcoin' })), ['agent/per-transaction amount_exceeds_max']);
      assert.deepEqual(codesOf(await sign({ psbt: psbt([[supplier, 1_000n]], 9_000n), network: 'bitcoin' })), ['agent/fees fee_exceeds_cap', 'agent/fees fee_rate_exceeds_cap']);
      // SINGLE commits to output 0 only: the change can be removed after signing and left to the fee, past 20,000 sat and 50 sat/vB.
      assert.deepEqual(codesOf(await sign({ psbt: psbt([[supplier, 1_000n]], 500n, { sighashType: 0x03 }), network: 'bitcoin' })), ['agent/fees fee_exceeds_cap', 'agent/fees fee_rate_exceeds_cap', 'agent/default sighash_not_allowed']);
      assert.equal((await sign({ psbt: psbt([[supplier, 1_000n]]), network: 'regtest' })).body.error.code, 'psbt_network_mismatch', 'a mainnet account asked to sign on regtest');
      const big = await sign({ psbt: psbt([[supplier, 35_000n]]), network: 'bitcoin' });
      assert.equal(big.status, 202, JSON.stringify(big.body));
      assert.equal(big.body.violations[0].rule, 'agent/big-by-hand');
    });

    test('Nostr agent (docs/policy.md): notes, DMs to the friend, NIP-98 to the API, NIP-44 with the friend; every attack refused', async () => {
      const { token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#A Nostr agent').document, actions: ['nostr.event', 'nostr.http_auth', 'nostr.nip44'] });
      const event = (body: unknown) => h.call('POST', '/v1/sign/nostr-event', { token, body });
      const httpAuth = (url: string, method: string) => h.call('POST', '/v1/sign/nostr-http-auth', { token, body: nostrEvent(27235, '', [['u', url], ['method', method]]) });
      const signed = await event(nostrEvent(1, 'gm'));
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      assert.ok(verifyEvent(signed.body.event));
      assert.equal((await event(nostrEvent(4, 'hi', [['p', NOSTR_FRIEND]]))).status, 200);
      assert.deepEqual(codesOf(await event(nostrEvent(5, '', [['e', 'a'.repeat(64)]]))), ['agent/default nostr_kind_not_allowed']);
      assert.deepEqual(codesOf(await event(nostrEvent(4, 'psst', [['p', NOSTR_STRANGER]]))), ['agent/dm-friends nostr_tag_not_allowed']);
      assert.deepEqual(codesOf(await event(nostrEvent(1, 'yesterday', [], unixNow() - 86_400))), ['agent/fresh-and-short nostr_created_at_out_of_window']);
      assert.deepEqual(codesOf(await event(nostrEvent(1, 'my key is nsec1qqqq'))), ['agent/fresh-and-short nostr_content_not_allowed']);
      assert.deepEqual(codesOf(await event(nostrEvent(1, 'my key is NSEC1QQQQ'))), ['agent/fresh-and-short nostr_content_not_allowed'], 'bech32 is case-insensitive');
      assert.deepEqual(codesOf(await event(nostrEvent(1, 'x'.repeat(2001)))), ['agent/fresh-and-short nostr_content_too_large']);
      // Notes: gm above was the first of three a minute; the refused ones were never counted.
      for (const n of ['two', 'three']) assert.equal((await event(nostrEvent(1, n))).status, 200);
      assert.deepEqual(codesOf(await event(nostrEvent(1, 'four'))), ['agent/notes-per-minute rate_limit_exceeded']);
      assert.equal((await event(nostrEvent(7, '+', [['e', 'b'.repeat(64)]]))).status, 200, 'reactions have their own count');
      const profile = await event(nostrEvent(0, '{"name":"bot"}'));
      assert.equal(profile.status, 202, JSON.stringify(profile.body));
      assert.equal(profile.body.violations[0].rule, 'agent/profile-by-hand');
      assert.equal((await httpAuth('https://api.example.com/v1/me', 'GET')).status, 200);
      assert.deepEqual(codesOf(await httpAuth('https://evil.example.net/v1/me', 'GET')), ['agent/api-only nostr_http_url_not_allowed']);
      assert.deepEqual(codesOf(await httpAuth('https://api.example.com/v1/me', 'DELETE')), ['agent/api-only nostr_http_method_not_allowed']);
      const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
      const enc = await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: NOSTR_FRIEND, plaintext: 'hello friend' } });
      assert.equal(enc.status, 200, JSON.stringify(enc.body));
      assert.equal(nip44.decrypt(enc.body.ciphertext, nip44.getConversationKey(NOSTR_FRIEND_SECRET, me)), 'hello friend');
      assert.deepEqual(codesOf(await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: NOSTR_STRANGER, plaintext: 'leak' } })), ['agent/nip44-friends nostr_peer_not_allowed']);
    });

    test('smart-account agent (docs/policy.md): shop payments in user operations; drains, gas games, strange paymasters and delegates refused', async () => {
      const { agent, token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#A smart-account agent').document, actions: ['evm.user_operation', 'evm.authorization'] });
      const signOp = (body: unknown) => h.call('POST', '/v1/sign/user-operation', { token, body });
      const ok = await signOp(userOperation(agent.address, [usdcCall(ALICE, 5_000_000n), usdcCall(ALICE, 5_000_000n)]));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.intent.userOperation.calls.length, 2);
      const drain = await signOp(userOperation(agent.address, [usdcCall(ALICE, 1n), usdcCall(ALICE, 1n), usdcCall(STRANGER, 1_000_000n)]));
      assert.deepEqual(codesOf(drain), ['agent/default no_matching_allow_rule']);
      assert.match(drain.body.error.violations[0].message, /^call 3 of 3/);
      assert.deepEqual(codesOf(await signOp(userOperation(agent.address, [usdcCall(ALICE, 20_000_000n), usdcCall(ALICE, 20_000_000n)]))), ['agent/per-operation amount_exceeds_max']);
      assert.deepEqual(codesOf(await signOp(userOperation(agent.address, [usdcCall(ALICE, 1n)], { maxFeePerGas: '100000000000' }))), ['agent/gas prefund_exceeds_cap']);
      const paymaster = { paymaster: STRANGER, paymasterVerificationGasLimit: '10000', paymasterPostOpGasLimit: '10000' };
      assert.deepEqual(codesOf(await signOp(userOperation(agent.address, [usdcCall(ALICE, 1n)], paymaster))), ['agent/gas paymaster_not_allowed']);
      assert.equal((await signOp(userOperation(agent.address, [usdcCall(ALICE, 1n)], { ...paymaster, paymaster: '0x2222222222222222222222222222222222222222' }))).status, 200);
      const signAuth = (authorization: unknown, chainId?: number) => h.call('POST', '/v1/sign/authorization', { token, body: { ...(chainId ? { chainId } : {}), authorization } });
      assert.equal((await signAuth({ address: '0xe6cae83bde06e4c305530e199d7217f42808555b', chainId: 8453, nonce: 0 })).status, 200);
      assert.deepEqual(codesOf(await signAuth({ address: MIXER, chainId: 8453, nonce: 0 })), ['agent/simple7702-only delegate_not_allowed']);
      // Chain id 0 is valid on every chain: refused by the delegations rule, and the allow rule listing Base does not cover it.
      assert.deepEqual(codesOf(await signAuth({ address: '0xe6cae83bde06e4c305530e199d7217f42808555b', chainId: 0, nonce: 0 }, 8453)), ['agent/simple7702-only delegation_any_chain', 'agent/default no_matching_allow_rule']);
    });

    test('approvals by stakes: small payments signed, up to 1,000 USDC held for 1 of ops or treasury, above for 2 of treasury; the admin token cannot approve', async () => {
      const { token } = await provisionAgent(h, { policy: docPolicy('docs/policy.md#Approvals by stakes').document });
      assert.equal((await sign(token, usdcTransfer(ALICE, 100_000_000n))).status, 200);
      const ops = await sign(token, usdcTransfer(ALICE, 500_000_000n, 1));
      assert.equal(ops.status, 202, JSON.stringify(ops.body));
      assert.deepEqual(ops.body.violations.map((v: any) => [v.rule, v.quorum]), [['agent/ops-approves', { min: 1, groups: ['ops', 'treasury'] }]]);
      assert.deepEqual((await h.admin('GET', `/v1/approvals/${ops.body.approvalId}`)).body.quorum, [{ rule: 'agent/ops-approves', min: 1, groups: ['ops', 'treasury'] }]);
      const treasury = await sign(token, usdcTransfer(ALICE, 5_000_000_000n, 2));
      assert.equal(treasury.status, 202);
      assert.deepEqual((await h.admin('GET', `/v1/approvals/${treasury.body.approvalId}`)).body.quorum, [{ rule: 'agent/treasury-approves', min: 2, groups: ['treasury'] }]);
      const bypass = await h.admin('POST', `/v1/approvals/${treasury.body.approvalId}/approve`);
      assert.equal(bypass.status, 409);
      assert.equal(bypass.body.error.code, 'quorum_required');
      assert.deepEqual(codesOf(await sign(token, transfer(USDC, STRANGER, 1n))), ['agent/default no_matching_allow_rule']);
      assert.deepEqual(codesOf(await sign(token, usdcTransfer(ALICE, 10_000_000_001n, 3))), ['agent/per-payment amount_exceeds_max']);
    });

    test('fleet ceilings: mixers, other chains, big transfers and unlimited approvals are refused whatever the agent policy allows', async () => {
      const loose = { version: 1, rules: [{ name: 'anything', type: 'allow', match: { kinds: ['erc20.transfer', 'erc20.approve'] } }] };
      const { token } = await provisionAgent(h, { policy: loose });
      const set = await h.admin('PUT', '/v1/policies/fleet', { source: docPolicy('docs/policy.md#Fleet ceilings (restrict-only)').source });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.equal((await sign(token, usdcTransfer(ALICE, 10_000_000n))).status, 200);
      assert.deepEqual(codesOf(await sign(token, transfer(USDC, MIXER, 1n))), ['fleet/no-mixers denied_by_rule']);
      assert.deepEqual(codesOf(await sign(token, transfer(USDC, ALICE, 1n, 10))), ['fleet/mainnets chain_not_allowed']);
      assert.deepEqual(codesOf(await sign(token, usdcTransfer(ALICE, 1_000_000_001n))), ['fleet/usdc-per-request amount_exceeds_max']);
      // An unlimited approval of USDC is refused by the approvals rule and exceeds the per-request cap too.
      assert.deepEqual(codesOf(await sign(token, approve(USDC, ROUTER, MAX_UINT256))), ['fleet/usdc-per-request amount_exceeds_max', 'fleet/no-unlimited unlimited_approval']);
    });

    test('a fleet with circuit breakers: a first payee is an alert, a run of five refusals freezes the agent, the reset re-opens it', async () => {
      // A daemon of its own: the example's fleet-wide daily budget would count what the earlier examples spent.
      const shared = h;
      h = await startHarness({ store });
      try {
        await fleetWithBreakers();
      } finally {
        await h.close();
        h = shared;
      }
    });

    test('a fleet lifecycle: sweeps go only to its treasury, an agent policy cannot name another, no RPC is said plainly', async () => {
      const { agent } = await provisionAgent(h);
      const set = await h.admin('PUT', '/v1/policies/fleet', { source: docPolicy('docs/policy.md#A fleet lifecycle: treasury, sweeps, caps and orphans').source });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      try {
        // The lifecycle path abused to move funds elsewhere: refused before anything is read or signed.
        await assert.rejects(h.airlock.lifecycle.submitCalls(agent.id, 0, [{ chain: 'eip155:8453', to: STRANGER, data: '0x', value: 1n }], 'test'), (e: any) => e.code === 'lifecycle_kind_refused');
        await assert.rejects(h.airlock.lifecycle.submitCalls(agent.id, 0, [{ chain: 'eip155:8453', ...transfer(USDC, STRANGER, 1n).transaction, value: 0n }], 'test'), (e: any) => e.code === 'lifecycle_kind_refused');
        await assert.rejects(h.airlock.lifecycle.submitCalls(agent.id, 0, [{ chain: 'eip155:8453', ...approve(USDC, STRANGER, 1n).transaction, value: 0n }], 'test'), (e: any) => e.code === 'lifecycle_kind_refused');
        // An agent policy cannot redirect its own sweeps.
        const own = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: { version: 1, rules: [], lifecycle: { treasury: { 'eip155:8453': STRANGER } } } });
        assert.equal(own.body.error.code, 'invalid_policy');
        // This daemon has no RPC for Base: a sweep (and a retirement with sweep) says so, and changes nothing.
        const sweep = await h.admin('POST', `/v1/agents/${agent.name}/sweep`, {});
        assert.equal(sweep.body.error.code, 'lifecycle_no_rpc');
        const retire = await h.admin('POST', `/v1/agents/${agent.name}/retire`);
        assert.equal(retire.body.error.code, 'lifecycle_no_rpc');
        assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'active');
        assert.deepEqual((await h.admin('GET', `/v1/lifecycle/jobs?agent=${agent.name}`)).body.jobs, []);
      } finally {
        await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } });
      }
    });

    async function fleetWithBreakers(): Promise<void> {
      const loose = { version: 1, rules: [{ name: 'usdc', type: 'allow', match: { kinds: ['erc20.transfer'], assets: [USDC_ASSET] } }] };
      const { agent, token } = await provisionAgent(h, { policy: loose });
      const set = await h.admin('PUT', '/v1/policies/fleet', { source: docPolicy('docs/policy.md#A fleet with circuit breakers').source });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      try {
        const payee = '0x7777777777777777777777777777777777777777';
        assert.equal((await sign(token, usdcTransfer(payee, 1_000_000n))).status, 200, 'alert only');
        assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.new_destination`)).body.entries[0].data.figures.destination, payee);
        for (let i = 0; i < 4; i++) assert.deepEqual(codesOf(await sign(token, usdcTransfer(ALICE, 30_000_000n, i))), ['fleet/usdc-per-request amount_exceeds_max']);
        assert.deepEqual(codesOf(await sign(token, usdcTransfer(ALICE, 30_000_000n, 5))), ['fleet/usdc-per-request amount_exceeds_max', 'detector/fleet/probing breaker_tripped']);
        assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 6))).body.error.code, 'agent_frozen');
        const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers;
        assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
        assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 7))).status, 200);
      } finally {
        await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } });
      }
    }
  });
}
