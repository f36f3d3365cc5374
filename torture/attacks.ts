// Part 7, attacks: every attack of issue 7 ("Make Airlock's promise true under attack") replayed against a
// real Airlock through its HTTP interface, on SQLite and PostgreSQL: nonce reuse, idempotency keys stolen by
// a sibling session, hostile JSON, a fleet deny escaped through a Permit2 batch, a lying RPC, an auth flood,
// signed-head laundering, the README policy as written, a chainless EIP-712 domain. Each must be refused with
// its stable code (or end safely: nothing signed, nothing charged, the hold kept), and the audit chain of
// every store the attacks did not tamper with must still verify. The short run plays each attack a few
// times; the full run repeats each with random values, depths, positions and asset mixes from a printed seed
// (TORTURE_SEED replays it).
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { getAddress } from 'viem';
import { isAirlockError } from '@airlock/core';
import { docPolicy } from '../packages/server/src/testing/doc-policies.ts';
import { rawAudit, rebuildStoredTree, rewriteEntry } from '../packages/server/src/testing/forge-audit.ts';
import {
  ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind,
} from '../packages/server/src/testing/harness.ts';
import {
  Random, lyingChain, permit2, recursiveTypedData, typedDataAtDepth, withDeepNest, withForbiddenKey, type HostileText,
} from './attack-payloads.ts';
import { brief, Violations, type Mode, type Part, type PartReport } from './lib.ts';

type Answer = { status: number; body: any };

const USDT = '0xfde4c96c8593536e31f229ea8f37b2ada2699bb2';
const DAI = '0x50c5725949a6f0c72e6c4a641f24049a917db0cb';
const WETH = '0x4200000000000000000000000000000000000006';
const TOKENS = [USDC, USDT, DAI, WETH];
const ROUTER = '0x3333333333333333333333333333333333333333';
const CONSOLE = 'https://console.example';
const NEVER = ((1n << 256n) - 1n).toString();
const MAX_UINT256 = (1n << 256n) - 1n;
const VALIDITY = 3600;
const API = 'https://api.example.com';

/** Anything that would let a client use a signature: an EVM signature, a signed transaction, an x402 header. */
const carriesSignature = (a: Answer) => !!(a.body?.signature || a.body?.signedTransaction || a.body?.header || a.body?.payload);
const codesOf = (a: Answer): string[] => [a.body?.error?.code, ...(a.body?.error?.violations ?? []).map((x: any) => x.code)].filter(Boolean);
/** Refused with `status` and `code` (the error's own code or one of its violations), nothing released. */
const refused = (a: Answer, status: number, code: string) => a.status === status && !carriesSignature(a) && codesOf(a).includes(code);
const show = (a: Answer) => `${a.status} ${brief(a.body, 240)}`;

/** How many times each attack is played per store: a few in the short (CI) run, many variants in the full run. */
const RUNS = {
  short: { nonces: 2, idempotencyKeys: 2, hostileJson: { key: 12, deep: 8, edge: 1, recursive: 6 }, permits: 3, lyingRpcPayments: 1, authFloods: 1, foreignOrigins: 4, launderings: 1, readmeAttempts: 1, chainless: 1 },
  full: { nonces: 60, idempotencyKeys: 40, hostileJson: { key: 1000, deep: 400, edge: 20, recursive: 300 }, permits: 100, lyingRpcPayments: 30, authFloods: 10, foreignOrigins: 60, launderings: 9, readmeAttempts: 60, chainless: 60 },
};
type Runs = (typeof RUNS)['short'];

/** One store's attack run: its harness, the shared random source, and counters that become the figures. */
interface Run {
  store: StoreKind;
  h: Harness;
  v: Violations;
  rnd: Random;
  full: boolean;
  runs: Runs;
  counts: Map<string, number>;
}
const count = (r: Run, name: string, n = 1) => r.counts.set(name, (r.counts.get(name) ?? 0) + n);
const wall = (h: Harness) => Math.floor(h.clock!.now() / 1000);

/** What an agent's budget has counted, read from the `used` of an operator dry-run that must exceed it. */
async function budgetUsed(h: Harness, agent: string, action: string, payload: unknown): Promise<bigint | undefined> {
  const probe = await h.admin('POST', '/v1/policies/dry-run', { agent, action, payload });
  const used = probe.body?.decision?.violations?.find((x: any) => x.code === 'budget_exceeded')?.used;
  return used === undefined ? undefined : BigInt(used);
}

async function auditOf(h: Harness, agent: string, type: string): Promise<any[]> {
  return (await h.admin('GET', `/v1/audit?agent=${agent}&type=${type}&limit=1000`)).body.entries;
}

