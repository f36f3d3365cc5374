// Test harness: a real Airlock (vault, store, services, HTTP app) on a temp data directory,
// driven in-process through `app.request()` exactly as a client would over HTTP.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BITCOIN_NETWORKS, ManualClock, type ChainReader, type Clock, type LightningBackend } from '@airlock/core';
import { loadConfig, type AirlockConfig } from '../config.ts';
import type { Pkcs11Options } from '@airlock/keys';
import { initAirlock, openAirlock, type Airlock, type VaultOptions } from '../runtime.ts';
import { createApp, type AppOptions } from '../http/app.ts';
import { AirlockHolder } from '../http/holder.ts';
import { OpenApiResponses, type ResponseCheck } from './openapi-responses.ts';

/** Fast KDF for tests only; production vaults refuse parameters this weak. */
export const TEST_VAULT: VaultOptions = { kdf: { memoryKiB: 1024, passes: 1, parallelism: 1 }, allowWeakKdf: true };
export const TEST_PASSPHRASE = 'test passphrase 0123456789';
export const PG_URL = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type StoreKind = 'sqlite' | 'postgres';

export interface Harness {
  airlock: Airlock;
  config: AirlockConfig;
  clock: ManualClock | undefined;
  adminToken: string;
  mnemonic: string;
  /** JSON request; returns status and parsed body. */
  /** `remoteAddress` stands in for the client's address (default: none, which the server calls `local`). */
  call(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; remoteAddress?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** A `fetch` into the app (in process), for SDK clients: pass it with any base URL. */
  fetch: typeof globalThis.fetch;
  /** Reopens the runtime on the same data (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function pgSchemaUrl(prefix = 'airlock_t'): Promise<{ url: string; drop: () => Promise<void> }> {
  // 64 random bits: two test processes share the database, and eight hex digits could name one schema twice.
  const schema = `${prefix}_${randomBytes(8).toString('hex')}`;
  return {
    url: `${PG_URL}?schema=${schema}`,
    async drop() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

/**
 * AIRLOCK_CHECK_OPENAPI=1: every response of every harness call is checked against docs/openapi.json (its
 * status declared, its body valid), so any http test doubles as a check of the document. Off by default:
 * openapi-client.http.test.ts checks a tour of every operation on each run.
 */
const openApiResponses = process.env.AIRLOCK_CHECK_OPENAPI === '1' ? new OpenApiResponses(JSON.parse(readFileSync(new URL('../../../../docs/openapi.json', import.meta.url), 'utf8'))) : undefined;

function assertMatchesOpenApi(check: ResponseCheck): void {
  if (check.problems.length) throw new Error(`response does not match docs/openapi.json:\n${check.problems.join('\n')}`);
}

/**
 * `app` options go to createApp. The per-session rate limit is off unless `app.sessionRate` is given: race
 * tests fire hundreds of requests on one session at once, and the limit has tests of its own.
 */
/**
 * `webhooks`: run the webhook dispatcher (its own timers; the others stay off). `pkcs11`: EVM agent keys in that
 * token (docs/custody.md). `pgVia`: host:port that the PostgreSQL store connects through (a test proxy) instead
 * of PG_URL's, for everything it does (migrations included); only the schema's drop at close goes directly.
 */
export async function startHarness(opts: { store?: StoreKind; manualClock?: boolean; clock?: Clock; approvalTtlMs?: number; chainReader?: ChainReader; app?: AppOptions; config?: Partial<AirlockConfig>; lightningBackend?: LightningBackend; webhooks?: boolean; pkcs11?: Pkcs11Options; pgVia?: string } = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-test-'));
  const pgSchema = opts.store === 'postgres' ? await pgSchemaUrl() : undefined;
  let storeUrl = pgSchema?.url;
  if (storeUrl !== undefined && opts.pgVia !== undefined) {
    const via = new URL(storeUrl);
    via.host = opts.pgVia;
    storeUrl = via.toString();
  }
  // Every Bitcoin network, test networks included, unless a test names its own (a daemon signs for mainnet only by default).
  const config = loadConfig({ dataDir, bitcoinNetworks: [...BITCOIN_NETWORKS], ...opts.config, ...(storeUrl ? { storeUrl } : {}), ...(opts.approvalTtlMs ? { approvalTtlMs: opts.approvalTtlMs } : {}) }, {});
  const init = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const clock = opts.manualClock ? new ManualClock(Date.now()) : undefined;
  const open = () => openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, ...(opts.webhooks ? { webhookDispatcher: true } : {}), ...(clock ? { clock } : opts.clock ? { clock: opts.clock } : {}), ...(opts.chainReader ? { chainReader: opts.chainReader } : {}), ...(opts.lightningBackend ? { lightningBackend: opts.lightningBackend } : {}), ...(opts.pkcs11 ? { pkcs11: opts.pkcs11 } : {}) });
  let airlock = await open();
  const appOptions: AppOptions = { bodyLimitBytes: config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 }, ...opts.app };
  let app = createApp(new AirlockHolder(airlock), appOptions);

  const call: Harness['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) body = JSON.stringify(o.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    if (body !== undefined) headers['content-type'] = 'application/json';
    const env = o.remoteAddress !== undefined ? { incoming: { socket: { remoteAddress: o.remoteAddress } } } : undefined;
    const res = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }, env);
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (openApiResponses) assertMatchesOpenApi(openApiResponses.check(method, path, res.status, parsed));
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const h: Harness = {
    get airlock() {
      return airlock;
    },
    config,
    clock,
    adminToken: init.adminToken,
    mnemonic: init.mnemonic,
    call,
    admin: (method, path, body) => call(method, path, { token: init.adminToken, ...(body !== undefined ? { body } : {}) }),
    fetch: (async (input: string | URL | Request, requestInit?: RequestInit) => app.request(input instanceof Request ? input : String(input), requestInit)) as typeof globalThis.fetch,
    async restart() {
      await airlock.close();
      airlock = await open();
      app = createApp(new AirlockHolder(airlock), appOptions);
    },
    async close() {
      await airlock.close();
      rmSync(dataDir, { recursive: true, force: true });
      await pgSchema?.drop();
    },
  };
  return h;
}

