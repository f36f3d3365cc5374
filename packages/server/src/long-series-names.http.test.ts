// Names an agent chooses that end up in ledger series names (ports/ledger.ts), through the public HTTP API, on
// both stores. A series name is part of PostgreSQL index keys, which hold at most 2,704 bytes: before the fix a
// PSBT paying a 1,400-byte OP_RETURN (standard since Bitcoin Core 30) was answered 503 store_unavailable on
// PostgreSQL ("nothing was recorded", and a retry never succeeded), 500 internal under an approval tier, with no
// audit entry; an x402 resource or origin of a 2,048-character URL, percent-escaped or punycoded by the URL parser,
// alike. SQLite signed them. Now a long output script is named `script:sha256:<hex>` and a long resource or origin
// is named by its SHA-256 in series names: signed, charged and counted as one payee / resource / origin.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const MSAT = 1000n;
const PAYEE = TestWallet.stranger('long script payee', 'regtest').receive('p2wpkh', 0).address;

/** OP_RETURN pushing `dataBytes` random bytes (PUSHDATA1 up to 255, PUSHDATA2 above). */
function opReturn(dataBytes: number): Uint8Array {
  const data = randomBytes(dataBytes);
  const push = dataBytes <= 0xff ? [0x4c, dataBytes] : [0x4d, dataBytes & 0xff, dataBytes >> 8];
  return Uint8Array.from([0x6a, ...push, ...data]);
}

/** `n` CJK characters drawn at random: little for PostgreSQL to compress once escaped or punycoded. */
function cjk(n: number): string {
  const random = randomBytes(2 * n);
  let text = '';
  for (let i = 0; i < n; i++) text += String.fromCodePoint(0x4e00 + (random.readUInt16BE(2 * i) % 20_000));
  return text;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function bitcoinPolicy(extra: unknown[] = []) {
  return {
    version: 1,
    rules: [
      { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
      { type: 'budget', name: 'daily', asset: BTC, max: String(10_000_000n * MSAT), window: '24h', scope: 'agent' },
      ...extra,
    ],
  };
}

/** x402: USDC to Alice on Base for any resource. */
function x402Policy(extra: unknown[]) {
  return {
    version: 1,
    rules: [{ name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE] } }, ...extra],
  };
}