function erc20Transfer(token: string, to: string, amount: bigint, nonce = 0) {
  const data = `0xa9059cbb${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId: 8453, transaction: { type: 'eip1559', to: token, value: '0', data, nonce, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

/** EIP-3009 authorization of any token, under the domain name the token uses. */
function authorizationOf(token: string, name: string, from: string, to: string, value: bigint, validBefore: string, nonce: string) {
  const { typedData } = usdcAuthorization(from, to, value, 0, nonce);
  return { typedData: { ...typedData, domain: { name, version: '2', chainId: 8453, verifyingContract: token }, message: { ...typedData.message, validBefore } } };
}

// ---- 1. nonce reuse ----

/**
 * A 1-unit decoy authorization claims nonce N; larger ones over N (other value, payee, validity) follow, one
 * by one or all at once with the identical re-send. Only the re-send is released (the same signature, as a
 * replay); every other is `nonce_reused`; the budget counts the decoys and nothing else.
 */
async function nonceReuse(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  const partners = [ALICE, MALLORY, rnd.address(), rnd.address()];
  const DAILY = 10n ** 15n;
  const policy = {
    version: 1,
    sets: { partners },
    rules: [
      { name: 'pay-partners', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: '$partners' } },
      { name: 'daily', type: 'budget', asset: USDC_ASSET, max: DAILY.toString(), window: '24h', scope: 'agent' },
    ],
  };
  const { agent, token } = await provisionAgent(h, { name: `nonce-${store}-${rnd.hex(3)}`, policy });
  const sign = (body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body });
  let decoys = 0n;
  let refusals = 0;
  for (let i = 0; i < r.runs.nonces; i++) {
    const nonce = rnd.bytes32();
    const validBefore = wall(h) + rnd.int(120, 3000);
    const decoyValue = i === 0 ? 1n : BigInt(rnd.int(1, 20));
    const decoy = usdcAuthorization(agent.address, rnd.pick(partners), decoyValue, validBefore, nonce);
    const first = await sign(decoy);
    if (!v.check(first.status === 200 && !!first.body.signature, () => `${store}: nonce reuse: the decoy was not signed: ${show(first)}`)) continue;
    decoys += decoyValue;
    const larger = Array.from({ length: r.full ? rnd.int(2, 8) : 3 }, (_, k) => {
      const value = decoyValue + rnd.pick([BigInt(rnd.int(1, 1000)), rnd.bigint(40), DAILY, rnd.bigint(255)]);
      const payee = k === 1 || rnd.chance(0.3) ? rnd.pick([...partners, rnd.address()]) : decoy.typedData.message.to;
      const before = k === 2 || rnd.chance(0.3) ? validBefore + rnd.int(-100, 100_000) : validBefore;
      const body = usdcAuthorization(agent.address, payee, value, before, nonce);
      if (rnd.chance(0.2)) body.typedData.message.validAfter = String(rnd.int(1, wall(h)));
      return body;
    });
    // Sequential, or every variant racing the identical re-send.
    const together = r.full && rnd.chance(0.5);
    const answers = together ? await Promise.all([...larger, decoy].map(sign)) : await (async () => {
      const out: Answer[] = [];
      for (const body of [...larger, decoy]) out.push(await sign(body));
      return out;
    })();
    const resent = answers.pop()!;
    for (const a of answers) {
      count(r, 'nonceReuse.refused');
      refusals++;
      v.check(refused(a, 409, 'nonce_reused'), () => `${store}: a larger authorization over a used nonce: ${show(a)}`);
    }
    count(r, 'nonceReuse.replays');
    v.check(resent.status === 200 && resent.body.replayed === true && resent.body.signature === first.body.signature && resent.body.auditSeq === first.body.auditSeq,
      () => `${store}: the identical authorization was not replayed: ${show(resent)}`);
  }
  count(r, 'nonceReuse.nonces', r.runs.nonces);
  const used = await budgetUsed(h, agent.name, 'evm.typed_data', usdcAuthorization(agent.address, ALICE, DAILY, wall(h) + 600, rnd.bytes32()));
  v.check(used === decoys, () => `${store}: nonce reuse: the budget counts ${used}, the decoys were ${decoys}`);
  const audited = (await auditOf(h, agent.name, 'sign.request')).filter((e) => e.data.errorCode === 'nonce_reused' && e.decision === 'deny');
  v.check(audited.length === refusals, () => `${store}: nonce reuse: ${audited.length} refusals audited of ${refusals}`);
}

// ---- 2. idempotency keys ----

/**
 * A wide session signs a transaction under a key; a sibling session of the same agent, scoped to typed data
 * only, sends that transaction under the key (`action_not_allowed`, a denied `sign.replay`), and either
 * session sends another payload under it (`idempotency_conflict`, an error `sign.request`).
 */
async function idempotency(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  const { agent, token } = await provisionAgent(h, { name: `idem-${store}-${rnd.hex(3)}`, policy: usdcPolicy({ perRequest: '1000000000', daily: (10n ** 15n).toString() }) });
  const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] });
  const narrow = { token: issued.body.token as string, id: issued.body.session.id as string };
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-';
  let charged = 0n;
  let stolen = 0;
  let conflicts = 0;
  for (let i = 0; i < r.runs.idempotencyKeys; i++) {
    const key = Array.from({ length: rnd.int(1, 128) }, () => rnd.pick([...alphabet])).join('');
    const headers = { 'idempotency-key': key };
    const amount = BigInt(rnd.int(1, 1_000_000));
    const tx = usdcTransfer(ALICE, amount, 1_000 + i);
    const original = await h.call('POST', '/v1/sign/transaction', { token, body: tx, headers });
    if (!v.check(original.status === 200, () => `${store}: idempotency: the original was not signed: ${show(original)}`)) continue;
    charged += amount;

    const steal = await h.call('POST', '/v1/sign/transaction', { token: narrow.token, body: tx, headers });
    stolen++;
    count(r, 'idempotency.stolenReplays');
    v.check(refused(steal, 403, 'action_not_allowed'), () => `${store}: a typed-data session collected a transaction under its sibling's key: ${show(steal)}`);

    const sender = rnd.chance(0.5) ? narrow.token : token;
    const other = await rnd.pick([
      () => h.call('POST', '/v1/sign/transaction', { token: sender, body: usdcTransfer(rnd.pick([ALICE, MALLORY]), amount + BigInt(rnd.int(1, 10 ** 6)), 1_000 + i), headers }),
      () => h.call('POST', '/v1/sign/transaction', { token: sender, body: usdcTransfer(ALICE, amount, 50_000 + i), headers }),
      () => h.call('POST', '/v1/sign/typed-data', { token: sender, body: usdcAuthorization(agent.address, ALICE, amount, wall(h) + 600, rnd.bytes32()), headers }),
    ])();
    conflicts++;
    count(r, 'idempotency.conflicts');
    v.check(refused(other, 409, 'idempotency_conflict'), () => `${store}: another payload under a used key: ${show(other)}`);
  }
  const replays = (await auditOf(h, agent.name, 'sign.replay')).filter((e) => e.decision === 'deny' && e.sessionId === narrow.id);
  v.check(replays.length === stolen, () => `${store}: idempotency: ${replays.length} denied replays audited of ${stolen}`);
  const errors = (await auditOf(h, agent.name, 'sign.request')).filter((e) => e.data.errorCode === 'idempotency_conflict');
  v.check(errors.length === conflicts, () => `${store}: idempotency: ${errors.length} conflicts audited of ${conflicts}`);
  const used = await budgetUsed(h, agent.name, 'evm.transaction', usdcTransfer(ALICE, 10n ** 15n, 9));
  v.check(used === charged, () => `${store}: idempotency: the budget counts ${used}, the originals were ${charged}`);
}

