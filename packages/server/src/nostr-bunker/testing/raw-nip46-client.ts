// Shared set-up for the bunker's multi-instance and replay tests: a second Airlock instance on the harness's store,
// and a raw NIP-46 client over nostr-tools (no signer library between the test and the envelopes it sends).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { finalizeEvent, generateSecretKey, getPublicKey, nip44, SimplePool, type Event } from 'nostr-tools';
import { ManualClock } from '@airlock/core';
import { startTestRelay, type TestRelay } from '../../../../../testing/nostr-relay/relay.ts';
import { createApp } from '../../http/app.ts';
import { AirlockHolder } from '../../http/holder.ts';
import { openAirlock, type Airlock } from '../../runtime.ts';
import { startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness } from '../../testing/harness.ts';

/** A NIP-46 answer, decrypted. */
export type Answer = { id: string; result: string; error?: string };
export type AdminRequest = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A second instance (B) on the harness's vault, config and store, with its own bunker and policy clock (`clock`,
 * by default a manual clock at now), no timers; `admin` calls B's admin API in process with the harness's token.
 */
export async function secondInstance(h: Harness, clock: ManualClock = new ManualClock(Date.now())): Promise<{ airlock: Airlock; admin: AdminRequest; close: () => Promise<void> }> {
  const airlock = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock });
  const app = createApp(new AirlockHolder(airlock), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
  const admin: AdminRequest = async (method, path, body) => {
    const res = await app.request(path, { method, headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { airlock, admin, close: () => airlock.close() };
}

/**
 * A raw NIP-46 client with a fresh key, talking to the bunker transport key `transport` over `relay`: subscribed to
 * the bunker's answers (collected, decrypted, in `answers`) before it returns. It dates envelopes
 * `now + skewSeconds` (its own clock).
 */
export async function rawNip46Client(pool: SimplePool, relay: TestRelay, transport: string, skewSeconds = 0) {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const key = nip44.getConversationKey(sk, transport);
  const answers: Answer[] = [];
  pool.subscribe([relay.url], { kinds: [24133], authors: [transport], '#p': [pubkey], limit: 0 }, {
    onevent: (e: Event) => { answers.push(JSON.parse(nip44.decrypt(e.content, key))); },
  });
  await sleep(200);
  /** A kind 24133 request envelope, encrypted to the bunker. */
  const envelope = (id: string, method: string, params: string[]) =>
    finalizeEvent({ kind: 24133, tags: [['p', transport]], content: nip44.encrypt(JSON.stringify({ id, method, params }), key), created_at: nowSeconds() + skewSeconds }, sk);
  /** Publishes `e` to the relay. */
  const send = async (e: Event) => { await Promise.any(pool.publish([relay.url], e)); };
  /** The `nth` answer to request `id`, waited for up to 15 s. */
  const answerTo = async (id: string, nth = 1): Promise<Answer> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const found = answers.filter((a) => a.id === id);
      if (found.length >= nth) return found[nth - 1]!;
      if (Date.now() > deadline) assert.fail(`no answer #${nth} to ${id}`);
      await sleep(20);
    }
  };
  /** The relay delivers the kept envelope again, unchecked (a hostile or careless relay). */
  const redeliver = async (e: Event) => {
    relay.careless = true;
    try {
      await send(e);
    } finally {
      relay.careless = false;
    }
  };
  /** The nostrconnect:// URI an operator accepts for this client. */
  const nostrconnectUri = (secret = 's3cr3t') => `nostrconnect://${pubkey}?relay=${encodeURIComponent(relay.url)}&secret=${secret}`;
  return { pubkey, nostrconnectUri, envelope, send, answerTo, redeliver, answers };
}

/** Two instances running the bunker behind one PostgreSQL store (bunkerPair), filled in by the file's `before`. */
export interface BunkerPair {
  relay: TestRelay;
  /** Instance A: the harness, its clock manual. */
  h: Harness;
  /** Instance B (secondInstance), its policy clock `clockB`. */
  b: Airlock;
  adminB: AdminRequest;
  pool: SimplePool;
}

/**
 * Registers the file's `before` and `after`: a test relay, the harness on PostgreSQL running the bunker on it (A), a
 * second instance on the same store (B, `clockB` its policy clock) and a relay pool, all closed after.
 */
export function bunkerPair(clockB?: ManualClock): BunkerPair {
  const pair = { pool: new SimplePool() } as BunkerPair;
  before(async () => {
    pair.relay = await startTestRelay();
    pair.h = await startHarness({ store: 'postgres', manualClock: true, config: { nostrRelays: [pair.relay.url] } });
    ({ airlock: pair.b, admin: pair.adminB } = await secondInstance(pair.h, clockB));
  });
  after(async () => {
    pair.pool.destroy();
    await pair.b?.close();
    await pair.h?.close();
    await pair.relay?.close();
  });
  return pair;
}
