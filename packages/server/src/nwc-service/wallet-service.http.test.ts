// Airlock as a NIP-47 wallet service, as agents meet it: @getalby/sdk's NWCClient (Alby's NWC client library,
// v8: it reads the info event, picks nip44_v2, signs kind-23194 requests with the secret of the connection string
// and waits for the kind-23195 answer naming its request) over a NIP-01 relay on loopback, against a real Airlock
// runtime whose admin API issues the connection strings and whose Lightning payments go through the simulated
// network (testing/lightning-network.ts). Forged requests are built by hand with nostr-tools.
// Observed library behaviour the service is built to: it reads the info event once (REQ with limit 1, so the
// event must already be on the relay: issuing publishes it before answering); it takes any answer with a truthy
// `result` as success (errors carry `result: null`); lookupInvoice rejects an answer without `invoice`; its reply
// timeout is 60 s (10 s for get_info and get_balance); it logs every error answer with console.error (the noise
// in this file's output).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { NWCClient, Nip47WalletError } from '@getalby/sdk/nwc';
import { finalizeEvent, generateSecretKey, getPublicKey, nip44, SimplePool } from 'nostr-tools';
import { LightningNetwork, SimulatedBackend } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { openAirlock, type Airlock } from '../runtime.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness } from '../testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };
/** Requests one client key may make in this file (the bucket barely refills: 1 token per 1000 s). */
const BURST = 12;
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

/** Lightning to the shops only, 120 000 msat per payment at most, 100 000 msat a day. */
function policy(payees: string[], extra: unknown[] = []) {
  return {
    version: 1,
    sets: { shops: payees },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'max_amount', name: 'per-payment', asset: BTC, max: '120000' },
      { type: 'lightning', name: 'fees-and-expiry', max_routing_fee_percent: 10, min_expiry_remaining: '30s', max_expiry: '2h' },
      { type: 'budget', name: 'daily', asset: BTC, max: '100000', window: '24h' },
      ...extra,
    ],
  };
}

/** The NIP-47 error a request was answered with (NWCClient rejects with Nip47WalletError carrying its code). */
async function nwcError(request: Promise<unknown>): Promise<Nip47WalletError> {
  const outcome = await request.then(() => 'answered with a result', (e: unknown) => e);
  assert.ok(outcome instanceof Nip47WalletError, `expected a NIP-47 error reply, got: ${String(outcome)}`);
  return outcome;
}

interface Issued {
  uri: string;
  walletPubkey: string;
  clientPubkey: string;
}

async function issueNwc(h: Harness, sessionId: string): Promise<Issued> {
  const res = await h.admin('POST', `/v1/sessions/${sessionId}/nwc-connect`);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as Issued;
}