// ---- 3. hostile JSON ----

/**
 * Prototype keys planted at random depths and positions of valid requests (body, typed data, dry-run, x402
 * body and header), nests past 64 levels up to what the body limit allows, and recursive EIP-712 structs:
 * each a 400 with its code, never a 500; nothing signed, nothing charged.
 */
async function hostileJson(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  const { agent, token } = await provisionAgent(h, { name: `json-${store}-${rnd.hex(3)}`, policy: usdcPolicy({ daily: '10' }) });
  const post = (path: string, raw: string) => h.call('POST', path, { token, raw });
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  const requirement = () => ({ scheme: 'exact', network: BASE, amount: String(rnd.int(1, 10)), asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } });
  const small = () => BigInt(rnd.int(1, 10));
  const bodyLimit = h.config.bodyLimitBytes;
  interface Base { kind: string; value: unknown; send: (text: string) => Promise<Answer>; maxBytes: number }
  const bases: (() => Base)[] = [
    () => ({ kind: 'transaction', value: usdcTransfer(ALICE, small(), rnd.int(0, 1000)), send: (t) => post('/v1/sign/transaction', t), maxBytes: bodyLimit }),
    () => ({ kind: 'typed-data', value: usdcAuthorization(agent.address, ALICE, small(), wall(h) + 600, rnd.bytes32()), send: (t) => post('/v1/sign/typed-data', t), maxBytes: bodyLimit }),
    () => ({
      kind: 'dry-run',
      value: rnd.chance(0.5) ? { action: 'evm.transaction', payload: usdcTransfer(ALICE, small()) } : { action: 'evm.typed_data', payload: usdcAuthorization(agent.address, ALICE, small(), wall(h) + 600, rnd.bytes32()) },
      send: (t) => post('/v1/dry-run', t),
      maxBytes: bodyLimit,
    }),
    () => ({ kind: 'x402-body', value: { resource: `${API}/data`, x402Version: 2, accepts: [requirement()] }, send: (t) => post('/v1/x402/pay', t), maxBytes: bodyLimit }),
    // The PAYMENT-REQUIRED header is base64 JSON of at most 64 KiB: 48 KiB of text.
    () => ({
      kind: 'x402-header',
      value: { x402Version: 2, resource: { url: `${API}/data` }, accepts: [requirement()] },
      send: (t) => h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/data`, paymentRequired: b64(t) } }),
      maxBytes: 48 * 1024,
    }),
  ];
  const judge = (kind: string, what: string, a: Answer, status: number, code: string) => {
    count(r, `hostileJson.${code}`);
    if (a.status >= 500) count(r, 'hostileJson.serverErrors');
    v.check(refused(a, status, code) && a.body.error.code === code && String(a.body.error.message ?? '').length < 200,
      () => `${store}: hostile JSON (${kind}: ${what}) not refused ${status} ${code}: ${show(a)}`);
  };
  const counts = r.runs.hostileJson;
  count(r, 'hostileJson.serverErrors', 0); // reported even when it stays 0: "never a 500" is the claim
  for (let i = 0; i < counts.key; i++) {
    const base = rnd.pick(bases)();
    const hostile: HostileText = withForbiddenKey(base.value, rnd);
    judge(base.kind, hostile.what, await base.send(hostile.text), 400, hostile.depth > 64 ? 'payload_too_deep' : 'forbidden_json_key');
  }
  let deepest = 0;
  for (let i = 0; i < counts.deep; i++) {
    const base = rnd.pick(bases)();
    const hostile = withDeepNest(base.value, rnd, base.maxBytes);
    deepest = Math.max(deepest, hostile.depth);
    judge(base.kind, hostile.what, await base.send(hostile.text), 400, hostile.depth > 64 ? 'payload_too_deep' : 'undecodable_payload');
  }
  r.counts.set('hostileJson.deepest', Math.max(r.counts.get('hostileJson.deepest') ?? 0, deepest));
  // The limit itself: 64 levels pass the edge (the decoder then refuses the unknown member), 65 do not.
  for (let i = 0; i < counts.edge; i++) {
    judge('typed-data', '64 levels', await post('/v1/sign/typed-data', typedDataAtDepth(64, rnd)), 400, 'undecodable_payload');
    judge('typed-data', '65 levels', await post('/v1/sign/typed-data', typedDataAtDepth(65, rnd)), 400, 'payload_too_deep');
  }
  for (let i = 0; i < counts.recursive; i++) {
    const { body, what } = recursiveTypedData(rnd);
    const asDryRun = rnd.chance(0.3);
    const answer = asDryRun ? await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.typed_data', payload: body } }) : await h.call('POST', '/v1/sign/typed-data', { token, body });
    judge(asDryRun ? 'dry-run' : 'typed-data', what, answer, 400, 'payload_too_deep');
  }
  const allowed = (await auditOf(h, agent.name, 'sign.request')).filter((e) => e.decision === 'allow');
  v.check(allowed.length === 0, () => `${store}: hostile JSON: ${allowed.length} requests allowed`);
  const used = await budgetUsed(h, agent.name, 'evm.transaction', usdcTransfer(ALICE, 11n));
  v.check(used === 0n, () => `${store}: hostile JSON consumed budget: ${used}`);
}

// ---- 4. escaping a fleet deny through a Permit2 batch ----

/** Fleet `deny {assets: [X]}`; a PermitBatch of X among other tokens (any position, any spelling) is `denied_by_rule`. */
async function denyEscape(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  // Random amounts up to uint160, so many are unlimited (2^128 and above): allowed to the router, as the deny under
  // test is what must refuse them, not the default for unlimited approvals.
  const policy = { version: 1, rules: [{ name: 'permits', type: 'allow', match: { chains: [BASE], kinds: ['permit2.permit_single', 'permit2.permit_batch'], to: [ROUTER] } }, { name: 'unlimited-to-router', type: 'approvals', allow_unlimited: true, spenders: [ROUTER] }] };
  const { token } = await provisionAgent(h, { name: `permit-${store}-${rnd.hex(3)}`, policy });
  const sign = (body: unknown) => h.call('POST', '/v1/sign/typed-data', { token, body });
  const checksummed = (a: string) => (rnd.chance(0.3) ? getAddress(a) : a);
  try {
    for (let i = 0; i < r.runs.permits; i++) {
      const denied = rnd.chance(0.7) ? rnd.pick(TOKENS) : rnd.address();
      const rule = `no-${rnd.word(2, 8).toLowerCase()}`;
      const set = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: rule, type: 'deny', match: { assets: [`${BASE}/erc20:${denied}`] } }] } });
      if (!v.check(set.status === 200, () => `${store}: fleet deny not set: ${show(set)}`)) continue;
      const pool = [...TOKENS.filter((t) => t !== denied), rnd.address(), rnd.address()];
      const others = Array.from({ length: i === 0 ? 0 : rnd.int(1, 5) }, () => rnd.pick(pool));
      const tokens = [...others];
      for (let k = i > 0 && rnd.chance(0.2) ? 2 : 1; k > 0; k--) tokens.splice(rnd.int(0, tokens.length), 0, denied);
      const res = await sign(permit2(tokens.map(checksummed), ROUTER, rnd, wall(h)));
      count(r, tokens.length > 1 ? 'denyEscape.batchesRefused' : 'denyEscape.singlesRefused');
      v.check(res.status === 403 && !carriesSignature(res) && res.body.error?.violations?.some((x: any) => x.rule === `fleet/${rule}` && x.code === 'denied_by_rule'),
        () => `${store}: a Permit2 permit of ${tokens.length} tokens including the denied one: ${show(res)}`);
      // The same batch without the denied token is signed: the refusal was the deny rule's.
      if (others.length > 0 && (i === 1 || rnd.chance(0.2))) {
        const clean = await sign(permit2([...new Set(others)], ROUTER, rnd, wall(h)));
        count(r, 'denyEscape.controlsSigned');
        v.check(clean.status === 200, () => `${store}: a Permit2 permit without the denied token: ${show(clean)}`);
      }
    }
  } finally {
    await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } });
  }
}

// ---- 5. a lying RPC ----

function paymentRequired(amount: bigint): string {
  const accepts = [{ scheme: 'exact', network: BASE, amount: amount.toString(), asset: USDC, payTo: ALICE, maxTimeoutSeconds: VALIDITY, extra: { name: 'USD Coin', version: '2' } }];
  return encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url: `${API}/data`, description: 'data', mimeType: 'application/json' }, accepts } as never);
}

/**
 * An RPC claims the chain is past validBefore (latest and pinned block) with the nonce unused, while the wall
 * clock is still before it. Each reconcile round keeps every hold and alerts; the held payment still fills
 * the agent's small budget, so a further payment is `budget_exceeded`.
 */
async function lyingRpc(r: Run, chain: ReturnType<typeof lyingChain>): Promise<void> {
  const { h, v, rnd, store } = r;
  chain.wall = () => wall(h);
  for (let i = 0; i < r.runs.lyingRpcPayments; i++) {
    const amount = BigInt(rnd.int(1, 1_000_000));
    const policy = {
      version: 1,
      rules: [
        { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: [`${API}/**`] } },
        { name: 'daily', type: 'budget', asset: USDC_ASSET, max: amount.toString(), window: '24h' },
        { name: 'hour-long', type: 'validity_window', max_seconds: VALIDITY },
      ],
    };
    const { agent, token } = await provisionAgent(h, { name: `rpc-${store}-${rnd.hex(3)}`, policy, ttl: '7d' });
    const pay = (value: bigint) => h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/data`, paymentRequired: paymentRequired(value) } });
    const first = await pay(amount);
    if (!v.check(first.status === 200, () => `${store}: lying RPC: the payment was not signed: ${show(first)}`)) continue;
    const validBefore = Number(first.body.authorization.validBefore);
    // The wall clock anywhere from an hour before validBefore to just before it.
    if (r.full) h.clock!.advance(rnd.int(0, VALIDITY - 1) * 1000);
    const latest = validBefore + rnd.int(121, 86_400);
    // Usually a consistent lie (pinned at or before latest); sometimes the RPC also contradicts itself.
    const pinned = !r.full || i === 0 || rnd.chance(0.8) ? rnd.int(validBefore + 1, latest) : latest + rnd.int(1, 3600);
    chain.latestAhead = latest - wall(h);
    chain.pinnedAhead = pinned - wall(h);
    try {
      for (let round = 0, rounds = r.full ? rnd.int(1, 3) : 2; round < rounds; round++) {
        const result = (await h.admin('POST', '/v1/x402/reconcile')).body;
        count(r, 'lyingRpc.rounds');
        // Every round keeps the hold on the disagreement; the alert is written once per payment and reason.
        v.check(result?.expired === 0 && result?.disagreements >= 1 && (round > 0 || result?.alerts >= 1), () => `${store}: lying RPC: a round released ${result?.expired} holds with ${result?.disagreements} disagreements and ${result?.alerts} alerts`);
      }
    } finally {
      chain.latestAhead = 0;
      chain.pinnedAhead = 0;
    }
    const payment = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.find((p: any) => p.id === first.body.paymentId);
    count(r, 'lyingRpc.holdsKept', payment?.state === 'reserved' ? 1 : 0);
    v.check(payment?.state === 'reserved', () => `${store}: lying RPC: the hold is ${payment?.state}`);
    const alerts = (await auditOf(h, agent.name, 'alert.reconciler')).filter((e) => e.data.paymentId === first.body.paymentId);
    count(r, 'lyingRpc.alerts', alerts.length);
    v.check(alerts.length >= 1 && alerts.every((e) => ['chain_clock_skew', 'chain_inconsistent'].includes(e.data.reason)),
      () => `${store}: lying RPC: alerts ${brief(alerts.map((e) => e.data.reason))}`);
    // At most the budget: it would fit if the hold had been released.
    const next = await pay(BigInt(rnd.int(1, Number(amount))));
    count(r, 'lyingRpc.overBudgetRefused');
    v.check(refused(next, 403, 'budget_exceeded'), () => `${store}: lying RPC: a payment past the budget: ${show(next)}`);
  }
}

// ---- 6. authentication floods and foreign origins ----

/**
 * A flood from one address: 30+ requests without a token, 30+ guessed admin tokens, wrong secrets for random
 * and real session ids. The admin token from that same address still freezes an agent, and the agent's
 * genuine token still works. A foreign `Origin` is `origin_not_allowed` for every credential.
 */
async function authLockout(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  for (let i = 0; i < r.runs.authFloods; i++) {
    const victim = await provisionAgent(h, { name: `victim-${store}-${rnd.hex(3)}`, policy: usdcPolicy() });
    // The operator's own address (no remote address: `local`) too, once in a while.
    const source = i === 1 ? undefined : `10.${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(1, 254)}`;
    const from = source === undefined ? {} : { remoteAddress: source };
    let flood = 0;
    // At least 30 without a token and 30 guesses at the admin token (each past the 30 failures the limiter
    // allows per address and credential), wrong secrets for random and real session ids, tokens of no known
    // shape: in random order.
    const kinds = rnd.shuffle([
      ...Array<string>(r.full ? rnd.int(30, 60) : 30).fill('none'),
      ...Array<string>(r.full ? rnd.int(31, 60) : 32).fill('admin'),
      ...Array<string>(r.full ? rnd.int(5, 40) : 5).fill('session'),
      ...Array<string>(r.full ? rnd.int(0, 10) : 2).fill('junk'),
    ]);
    for (const kind of kinds) {
      const bad = kind === 'none' ? undefined
        : kind === 'admin' ? `adm_${rnd.word(43, 43)}`
        : kind === 'session' ? rnd.pick([`ses_${rnd.hex(8)}.${rnd.word(43, 43)}`, `${victim.session.id}.${rnd.word(43, 43)}`])
        : rnd.word(1, 80);
      const path = rnd.pick([`/v1/agents/${victim.agent.name}/freeze`, '/v1/agents', '/v1/session', '/v1/sign/transaction']);
      const method = path === '/v1/agents' || path === '/v1/session' ? 'GET' : 'POST';
      const a = await h.call(method, path, { ...from, ...(bad ? { token: bad } : {}), ...(method === 'POST' ? { body: usdcTransfer(ALICE, 1n) } : {}) });
      flood++;
      if (a.status === 429) count(r, 'authFlood.throttled');
      // A session-shaped token on an admin route is answered 403 whatever its state, so it reveals none.
      const code = a.body?.error?.code;
      v.check((a.status === 401 && code === 'unauthenticated') || (a.status === 403 && code === 'forbidden' && bad?.startsWith('ses_') === true) || (a.status === 429 && code === 'rate_limited'),
        () => `${store}: auth flood answer: ${show(a)}`);
    }
    count(r, 'authFlood.requests', flood);
    const genuine = await h.call('GET', '/v1/session', { ...from, token: victim.token });
    v.check(genuine.status === 200, () => `${store}: after an auth flood the genuine session token is refused: ${show(genuine)}`);
    const frozen = await h.call('POST', `/v1/agents/${victim.agent.name}/freeze`, { ...from, token: h.adminToken });
    count(r, 'authFlood.adminFreezes');
    v.check(frozen.status === 200 && frozen.body.status === 'frozen', () => `${store}: after an auth flood the admin cannot freeze: ${show(frozen)}`);
  }

  const target = await provisionAgent(h, { name: `origin-${store}-${rnd.hex(3)}`, policy: usdcPolicy() });
  const foreign = () => rnd.pick([
    `https://${rnd.word(3, 12).toLowerCase()}.example`,
    'null',
    `${CONSOLE}.${rnd.word(3, 8).toLowerCase()}.example`,
    CONSOLE.replace('https:', 'http:'),
    `${CONSOLE}:${rnd.int(1, 65535)}`,
    `https://${rnd.word(3, 8).toLowerCase()}.console.example`,
    CONSOLE.toUpperCase(),
    `${CONSOLE}/`,
  ]);
  for (let i = 0; i < r.runs.foreignOrigins; i++) {
    const origin = foreign();
    const asAdmin = rnd.chance(0.5);
    const a = asAdmin
      ? await h.call('POST', `/v1/agents/${target.agent.name}/freeze`, { token: h.adminToken, headers: { origin } })
      : await h.call('POST', '/v1/sign/transaction', { token: target.token, body: usdcTransfer(ALICE, 1n, i), headers: { origin } });
    count(r, 'foreignOrigin.refused');
    v.check(refused(a, 403, 'origin_not_allowed'), () => `${store}: Origin ${origin} (${asAdmin ? 'admin' : 'agent'}): ${show(a)}`);
  }
  const still = await h.admin('GET', `/v1/agents/${target.agent.name}`);
  v.check(still.body?.status === 'active', () => `${store}: foreign origins changed the agent: ${still.body?.status}`);
  const listed = await h.call('GET', '/v1/agents', { token: h.adminToken, headers: { origin: CONSOLE } });
  v.check(listed.status === 200, () => `${store}: the allowed origin is refused: ${show(listed)}`);
}

// ---- 7. signed-head laundering ----

const LAUNDERINGS = ['rewrite-decision', 'rewrite-amount', 'truncate'] as const;

/**
 * An attacker with write access to the database (triggers dropped) rewrites an anchored entry as a
 * self-consistent leaf and rebuilds every stored tree node from the rewritten leaves (a self-consistent
 * tree), or truncates below the anchor, then deletes every signed tree head so the checkpointer would sign
 * the forgery. It refuses, `alert.audit_integrity` is written once, signing and
 * dry-runs answer 503 `audit_integrity_failed`, and verify fails.
 */
async function launder(store: StoreKind, how: (typeof LAUNDERINGS)[number], rnd: Random, v: Violations): Promise<void> {
  const h = await startHarness({ store });
  try {
    const { token } = await provisionAgent(h, { name: `launder-${rnd.hex(3)}`, policy: usdcPolicy() });
    const sign = (nonce: number) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, BigInt(rnd.int(1, 1_000_000)), nonce) });
    for (let i = 0, n = rnd.int(3, 10); i < n; i++) v.check((await sign(i)).status === 200, () => `${store}: launder: request ${i} not signed`);
    if (!v.check(!!(await h.airlock.audit.checkpoint()), () => `${store}: launder: no tree head was written`)) return;
    const anchored = (await h.airlock.store.auditHead()).seq;
    // Sometimes more entries after the anchor, which the attacker rewrites along with the anchored ones.
    for (let i = 0, n = rnd.chance(0.5) ? rnd.int(1, 3) : 0; i < n; i++) await sign(100 + i);

    if (how === 'truncate') {
      await rawAudit(h, store, `DELETE FROM audit_entries WHERE seq > ${anchored - rnd.int(1, 3)}`);
    } else {
      const entries = await h.airlock.store.readAudit(1, 10_000);
      const candidates = entries.filter((e) => e.seq <= anchored && e.type === 'sign.request' && e.decision === 'allow');
      const victim = rnd.pick(candidates);
      await rewriteEntry(h, store, victim.seq, (e) => {
        if (how === 'rewrite-decision') return { ...e, decision: 'deny' };
        const intent = (e.data as any).intent;
        const spends = intent.spends.map((s: any, k: number) => (k === 0 ? { ...s, amount: String(BigInt(s.amount) + BigInt(rnd.int(1, 10 ** 9))) } : s));
        return { ...e, data: { ...e.data, intent: { ...intent, spends } } };
      });
      await rebuildStoredTree(h, store);
    }
    await rawAudit(h, store, 'DELETE FROM audit_tree_heads');

    const alerts = async () => ((await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries as any[]).length;
    for (let tick = 0; tick < 2; tick++) {
      const outcome = await h.airlock.audit.checkpoint().then(() => 'signed a tree head', (e: unknown) => (isAirlockError(e) ? e.code : String(e)));
      v.check(outcome === 'audit_integrity_failed', () => `${store}: launder (${how}): checkpointer tick ${tick + 1}: ${outcome}`);
    }
    const heads = await h.airlock.store.listTreeHeads();
    v.check(heads.length === 0, () => `${store}: launder (${how}): ${heads.length} tree heads signed over the forgery`);
    const raised = await alerts();
    v.check(raised === 1, () => `${store}: launder (${how}): ${raised} alert.audit_integrity entries, expected 1`);
    const signed = await sign(999);
    v.check(refused(signed, 503, 'audit_integrity_failed'), () => `${store}: launder (${how}): signing after the forgery: ${show(signed)}`);
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 1n) } });
    v.check(refused(dry, 503, 'audit_integrity_failed'), () => `${store}: launder (${how}): dry-run after the forgery: ${show(dry)}`);
    const verified = (await h.admin('POST', '/v1/audit/verify')).body;
    v.check(verified?.ok === false, () => `${store}: launder (${how}): verify passed a forged log: ${brief(verified)}`);
  } finally {
    await h.close();
  }
}

