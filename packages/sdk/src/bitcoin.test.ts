// The SDK's Bitcoin wallet against a real Airlock daemon over HTTP. PSBTs are built as a watch-only wallet builds
// them, from the account xpub Airlock publishes (packages/testing/src/bitcoin: bitcoinjs-lib, funded on the chain
// double); what comes back is checked with independent libraries: bitcoinjs-lib 7 + tiny-secp256k1 verify every
// signature and finalize, the chain double accepts the transaction only if every witness verifies, and bip322-js
// verifies the message signatures. The SDK's own checks (@scure/btc-signer) are not what the test relies on.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as bitcoin from 'bitcoinjs-lib';
import { Verifier } from 'bip322-js';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';
import { asPsbtV2, BitcoinTestChain, buildPsbt, fundedInput, payTo, signOwnInputs, TestWallet, verifyAirlockPsbt, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { AirlockApiError, AirlockApprovalRequiredError, AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { airlockBitcoinWallet, type AirlockBitcoinWalletOptions, type BitcoinAccount } from './bitcoin.ts';
import { waitForNewApprovals } from './testing/approvals.ts';

const REGTEST = bitcoin.networks.regtest;
const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const stranger = TestWallet.stranger('sdk co-signer', 'regtest');
const SHOP = TestWallet.stranger('sdk shop', 'regtest').receive('p2wpkh').address;
const SHOP_TAPROOT = TestWallet.stranger('sdk shop', 'regtest').receive('p2tr').address;
const PROOF_PREFIX = 'airlock proof of reserves: ';
const SIGHASH_SINGLE = 3;

const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'pay-shop', match: { actions: ['bitcoin.psbt'], to: [SHOP, SHOP_TAPROOT] } },
    { type: 'bitcoin', name: 'fees', max_fee_sat: '5000', max_fee_rate: 100 },
    // Amounts of the bitcoin asset are millisatoshis: above 200,000 sat a human decides.
    { type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '200000000' },
    { type: 'allow', name: 'proofs', match: { actions: ['bitcoin.message'], message: { prefix: PROOF_PREFIX } } },
  ],
};

const outputAddress = (txHex: string, i: number) => bitcoin.address.fromOutputScript(bitcoin.Transaction.fromHex(txHex).outs[i]!.script, REGTEST);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('the request was granted'),
    (e: unknown) => e,
  );
}

