// Policy for Bitcoin transactions (intents as the bitcoin adapter decodes PSBTs): every output must be
// listed, fee caps, sighash types granted only by name, Bitcoin addresses in sets, BIP-322 messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import { BITCOIN_CHAINS, bitcoinAsset, type BitcoinInfo, type Intent, type SighashName } from '../intent.ts';
import { compilePolicy } from './index.ts';
import { isBitcoinAddress, normaliseParty } from './party.ts';
import { codes, decide, input, intent, layer } from './testing/fixtures.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
// Real regtest addresses (checksums valid): BIP-84/86 test keys.
const SHOP = 'bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk';
const STRANGER = 'bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6';
const MAINNET_P2PKH = '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2';

interface Out {
  address: string;
  sat: bigint;
  change?: boolean;
}

/** A decoded PSBT: outputs to `outs` (change ones are the agent's), `fee` sat over `vsize` vB. */
function tx(outs: Out[], fee = 1000n, opts: { vsize?: number; inputs?: number; sighashes?: SighashName[] } = {}): Intent {
  const vsize = opts.vsize ?? 141;
  const external = outs.filter((o) => !o.change);
  const bitcoin: BitcoinInfo = {
    network: 'regtest',
    psbtVersion: 0,
    txid: 'ab'.repeat(32),
    inputs: Array.from({ length: opts.inputs ?? 1 }, (_, i) => ({ index: i, txid: 'cd'.repeat(32), vout: i, amountSat: 100_000n, scriptType: 'p2wpkh', ours: true, path: `m/84'/1'/0'/0/${i}`, sighash: 'all' as const, sequence: 0xfffffffd })),
    outputs: outs.map((o, index) => ({ index, amountSat: o.sat, address: o.address, script: '0014' + '00'.repeat(20), change: o.change === true })),
    feeSat: fee,
    vsize,
    feeRate: Math.ceil((Number(fee) / vsize) * 1000) / 1000,
    locktime: 0,
    rbf: true,
    sighashes: opts.sighashes ?? ['all'],
  };
  const destinations = new Set(external.map((o) => o.address));
  return intent({
    action: 'bitcoin.psbt',
    chain: CHAIN,
    kind: 'bitcoin.transaction',
    from: "[d34db33f/84'/1'/0']",
    ...(destinations.size === 1 ? { to: [...destinations][0]! } : {}),
    spends: [...external.map((o) => ({ asset: BTC, amount: o.sat * 1000n, decimals: 11, to: o.address, kind: 'transfer' as const })), { asset: BTC, amount: fee * 1000n, decimals: 11, kind: 'fee' as const }],
    bitcoin,
  });
}

const shopPolicy = (extra: unknown[] = [], match: Record<string, unknown> = {}) => ({
  version: 1,
  sets: { shops: [SHOP] },
  rules: [{ name: 'pay-shops', type: 'allow', match: { actions: ['bitcoin.psbt'], chains: [CHAIN], to: '$shops', ...match } }, ...extra],
});

test('an allow naming `to` covers a Bitcoin transaction only when every output it pays is listed', () => {
  const l = [layer('agent', shopPolicy())];
  assert.equal(decide(l, input(tx([{ address: SHOP, sat: 50_000n }, { address: 'bcrt1qchange', sat: 40_000n, change: true }]))).decision, 'allow', 'change is not a destination');
  const hidden = tx([{ address: SHOP, sat: 50_000n }, { address: STRANGER, sat: 1_000n }, { address: SHOP, sat: 2_000n }]);
  assert.deepEqual(codes(decide(l, input(hidden))), ['no_matching_allow_rule'], 'a stranger among many outputs is not covered');
  // A destinations allowlist names the stranger.
  const withList = [layer('agent', { version: 1, sets: { shops: [SHOP] }, rules: [{ name: 'btc', type: 'allow', match: { actions: ['bitcoin.psbt'] } }, { name: 'only-shops', type: 'destinations', allow: '$shops' }] })];
  const denied = decide(withList, input(hidden));
  assert.deepEqual(denied.violations.map((v) => v.message), [`${STRANGER} is not in the destination allowlist`]);
});

test('the bitcoin rule caps the fee, the fee rate, the fee share and the number of inputs', () => {
  const rule = { name: 'fees', type: 'bitcoin', max_fee_sat: 5_000, max_fee_rate: 20, max_fee_percent: 5, max_inputs: 3 };
  const l = [layer('agent', shopPolicy([rule]))];
  assert.equal(decide(l, input(tx([{ address: SHOP, sat: 100_000n }], 2_820n, { vsize: 141 }))).decision, 'allow', '20 sat/vB exactly, 2.82 %');
  assert.deepEqual(codes(decide(l, input(tx([{ address: SHOP, sat: 100_000n }], 2_821n, { vsize: 141 })))), ['fee_rate_exceeds_cap'], 'a millisat over the rate');
  // Most of the input value in the fee: every cap that applies says so.
  const drain = decide(l, input(tx([{ address: SHOP, sat: 1_000n }], 90_000n, { vsize: 141 })));
  assert.deepEqual(codes(drain), ['fee_exceeds_cap', 'fee_rate_exceeds_cap', 'fee_exceeds_cap']);
  assert.match(drain.violations[0]!.message, /the fee is 90000 sat; at most 5000 sat allowed/);
  assert.deepEqual(codes(decide(l, input(tx([{ address: SHOP, sat: 100_000n }], 500n, { inputs: 4 })))), ['too_many_inputs']);
  assert.throws(() => compilePolicy({ version: 1, rules: [{ name: 'x', type: 'bitcoin' }] }), (e: AirlockError) => e.code === 'invalid_policy' && /expected at least one of max_fee_sat/.test(e.message));
  assert.throws(() => compilePolicy({ version: 1, rules: [{ name: 'x', type: 'bitcoin', max_fee_rate: 1.0001 }] }), (e: AirlockError) => e.code === 'invalid_policy' && /three decimal/.test(e.message));
});