// ---- 8. the README policy as written ----

/** The README walkthrough policy, set from its source text: 1,000,000 WETH and a never-expiring authorization of another token are refused. */
async function docsPolicy(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  const readme = docPolicy('README.md#Five-minute walkthrough');
  const { agent } = await provisionAgent(h, { name: `readme-${store}-${rnd.hex(3)}` });
  const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { source: readme.source });
  if (!v.check(set.status === 200, () => `${store}: the README policy was not accepted: ${show(set)}`)) return;
  const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data'] });
  const token = issued.body.token as string;
  const partners = (readme.document.sets as { partners: string[] }).partners;
  const ok = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(rnd.pick(partners), 50_000_000n) });
  v.check(ok.status === 200, () => `${store}: the README policy refuses 50 USDC to a partner: ${show(ok)}`);
  for (let i = 0; i < r.runs.readmeAttempts; i++) {
    const wethAmount = i === 0 ? 1_000_000n * 10n ** 18n : rnd.bigint(rnd.pick([64, 96, 255]));
    const weth = await h.call('POST', '/v1/sign/transaction', { token, body: erc20Transfer(WETH, rnd.pick(partners), wethAmount, i) });
    count(r, 'readmePolicy.wethRefused');
    v.check(refused(weth, 403, 'no_matching_allow_rule'), () => `${store}: README policy: ${wethAmount} WETH to a partner: ${show(weth)}`);

    const [other, name] = i === 0 ? [DAI, 'Dai Stablecoin'] : rnd.pick([[DAI, 'Dai Stablecoin'], [USDT, 'Tether USD'], [WETH, 'Wrapped Ether'], [rnd.address(), rnd.word(3, 12)]]);
    const value = i === 0 ? 1_000_000n : rnd.bigint(rnd.pick([20, 64, 255]));
    const never = i === 0 ? NEVER : rnd.pick([NEVER, (MAX_UINT256 - BigInt(rnd.int(0, 1000))).toString(), String(Number.MAX_SAFE_INTEGER), String(wall(h) + 10 * 365 * 86400)]);
    const auth = await h.call('POST', '/v1/sign/typed-data', { token, body: authorizationOf(other, name, agent.address, rnd.pick(partners), value, never, rnd.bytes32()) });
    count(r, 'readmePolicy.foreignAuthorizationsRefused');
    v.check(refused(auth, 403, 'no_matching_allow_rule'), () => `${store}: README policy: a never-expiring authorization of ${value} of ${other}: ${show(auth)}`);
  }
}