const requirement = { scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`agent-chosen names longer than an index key holds (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(() => h?.close());

    const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
    const auditOf = async (agentName: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&limit=100`)).body.entries as any[];

    /** Pays 1,000 sat to `script` from a fresh 100,000-sat coin (90,000 change, 9,000 fee). */
    async function payScript(token: string, wallet: TestWallet, index: number, script: Uint8Array) {
      const chain = new BitcoinTestChain('regtest');
      const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', index), 100_000n)], [payTo(chain, script, 1_000n), walletOutput(wallet.change('p2wpkh', index), 90_000n)]).toBase64();
      return h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest' } });
    }

    for (const dataBytes of [1_400, 4_000]) {
      test(`a PSBT paying an OP_RETURN of ${dataBytes} bytes is signed and charged, its destination named script:sha256:<hash of the script>`, async () => {
        const { agent, token } = await provisionAgent(h, { policy: bitcoinPolicy(), actions: ['bitcoin.psbt'] });
        const wallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex);
        const script = opReturn(dataBytes);
        const res = await payScript(token, wallet, 0, script);
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
        assert.deepEqual(res.body.signedInputs, [0]);
        assert.equal(await charged(agent.id), 10_000n * MSAT, 'the 1,000 sat output and the 9,000 sat fee');
        const [entry] = (await auditOf(agent.name)).filter((e) => e.type === 'sign.request');
        assert.equal(entry.decision, 'allow');
        assert.equal(entry.data.intent.to, `script:sha256:${sha256Hex(script)}`);
        assert.equal(entry.data.intent.bitcoin.outputs[0].script, hex(script), 'the intent still carries the whole script');
      });
    }

    test('an OP_RETURN of 4,000 bytes under an approval tier is held, charged while held, and signed once approved', async () => {
      const { agent, token } = await provisionAgent(h, { policy: bitcoinPolicy([{ type: 'approval_tier', name: 'big', asset: BTC, above: String(500n * MSAT) }]), actions: ['bitcoin.psbt'] });
      const wallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex);
      const held = await payScript(token, wallet, 0, opReturn(4_000));
      assert.equal(held.status, 202, JSON.stringify(held.body).slice(0, 300));
      assert.equal(await charged(agent.id), 10_000n * MSAT, 'the hold counts');
      const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body).slice(0, 300));
      assert.deepEqual(granted.body.result.signedInputs, [0]);
      assert.equal(await charged(agent.id), 10_000n * MSAT, 'charged once');
    });

    test('a script of up to 201 bytes (every script standard before Bitcoin Core 30) keeps its hex name; from 202 bytes the SHA-256 names it', async () => {
      const { agent, token } = await provisionAgent(h, { policy: bitcoinPolicy([{ type: 'destinations', name: 'payees', allow: [PAYEE] }]), actions: ['bitcoin.psbt'] });
      const wallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex);
      const longest = opReturn(198);
      const hashed = opReturn(199);
      assert.deepEqual([longest.length, hashed.length], [201, 202]);
      for (const [i, script, name] of [[0, longest, `script:${hex(longest)}`], [1, hashed, `script:sha256:${sha256Hex(hashed)}`]] as const) {
        const denied = await payScript(token, wallet, i, script);
        assert.equal(denied.status, 403, JSON.stringify(denied.body).slice(0, 300));
        assert.deepEqual(denied.body.error.violations.map((v: any) => [v.code, v.message]), [['destination_not_allowed', `${name} is not in the destination allowlist`]]);
      }
      assert.equal(await charged(agent.id), 0n);
    });

    test('per-destination budgets count a long script as one payee, by its hashed name', async () => {
      const perPayee = { type: 'budget', name: 'per-payee', asset: BTC, max: String(1_500n * MSAT), window: '24h', scope: 'agent', per_destination: true };
      const { agent, token } = await provisionAgent(h, { policy: bitcoinPolicy([perPayee]), actions: ['bitcoin.psbt'] });
      const wallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex);
      const script = opReturn(4_000);
      assert.equal((await payScript(token, wallet, 0, script)).status, 200);
      const again = await payScript(token, wallet, 1, script);
      assert.equal(again.status, 403, JSON.stringify(again.body).slice(0, 300));
      assert.deepEqual(again.body.error.violations.map((v: any) => [v.rule, v.code, v.used]), [['agent/per-payee', 'budget_exceeded', String(1_000n * MSAT)]]);
      assert.equal((await payScript(token, wallet, 2, opReturn(4_000))).status, 200, 'another long script is another payee');
    });

    const pay = (token: string, url: string) =>
      h.call('POST', '/v1/x402/pay', { token, body: { resource: url, paymentRequired: encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts: [requirement] } as never) } });

    test('x402: a resource whose path the URL parser escapes to 18,000 characters is paid, and the loop guard counts it', async () => {
      const url = `https://api.example.com/${cjk(2_000)}`;
      assert.ok(url.length <= 2048 && new URL(url).pathname.length === 18_001);
      const { token } = await provisionAgent(h, { policy: x402Policy([{ name: 'no-loops', type: 'loop_guard', max: 2, window: '1h' }]) });
      for (let i = 0; i < 2; i++) {
        const res = await pay(token, `${url}?page=${i}`);
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      }
      const tripped = await pay(token, url);
      assert.equal(tripped.status, 403, JSON.stringify(tripped.body).slice(0, 300));
      assert.deepEqual(tripped.body.error.violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/no-loops:loop_guard_tripped']);
      assert.equal((await pay(token, `${url}/other`)).status, 200, 'another resource is not counted with it');
    });

    test('x402: an origin the URL parser punycodes to 6,000 characters is paid, and a per-origin budget counts it', async () => {
      const url = `https://${cjk(1_950)}.example/data`;
      assert.ok(new URL(url).origin.length > 5_000);
      const perOrigin = { type: 'budget', name: 'per-origin', asset: USDC_ASSET, max: '2500', window: '24h', scope: 'agent', per_origin: true };
      const { token } = await provisionAgent(h, { policy: x402Policy([perOrigin]) });
      for (let i = 0; i < 2; i++) {
        const res = await pay(token, `${url}/${i}`);
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      }
      const over = await pay(token, `${url}/2`);
      assert.equal(over.status, 403, JSON.stringify(over.body).slice(0, 300));
      assert.deepEqual(over.body.error.violations.map((v: any) => `${v.rule}:${v.code}:${v.used}`), ['agent/per-origin:budget_exceeded:2000']);
      assert.equal((await pay(token, 'https://api.example.com/data')).status, 200, 'another origin has its own budget');
    });
  });
}
