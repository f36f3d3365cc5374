// The SDK's Bitcoin wallet against a real Airlock daemon over HTTP. PSBTs are built here as a wallet builds them
// (@scure/btc-signer, keys derived from the account xpub Airlock publishes, funded by made-up previous
// transactions); what comes back is checked with independent libraries: bitcoinjs-lib 7 + tiny-secp256k1 verify
// and finalize the signed PSBTs, bip322-js verifies the message signatures.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { Verifier } from 'bip322-js';
import { HDKey } from '@scure/bip32';
import { SigHash, Transaction } from '@scure/btc-signer';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT } from '../../server/src/testing/harness.ts';
import { AirlockApiError, AirlockApprovalRequiredError, AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { airlockBitcoinWallet, type AirlockBitcoinWalletOptions, type BitcoinAccount } from './bitcoin.ts';
import { buildPsbt, strangerKey } from './testing/bitcoin-psbt.ts';
import { waitForNewApprovals } from './testing/approvals.ts';

bitcoin.initEccLib(ecc);
const REGTEST = bitcoin.networks.regtest;
const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const SHOP = strangerKey('p2wpkh').address;
const SHOP_TAPROOT = strangerKey('p2tr').address;
const PROOF_PREFIX = 'airlock proof of reserves: ';

const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'pay-shop', match: { actions: ['bitcoin.psbt'], to: [SHOP, SHOP_TAPROOT] } },
    { type: 'bitcoin', name: 'fees', max_fee_sat: '5000', max_fee_rate: 100 },
    // Budgets count the bitcoin asset in millisatoshis: 0.002 BTC = 200,000 sat.
    { type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '200000000' },
    { type: 'allow', name: 'proofs', match: { actions: ['bitcoin.message'], message: { prefix: PROOF_PREFIX } } },
  ],
};

/** ECDSA (33-byte key) or BIP-340 (32-byte x-only key): what bitcoinjs-lib hands a signature validator. */
const validator = (pubkey: Uint8Array, msghash: Uint8Array, signature: Uint8Array) =>
  pubkey.length === 32 ? ecc.verifySchnorr(msghash, pubkey, signature) : ecc.verify(msghash, pubkey, signature);

/** bitcoinjs-lib's reading of a signed PSBT: every signature on `inputs` valid, then finalized and extracted. */
function finalizeIndependently(psbtBase64: string, inputs: number[]): bitcoin.Transaction {
  const psbt = bitcoin.Psbt.fromBase64(psbtBase64, { network: REGTEST });
  for (const i of inputs) assert.ok(psbt.validateSignaturesOfInput(i, validator), `bitcoinjs-lib verifies input ${i}`);
  psbt.finalizeAllInputs();
  return psbt.extractTransaction();
}

const outputAddress = (tx: bitcoin.Transaction, i: number) => bitcoin.address.fromOutputScript(tx.outs[i]!.script, REGTEST);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('the request was granted'),
    (e: unknown) => e,
  );
}

