// Bitcoin PSBT signing over the real HTTP app, on both stores, checked by a second implementation: the PSBTs
// are built by bitcoinjs-lib from keys the test derives itself from the vault's mnemonic (@scure/bip32), the
// signatures Airlock adds are verified with tiny-secp256k1, bitcoinjs finalizes and extracts the transaction,
// and the chain double (packages/testing/src/bitcoin/chain.ts: no Bitcoin node runs here) accepts it only if
// every witness verifies against the coin it spends. A stranger (another party of a collaborative
// transaction) signs its own inputs with bitcoinjs; Airlock must sign exactly the agent's.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { Verifier } from 'bip322-js';
import {
  asPsbtV2,
  BitcoinTestChain,
  buildPsbt,
  decodePsbtMaps,
  encodePsbtMaps,
  fundedInput,
  IN,
  payTo,
  psbtVersion,
  signOwnInputs,
  TestWallet,
  toPsbtV0,
  verifyAirlockPsbt,
  walletOutput,
  extendedKeyBytes,
  type AccountResponse,
} from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const MSAT = 1000n;
const payee = TestWallet.stranger('payee', 'regtest');
const stranger = TestWallet.stranger('coinjoin partner', 'regtest');
const PAYEE = payee.receive('p2wpkh').address;
const PAYEE_TR = payee.receive('p2tr').address;