// ---- 9. a chainless EIP-712 domain ----

/** An EIP-3009 authorization whose domain has no chainId (valid on every chain), under a policy that does not opt in: `chainless_domain`. */
async function chainless(r: Run): Promise<void> {
  const { h, v, rnd, store } = r;
  const policy = { version: 1, rules: [{ name: 'pay-alice', type: 'allow', match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } }] };
  const { agent, token } = await provisionAgent(h, { name: `chainless-${store}-${rnd.hex(3)}`, policy });
  for (let i = 0; i < r.runs.chainless; i++) {
    const { typedData } = usdcAuthorization(agent.address, ALICE, i === 0 ? 1000n : rnd.bigint(rnd.pick([16, 40, 255])), wall(h) + rnd.int(60, 86_400), rnd.bytes32());
    const { chainId: _chainId, ...domain } = typedData.domain;
    if (i > 0 && rnd.chance(0.3)) delete (domain as Partial<typeof domain>).version;
    const res = await h.call('POST', '/v1/sign/typed-data', { token, body: { chainId: 8453, typedData: { ...typedData, domain } } });
    count(r, 'chainless.refused');
    v.check(refused(res, 403, 'chainless_domain'), () => `${store}: a chainless EIP-3009 domain: ${show(res)}`);
  }
}