describe('airlockBitcoinWallet against a real Airlock over HTTP, checked with bitcoinjs-lib and bip322-js', () => {
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-bitcoin-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
    const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Operator steps over HTTP: an agent, its policy, a session for Bitcoin; then the agent's wallet and account. */
  async function provision(extra: Partial<AirlockBitcoinWalletOptions> = {}) {
    const created = await admin.request<{ agents: { name: string }[] }>('POST', '/v1/agents', { names: [`btc-${Math.random().toString(16).slice(2, 8)}`] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: POLICY });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['bitcoin.psbt', 'bitcoin.message'] });
    const options = { url: server!.url, token: issued.body.token, ...extra };
    const wallet = airlockBitcoinWallet(options);
    return { agent, options, wallet, account: await wallet.account('regtest') };
  }

  test('account and address: BIP-84/86 tpubs under the vault fingerprint; addresses match an independent derivation', async () => {
    const { agent, wallet, account } = await provision();
    assert.equal(account.network, 'regtest');
    assert.match(account.fingerprint, /^[0-9a-f]{8}$/);
    assert.equal(account.accounts.p2wpkh.path, `m/84'/1'/${account.accountIndex}'`);
    assert.equal(account.accounts.p2tr.path, `m/86'/1'/${account.accountIndex}'`);
    for (const type of ['p2wpkh', 'p2tr'] as const) {
      assert.match(account.accounts[type].xpub, /^tpub/);
      assert.ok(account.accounts[type].descriptor.includes(`[${account.fingerprint}/`), account.accounts[type].descriptor);
    }
    // The operator's view of the same agent is the same account.
    assert.deepEqual((await admin.request<BitcoinAccount>('GET', `/v1/agents/${agent.name}/bitcoin?network=regtest`)).body, account);

    // bitcoinjs-lib's payments from @scure/bip32 keys: not the derivation code the SDK checks with.
    const TPUB = { public: 0x043587cf, private: 0x04358394 };
    const key = (type: 'p2wpkh' | 'p2tr', change: 0 | 1, index: number) => HDKey.fromExtendedKey(account.accounts[type].xpub, TPUB).deriveChild(change).deriveChild(index).publicKey!;
    for (const [change, index] of [[0, 0], [0, 7], [1, 2]] as const) {
      const w = await wallet.address({ network: 'regtest', type: 'p2wpkh', change, index });
      assert.equal(w.address, bitcoin.payments.p2wpkh({ pubkey: key('p2wpkh', change, index), network: REGTEST }).address);
      assert.equal(w.path, `${account.accounts.p2wpkh.path}/${change}/${index}`);
      const t = await wallet.address({ network: 'regtest', type: 'p2tr', change, index });
      assert.equal(t.address, bitcoin.payments.p2tr({ internalPubkey: key('p2tr', change, index).subarray(1), network: REGTEST }).address);
      assert.match(t.address, /^bcrt1p/);
    }
  });

  test('signPsbt P2WPKH: bitcoinjs-lib verifies the signature and finalizes the transaction paying the shop; finalize returns that transaction', async () => {
    const { wallet, account } = await provision();
    const psbt = buildPsbt(account, { inputs: [{ type: 'p2wpkh', index: 3, amountSat: 100_000n }], outputs: [{ address: SHOP, amountSat: 60_000n }, { change: { type: 'p2wpkh', index: 0 }, amountSat: 38_500n }] });
    const signed = await wallet.signPsbt(psbt, { network: 'regtest' });
    assert.deepEqual(signed.signedInputs, [0]);
    assert.equal(signed.transaction, undefined);
    assert.equal(signed.intent.bitcoin?.feeSat, '1500');
    const change = await wallet.address({ network: 'regtest', type: 'p2wpkh', change: 1, index: 0 });
    assert.deepEqual(signed.intent.bitcoin?.outputs.map((o) => [o.address, o.change]), [[SHOP, false], [change.address, true]]);
    const tx = finalizeIndependently(signed.psbt, [0]);
    assert.equal(outputAddress(tx, 0), SHOP);
    assert.equal(tx.outs[0]!.value, 60_000n);
    assert.equal(tx.getId(), Transaction.fromPSBT(Buffer.from(psbt, 'base64')).id, 'the transaction signed is the one built');

    // Asked to finalize, Airlock returns the same transaction (RFC 6979: the same signature over the same digest).
    const final = await wallet.signPsbt(psbt, { network: 'regtest', finalize: true });
    assert.equal(final.transaction, tx.toHex());
    assert.equal(final.txid, tx.getId());
  });

  test('signPsbt P2TR (v2 PSBT), with an input someone else signs: only ours is signed, its key-path signature verifies', async () => {
    const { wallet, account } = await provision();
    const psbt = buildPsbt(account, {
      version: 2,
      inputs: [{ type: 'p2tr', index: 1, amountSat: 80_000n }],
      foreign: { amountSat: 20_000n },
      outputs: [{ address: SHOP_TAPROOT, amountSat: 70_000n }, { change: { type: 'p2tr', index: 4 }, amountSat: 29_000n }],
    });
    const signed = await wallet.signPsbt(psbt, { network: 'regtest' });
    assert.deepEqual(signed.signedInputs, [0]);
    assert.deepEqual(signed.intent.bitcoin?.inputs.map((i) => [i.scriptType, i.ours]), [['p2tr', true], ['p2wpkh', false]]);
    // It comes back as v2; bitcoinjs reads only v0, so btc-signer converts it (signatures are carried as they are).
    assert.equal(Transaction.fromPSBT(Buffer.from(signed.psbt, 'base64')).opts.PSBTVersion, 2);
    const back = bitcoin.Psbt.fromBase64(Buffer.from(Transaction.fromPSBT(Buffer.from(signed.psbt, 'base64')).toPSBT(0)).toString('base64'), { network: REGTEST });
    assert.equal(back.data.inputs[0]!.tapKeySig?.length, 64, 'a BIP-340 signature with SIGHASH_DEFAULT');
    assert.ok(back.validateSignaturesOfInput(0, validator));
    assert.equal(back.data.inputs[1]!.partialSig, undefined, 'the foreign input is left alone');
    assert.equal(back.data.inputs[1]!.tapKeySig, undefined);
  });

  test('idempotencyKey: the same key and PSBT again answers the same signatures, marked replayed', async () => {
    const { wallet, account } = await provision();
    const psbt = buildPsbt(account, { inputs: [{ type: 'p2tr', amountSat: 50_000n }], outputs: [{ address: SHOP, amountSat: 49_000n }] });
    const key = `psbt-${Math.random().toString(16).slice(2)}`;
    const first = await wallet.signPsbt(psbt, { network: 'regtest', idempotencyKey: key });
    const again = await wallet.signPsbt(psbt, { network: 'regtest', idempotencyKey: key });
    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.equal(again.psbt, first.psbt);
    assert.equal(again.auditSeq, first.auditSeq);
  });

  test('policy refusals throw AirlockPolicyError with the rule and code: a fee above the cap, SIGHASH_SINGLE, an unlisted payee', async () => {
    const { wallet, account } = await provision();
    const greedy = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 100_000n }], outputs: [{ address: SHOP, amountSat: 90_000n }] });
    const fee = await rejection(wallet.signPsbt(greedy, { network: 'regtest' }));
    assert.ok(fee instanceof AirlockPolicyError, String(fee));
    assert.deepEqual(fee.violations.map((v) => [v.rule, v.code]), [['agent/fees', 'fee_exceeds_cap']]);
    assert.equal(typeof fee.auditSeq, 'number', 'the refusal is on the audit record');

    const single = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 100_000n, sighashType: SigHash.SINGLE }], outputs: [{ address: SHOP, amountSat: 99_000n }] });
    const sighash = await rejection(wallet.signPsbt(single, { network: 'regtest' }));
    assert.ok(sighash instanceof AirlockPolicyError, String(sighash));
    assert.deepEqual(sighash.violations.map((v) => v.code), ['sighash_not_allowed']);

    const elsewhere = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 100_000n }], outputs: [{ address: strangerKey().address, amountSat: 99_000n }] });
    const payee = await rejection(wallet.signPsbt(elsewhere, { network: 'regtest' }));
    assert.ok(payee instanceof AirlockPolicyError, String(payee));
    assert.deepEqual(payee.violations.map((v) => v.code), ['no_matching_allow_rule']);
  });

  test('PSBTs Airlock cannot sign: AirlockApiError with the psbt_* code, not a policy error', async () => {
    const { wallet, account } = await provision();
    const garbage = await rejection(wallet.signPsbt(Buffer.from('not a psbt at all').toString('base64'), { network: 'regtest' }));
    assert.ok(garbage instanceof AirlockApiError && !(garbage instanceof AirlockPolicyError), String(garbage));
    assert.equal(garbage.code, 'psbt_malformed');
    assert.equal(garbage.status, 400);

    // Segwit v0 amounts are only trusted with the full previous transaction (the fee could hide value otherwise).
    const bare = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 10_000n, withoutPreviousTransaction: true }], outputs: [{ address: SHOP, amountSat: 9_000n }] });
    const missing = await rejection(wallet.signPsbt(bare, { network: 'regtest' }));
    assert.ok(missing instanceof AirlockApiError, String(missing));
    assert.equal(missing.code, 'psbt_missing_utxo');
  });

  test('approval: above the tier throws AirlockApprovalRequiredError; with a wait, an operator approval returns the checked PSBT', async () => {
    const { agent, wallet, account, options } = await provision();
    const big = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 500_000n }], outputs: [{ address: SHOP, amountSat: 300_000n }, { change: { type: 'p2wpkh', index: 1 }, amountSat: 198_000n }] });
    const held = await rejection(wallet.signPsbt(big, { network: 'regtest' }));
    assert.ok(held instanceof AirlockApprovalRequiredError, String(held));

    const patient = airlockBitcoinWallet({ ...options, approvalWaitMs: 10_000 });
    const operator = (async () => {
      const fresh = await waitForNewApprovals(admin, agent.name, [held.approvalId]);
      assert.equal(fresh.length, 1, 'exactly one new pending approval');
      await admin.request('POST', `/v1/approvals/${fresh[0]!.id}/approve`);
    })();
    const [signed] = await Promise.all([patient.signPsbt(big, { network: 'regtest' }), operator]);
    assert.equal(outputAddress(finalizeIndependently(signed.psbt, [0]), 0), SHOP);
  });

  test('signMessage: BIP-322 signatures bip322-js verifies, P2WPKH and P2TR, when policy names the message; refused otherwise', async () => {
    const { wallet } = await provision();
    const message = `${PROOF_PREFIX}${new Date().toISOString()}`;
    for (const addressType of ['p2wpkh', 'p2tr'] as const) {
      const signed = await wallet.signMessage({ message, network: 'regtest', addressType, index: 2 });
      assert.equal(signed.address, (await wallet.address({ network: 'regtest', type: addressType, index: 2 })).address);
      assert.equal(Verifier.verifySignature(signed.address, message, signed.signature), true, `bip322-js verifies the ${addressType} signature`);
      assert.equal(Verifier.verifySignature(signed.address, `${message}!`, signed.signature), false, 'and not for another message');
    }
    const other = await rejection(wallet.signMessage({ message: 'I owe you 1 BTC', network: 'regtest', addressType: 'p2wpkh' }));
    assert.ok(other instanceof AirlockPolicyError, String(other));
    assert.deepEqual(other.violations.map((v) => v.code), ['message_not_allowed']);
  });

  test('answers that are not what was asked for (tampered in transit) are refused by the wallet', async () => {
    type Answer = { psbt: string; signedInputs: number[] };
    const rewrites: Record<string, (answer: Answer, sent: string) => void> = {
      // One byte of the ECDSA signature changed: only verifying the signature notices.
      'a signature changed': (answer) => {
        const sig = Buffer.from(bitcoin.Psbt.fromBase64(answer.psbt).data.inputs[0]!.partialSig![0]!.signature).toString('hex');
        const changed = sig.slice(0, 20) + (sig[20] === '0' ? '1' : '0') + sig.slice(21);
        answer.psbt = Buffer.from(Buffer.from(answer.psbt, 'base64').toString('hex').replace(sig, changed), 'hex').toString('base64');
      },
      // The PSBT as sent: a signer claiming a signature it did not add.
      'no signature added': (answer, sent) => void (answer.psbt = sent),
      // An input signed that Airlock does not report.
      'a signed input unreported': (answer) => void (answer.signedInputs = [1]),
    };
    for (const [name, rewrite] of Object.entries(rewrites)) {
      const tampering: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (!String(input).endsWith('/v1/sign/psbt') || res.status !== 200) return res;
        const answer = (await res.json()) as Answer;
        rewrite(answer, (JSON.parse(String(init?.body)) as { psbt: string }).psbt);
        return new Response(JSON.stringify(answer), { status: res.status, headers: res.headers });
      };
      const { wallet, account } = await provision({ fetch: tampering });
      const psbt = buildPsbt(account, { inputs: [{ type: 'p2wpkh', amountSat: 70_000n }, { type: 'p2wpkh', index: 1, amountSat: 10_000n }], outputs: [{ address: SHOP, amountSat: 79_000n }] });
      const e = await rejection(wallet.signPsbt(psbt, { network: 'regtest' }));
      assert.ok(e instanceof AirlockApiError && !(e instanceof AirlockPolicyError), `${name}: ${String(e)}`);
      assert.equal(e.code, 'invalid_response', name);
    }
  });
});
