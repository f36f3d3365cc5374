// Relays are third parties (docs/nostr.md): whatever one sends must not take the daemon down. A proxy in front of the
// loopback test relay plays a hostile relay toward Airlock. It forwards everything both ways and, once told to,
// answers every event Airlock publishes with ["OK", <id>, true, {"toString": 1}] (String() of that object throws)
// followed by malformed frames of every kind. Every relay client in Airlock meets it: the NIP-46 bunker and the NIP-47
// wallet service (in a daemon, driven by nostr-tools' BunkerSigner and @getalby/sdk's NWCClient), and the NWC client
// that pays through a wallet (NwcBackend). Each must stay up and answer the next legitimate request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import type { AddressInfo } from 'node:net';
import { NWCClient } from '@getalby/sdk/nwc';
import { generateSecretKey, SimplePool, verifyEvent } from 'nostr-tools';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { WebSocket as WsClient, WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { LightningNetwork, SimulatedBackend } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { TestWalletService } from '../../../../testing/nwc-wallet-service/wallet-service.ts';
import { NwcBackend } from '../lightning/nwc-client.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

/** What a hostile relay may send: every NIP-01 message type with missing or wrongly typed fields, and worse. */
const MALFORMED_FRAMES: (string | Buffer)[] = [
  'not json',
  '{"not":"an array"}',
  '42',
  'null',
  '"a string"',
  '[]',
  '[null]',
  '[{"toString":1}]',
  '["EVENT"]',
  '["EVENT", "airlock-bunker"]',
  '["EVENT", "airlock-bunker", null]',
  '["EVENT", "airlock-bunker", {"id": {}, "pubkey": [], "tags": "x", "kind": "24133", "created_at": {"valueOf": 1}}]',
  '["EVENT", "airlock-nwc", {"tags": [[{"toString": 1}]], "content": {}}]',
  '["EVENT", "nwc-replies", [1, 2, 3]]',
  '["EVENT", {"toString": 1}, {}]',
  '["NOTICE", {}]',
  '["NOTICE"]',
  '["EOSE", 5]',
  '["CLOSED", {}, {}]',
  '["CLOSED", "airlock-bunker", {"toString": 1}]',
  '["CLOSED", "airlock-nwc", "\\u0000\\n\\u001b[31m"]',
  '["OK"]',
  '["OK", {}, {}, {}]',
  '["OK", "unknown-id", true, {"toString": 1}]',
  '["AUTH", {"toString": 1}]',
  '["COUNT", "x", {"count": {}}]',
  JSON.stringify(['NOTICE', 'x'.repeat(4 * 1024 * 1024)]),
  Buffer.from([0xff, 0x00, 0x7b]),
];

interface HostileRelay {
  url: string;
  /** When true, every OK toward Airlock is replaced by one whose message is an object, then the malformed frames follow. */
  hostile: boolean;
  close(): Promise<void>;
}

/** A proxy to `upstream`: one upstream connection per client connection, frames forwarded in order. */
async function startHostileRelay(upstream: string): Promise<HostileRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets = new Set<WsSocket>();
  const relay: HostileRelay = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    hostile: false,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (client) => {
    const up = new WsClient(upstream);
    sockets.add(client).add(up);
    const early: string[] = [];
    up.on('open', () => {
      for (const text of early.splice(0)) up.send(text);
    });
    client.on('message', (data) => {
      const text = String(data);
      if (up.readyState === WsClient.OPEN) up.send(text);
      else early.push(text);
    });
    up.on('message', (data) => {
      const text = String(data);
      if (relay.hostile && text.startsWith('["OK"')) {
        client.send(JSON.stringify(['OK', JSON.parse(text)[1], true, { toString: 1 }]));
        for (const frame of MALFORMED_FRAMES) client.send(frame);
        return;
      }
      client.send(text);
    });
    client.on('close', () => up.close());
    up.on('close', () => client.close());
    client.on('error', () => up.terminate());
    up.on('error', () => client.terminate());
  });
  return relay;
}

/**
 * What would end the daemon: an exception nothing caught or a rejection nothing handled. In a test node:test
 * intercepts both (the process lives on), so they are collected here and each test asserts there were none.
 */
function crashWatch(): { errors: string[]; stop(): void } {
  const errors: string[] = [];
  const record = (e: unknown) => errors.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  return {
    errors,
    stop: () => {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    },
  };
}

/** A relay URL in a connection string replaced: the test's own client talks to the honest relay directly. */
function withRelay(uri: string, from: string, to: string): string {
  return uri.replace(encodeURIComponent(from), encodeURIComponent(to));
}