// Numbered as well as random: six random hex digits alone repeat on one server (25 agents share a name about once
// in 50,000 harnesses; the suite makes thousands of agents), and a repeated name fails the test with a 409.
let namesMade = 0;

/** An agent (or fleet) name no other made in this process has: `<prefix>-<random>-<n>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 8)}-${++namesMade}`;
}

/** Creates an agent with a policy and a session; returns the agent and its token. */
export async function provisionAgent(h: Harness, opts: { name?: string; policy?: unknown; actions?: string[]; chains?: string[]; budgets?: unknown[]; ttl?: string } = {}) {
  const created = await h.admin('POST', '/v1/agents', { names: [opts.name ?? uniqueName('bot')] });
  if (created.status !== 201) throw new Error(`create agent: ${JSON.stringify(created.body)}`);
  const agent = created.body.agents[0];
  if (opts.policy !== undefined) {
    const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: opts.policy });
    if (set.status !== 200) throw new Error(`set policy: ${JSON.stringify(set.body)}`);
  }
  const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, {
    ttl: opts.ttl ?? '1h',
    actions: opts.actions ?? ['evm.transaction', 'evm.typed_data', 'evm.message'],
    ...(opts.chains ? { chains: opts.chains } : {}),
    ...(opts.budgets ? { budgets: opts.budgets } : {}),
  });
  if (issued.status !== 201) throw new Error(`issue session: ${JSON.stringify(issued.body)}`);
  return { agent, token: issued.body.token as string, session: issued.body.session };
}

// Fixtures used across tests.
export const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
export const BASE = 'eip155:8453';
export const USDC_ASSET = `${BASE}/erc20:${USDC}`;
export const ALICE = '0x1111111111111111111111111111111111111111';
export const MALLORY = '0x2222222222222222222222222222222222222222';

/** An unsigned EIP-1559 transaction calling USDC.transfer(to, amount) on Base. */
export function usdcTransfer(to: string, amount: bigint, nonce = 0) {
  const data = `0xa9059cbb${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId: 8453, transaction: { type: 'eip1559', to: USDC, value: '0', data, nonce, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

/** EIP-3009 TransferWithAuthorization typed data for USDC on Base. */
export function usdcAuthorization(from: string, to: string, value: bigint, validBefore: number, nonce = `0x${'ab'.repeat(32)}`) {
  return {
    typedData: {
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
      types: {
        TransferWithAuthorization: [
          { name: 'from', type: 'address' },
          { name: 'to', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'validAfter', type: 'uint256' },
          { name: 'validBefore', type: 'uint256' },
          { name: 'nonce', type: 'bytes32' },
        ],
      },
      primaryType: 'TransferWithAuthorization',
      message: { from, to, value: value.toString(), validAfter: '0', validBefore: String(validBefore), nonce },
    },
  };
}

/** A policy allowing USDC transfers to ALICE with a per-request cap and a daily budget. */
export function usdcPolicy(opts: { perRequest?: string; daily?: string; approvalAbove?: string } = {}) {
  return {
    version: 1,
    sets: { partners: [ALICE] },
    rules: [
      { name: 'usdc-to-partners', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer', 'eip3009.transfer_with_authorization'], to: '$partners' } },
      { name: 'usdc-per-request', type: 'max_amount', asset: USDC_ASSET, max: opts.perRequest ?? '100000000' },
      { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: opts.daily ?? '500000000', window: '24h', scope: 'agent' },
      { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
      ...(opts.approvalAbove ? [{ name: 'big-needs-human', type: 'approval_tier', asset: USDC_ASSET, above: opts.approvalAbove }] : []),
    ],
  };
}

/**
 * Runs `change` once, just before the store's next transaction begins, and lets that transaction run after
 * it has committed: an operator action (freeze, revoke) that lands while a request is in flight, between
 * its authentication and its signing transaction. The change may use the store itself.
 */
export function beforeNextTransaction(h: Harness, change: () => Promise<unknown>): { ran: () => boolean } {
  const store = h.airlock.store;
  const original = store.transaction;
  let ran = false;
  store.transaction = (async (...args: Parameters<typeof original>) => {
    store.transaction = original;
    ran = true;
    await change();
    // Options passed on: the signing path hands its signing over as `afterCommit`.
    return original.apply(store, args);
  }) as typeof store.transaction;
  return { ran: () => ran };
}