// ---- the part ----

async function verifyIntact(h: Harness, v: Violations, label: string): Promise<void> {
  const verified = await h.admin('POST', '/v1/audit/verify');
  v.check(verified.status === 200 && verified.body?.ok === true, () => `${label}: audit verify after the attacks: ${brief(verified.body)}`);
}

async function attackStore(store: StoreKind, full: boolean, rnd: Random, v: Violations, figures: PartReport['figures']): Promise<void> {
  const counts = new Map<string, number>();
  const runs = full ? RUNS.full : RUNS.short;
  const main = await startHarness({ store, manualClock: true, app: { allowedOrigins: [CONSOLE] } });
  try {
    const r: Run = { store, h: main, v, rnd, full, runs, counts };
    for (const attack of [nonceReuse, idempotency, hostileJson, denyEscape, docsPolicy, chainless, authLockout]) await attack(r);
    await verifyIntact(main, v, `${store} (main)`);
  } finally {
    await main.close();
  }
  const chain = lyingChain();
  const rpc = await startHarness({ store, manualClock: true, chainReader: chain });
  try {
    await lyingRpc({ store, h: rpc, v, rnd, full, runs, counts }, chain);
    await verifyIntact(rpc, v, `${store} (lying RPC)`);
  } finally {
    await rpc.close();
  }
  for (let i = 0; i < runs.launderings; i++) {
    const how = full ? LAUNDERINGS[i % LAUNDERINGS.length]! : rnd.pick(LAUNDERINGS);
    await launder(store, how, rnd, v);
    counts.set(`launder.${how}`, (counts.get(`launder.${how}`) ?? 0) + 1);
  }
  for (const [k, n] of [...counts].sort(([a], [b]) => a.localeCompare(b))) figures[`${store}.${k}`] = n;
}

export const attacksPart: Part = {
  name: 'attacks',
  summary: 'issue 7 replayed: nonce reuse, stolen idempotency keys, hostile JSON, deny escape, lying RPC, auth flood, signed-head laundering, README policy, chainless domain',
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    // A fresh seed per run (printed), so repeated runs explore new variants and any failure can be replayed.
    const seed = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const figures: PartReport['figures'] = { seed };
    const stores: StoreKind[] = ['sqlite', 'postgres'];
    // Each store its own stream from the one seed: more variants per run, and still replayable.
    for (const [i, store] of stores.entries()) await attackStore(store, mode === 'full', new Random(seed + i), v, figures);
    return { figures, violations: v.done() };
  },
};