describe('a hostile relay: the daemon (bunker and NWC wallet service) stays up and keeps answering', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let hostile: HostileRelay;
  let h: Harness;
  const pool = new SimplePool();
  const closers: (() => unknown)[] = [];
  const crashes = crashWatch();

  before(async () => {
    relay = await startTestRelay();
    hostile = await startHostileRelay(relay.url);
    const ln = new LightningNetwork();
    h = await startHarness({
      lightningBackend: new SimulatedBackend(ln),
      config: {
        nostrRelays: [hostile.url],
        lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 },
        nostrBunkerRate: { perSecond: 0.001, burst: 20 },
      },
    });
  });
  after(async () => {
    crashes.stop();
    hostile.hostile = false;
    for (const close of closers) await close();
    pool.destroy();
    await h?.close();
    await hostile?.close();
    await relay?.close();
  });

  test('NIP-46 bunker: OK with an object for its message, then malformed frames; the next sign_event is answered', async () => {
    crashes.errors.length = 0;
    const { agent, session } = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] }, actions: ['nostr.event'] });
    const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const bp = (await parseBunkerInput(withRelay(issued.body.bunker, hostile.url, relay.url)))!;
    const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
    closers.push(() => signer.close());
    await signer.connect();

    hostile.hostile = true;
    // The bunker's answer to this ping gets the hostile OK and the frames (this process ended here before the fix).
    await signer.ping();
    const event = await signer.signEvent({ kind: 1, content: 'still here', tags: [], created_at: Math.floor(Date.now() / 1000) });
    assert.equal(verifyEvent(event), true);
    assert.equal(event.pubkey, (await h.airlock.nostr.identity(agent.id)).pubkey);
    assert.equal((await h.call('GET', '/v1/health')).status, 200);
    assert.deepEqual(crashes.errors, [], 'nothing thrown out of a relay listener (it would end the daemon)');
    hostile.hostile = false;
  });

  test('NIP-47 wallet service: OK with an object for its message, then malformed frames; the next get_balance is answered', async () => {
    crashes.errors.length = 0;
    const { session } = await provisionAgent(h, { policy: { version: 1, rules: [
      { type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } },
      { type: 'budget', name: 'daily', asset: bitcoinAsset(BITCOIN_CHAINS.regtest), max: '100000', window: '24h' },
    ] }, actions: ['lightning.pay'] });
    const issued = await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const client = new NWCClient({ nostrWalletConnectUrl: withRelay(issued.body.uri, hostile.url, relay.url) });
    closers.push(() => client.close());
    assert.equal((await client.getInfo()).alias, 'Airlock');

    hostile.hostile = true;
    assert.equal((await client.getInfo()).alias, 'Airlock'); // its answer gets the hostile OK and the frames
    assert.equal((await client.getBalance()).balance, 100_000);
    assert.equal((await h.call('GET', '/v1/health')).status, 200);
    assert.deepEqual(crashes.errors, [], 'nothing thrown out of a relay listener (it would end the daemon)');
    hostile.hostile = false;
  });
});

describe('a hostile relay between Airlock and its NWC wallet: the Lightning backend stays up and keeps paying', { timeout: 120_000 }, () => {
  test('OK with an object for its message, then malformed frames; the next balance read and payment are answered', async () => {
    const relay = await startTestRelay();
    const hostile = await startHostileRelay(relay.url);
    const lightning = new LightningNetwork();
    const wallet = await TestWalletService.start({ relay, lightning });
    const crashes = crashWatch();
    const backend = await NwcBackend.connect({ connectionUri: withRelay(wallet.uri, relay.url, hostile.url), network: 'regtest', infoTimeoutMs: 3_000, requestTimeoutMs: 5_000, payGraceMs: 1_000 });
    try {
      const before = await backend.balance();
      hostile.hostile = true;
      // The request for this read gets the hostile OK and the frames; the wallet's answer still comes through.
      assert.equal((await backend.balance()).msat, before.msat);
      const invoice = lightning.payee().invoice({ amountMsat: 20_000n });
      const paid = await backend.pay({ invoice: invoice.invoice, paymentHash: invoice.paymentHash, maxFeeMsat: 5_000n, timeoutSeconds: 10 });
      assert.equal(paid.status, 'succeeded');
      assert.ok(lightning.isPaid(invoice.paymentHash));
      assert.deepEqual(crashes.errors, [], 'nothing thrown out of a relay listener (it would end the daemon)');
    } finally {
      crashes.stop();
      hostile.hostile = false;
      await backend.close();
      wallet.close();
      await hostile.close();
      await relay.close();
    }
  });
});
