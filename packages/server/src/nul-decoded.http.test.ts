// A NUL that is not in the request's JSON text but in what the service decodes (a personal message's raw bytes, a
// Lightning invoice's description, which the payee writes) is shown as U+FFFD in the intent Airlock records and
// answers, so a held request is kept alike by both stores and `airlock store migrate` copies it; the signature is
// over the bytes as sent. Found by review: SQLite kept the NUL in the approval and the copy to PostgreSQL failed
// for the whole deployment, while PostgreSQL answered the same request with a store error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { copySqliteToPostgres } from '@airlock/store';
import { verifyMessage } from 'viem';
import { pgSchemaUrl, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const RAW_NUL = '0x7061790' + '06d65'; // "pay\0me"
const allow = { name: 'pay-msgs', type: 'allow', match: { kinds: ['message.personal'], message: { prefix: 'pay' } } };
const hold = { name: 'pay-by-hand', type: 'approval_tier', match: { kinds: ['message.personal'], message: { prefix: 'pay' } } };

/** Closes the harness and copies its SQLite store into the empty PostgreSQL schema at `targetUrl`: the copy's error, if any. */
async function copiedToPostgres(h: Harness, targetUrl: string): Promise<any> {
  const sqlitePath = h.config.storeUrl.replace(/^sqlite:/, '');
  await h.airlock.close();
  const url = new URL(targetUrl);
  const schema = url.searchParams.get('schema')!;
  url.search = '';
  try {
    await copySqliteToPostgres(sqlitePath, { connectionString: url.toString(), schema });
    return undefined;
  } catch (e) {
    return e;
  }
}

async function migrateAfter(rules: unknown[], headers: Record<string, string>) {
  const h = await startHarness({ store: 'sqlite' });
  const target = await pgSchemaUrl('airlock_nuldec');
  try {
    const agent = await provisionAgent(h, { policy: { version: 1, rules } });
    const asString = await h.call('POST', '/v1/sign/message', { token: agent.token, body: { chainId: 8453, message: 'pay\u0000me' } });
    assert.equal(asString.status, 400, 'the string form is refused at the edge');
    const asHex = await h.call('POST', '/v1/sign/message', { token: agent.token, headers, body: { chainId: 8453, message: { raw: RAW_NUL } } });
    const copyError = await copiedToPostgres(h, target.url);
    return { asHex, copyError };
  } finally {
    rmSync(h.config.dataDir, { recursive: true, force: true });
    await target.drop();
  }
}

test('sqlite: a raw-hex personal message holding 0x00 held for approval is kept, and store migrate copies it', async () => {
  const { asHex, copyError } = await migrateAfter([allow, hold], {});
  assert.equal(asHex.status, 202, JSON.stringify(asHex.body));
  assert.ok(JSON.stringify(asHex.body.intent).includes('pay\uFFFDme'), `the intent shows U+FFFD: ${JSON.stringify(asHex.body.intent)}`);
  assert.equal(copyError, undefined, `store migrate fails after the agent's request answered ${asHex.status}: ${copyError?.message}`);
});

test('postgres: the same request is held for approval, as on SQLite', async () => {
  const h = await startHarness({ store: 'postgres' });
  try {
    const agent = await provisionAgent(h, { policy: { version: 1, rules: [allow, hold] } });
    const asHex = await h.call('POST', '/v1/sign/message', { token: agent.token, body: { chainId: 8453, message: { raw: RAW_NUL } } });
    assert.equal(asHex.status, 202, `PostgreSQL answers ${asHex.status}: ${JSON.stringify(asHex.body)}`);
    // Granted, the signature is over the bytes as sent (NUL included), checked by viem.
    const approved = await h.admin('POST', `/v1/approvals/${asHex.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const signature = approved.body.result.signature as `0x${string}`;
    assert.equal(await verifyMessage({ address: agent.agent.address, message: { raw: RAW_NUL as `0x${string}` }, signature }), true);
  } finally {
    await h.close();
  }
});

// The same through a BOLT11 invoice: its description (d field) is decoded from bech32 words (bolt11.ts utf8()),
// never seen by the edge check, and a NUL in it is kept in the held approval's summary.
test('sqlite: a Lightning invoice whose description holds NUL, held for approval, is kept, and store migrate copies it', async () => {
  const { LightningNetwork, SimulatedBackend } = await import('../../../testing/lightning-network.ts');
  const ln = new LightningNetwork();
  ln.feeBaseMsat = 10n;
  const shop = ln.payee();
  const h = await startHarness({ store: 'sqlite', manualClock: true, lightningBackend: new SimulatedBackend(ln), config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
  const target = await pgSchemaUrl('airlock_nuldec');
  try {
    h.clock!.set(Date.now());
    const rules = [
      { type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } },
      { type: 'approval_tier', name: 'by-hand', match: { actions: ['lightning.pay'] } },
    ];
    const { token } = await provisionAgent(h, { policy: { version: 1, rules }, actions: ['lightning.pay'] });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: shop.invoice({ amountMsat: 20_000n, description: 'coffee\u0000for the operator' }).invoice } });
    const copyError = await copiedToPostgres(h, target.url);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(copyError, undefined, `store migrate fails after the agent's invoice was held (answered ${res.status}): ${copyError?.message}`);
  } finally {
    rmSync(h.config.dataDir, { recursive: true, force: true });
    await target.drop();
  }
});