/** Audit entries of an agent, oldest first. */
async function auditOf(h: Harness, agentName: string): Promise<{ type: string; decision?: string; sessionId?: string; data: any }[]> {
  const res = await h.admin('GET', `/v1/audit?agent=${agentName}&limit=1000`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries;
}

describe('NIP-47 wallet service: @getalby/sdk NWCClient over a loopback relay', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  let shop: ReturnType<LightningNetwork['payee']>;
  const clients: NWCClient[] = [];
  const pool = new SimplePool();
  const clientFor = (uri: string) => {
    const client = new NWCClient({ nostrWalletConnectUrl: uri });
    clients.push(client);
    return client;
  };
  /** An agent with the policy and a session scoped to lightning.pay, connected over NWC. */
  const connectedAgent = async (document = policy([shop.node.nodeId])) => {
    const { agent, session, token } = await provisionAgent(h, { policy: document, actions: ['lightning.pay'] });
    const issued = await issueNwc(h, session.id);
    return { agent, session, token, issued, client: clientFor(issued.uri) };
  };

  before(async () => {
    relay = await startTestRelay();
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: within the default fee limit (1 %, at least 1000 msat)
    backend = new SimulatedBackend(ln);
    shop = ln.payee();
    h = await startHarness({ lightningBackend: backend, config: { nostrRelays: [relay.url], lightning: LIGHTNING, nostrBunkerRate: { perSecond: 0.001, burst: BURST } } });
  });
  after(async () => {
    for (const c of clients) c.close();
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  test('issuing: a nostr+walletconnect:// string per connection, its own wallet key, recorded without the secret', async () => {
    const { agent, issued, client } = await connectedAgent();
    const secret = new URL(issued.uri.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret')!;
    assert.match(issued.uri, new RegExp(`^nostr\\+walletconnect://${issued.walletPubkey}\\?relay=${encodeURIComponent(relay.url)}&secret=[0-9a-f]{64}$`));
    assert.equal(getPublicKey(Buffer.from(secret, 'hex')), issued.clientPubkey);
    assert.equal(client.walletPubkey, issued.walletPubkey);
    // Not the agent's Nostr identity, not its NIP-46 transport key, and not shared with its next connection.
    assert.notEqual(issued.walletPubkey, (await h.airlock.nostr.identity(agent.id)).pubkey);
    assert.notEqual(issued.walletPubkey, (await h.airlock.nostr.transport(agent.id)).pubkey);
    const sessions = await h.admin('GET', `/v1/sessions?agent=${agent.name}`);
    const second = await issueNwc(h, sessions.body.sessions[0].id);
    assert.notEqual(second.walletPubkey, issued.walletPubkey);
    // The info event the client reads first: our methods, NIP-44 only.
    const info = await client.getWalletServiceInfo();
    assert.deepEqual(info.capabilities, ['pay_invoice', 'lookup_invoice', 'get_balance', 'get_info']);
    assert.deepEqual(info.encryptions, ['nip44_v2']);
    // The audit log records who may spend, never the secret.
    const issuedEntries = (await auditOf(h, agent.name)).filter((e) => e.type === 'nwc.connection_issued');
    assert.deepEqual(issuedEntries.map((e) => e.data.clientPubkey), [issued.clientPubkey, second.clientPubkey]);
    assert.ok(!JSON.stringify(issuedEntries).includes(secret), 'the secret is not in the audit log');
  });

  test('pay_invoice within policy: the preimage proves it, the ledger is charged (get_balance drops), the audit log has it; lookup_invoice and get_info', async () => {
    const { agent, session, client } = await connectedAgent();
    const info = await client.getInfo();
    assert.deepEqual([info.network, info.methods], ['regtest', ['pay_invoice', 'lookup_invoice', 'get_balance', 'get_info']]);
    assert.equal((await client.getBalance()).balance, 100_000, 'the daily budget, untouched');

    const invoice = shop.invoice({ amountMsat: 50_000n, description: 'one API call' });
    const paid = await client.payInvoice({ invoice: invoice.invoice });
    assert.equal(sha256hex(paid.preimage), invoice.paymentHash);
    const fee = ln.feeFor(50_000n);
    assert.equal(paid.fees_paid, Number(fee));
    assert.ok(ln.isPaid(invoice.paymentHash));
    assert.equal((await client.getBalance()).balance, 100_000 - 50_000 - Number(fee), 'charged the amount and the fee really paid');

    const looked = await client.lookupInvoice({ payment_hash: invoice.paymentHash });
    assert.deepEqual(
      [looked.type, looked.state, looked.preimage, looked.amount, looked.fees_paid, looked.invoice, looked.description],
      ['outgoing', 'settled', paid.preimage, 50_000, Number(fee), invoice.invoice, 'one API call'],
    );
    assert.equal((await client.lookupInvoice({ invoice: invoice.invoice })).payment_hash, invoice.paymentHash, 'by invoice too');

    const audit = await auditOf(h, agent.name);
    const request = audit.find((e) => e.type === 'sign.request' && e.data.intent?.lightning?.paymentHash === invoice.paymentHash);
    assert.deepEqual([request?.decision, request?.sessionId], ['allow', session.id], 'decided under the connection\'s session');
    const done = audit.find((e) => e.type === 'lightning.succeeded' && e.data.paymentHash === invoice.paymentHash);
    assert.equal(done?.data.preimageVerified, true);
    assert.ok(!JSON.stringify(audit).includes(paid.preimage), 'the preimage is not in the audit log');
    // Paying the same invoice again is the same payment, not a second one.
    assert.equal((await client.payInvoice({ invoice: invoice.invoice })).preimage, paid.preimage);
    assert.equal(ln.attempts.filter((hash) => hash === invoice.paymentHash).length, 1);
    assert.equal((await nwcError(client.makeInvoice({ amount: 1000 }))).code, 'NOT_IMPLEMENTED');
  });

  test('policy refusals name the rule: RESTRICTED for a payee outside the set, QUOTA_EXCEEDED over the budget; nothing paid', async () => {
    const { client } = await connectedAgent();
    const attempts = ln.attempts.length;
    const stranger = await nwcError(client.payInvoice({ invoice: ln.payee().invoice({ amountMsat: 10_000n }).invoice }));
    assert.equal(stranger.code, 'RESTRICTED');
    assert.match(stranger.message, /^policy_denied: .*\[agent\/only-shops: destination_not_allowed\]$/);
    const tooMuch = await nwcError(client.payInvoice({ invoice: shop.invoice({ amountMsat: 100_000n }).invoice }));
    assert.equal(tooMuch.code, 'QUOTA_EXCEEDED', 'amount + fee limit is over the daily 100 000');
    assert.match(tooMuch.message, /\[agent\/daily: budget_exceeded\]$/);
    const expired = await nwcError(client.payInvoice({ invoice: shop.invoice({ amountMsat: 10_000n, timestamp: Math.floor(Date.now() / 1000) - 7200, expirySeconds: 60 }).invoice }));
    assert.deepEqual([expired.code, expired.message.split(':')[0]], ['OTHER', 'invoice_expired']);
    assert.equal(ln.attempts.length, attempts, 'nothing reached the network');
    assert.equal((await client.getBalance()).balance, 100_000, 'and nothing was charged');

    // Without a budget there is no honest balance to give: refused, and payments are judged one by one.
    const withBudget = policy([shop.node.nodeId]);
    const { client: unbudgeted } = await connectedAgent({ ...withBudget, rules: withBudget.rules.filter((r) => (r as { name: string }).name !== 'daily') });
    const unknown = await nwcError(unbudgeted.getBalance());
    assert.deepEqual([unknown.code, unknown.message.split(':')[0]], ['OTHER', 'balance_unknown']);
  });

  test('get_balance is the least left of the budgets that bound every payment: the session\'s own, one matching lightning.pay; not a per-payee one', async () => {
    const document = policy([shop.node.nodeId], [
      { type: 'budget', name: 'ln-weekly', asset: BTC, max: '80000', window: '7d', match: { actions: ['lightning.pay'] } },
      { type: 'budget', name: 'per-payee', asset: BTC, max: '1000', window: '24h', per_destination: true },
    ]);
    const capped = await provisionAgent(h, { policy: document, actions: ['lightning.pay'], budgets: [{ asset: BTC, max: '30000', window: '1h' }] });
    assert.equal((await clientFor((await issueNwc(h, capped.session.id)).uri).getBalance()).balance, 30_000, 'the session sub-budget');
    const { client } = await connectedAgent(document);
    assert.equal((await client.getBalance()).balance, 80_000, 'the lightning.pay budget, below the daily 100 000');
    // The per-payee budget does bound a payment to that payee: policy says so when it refuses one.
    const refused = await nwcError(client.payInvoice({ invoice: shop.invoice({ amountMsat: 10_000n }).invoice }));
    assert.equal(refused.code, 'QUOTA_EXCEEDED');
    assert.match(refused.message, /\[agent\/per-payee: budget_exceeded\]$/);
  });

  test("lookup_invoice never reveals another agent's payment: NOT_FOUND, as for a hash nobody paid", async () => {
    const other = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const theirs = shop.invoice({ amountMsat: 10_000n });
    const paid = await h.call('POST', '/v1/lightning/pay', { token: other.token, body: { invoice: theirs.invoice } });
    assert.equal(paid.body.status, 'succeeded', JSON.stringify(paid.body));
    const { client } = await connectedAgent();
    const notMine = await nwcError(client.lookupInvoice({ payment_hash: theirs.paymentHash }));
    const nobodys = await nwcError(client.lookupInvoice({ payment_hash: sha256hex('00'.repeat(32)) }));
    assert.deepEqual([notMine.code, notMine.message], [nobodys.code, nobodys.message]);
    assert.equal(notMine.code, 'NOT_FOUND');
    assert.ok(!notMine.message.includes(paid.body.preimage));
  });

  test('in flight: OTHER (not PAYMENT_FAILED) and lookup_invoice says pending, then settled; a definite failure is PAYMENT_FAILED', async () => {
    const { client } = await connectedAgent();
    const slow = shop.invoice({ amountMsat: 10_000n });
    ln.script(slow.paymentHash, { kind: 'hang' });
    const pending = await nwcError(client.payInvoice({ invoice: slow.invoice }));
    assert.equal(pending.code, 'OTHER');
    assert.match(pending.message, /^payment_in_flight: .*has not failed/);
    assert.equal((await client.lookupInvoice({ payment_hash: slow.paymentHash })).state, 'pending');
    assert.equal((await client.getBalance()).balance, 100_000 - 10_000 - 1_000, 'amount and fee limit held meanwhile');
    ln.release(slow.paymentHash, { succeed: true });
    await h.airlock.lightning.reconcile();
    const settled = await client.lookupInvoice({ payment_hash: slow.paymentHash });
    assert.equal(settled.state, 'settled');
    assert.equal(sha256hex(settled.preimage!), slow.paymentHash);

    const doomed = shop.invoice({ amountMsat: 12_000n });
    ln.script(doomed.paymentHash, { kind: 'fail', reason: 'no_route' });
    const failed = await nwcError(client.payInvoice({ invoice: doomed.invoice }));
    assert.equal(failed.code, 'PAYMENT_FAILED');
    assert.equal((await client.lookupInvoice({ payment_hash: doomed.paymentHash })).state, 'failed');
  });

  test('held for approval: OTHER (approval_required), lookup pending; paid once an operator approves', async () => {
    const { client } = await connectedAgent(policy([shop.node.nodeId], [{ type: 'approval_tier', name: 'big-needs-human', asset: BTC, above: '60000' }]));
    const big = shop.invoice({ amountMsat: 70_000n });
    const held = await nwcError(client.payInvoice({ invoice: big.invoice }));
    assert.equal(held.code, 'OTHER');
    const approvalId = /approval_required: .*\((apr_[0-9a-f]+)\)/.exec(held.message)?.[1];
    assert.ok(approvalId, held.message);
    assert.equal((await client.lookupInvoice({ payment_hash: big.paymentHash })).state, 'pending');
    assert.ok(!ln.attempts.includes(big.paymentHash), 'nothing paid before the approval');
    assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
    const after = await client.lookupInvoice({ payment_hash: big.paymentHash });
    assert.deepEqual([after.state, sha256hex(after.preimage!)], ['settled', big.paymentHash]);
  });

  test('lookup_invoice answers about the newest attempt: a re-request waiting for approval is pending, not the earlier failure', async () => {
    const { client } = await connectedAgent(policy([shop.node.nodeId], [{ type: 'approval_tier', name: 'big-needs-human', asset: BTC, above: '60000' }]));
    const big = shop.invoice({ amountMsat: 70_000n });
    ln.script(big.paymentHash, { kind: 'fail', reason: 'no_route' });
    const approvalOf = (e: { message: string }) => /approval_required: .*\((apr_[0-9a-f]+)\)/.exec(e.message)?.[1];
    const first = approvalOf(await nwcError(client.payInvoice({ invoice: big.invoice })));
    assert.ok(first);
    assert.equal((await h.admin('POST', `/v1/approvals/${first}/approve`)).status, 200);
    assert.equal((await client.lookupInvoice({ payment_hash: big.paymentHash })).state, 'failed', 'the approved attempt failed at the network');
    // The agent asks again: held for a human. The earlier failure is no answer about it.
    const second = approvalOf(await nwcError(client.payInvoice({ invoice: big.invoice })));
    assert.ok(second && second !== first);
    assert.equal((await client.lookupInvoice({ payment_hash: big.paymentHash })).state, 'pending');
    assert.equal((await h.admin('POST', `/v1/approvals/${second}/deny`, {})).status, 200);
    assert.equal((await client.lookupInvoice({ payment_hash: big.paymentHash })).state, 'failed', 'denied: it will never be paid');
  });

  test('a revoked session is UNAUTHORIZED at the next request, a frozen agent too until it is unfrozen; nothing paid', async () => {
    const { agent, session, client } = await connectedAgent();
    assert.equal((await client.getBalance()).balance, 100_000);
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`)).status, 200);
    const frozen = await nwcError(client.payInvoice({ invoice: shop.invoice({ amountMsat: 10_000n }).invoice }));
    assert.deepEqual([frozen.code, frozen.message.split(':')[0]], ['UNAUTHORIZED', 'agent_frozen']);
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`)).status, 200);
    assert.equal((await client.getBalance()).balance, 100_000);

    assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/revoke`)).status, 200);
    const attempts = ln.attempts.length;
    const revoked = await nwcError(client.payInvoice({ invoice: shop.invoice({ amountMsat: 10_000n }).invoice }));
    assert.deepEqual([revoked.code, revoked.message.split(':')[0]], ['UNAUTHORIZED', 'session_revoked']);
    assert.equal((await nwcError(client.getInfo())).code, 'UNAUTHORIZED');
    assert.equal(ln.attempts.length, attempts);
    const again = await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`);
    assert.deepEqual([again.status, again.body.error.code], [409, 'conflict'], 'no new connection for a revoked session');
  });

  test('a request from an unknown key is ignored (never answered) and audited; a forged signature is dropped', async () => {
    const { agent, issued, client } = await connectedAgent();
    assert.equal((await client.getBalance()).balance, 100_000);
    const nwc = h.airlock.nwc!;
    const before = { ignored: nwc.stats.ignoredUnknownClient, invalid: nwc.stats.droppedInvalid, attempts: ln.attempts.length };
    const request = (signer: Uint8Array, method: string, params: unknown) => finalizeEvent({
      kind: 23194, created_at: Math.floor(Date.now() / 1000), tags: [['p', issued.walletPubkey], ['encryption', 'nip44_v2']],
      content: nip44.encrypt(JSON.stringify({ method, params }), nip44.getConversationKey(signer, issued.walletPubkey)),
    }, signer);
    const mallory = generateSecretKey();
    const forged = request(mallory, 'pay_invoice', { invoice: shop.invoice({ amountMsat: 1_000n }).invoice });
    await Promise.any(pool.publish([relay.url], forged));
    // Claiming the client's key with Mallory's signature: only a careless relay forwards it.
    relay.careless = true;
    try {
      const claimed = request(mallory, 'get_balance', {});
      await Promise.any(pool.publish([relay.url], { ...claimed, pubkey: issued.clientPubkey }));
    } finally {
      relay.careless = false;
    }
    // Airlock judges envelopes in arrival order: once this is answered, the two above have been seen.
    assert.equal((await client.getBalance()).balance, 100_000);
    assert.equal(nwc.stats.ignoredUnknownClient, before.ignored + 1);
    assert.equal(nwc.stats.droppedInvalid, before.invalid + 1);
    assert.ok(!relay.accepted.some((e) => e.kind === 23195 && e.tags.some((t) => t[0] === 'e' && t[1] === forged.id)), 'no answer to the forger');
    assert.equal(ln.attempts.length, before.attempts, 'nothing paid');
    await nwc.flushRefusals(true);
    const failures = (await h.admin('GET', '/v1/audit?type=auth.failures')).body.entries.filter((e: any) => e.data.source === `nwc:unknown:${issued.walletPubkey}`);
    assert.deepEqual(failures.map((e: any) => e.data.codes), [{ unknown_client: 1 }]);
    assert.ok((await auditOf(h, agent.name)).every((e) => e.type !== 'sign.request'), 'no request reached policy');
  });

  test(`a flood past the per-client rate (burst ${BURST}) gets RATE_LIMITED answers and does nothing`, async () => {
    const { client } = await connectedAgent();
    await client.getInfo(); // one token
    const results = await Promise.allSettled(Array.from({ length: BURST + 4 }, () => client.getBalance()));
    const answered = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(answered.length, BURST - 1);
    assert.equal(refused.length, 5);
    assert.ok(refused.every((r) => r.reason instanceof Nip47WalletError && r.reason.code === 'RATE_LIMITED'), String(refused[0]?.reason));
  });

  test('issuing refuses a session that cannot pay: no lightning.pay in its scope (409), unknown (404)', async () => {
    const { session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['nostr.event'] });
    const noPay = await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`);
    assert.deepEqual([noPay.status, noPay.body.error.code], [409, 'conflict']);
    assert.match(noPay.body.error.message, /lightning\.pay/);
    assert.equal((await h.admin('POST', '/v1/sessions/ses_0000000000000000/nwc-connect')).status, 404);
  });

  test('a restart answers the same connection string: the connection is restored from the audit log', async () => {
    const { issued, client } = await connectedAgent();
    const invoice = shop.invoice({ amountMsat: 10_000n });
    await client.payInvoice({ invoice: invoice.invoice });
    await h.restart();
    // A fresh client with the same string, as an agent restarted with its configuration would have.
    const again = clientFor(issued.uri);
    assert.equal((await again.lookupInvoice({ payment_hash: invoice.paymentHash })).state, 'settled');
    const next = shop.invoice({ amountMsat: 12_000n });
    assert.equal(sha256hex((await again.payInvoice({ invoice: next.invoice })).preimage), next.paymentHash);
  });
});

describe('NIP-47 wallet service: two instances on one PostgreSQL', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  let second: Airlock;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  const clients: NWCClient[] = [];

  before(async () => {
    relay = await startTestRelay();
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    backend = new SimulatedBackend(ln);
    h = await startHarness({ store: 'postgres', lightningBackend: backend, config: { nostrRelays: [relay.url], lightning: LIGHTNING, nostrBunkerRate: { perSecond: 0.001, burst: BURST } } });
    // The same vault and store, started before the connection is issued: it learns of it from the audit log.
    second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, lightningBackend: backend });
  });
  after(async () => {
    for (const c of clients) c.close();
    await second?.close();
    await h?.close();
    await relay?.close();
  });

  test('sync takes only connections the operator issued: the same entry written as another actor grants nothing', async () => {
    const { agent, session } = await provisionAgent(h, { policy: policy([ln.payee().node.nodeId]), actions: ['lightning.pay'] });
    const issued = await issueNwc(h, session.id);
    assert.equal(await second.nwc!.sync(), 1);
    const entry = (await h.admin('GET', `/v1/audit?type=nwc.connection_issued&agent=${agent.name}`)).body.entries[0];
    // The same grant, for another wallet key, as an entry an agent or the system would have written.
    const forged = { ...entry.data, walletPubkey: 'ab'.repeat(32), clientPubkey: 'cd'.repeat(32), keyIndex: entry.data.keyIndex + 1 };
    for (const actor of ['agent', 'system'] as const) {
      await h.airlock.store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'nwc.connection_issued', actor, agentId: agent.id, sessionId: session.id, data: forged }));
    }
    assert.equal(await second.nwc!.sync(), 0, 'no connection taken from an entry the operator did not write');
    assert.ok(issued.uri);
  });

  test('a connection issued on one instance is served by the other after sync; both answer a payment, it is paid once', async () => {
    const shop = ln.payee();
    const { agent, session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const issued = await issueNwc(h, session.id);
    assert.equal(await second.nwc!.sync(), 1, 'the other instance reads the new connection');
    const client = new NWCClient({ nostrWalletConnectUrl: issued.uri });
    clients.push(client);
    const answeredBy = () => [h.airlock.nwc!.stats.answered, second.nwc!.stats.answered];
    const before = answeredBy();
    assert.equal((await client.getBalance()).balance, 100_000);

    const invoice = shop.invoice({ amountMsat: 15_000n });
    // Slow enough that the instance that did not win the payment finds it in flight and waits for it.
    ln.script(invoice.paymentHash, { kind: 'succeed', afterMs: 400 });
    const paid = await client.payInvoice({ invoice: invoice.invoice });
    assert.equal(sha256hex(paid.preimage), invoice.paymentHash);
    // Both instances answer every request (the client keeps the first): wait until both have answered the payment.
    while (answeredBy().some((n, i) => n < before[i]! + 2)) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ln.attempts.filter((hash) => hash === invoice.paymentHash).length, 1, 'paid once');
    assert.equal(backend.calls.filter((c) => c.method === 'pay' && c.paymentHash === invoice.paymentHash).length, 1);
    const answers = relay.accepted.filter((e) => e.kind === 23195 && e.tags.some((t) => t[0] === 'p' && t[1] === issued.clientPubkey));
    const conversation = nip44.getConversationKey(Buffer.from(new URL(issued.uri.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret')!, 'hex'), issued.walletPubkey);
    const payAnswers = answers.map((e) => JSON.parse(nip44.decrypt(e.content, conversation))).filter((a) => a.result_type === 'pay_invoice');
    assert.deepEqual(payAnswers.map((a) => a.result?.preimage), [paid.preimage, paid.preimage], 'the second instance waited for the first one\'s outcome');
    // One decision and one replay of it (the same Idempotency-Key: the request event id), both in the audit log.
    const entries = (await auditOf(h, agent.name)).filter((e) => e.type === 'sign.request' || e.type === 'sign.replay');
    assert.deepEqual(entries.map((e) => `${e.type} ${e.decision}`).sort(), ['sign.replay allow', 'sign.request allow']);
    // One payment is one request for the agent's rate limits, however many instances answered it.
    const [requests] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: '*', sinceMs: 0 }]));
    assert.equal(requests!.count, 1);
  });
});