describe('airlockBitcoinWallet against a real Airlock over HTTP, checked with bitcoinjs-lib, the chain double and bip322-js', () => {
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-bitcoin-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, { AIRLOCK_BITCOIN_NETWORKS: 'regtest' });
    const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * Operator steps over HTTP: an agent, its policy, a session for Bitcoin. Then the agent's SDK wallet, its
   * account as the SDK reads it, and the watch-only wallet the test builds PSBTs with from that account.
   */
  async function provision(extra: Partial<AirlockBitcoinWalletOptions> = {}) {
    const created = await admin.request<{ agents: { name: string }[] }>('POST', '/v1/agents', { names: [uniqueName('btc')] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: POLICY });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['bitcoin.psbt', 'bitcoin.message'] });
    const options = { url: server!.url, token: issued.body.token, ...extra };
    const wallet = airlockBitcoinWallet(options);
    const account = await wallet.account('regtest');
    return { agent, options, wallet, account, watchOnly: TestWallet.fromAccountResponse(account, 'regtest'), chain: new BitcoinTestChain('regtest') };
  }

  test('account and address: BIP-84/86 tpubs under the vault fingerprint; addresses as bitcoinjs derives them from the xpubs', async () => {
    const { agent, wallet, account, watchOnly } = await provision();
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
    for (const [change, index] of [[0, 0], [0, 7], [1, 2]] as const) {
      for (const type of ['p2wpkh', 'p2tr'] as const) {
        const given = await wallet.address({ network: 'regtest', type, change, index });
        assert.equal(given.address, watchOnly.key(type, change, index).address, `${type} ${change}/${index}`);
        assert.equal(given.path, `${account.accounts[type].path}/${change}/${index}`);
      }
    }
  });

  test('signPsbt P2WPKH: bitcoinjs-lib verifies the signature, finalizes, and the chain double accepts the payment; finalize returns that transaction', async () => {
    const { wallet, watchOnly, chain } = await provision();
    const psbt = buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2wpkh', 3), 100_000n)], [payTo(chain, SHOP, 60_000n), walletOutput(watchOnly.change('p2wpkh', 0), 38_500n)]).toBase64();
    const signed = await wallet.signPsbt(psbt, { network: 'regtest' });
    assert.deepEqual(signed.signedInputs, [0]);
    assert.equal(signed.transaction, undefined);
    assert.equal(signed.intent.bitcoin.feeSat, '1500');
    assert.deepEqual(signed.intent.bitcoin.outputs.map((o) => [o.address, o.change]), [[SHOP, false], [watchOnly.change('p2wpkh', 0).address, true]]);
    // Checked without the chain first: finalize asks Airlock to sign the same PSBT once more.
    const checked = verifyAirlockPsbt(signed.psbt, { chain, sent: psbt, broadcast: false });
    assert.deepEqual(checked.signedInputs, [0]);
    assert.equal(outputAddress(checked.transaction!, 0), SHOP);

    // Asked to finalize, Airlock returns that same transaction (RFC 6979: the same signature over the same digest).
    const final = await wallet.signPsbt(psbt, { network: 'regtest', finalize: true });
    assert.equal(final.transaction, checked.transaction);
    assert.equal(final.txid, checked.txid);
    assert.equal(chain.broadcast(final.transaction!).feeSat, 1_500n);
  });

  for (const version of [0, 2] as const) {
    test(`signPsbt P2TR (v${version} PSBT) beside a co-signer's input: only ours is signed, with a key-path signature; finalized, the chain accepts it`, async () => {
      const { wallet, watchOnly, chain } = await provision();
      const built = buildPsbt(
        chain,
        [fundedInput(chain, watchOnly.receive('p2tr', 1), 80_000n), fundedInput(chain, stranger.receive('p2wpkh', 0), 20_000n)],
        [payTo(chain, SHOP_TAPROOT, 70_000n), walletOutput(watchOnly.change('p2tr', 4), 29_000n)],
      );
      signOwnInputs(built, stranger, { finalize: true });
      const psbt = version === 2 ? asPsbtV2(built) : built.toBase64();
      const signed = await wallet.signPsbt(psbt, { network: 'regtest' });
      assert.deepEqual(signed.signedInputs, [0]);
      assert.equal(signed.intent.bitcoin.psbtVersion, version);
      assert.deepEqual(signed.intent.bitcoin.inputs.map((i) => [i.scriptType, i.ours]), [['p2tr', true], ['p2wpkh', false]]);
      const checked = verifyAirlockPsbt(signed.psbt, { chain, sent: psbt, broadcast: false });
      assert.deepEqual(checked.signatures.map((s) => [s.input, s.scheme, s.hashType]), [[0, 'schnorr', 0]], 'one 64-byte BIP-340 signature, SIGHASH_DEFAULT');
      // Finalized by Airlock: the transaction bitcoinjs extracted (Airlock's BIP-340 nonces are deterministic).
      const final = await wallet.signPsbt(psbt, { network: 'regtest', finalize: true });
      assert.equal(final.transaction, checked.transaction);
      assert.equal(chain.broadcast(final.transaction!).txid, final.txid);
    });
  }

  test('idempotencyKey: the same key and PSBT again answers the same signatures, marked replayed', async () => {
    const { wallet, watchOnly, chain } = await provision();
    const psbt = buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2tr'), 50_000n)], [payTo(chain, SHOP, 49_000n)]).toBase64();
    const key = `psbt-${Math.random().toString(16).slice(2)}`;
    const first = await wallet.signPsbt(psbt, { network: 'regtest', idempotencyKey: key });
    const again = await wallet.signPsbt(psbt, { network: 'regtest', idempotencyKey: key });
    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.equal(again.psbt, first.psbt);
    assert.equal(again.auditSeq, first.auditSeq);
  });

  test('policy refusals throw AirlockPolicyError with the rule and code: a fee above the cap, SIGHASH_SINGLE, an unlisted payee', async () => {
    const { wallet, watchOnly, chain } = await provision();
    const spend = (outputs: Parameters<typeof buildPsbt>[2], sighashType?: number) =>
      buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2wpkh'), 100_000n, sighashType === undefined ? {} : { sighashType })], outputs).toBase64();

    const fee = await rejection(wallet.signPsbt(spend([payTo(chain, SHOP, 90_000n)]), { network: 'regtest' }));
    assert.ok(fee instanceof AirlockPolicyError, String(fee));
    assert.deepEqual(fee.violations.map((v) => [v.rule, v.code]), [['agent/fees', 'fee_exceeds_cap']]);
    assert.equal(typeof fee.auditSeq, 'number', 'the refusal is on the audit record');

    const single = await rejection(wallet.signPsbt(spend([payTo(chain, SHOP, 99_000n)], SIGHASH_SINGLE), { network: 'regtest' }));
    assert.ok(single instanceof AirlockPolicyError, String(single));
    assert.deepEqual(single.violations.map((v) => v.code), ['sighash_not_allowed']);

    const elsewhere = await rejection(wallet.signPsbt(spend([payTo(chain, stranger.receive('p2wpkh', 5).address, 99_000n)]), { network: 'regtest' }));
    assert.ok(elsewhere instanceof AirlockPolicyError, String(elsewhere));
    assert.deepEqual(elsewhere.violations.map((v) => v.code), ['no_matching_allow_rule']);
  });

  test('PSBTs Airlock cannot sign: AirlockApiError with the psbt_* code, not a policy error', async () => {
    const { wallet, watchOnly, chain } = await provision();
    const garbage = await rejection(wallet.signPsbt(Buffer.from('not a psbt at all').toString('base64'), { network: 'regtest' }));
    assert.ok(garbage instanceof AirlockApiError && !(garbage instanceof AirlockPolicyError), String(garbage));
    assert.equal(garbage.code, 'psbt_malformed');
    assert.equal(garbage.status, 400);

    // Segwit v0 amounts are only trusted with the full previous transaction (the fee could hide value otherwise).
    const bare = buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2wpkh'), 10_000n, { withoutPreviousTransaction: true })], [payTo(chain, SHOP, 9_000n)]).toBase64();
    const missing = await rejection(wallet.signPsbt(bare, { network: 'regtest' }));
    assert.ok(missing instanceof AirlockApiError, String(missing));
    assert.equal(missing.code, 'psbt_missing_utxo');
  });

  test('approval: above the tier throws AirlockApprovalRequiredError; with a wait, an operator approval returns the checked PSBT', async () => {
    const { agent, wallet, watchOnly, chain, options } = await provision();
    const big = buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2wpkh', 9), 500_000n)], [payTo(chain, SHOP, 300_000n), walletOutput(watchOnly.change('p2wpkh', 1), 198_000n)]).toBase64();
    const held = await rejection(wallet.signPsbt(big, { network: 'regtest' }));
    assert.ok(held instanceof AirlockApprovalRequiredError, String(held));

    const patient = airlockBitcoinWallet({ ...options, approvalWaitMs: 10_000 });
    const operator = (async () => {
      const fresh = await waitForNewApprovals(admin, agent.name, [held.approvalId]);
      assert.equal(fresh.length, 1, 'exactly one new pending approval');
      await admin.request('POST', `/v1/approvals/${fresh[0]!.id}/approve`);
    })();
    const [signed] = await Promise.all([patient.signPsbt(big, { network: 'regtest' }), operator]);
    assert.equal(verifyAirlockPsbt(signed.psbt, { chain, sent: big }).accepted?.feeSat, 2_000n);
  });

  test('signMessage: BIP-322 signatures bip322-js verifies, P2WPKH and P2TR, when policy names the message; refused otherwise', async () => {
    const { wallet, watchOnly } = await provision();
    const message = `${PROOF_PREFIX}${new Date().toISOString()}`;
    for (const addressType of ['p2wpkh', 'p2tr'] as const) {
      const signed = await wallet.signMessage({ message, network: 'regtest', addressType, index: 2 });
      assert.equal(signed.address, watchOnly.receive(addressType, 2).address);
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
      const { wallet, watchOnly, chain } = await provision({ fetch: tampering });
      const psbt = buildPsbt(chain, [fundedInput(chain, watchOnly.receive('p2wpkh', 0), 70_000n), fundedInput(chain, watchOnly.receive('p2wpkh', 1), 10_000n)], [payTo(chain, SHOP, 79_000n)]).toBase64();
      const e = await rejection(wallet.signPsbt(psbt, { network: 'regtest' }));
      assert.ok(e instanceof AirlockApiError && !(e instanceof AirlockPolicyError), `${name}: ${String(e)}`);
      assert.equal(e.code, 'invalid_response', name);
    }
  });

  test('an address or a message signature that is not the account\'s (tampered in transit) is refused by the wallet', async () => {
    const elsewhere = stranger.receive('p2wpkh', 9).address;
    // Rewrites the `address` field of one route's answer: a payee would be paid at the stranger's address.
    const redirecting = (route: string): typeof fetch => async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes(route) || res.status !== 200) return res;
      const answer = (await res.json()) as { address: string };
      answer.address = elsewhere;
      return new Response(JSON.stringify(answer), { status: res.status, headers: res.headers });
    };
    const { wallet: addresses } = await provision({ fetch: redirecting('/v1/bitcoin/address') });
    const e1 = await rejection(addresses.address({ network: 'regtest', type: 'p2wpkh', index: 0 }));
    assert.ok(e1 instanceof AirlockApiError && e1.code === 'invalid_response', String(e1));
    const { wallet: messages } = await provision({ fetch: redirecting('/v1/sign/bitcoin-message') });
    const e2 = await rejection(messages.signMessage({ message: `${PROOF_PREFIX}x`, network: 'regtest', addressType: 'p2wpkh' }));
    assert.ok(e2 instanceof AirlockApiError && e2.code === 'invalid_response', String(e2));
  });
});