test('SINGLE, NONE and ANYONECANPAY are granted only by an allow rule listing them in bitcoin_sighash', () => {
  const single = tx([{ address: SHOP, sat: 10_000n }], 500n, { sighashes: ['single'] });
  const plain = [layer('agent', shopPolicy())];
  const refused = decide(plain, input(single));
  assert.deepEqual(codes(refused), ['sighash_not_allowed']);
  assert.match(refused.violations[0]!.message, /bitcoin_sighash/);
  assert.equal(decide([layer('agent', shopPolicy([], { bitcoin_sighash: ['single'] }))], input(single)).decision, 'allow');
  const both = tx([{ address: SHOP, sat: 10_000n }], 500n, { sighashes: ['single', 'none_anyonecanpay'] });
  assert.deepEqual(codes(decide([layer('agent', shopPolicy([], { bitcoin_sighash: ['single'] }))], input(both))), ['sighash_not_allowed'], 'every such type must be listed');
  // A deny naming a sighash touches any input using it.
  const deny = [layer('agent', shopPolicy([{ name: 'no-none', type: 'deny', match: { bitcoin_sighash: ['none_anyonecanpay'] } }], { bitcoin_sighash: ['single', 'none_anyonecanpay'] }))];
  assert.deepEqual(codes(decide(deny, input(both))), ['denied_by_rule']);
  assert.equal(decide(plain, input(tx([{ address: SHOP, sat: 10_000n }], 500n, { sighashes: ['default'] }))).decision, 'allow', 'taproot DEFAULT is ALL');
});

test('Bitcoin addresses in sets are checked and compared as wallets do: bech32 in any case, base58 exactly', () => {
  assert.equal(isBitcoinAddress(SHOP), true);
  assert.equal(isBitcoinAddress(SHOP.toUpperCase()), true, 'BIP-173: all-uppercase is the same address');
  assert.equal(isBitcoinAddress(SHOP.slice(0, -1) + (SHOP.endsWith('k') ? 'q' : 'k')), false, 'a typo breaks the checksum');
  assert.equal(isBitcoinAddress(STRANGER), true, 'bech32m (taproot)');
  assert.equal(isBitcoinAddress(MAINNET_P2PKH), true);
  assert.equal(isBitcoinAddress(MAINNET_P2PKH.toLowerCase()), false, 'base58 is case-sensitive');
  assert.equal(normaliseParty(SHOP.toUpperCase()), SHOP);
  assert.equal(normaliseParty(MAINNET_P2PKH), MAINNET_P2PKH);
  assert.throws(() => compilePolicy({ version: 1, sets: { s: ['bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppq'] }, rules: [{ name: 'a', type: 'allow', match: { to: '$s' } }] }), (e: AirlockError) => e.code === 'invalid_policy' && /Bitcoin address/.test(e.message));
  const l = [layer('agent', { version: 1, rules: [{ name: 'legacy', type: 'allow', match: { actions: ['bitcoin.psbt'], to: [MAINNET_P2PKH] } }] })];
  assert.equal(decide(l, input(tx([{ address: MAINNET_P2PKH, sat: 1_000n }]))).decision, 'allow');
  const caseTwin = '1bvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2';
  assert.deepEqual(codes(decide(l, input(tx([{ address: caseTwin, sat: 1_000n }])))), ['no_matching_allow_rule'], 'another case is another base58 string');
});

test('BIP-322 messages are denied unless an allow rule names the message', () => {
  const message = intent({ action: 'bitcoin.message', chain: CHAIN, kind: 'message.bip322', from: "[d34db33f/84'/1'/0']", message: { text: 'proof-of-reserves 2026-11', hex: '0x00' } });
  assert.deepEqual(codes(decide([layer('agent', { version: 1, rules: [{ name: 'btc', type: 'allow', match: { actions: ['bitcoin.message'] } }] })], input(message))), ['message_not_allowed']);
  const named = [layer('agent', { version: 1, rules: [{ name: 'proofs', type: 'allow', match: { actions: ['bitcoin.message'], message: { prefix: 'proof-of-reserves ' } } }] })];
  assert.equal(decide(named, input(message)).decision, 'allow');
  assert.deepEqual(codes(decide(named, input({ ...message, message: { text: 'I owe you 1 BTC', hex: '0x00' } }))), ['message_not_allowed']);
});
