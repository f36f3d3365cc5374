// A relay URL may carry an access token in its query (AIRLOCK_NOSTR_RELAYS, an NWC connection string's relay=):
// every log line about a relay names it as scheme://host[:port] only, and only the WebSocket gets the whole URL.
// Each relay client in Airlock is driven into each of its relay log lines (unreachable at start, reconnect failed,
// a CLOSED subscription, a frame that could not be handled) against relays whose URL holds a token; the captured
// log output must name the relay's host and never the token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { bytesToHex } from '@noble/hashes/utils.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { NwcBackend } from './lightning/nwc-client.ts';
import { RelayConnection } from './nostr-bunker/relay-connection.ts';
import { relayLabel } from './relay-label.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const TOKEN = 'RelayTokSecret456';
/** Nothing listens on port 1: every connection is refused at once. */
const UNREACHABLE = `ws://127.0.0.1:1/?token=${TOKEN}`;

/** A relay that answers every REQ with CLOSED, and sends one EVENT per subscription (see the RelayConnection test). */
async function startClosingRelay(): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets = new Set<WsSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (!Array.isArray(msg) || msg[0] !== 'REQ' || typeof msg[1] !== 'string') return;
      ws.send(JSON.stringify(['EVENT', msg[1], { kind: 1 }]));
      ws.send(JSON.stringify(['CLOSED', msg[1], 'restricted: not for you']));
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/some/path?token=${TOKEN}`,
    port,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Collects console.error (where the daemon's bunker and wallet service write their relay lines). */
function captureConsoleError(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  };
  return { lines, stop: () => (console.error = original) };
}

async function until(check: () => boolean, what: string, lines: string[], timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    assertNoToken(lines); // fails at once, with the line that gave the token away
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; captured:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function assertNoToken(lines: string[]): void {
  const text = lines.join('\n');
  assert.ok(!text.includes(TOKEN), `a relay's token reached a log line:\n${text}`);
  assert.ok(!text.includes('token='), `a relay's query reached a log line:\n${text}`);
}

test('relayLabel: scheme://host[:port], no userinfo, path, query or fragment', () => {
  assert.equal(relayLabel(`wss://user:pw@relay.example.com/v1?token=${TOKEN}#x`), 'wss://relay.example.com');
  assert.equal(relayLabel(`ws://127.0.0.1:7777/?token=${TOKEN}`), 'ws://127.0.0.1:7777');
  assert.equal(relayLabel(`ws://[::1]:7777/?token=${TOKEN}`), 'ws://[::1]:7777');
  assert.equal(relayLabel(`not a url ${TOKEN}`), '(unparsable relay URL)');
});

describe('the daemon (NIP-46 bunker and NIP-47 wallet service) with relay URLs holding a token', { timeout: 60_000 }, () => {
  let h: Harness | undefined;
  let relay: Awaited<ReturnType<typeof startClosingRelay>>;
  let captured: ReturnType<typeof captureConsoleError>;

  before(async () => {
    captured = captureConsoleError();
    relay = await startClosingRelay();
    h = await startHarness({
      lightningBackend: new SimulatedBackend(new LightningNetwork()),
      config: {
        nostrRelays: [UNREACHABLE, relay.url],
        lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 },
      },
    });
  });
  after(async () => {
    await h?.close();
    await relay?.close();
    captured?.stop();
  });

  test('unreachable at start, reconnect failed, CLOSED subscription: the host is named, the token never', async () => {
    const { lines } = captured;
    const count = (part: string) => lines.filter((l) => l.includes(part)).length;
    // Both relay clients of the daemon: the bunker and the wallet service each say so for the relay that is down...
    await until(() => count('relay ws://127.0.0.1:1 unreachable at start; retrying') >= 2, 'both "unreachable at start" lines', lines);
    // ...keep retrying it...
    await until(() => count('relay ws://127.0.0.1:1: reconnect failed; retrying') >= 2, 'both "reconnect failed" lines', lines);
    // ...and report the subscriptions the other relay closed. The bunker and the wallet service each subscribe once
    // a connection of theirs has been issued.
    const { session } = await provisionAgent(h!, { policy: { version: 1, rules: [{ type: 'allow', name: 'any', match: { actions: ['nostr.event', 'lightning.pay'] } }] }, actions: ['nostr.event', 'lightning.pay'] });
    for (const path of ['nostr-connect', 'nwc-connect']) {
      const issued = await h!.admin('POST', `/v1/sessions/${session.id}/${path}`);
      assert.equal(issued.status, 201, JSON.stringify(issued.body));
    }
    await until(() => count(`relay ws://127.0.0.1:${relay.port} closed subscription airlock-bunker: restricted: not for you`) >= 1, 'the bunker\'s CLOSED line', lines);
    await until(() => count(`relay ws://127.0.0.1:${relay.port} closed subscription airlock-nwc: restricted: not for you`) >= 1, 'the wallet service\'s CLOSED line', lines);
    assertNoToken(lines);
  });
});

describe('the NWC client (AIRLOCK_LIGHTNING_BACKEND=nwc) with a relay URL holding a token', () => {
  test('none reachable: the start-up line and the error name the host, never the token', async () => {
    const lines: string[] = [];
    const walletPubkey = bytesToHex(schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
    const secret = bytesToHex(schnorr.utils.randomSecretKey());
    const connectionUri = `nostr+walletconnect://${walletPubkey}?relay=${encodeURIComponent(UNREACHABLE)}&secret=${secret}`;
    const refused = await NwcBackend.connect({ connectionUri, network: 'regtest', infoTimeoutMs: 500, log: (m) => lines.push(m) }).then(
      () => assert.fail('connected to a relay that is not there'),
      (e: Error) => e,
    );
    assert.match(refused.message, /none of the relays/);
    assert.ok(!refused.message.includes(TOKEN));
    assert.ok(lines.includes('nwc: relay ws://127.0.0.1:1 unreachable at start; retrying'), lines.join('\n'));
    assertNoToken(lines);
  });
});

describe('RelayConnection: every line it reports names the relay by host', () => {
  test('a refused connection, and a frame whose handler throws', async () => {
    const relay = await startClosingRelay();
    const lines: string[] = [];
    const down = new RelayConnection(UNREACHABLE, { onEvent: () => {}, onProblem: (m) => lines.push(m) });
    const up = new RelayConnection(relay.url, {
      onEvent: () => {
        throw new Error(`a handler bug (${TOKEN} must not show either way)`);
      },
      onProblem: (m) => lines.push(m),
    });
    try {
      const refused = await down.connect().then(
        () => assert.fail('connected to port 1'),
        (e: Error) => e,
      );
      assert.equal(refused.message, 'relay ws://127.0.0.1:1 did not accept the connection');
      up.subscribe('s1', [{ kinds: [1] }]);
      await up.connect();
      await until(() => lines.some((l) => l.includes('dropped a message that could not be handled')), 'the dropped-frame line', lines);
      assert.ok(lines.some((l) => l.startsWith(`relay ws://127.0.0.1:${relay.port}: dropped a message that could not be handled (Error; 1 so far)`)), lines.join('\n'));
      assertNoToken(lines);
    } finally {
      down.close();
      up.close();
      await relay.close();
    }
  });
});