/** Bitcoin on regtest to the payees only, fees capped, a daily budget in msat. */
function policy(budgetMsat = 1_000_000_000n, extra: unknown[] = []) {
  return {
    version: 1,
    sets: { payees: [PAYEE, PAYEE_TR] },
    rules: [
      { type: 'allow', name: 'pay-payees', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
      { type: 'destinations', name: 'only-payees', allow: '$payees', match: { actions: ['bitcoin.psbt'] } },
      { type: 'bitcoin', name: 'fees', max_fee_sat: '20000', max_fee_rate: 100 },
      { type: 'budget', name: 'daily', asset: BTC, max: budgetMsat.toString(), window: '24h', scope: 'agent' },
      ...extra,
    ],
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Bitcoin PSBT signing over HTTP (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => h.close());

  /** An agent allowed bitcoin.psbt, and its wallet as the test derives it from the vault's mnemonic. */
  async function agentWith(doc: unknown = policy()) {
    const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['bitcoin.psbt'] });
    return { agent, token, wallet: TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex) };
  }
  const sign = (token: string, body: unknown, headers: Record<string, string> = {}) => h.call('POST', '/v1/sign/psbt', { token, body, headers });
  /** What the agent has been charged in the bitcoin asset (the budget window's total), msat. */
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
  const spendsOf = (intent: any) => intent.spends.map((s: any) => ({ kind: s.kind, amount: BigInt(s.amount), ...(s.to ? { to: s.to } : {}) }));

  test("GET /v1/bitcoin/account: the xpubs and fingerprint are those the vault's mnemonic derives (BIP-84 and BIP-86, coin 1 on regtest)", async () => {
    const { token, agent, wallet } = await agentWith();
    const res = await h.call('GET', '/v1/bitcoin/account?network=regtest', { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as AccountResponse & { accountIndex: number };
    assert.equal(body.fingerprint, wallet.fingerprint.toString(16).padStart(8, '0'));
    assert.equal(body.accountIndex, agent.accountIndex);
    assert.equal(body.accounts.p2wpkh.path, `m/84'/1'/${agent.accountIndex}'`);
    assert.equal(body.accounts.p2tr.path, `m/86'/1'/${agent.accountIndex}'`);
    assert.equal(body.accounts.p2wpkh.xpub, wallet.accountXpub('p2wpkh'));
    assert.equal(body.accounts.p2tr.xpub, wallet.accountXpub('p2tr'));
    // The watch-only wallet built from the response derives the same addresses.
    const watch = TestWallet.fromAccountResponse(body, 'regtest');
    assert.equal(watch.change('p2tr', 7).address, wallet.change('p2tr', 7).address);
    assert.equal(watch.receive('p2wpkh', 3).address, wallet.receive('p2wpkh', 3).address);
    // Descriptors name the key origin (fingerprint and hardened path) and the account xpub.
    const origin = (purpose: number) => `[${body.fingerprint}/${purpose}h/1h/${agent.accountIndex}h]`;
    assert.ok(res.body.accounts.p2wpkh.descriptor.startsWith(`wpkh(${origin(84)}${wallet.accountXpub('p2wpkh')}/<0;1>/*)#`), res.body.accounts.p2wpkh.descriptor);
    assert.ok(res.body.accounts.p2tr.descriptor.startsWith(`tr(${origin(86)}${wallet.accountXpub('p2tr')}/<0;1>/*)#`), res.body.accounts.p2tr.descriptor);

    // The address helper: the same addresses as bitcoinjs makes from the test's own derivation.
    for (const [type, change, index] of [['p2wpkh', 0, 0], ['p2wpkh', 1, 17], ['p2tr', 0, 5], ['p2tr', 1, 2147483647]] as const) {
      const one = await h.call('GET', `/v1/bitcoin/address?network=regtest&type=${type}&change=${change}&index=${index}`, { token });
      assert.equal(one.status, 200, JSON.stringify(one.body));
      assert.equal(one.body.address, wallet.key(type, change, index).address);
      assert.equal(one.body.path, wallet.key(type, change, index).path);
    }

    // Mainnet: coin type 0, an xpub (not a tpub), other keys.
    const main = await h.call('GET', '/v1/bitcoin/account?network=bitcoin', { token });
    assert.equal(main.status, 200, JSON.stringify(main.body));
    const mainnet = TestWallet.fromMnemonic(h.mnemonic, 'bitcoin', agent.accountIndex);
    assert.equal(main.body.accounts.p2tr.path, `m/86'/0'/${agent.accountIndex}'`);
    assert.equal(main.body.accounts.p2tr.xpub, mainnet.accountXpub('p2tr'));
    assert.match(main.body.accounts.p2tr.xpub, /^xpub/);
  });

  test("P2WPKH, v0, three inputs of which one is a stranger's: only the agent's are signed, the signatures verify independently, the transaction is accepted, change is recognised, the budget is charged outputs + fee", async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(
      chain,
      [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n), fundedInput(chain, stranger.receive('p2wpkh', 0), 50_000n), fundedInput(chain, wallet.change('p2wpkh', 2), 30_000n)],
      [payTo(chain, PAYEE, 120_000n), walletOutput(wallet.change('p2wpkh', 3), 58_000n)],
    );
    assert.deepEqual(signOwnInputs(psbt, stranger), [1]);
    const sent = psbt.toBase64();
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.decision, 'allow');
    assert.deepEqual(res.body.signedInputs, [0, 2]);
    const verified = verifyAirlockPsbt(res.body.psbt, { chain, sent });
    assert.deepEqual(verified.signedInputs, [0, 2], 'the signatures found in the PSBT are on the agent inputs only');
    assert.deepEqual(
      verified.signatures.map((s) => [s.input, s.publicKey]),
      [
        [0, Buffer.from(wallet.receive('p2wpkh', 0).publicKey).toString('hex')],
        [1, Buffer.from(stranger.receive('p2wpkh', 0).publicKey).toString('hex')],
        [2, Buffer.from(wallet.change('p2wpkh', 2).publicKey).toString('hex')],
      ],
    );
    assert.equal(verified.accepted?.feeSat, 2_000n);
    assert.equal(chain.unspentTo(PAYEE)[0]?.valueSat, 120_000n);

    const btc = res.body.intent.bitcoin;
    assert.equal(btc.network, 'regtest');
    assert.equal(btc.psbtVersion, 0);
    assert.equal(btc.txid, verified.txid, 'segwit: the unsigned txid is the txid');
    assert.deepEqual(
      btc.inputs.map((i: any) => [i.ours, i.path, i.scriptType, BigInt(i.amountSat)]),
      [
        [true, `m/84'/1'/${agent.accountIndex}'/0/0`, 'p2wpkh', 100_000n],
        [false, undefined, 'p2wpkh', 50_000n],
        [true, `m/84'/1'/${agent.accountIndex}'/1/2`, 'p2wpkh', 30_000n],
      ],
    );
    assert.deepEqual(
      btc.outputs.map((o: any) => [o.change, o.address, o.path, BigInt(o.amountSat)]),
      [
        [false, PAYEE, undefined, 120_000n],
        [true, wallet.change('p2wpkh', 3).address, `m/84'/1'/${agent.accountIndex}'/1/3`, 58_000n],
      ],
    );
    assert.equal(BigInt(btc.feeSat), 2_000n);
    // The size is estimated before signing. The stranger's input counts a 60-byte signature (the shortest its
    // signer can make, k = 1/2), 11 or 12 weight units below the one it made: never above the real size, else the
    // fee rate cap could be beaten. The agent's own count 72 bytes, 1 weight unit above when its signature is 71.
    const actual = bitcoin.Transaction.fromHex(verified.transaction!).virtualSize();
    assert.ok(btc.vsize >= actual - 3 && btc.vsize <= actual + 1, `estimated ${btc.vsize} vB, signed ${actual} vB`);
    assert.equal(btc.feeRate, Math.ceil((2_000 / btc.vsize) * 1000) / 1000);
    assert.deepEqual(btc.sighashes, ['all']);
    const spends = spendsOf(res.body.intent);
    assert.deepEqual(spends.filter((x: any) => x.kind === 'fee').map((x: any) => x.amount), [2_000n * MSAT]);
    assert.deepEqual(spends.filter((x: any) => x.kind !== 'fee').map((x: any) => [x.to, x.amount]), [[PAYEE, 120_000n * MSAT]], 'the change output is not a spend');
    assert.equal(await charged(agent.id), (120_000n + 2_000n) * MSAT);
  });

  test('P2TR key path, v2 (BIP-370): the PSBT comes back as v2 with a 64-byte BIP-340 signature, the stranger signs after Airlock, the transaction is accepted', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const v0 = buildPsbt(
      chain,
      [fundedInput(chain, wallet.receive('p2tr', 1), 80_000n), fundedInput(chain, stranger.receive('p2tr', 0), 40_000n), fundedInput(chain, wallet.receive('p2tr', 4), 5_000n)],
      [payTo(chain, PAYEE, 100_000n), walletOutput(wallet.change('p2tr', 0), 24_000n)],
    );
    const sent = asPsbtV2(v0);
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.signedInputs, [0, 2]);
    assert.equal(psbtVersion(res.body.psbt), 2);
    assert.equal(res.body.intent.bitcoin.psbtVersion, 2);
    assert.deepEqual(
      res.body.intent.bitcoin.outputs.map((o: any) => o.change),
      [false, true],
    );
    assert.equal(res.body.intent.bitcoin.outputs[1].path, `m/86'/1'/${agent.accountIndex}'/1/0`);
    // Only signatures were added (checked on the v2 maps), each verifies; not finalizable yet: input 1 is open.
    const checked = verifyAirlockPsbt(res.body.psbt, { chain, sent, finalize: false });
    assert.deepEqual(checked.signedInputs, [0, 2]);
    assert.deepEqual(
      checked.signatures.map((s) => [s.input, s.scheme, s.hashType, s.signature.length / 2]),
      [
        [0, 'schnorr', 0, 64],
        [2, 'schnorr', 0, 64],
      ],
    );
    const tapSig = decodePsbtMaps(res.body.psbt).inputs[0]!.find((kv) => kv.key[0] === IN.TAP_KEY_SIG);
    assert.ok(tapSig, 'PSBT_IN_TAP_KEY_SIG on the agent input');
    // The stranger co-signs what Airlock returned, then everyone's signatures go on chain.
    const withStranger = bitcoin.Psbt.fromBase64(toPsbtV0(res.body.psbt), { network: chain.bitcoinjsNetwork });
    assert.deepEqual(signOwnInputs(withStranger, stranger), [1]);
    const final = verifyAirlockPsbt(withStranger.toBase64(), { chain });
    assert.equal(final.accepted?.feeSat, 1_000n);
    assert.equal(await charged(agent.id), 101_000n * MSAT);
  });

  test("beside a stranger's legacy P2PKH input (only its full previous transaction): the taproot signature commits to that coin's amount and script too (BIP-341)", async () => {
    const { token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const legacyKey = stranger.receive('p2wpkh', 4);
    const p2pkh = bitcoin.payments.p2pkh({ pubkey: legacyKey.publicKey, network: chain.bitcoinjsNetwork });
    const legacyCoin = chain.fundOne(p2pkh.output!, 25_000n);
    const sent = buildPsbt(
      chain,
      [{ hash: legacyCoin.txid, index: legacyCoin.vout, nonWitnessUtxo: legacyCoin.transaction.toBuffer() }, fundedInput(chain, wallet.receive('p2tr', 2), 75_000n)],
      [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change('p2tr', 2), 9_000n)],
    ).toBase64();
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.signedInputs, [1]);
    assert.equal(res.body.intent.bitcoin.inputs[0].scriptType, 'p2pkh');
    assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 1_000n);
    // The chain double has no P2PKH interpreter: the taproot signature is checked here, with the P2PKH coin among the prevouts.
    const checked = verifyAirlockPsbt(res.body.psbt, { chain, sent, finalize: false });
    assert.deepEqual(checked.signatures.map((s) => [s.input, s.scheme]), [[1, 'schnorr']]);
  });

  test('v2 with a required height lock time on one input: the signature commits to the lock time BIP-370 determines, not the fallback', async () => {
    const { token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const v0 = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 6), 50_000n), fundedInput(chain, wallet.receive('p2tr', 6), 50_000n, { withPreviousTransaction: true })], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change('p2wpkh', 6), 9_000n)], { locktime: 100 });
    const maps = decodePsbtMaps(asPsbtV2(v0));
    maps.inputs[1]!.push({ key: Uint8Array.of(IN.REQUIRED_HEIGHT_LOCKTIME), value: Uint8Array.of(0x20, 0x03, 0, 0) }); // 800
    const sent = encodePsbtMaps(maps);
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.intent.bitcoin.locktime, 800);
    const verified = verifyAirlockPsbt(res.body.psbt, { chain, sent });
    assert.equal(bitcoin.Transaction.fromHex(verified.transaction!).locktime, 800);
    assert.deepEqual(verified.signedInputs, [0, 1]);
  });

  for (const version of [0, 2] as const) {
    test(`finalize: true (v${version}) returns the network transaction: the chain double accepts it as is, and bitcoinjs extracts the same bytes from the returned PSBT`, async () => {
      const { token, wallet } = await agentWith();
      const chain = new BitcoinTestChain('regtest');
      const psbt = buildPsbt(
        chain,
        [fundedInput(chain, wallet.receive('p2wpkh', 5), 60_000n), fundedInput(chain, stranger.receive('p2wpkh', 1), 20_000n), fundedInput(chain, wallet.receive('p2tr', 5), 30_000n, { withPreviousTransaction: true })],
        [payTo(chain, PAYEE_TR, 70_000n), walletOutput(wallet.change('p2wpkh', 9), 38_500n)],
      );
      signOwnInputs(psbt, stranger, { finalize: true });
      const sent = version === 2 ? asPsbtV2(psbt) : psbt.toBase64();
      const res = await sign(token, { psbt: sent, network: 'regtest', finalize: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.signedInputs, [0, 2]);
      assert.match(res.body.transaction, /^[0-9a-f]+$/);
      const fromPsbt = verifyAirlockPsbt(res.body.psbt, { chain, sent, broadcast: false });
      assert.equal(fromPsbt.transaction, res.body.transaction);
      assert.equal(bitcoin.Transaction.fromHex(res.body.transaction).getId(), res.body.txid);
      const accepted = chain.broadcast(res.body.transaction);
      assert.equal(accepted.txid, res.body.txid);
      assert.equal(accepted.feeSat, 1_500n);
    });
  }

  test('twenty PSBTs at once against a budget for exactly five: five signed and charged, fifteen refused, every signature audited', async () => {
    // Each pays 10,000 sat + 1,000 fee = 11,000,000 msat; the budget holds five.
    const { agent, token, wallet } = await agentWith(policy(55_000_000n));
    const chain = new BitcoinTestChain('regtest');
    const psbts = Array.from({ length: 20 }, (_, i) =>
      buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 40 + i), 20_000n)], [payTo(chain, PAYEE, 10_000n), walletOutput(wallet.change('p2wpkh', 40 + i), 9_000n)]).toBase64(),
    );
    const answers = await Promise.all(psbts.map((psbt) => sign(token, { psbt, network: 'regtest' })));
    const signed = answers.filter((a) => a.status === 200);
    assert.equal(signed.length, 5, answers.map((a) => a.status).join(','));
    assert.ok(answers.every((a) => a.status === 200 || (a.status === 403 && a.body.error.violations[0].code === 'budget_exceeded')));
    assert.equal(await charged(agent.id), 55_000_000n);
    const entries = await h.airlock.store.readAudit(1, 100_000);
    for (const a of signed) {
      const entry = entries.find((e) => e.seq === a.body.auditSeq);
      assert.equal(entry?.decision, 'allow', `signature at ${a.body.auditSeq} has its allow entry`);
      verifyAirlockPsbt(a.body.psbt, { chain, sent: psbts[answers.indexOf(a)]! });
    }
  });

  test('the budget is charged exactly external outputs + fee: a second PSBT that would pass it is denied, unsigned and not charged', async () => {
    const { agent, token, wallet } = await agentWith(policy(150_000_000n));
    const chain = new BitcoinTestChain('regtest');
    const first = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 200_000n)], [payTo(chain, PAYEE, 100_000n), walletOutput(wallet.change('p2wpkh', 0), 99_000n)]);
    const ok = await sign(token, { psbt: first.toBase64(), network: 'regtest' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(await charged(agent.id), 101_000_000n);
    verifyAirlockPsbt(ok.body.psbt, { chain, sent: first.toBase64() });

    // 49,000 sat left. 48,000 + a 1,000 fee fits exactly; one more satoshi does not.
    const tooMuch = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 1), 60_000n)], [payTo(chain, PAYEE, 48_001n), walletOutput(wallet.change('p2wpkh', 1), 10_999n)]);
    const denied = await sign(token, { psbt: tooMuch.toBase64(), network: 'regtest' });
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.deepEqual(
      denied.body.error.violations.map((v: any) => [v.rule, v.code]),
      [['agent/daily', 'budget_exceeded']],
    );
    assert.equal(denied.body.psbt, undefined);
    assert.equal(await charged(agent.id), 101_000_000n);

    const exact = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 2), 60_000n)], [payTo(chain, PAYEE, 48_000n), walletOutput(wallet.change('p2wpkh', 2), 11_000n)]);
    const fits = await sign(token, { psbt: exact.toBase64(), network: 'regtest' });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    assert.equal(await charged(agent.id), 150_000_000n);
  });

  test('a replay under an Idempotency-Key returns byte-identical signatures and is not charged again; the key with another PSBT is a conflict', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 50_000n), fundedInput(chain, wallet.receive('p2tr', 0), 50_000n, { withPreviousTransaction: true })], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change('p2tr', 0), 9_000n)]);
    const body = { psbt: psbt.toBase64(), network: 'regtest' };
    const headers = { 'idempotency-key': 'btc-replay-1' };
    const a = await sign(token, body, headers);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const b = await sign(token, body, headers);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.replayed, true);
    assert.equal(b.body.psbt, a.body.psbt);
    const sigs = (r: any) => verifyAirlockPsbt(r.body.psbt, { chain, sent: body.psbt, finalize: false }).signatures.map((s) => s.signature);
    assert.deepEqual(sigs(b), sigs(a));
    assert.equal(await charged(agent.id), 91_000n * MSAT);

    const other = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 1), 50_000n)], [payTo(chain, PAYEE, 40_000n), walletOutput(wallet.change('p2tr', 1), 9_000n)]);
    const conflict = await sign(token, { psbt: other.toBase64(), network: 'regtest' }, headers);
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    assert.equal(await charged(agent.id), 91_000n * MSAT);
    verifyAirlockPsbt(a.body.psbt, { chain, sent: body.psbt });
  });

  test('the key backend failing after the charge committed (a crash between commit and signing): nothing returned, sign.failed audited; the retry under the same Idempotency-Key gets the signatures, charged once', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 30), 50_000n)], [payTo(chain, PAYEE, 40_000n), walletOutput(wallet.change('p2tr', 30), 9_000n)]);
    const body = { psbt: psbt.toBase64(), network: 'regtest' };
    const headers = { 'idempotency-key': 'btc-crash-1' };
    // The signing service's key backend (the vault's) fails once, after the transaction that charged committed.
    const keys = (h.airlock.signing as unknown as { deps: { keys: { signTaprootKeyPath: (path: string, digest: Uint8Array) => Promise<Uint8Array> } } }).deps.keys;
    const real = keys.signTaprootKeyPath;
    keys.signTaprootKeyPath = async () => {
      keys.signTaprootKeyPath = real;
      throw new Error('the key process died');
    };
    const failed = await sign(token, body, headers);
    assert.equal(failed.status, 500, JSON.stringify(failed.body));
    assert.equal(failed.body.psbt, undefined, 'no signature left Airlock');
    assert.equal(await charged(agent.id), 41_000n * MSAT, 'the reservation stays: charged, conservatively');
    const retry = await sign(token, body, headers);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.replayed, true);
    assert.equal(await charged(agent.id), 41_000n * MSAT, 'charged once');
    verifyAirlockPsbt(retry.body.psbt, { chain, sent: body.psbt });
    const entries = (await h.airlock.store.readAudit(1, 100_000)).filter((e) => e.agentId === agent.id);
    assert.deepEqual(entries.map((e) => `${e.type} ${e.decision}`).slice(-3), ['sign.request allow', 'sign.failed error', 'sign.replay allow']);
    assert.equal(entries.at(-1)!.data.originalSeq, entries.at(-3)!.seq, 'the replay points at the charged request');
  });

  test('above the approval tier: 202 and held; approved by an operator, the stored PSBT is signed, verifies and is accepted on chain, charged once', async () => {
    const { agent, token, wallet } = await agentWith(policy(1_000_000_000n, [{ type: 'approval_tier', name: 'big-needs-human', asset: BTC, above: (50_000n * MSAT).toString() }]));
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 7), 70_000n), fundedInput(chain, wallet.receive('p2tr', 7), 30_000n, { withPreviousTransaction: true })], [payTo(chain, PAYEE_TR, 60_000n), walletOutput(wallet.change('p2tr', 7), 39_000n)]);
    const sent = asPsbtV2(psbt);
    const pending = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(pending.status, 202, JSON.stringify(pending.body));
    assert.equal(pending.body.psbt, undefined);
    assert.equal(await charged(agent.id), 61_000n * MSAT, 'held while pending');
    const approved = await h.admin('POST', `/v1/approvals/${pending.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const fetched = await h.call('GET', `/v1/approvals/${pending.body.approvalId}`, { token });
    assert.equal(fetched.status, 200, JSON.stringify(fetched.body));
    const result = fetched.body.result;
    assert.deepEqual(result.signedInputs, [0, 1]);
    const verified = verifyAirlockPsbt(result.psbt, { chain, sent });
    assert.equal(verified.accepted?.feeSat, 1_000n);
    assert.equal(await charged(agent.id), 61_000n * MSAT);
  });

  test('payees with base58 addresses (P2PKH, P2SH) and a P2WSH address are matched in the allowlist as bitcoinjs writes them', async () => {
    const key = payee.receive('p2wpkh', 9).publicKey;
    const network = bitcoin.networks.regtest;
    const legacy = bitcoin.payments.p2pkh({ pubkey: key, network }).address!;
    const nested = bitcoin.payments.p2sh({ redeem: bitcoin.payments.p2wpkh({ pubkey: key, network }), network }).address!;
    const wsh = bitcoin.payments.p2wsh({ redeem: { output: bitcoin.script.compile([key, bitcoin.opcodes.OP_CHECKSIG!]) }, network }).address!;
    assert.match(legacy, /^[mn]/);
    assert.match(nested, /^2/);
    const doc = policy();
    doc.sets.payees.push(legacy, nested, wsh);
    const { agent, token, wallet } = await agentWith(doc);
    const chain = new BitcoinTestChain('regtest');
    const sent = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, legacy, 20_000n), payTo(chain, nested, 30_000n), payTo(chain, wsh, 40_000n), walletOutput(wallet.change('p2tr', 0), 9_000n)]).toBase64();
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.intent.bitcoin.outputs.map((o: any) => o.address), [legacy, nested, wsh, wallet.change('p2tr', 0).address]);
    verifyAirlockPsbt(res.body.psbt, { chain, sent });
    assert.equal(await charged(agent.id), 91_000n * MSAT);
  });

  test('fields Airlock does not use are kept (BIP-174: unknown and proprietary keys are preserved, the global xpub stays)', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 50_000n)], [payTo(chain, PAYEE, 40_000n), walletOutput(wallet.change('p2wpkh', 0), 9_000n)]);
    const proprietary = (sub: number) => ({ key: Uint8Array.of(0xfc, 4, ...Buffer.from('test'), sub), value: Uint8Array.of(1, 2, 3) });
    psbt.updateGlobal({ globalXpub: [{ extendedPubkey: extendedKeyBytes(wallet.accountXpub('p2wpkh')), masterFingerprint: wallet.receive('p2wpkh').masterFingerprint, path: `m/84'/1'/${agent.accountIndex}'` }] });
    psbt.addUnknownKeyValToGlobal(proprietary(0));
    psbt.addUnknownKeyValToInput(0, proprietary(1));
    psbt.addUnknownKeyValToOutput(0, proprietary(2));
    const sent = psbt.toBase64();
    const res = await sign(token, { psbt: sent, network: 'regtest' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    verifyAirlockPsbt(res.body.psbt, { chain, sent });
  });

  test('BIP-322 over HTTP: the signature verifies with bip322-js for the address Airlock names, and not for another message', async () => {
    const doc = { version: 1, rules: [{ type: 'allow', name: 'proofs', match: { actions: ['bitcoin.message'], message: { prefix: 'proof-of-reserves ' } } }] };
    const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['bitcoin.message'] });
    const wallet = TestWallet.fromMnemonic(h.mnemonic, 'testnet', agent.accountIndex);
    for (const [addressType, change, index] of [['p2wpkh', 0, 0], ['p2tr', 1, 3]] as const) {
      const message = `proof-of-reserves ${addressType} ${index}`;
      const res = await h.call('POST', '/v1/sign/bitcoin-message', { token, body: { message, network: 'testnet', addressType, change, index } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.address, wallet.key(addressType, change, index).address);
      assert.equal(Verifier.verifySignature(res.body.address, message, res.body.signature), true);
      assert.equal(Verifier.verifySignature(res.body.address, `${message}!`, res.body.signature), false);
    }
    const refusedMessage = await h.call('POST', '/v1/sign/bitcoin-message', { token, body: { message: 'I owe you 1 BTC', network: 'testnet', addressType: 'p2wpkh' } });
    assert.equal(refusedMessage.status, 403, JSON.stringify(refusedMessage.body));
  });
});
