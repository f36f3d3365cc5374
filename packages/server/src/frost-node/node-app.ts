/**
 * A threshold signer node's HTTP API (loopback, for the coordinator only). The node holds one FROST share of
 * a key, its own policy and its own ledger, and contributes a signature share only for a request it decoded,
 * evaluated and recorded itself:
 *
 *   POST /v1/frost/commit   round one: a fresh nonce commitment (nonces stay in memory, used once)
 *   POST /v1/frost/sign     round two: {commitmentId, commitments, request:{action, event}}
 *                           -> take the nonces -> check the commitment list -> decode the event and compute its
 *                              id HERE (never a digest from the coordinator) -> evaluate this node's policy
 *                              against this node's ledger -> record the decision (and charge) -> share
 *                           or {sessions:[{input, commitmentId, commitments}], request:{action:
 *                              "bitcoin.taproot_key_path", psbt, network}}: one session per input paying to
 *                              the group key, the sighashes computed HERE, one decision for the PSBT
 *                              (node-taproot.ts); `network` must be this node's own (option `network`,
 *                              default bitcoin), else frost_network_mismatch before anything is decided
 *   POST /v1/frost/dkg/{round1,round2,round3,confirm}   key generation (dkg.ts), once per node
 *   GET  /v1/frost/node, GET /v1/frost/decisions
 *
 * Every route needs the node's bearer token (one per node, shared with the coordinator only). The token keeps
 * strangers from spending nonces or reading the log; it is not what keeps a signature from being made: a
 * holder of the token still gets a share only for what this node's policy allows.
 *
 * Wrong tokens are limited as the daemon limits them (http/auth.ts): per remote address of the connection
 * (never a forwarding header), NODE_AUTH_FAILURES_PER_MINUTE, then `429 rate_limited` with Retry-After. The
 * limiter is consulted only after the presented token failed, so the genuine token always passes; a request
 * with no bearer token can never succeed and is answered 401 without touching it. The node logs one line (the
 * address, never token material) when an address starts being throttled.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import {
  AirlockError,
  evaluatePolicy,
  hashPolicy,
  ledgerWritesFor,
  parseUntrustedJson,
  requiredWindows,
  type BitcoinNetwork,
  type CompiledPolicy,
  type EvaluationInput,
  type LedgerView,
  type LedgerWrite,
  type PolicyLayer,
} from '@airlock/core';
import { createNostrAdapter } from '@airlock/chains';
import {
  confirmDkg,
  DkgParticipant,
  FrostSigner,
  groupXOnlyKey,
  parseCommitmentList,
  type ClusterDefinition,
  type ConfirmMessage,
  type DkgResult,
  type NodeState,
  type Round1Message,
  type Round2Message,
} from '@airlock/keys';
import { bytesToHex } from '@noble/hashes/utils.js';
import { AttemptLimiter } from '../http/attempt-limiter.ts';
import { clientAddress } from '../http/client-address.ts';
import { errorResponse } from '../http/errors.ts';
import { readCappedBytes } from '../read-capped.ts';
import type { NodeDecision, NodeLedger } from './node-ledger.ts';
import { signTaprootKeyPath } from './node-taproot.ts';

const MAX_BODY_BYTES = 256 * 1024;
const SIGNABLE = new Set(['nostr.event', 'nostr.http_auth']);
/** Wrong bearer tokens a minute from one address before `429 rate_limited`: the daemon's AUTH_FAILURES_PER_MINUTE (http/app.ts). */
export const NODE_AUTH_FAILURES_PER_MINUTE = 30;

export interface FrostNodeOptions {
  state: NodeState;
  cluster: ClusterDefinition;
  /** This node's own policy (Airlock policy language, evaluated as the agent layer). */
  policy: CompiledPolicy;
  policyDocument: unknown;
  ledger: NodeLedger;
  /** The coordinator's bearer token for this node. */
  token: string;
  now?: () => number;
  /** Nonce lifetime (ms) before round two. */
  commitmentTtlMs?: number;
  /**
   * The one Bitcoin network this node signs PSBTs for (default `bitcoin`, mainnet): a request naming any other
   * is refused with frost_network_mismatch before anything is decided, so the coordinator cannot move a spend
   * onto another network's policy asset (a mainnet PSBT labelled testnet would escape every mainnet cap).
   */
  network?: BitcoinNetwork;
  /** Where the node writes an operator-facing line (an address starting to be throttled); default stderr. */
  log?: (line: string) => void;
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

export function createFrostNodeApp(options: FrostNodeOptions): { app: Hono; close(): void } {
  const { state, cluster, ledger } = options;
  const now = options.now ?? Date.now;
  const network: BitcoinNetwork = options.network ?? 'bitcoin';
  const tokenDigest = digestOf(options.token);
  const policyHash = hashPolicy(options.policyDocument);
  const layers: PolicyLayer[] = [{ layer: 'agent', label: `node:${state.name}@${policyHash.slice(0, 8)}`, policy: options.policy }];
  const adapter = createNostrAdapter();
  let signer = state.key ? new FrostSigner(state.key.secret, state.key.publicPackage, { now, ...(options.commitmentTtlMs ? { ttlMs: options.commitmentTtlMs } : {}) }) : undefined;
  // One ceremony at a time, in memory: a restart mid-ceremony loses it (start a new one).
  let ceremony: { participant: DkgParticipant; result?: DkgResult } | undefined;

  const app = new Hono();
  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => errorResponse(c, new AirlockError('not_found', 'no such route on a signer node')));

  const failures = new AttemptLimiter(NODE_AUTH_FAILURES_PER_MINUTE);
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));

  app.use('*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const presented = header.startsWith('Bearer ') ? digestOf(header.slice(7)) : undefined;
    if (!presented) throw new AirlockError('unauthenticated', 'this signer node needs its bearer token');
    if (!timingSafeEqual(presented, tokenDigest)) {
      // Only after the token failed (auth.ts): the genuine token always passes, whatever others sent.
      const at = now();
      const source = clientAddress(c);
      const wait = failures.retryAfterMs(source, at);
      if (wait > 0) throw new AirlockError('rate_limited', 'Too many failed attempts with this credential; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
      failures.record(source, at);
      const until = failures.retryAfterMs(source, at);
      if (until > 0) log(`frost node ${state.name}: ${NODE_AUTH_FAILURES_PER_MINUTE} wrong bearer tokens within a minute from ${source}; answering 429 rate_limited for ${Math.ceil(until / 1000)}s`);
      throw new AirlockError('unauthenticated', 'this signer node needs its bearer token');
    }
    await next();
  });

  async function body(c: Context): Promise<Record<string, unknown>> {
    const text = await readCapped(c.req.raw, MAX_BODY_BYTES);
    const value = text === '' ? {} : parseUntrustedJson(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AirlockError('invalid_request', 'the body must be a JSON object');
    return value as Record<string, unknown>;
  }

  function readySigner(): FrostSigner {
    if (!signer) throw new AirlockError('frost_key_not_ready', 'this node has no key share yet: run `airlock frost dkg` first');
    return signer;
  }

  app.get('/v1/frost/node', (c) =>
    c.json({
      name: state.name,
      identityKey: state.identityKey,
      status: signer ? 'ready' : 'no_key',
      policy: policyHash,
      ...(state.key ? { groupKey: groupXOnlyKey(state.key.publicPackage), publicPackage: state.key.publicPackage, ceremony: state.key.ceremony } : {}),
    }),
  );

  app.get('/v1/frost/decisions', (c) => c.json({ decisions: ledger.decisions() }));

  // --- key generation -------------------------------------------------------------------------------------
  function currentCeremony(id: unknown): { participant: DkgParticipant; result?: DkgResult } {
    if (!ceremony || ceremony.participant.ceremony !== id) throw new AirlockError('frost_dkg_failed', 'no such ceremony on this node (a restart loses one): start again');
    return ceremony;
  }

  app.post('/v1/frost/dkg/round1', async (c) => {
    const { ceremony: id } = await body(c);
    if (state.key) throw new AirlockError('frost_key_not_ready', 'this node already holds a key share; a node takes part in one key generation');
    const current = ceremony && ceremony.participant.ceremony === id ? ceremony : { participant: new DkgParticipant(cluster, state.name, state.identitySecret(), String(id)) };
    ceremony = current;
    return c.json({ round1: current.participant.round1() });
  });

  app.post('/v1/frost/dkg/round2', async (c) => {
    const { ceremony: id, round1 } = await body(c);
    if (!Array.isArray(round1)) throw new AirlockError('invalid_request', 'round1: the list of every node\'s round-one message');
    return c.json({ round2: currentCeremony(id).participant.round2(round1 as Round1Message[]) });
  });

  app.post('/v1/frost/dkg/round3', async (c) => {
    const { ceremony: id, round2 } = await body(c);
    if (!Array.isArray(round2)) throw new AirlockError('invalid_request', 'round2: the round-two messages addressed to this node');
    const current = currentCeremony(id);
    current.result ??= current.participant.round3(round2 as Round2Message[]);
    return c.json({ confirmation: current.participant.confirmation(current.result) });
  });

  app.post('/v1/frost/dkg/confirm', async (c) => {
    const { ceremony: id, confirmations } = await body(c);
    if (!Array.isArray(confirmations)) throw new AirlockError('invalid_request', 'confirmations: every node\'s signed confirmation');
    const current = currentCeremony(id);
    if (!current.result) throw new AirlockError('frost_dkg_failed', 'confirm before round three');
    const publicPackage = confirmDkg(cluster, current.participant.ceremony, current.result, confirmations as ConfirmMessage[]);
    await state.saveKey({ ceremony: current.participant.ceremony, secret: current.result.secret, publicPackage });
    signer = new FrostSigner(current.result.secret, publicPackage, { now, ...(options.commitmentTtlMs ? { ttlMs: options.commitmentTtlMs } : {}) });
    ceremony = undefined;
    return c.json({ groupKey: groupXOnlyKey(publicPackage), publicPackage });
  });

  // --- signing ----------------------------------------------------------------------------------------------
  app.post('/v1/frost/commit', (c) => c.json(readySigner().commit()));

  /**
   * Evaluates this node's policy on its own ledger and records the decision (charging on allow) in one
   * transaction; a refusal throws policy_denied. `messageId` keys replays: a message this node already approved
   * and charged is contributed again (a retry after another node failed), recorded, not charged twice, but only
   * if the policy in force now allows it, judged with its own charge taken out of the totals (as the daemon judges
   * a replay). Found by review: an allow never expired, so a coordinator (untrusted) kept one node's allow of a
   * PSBT the other nodes refused and redeemed it later with another node's, after the first node's operator had
   * switched it to deny every spend.
   */
  function decide(messageId: string, action: string, intent: EvaluationInput['intent']): NodeDecision {
    const atMs = now();
    const input: EvaluationInput = { intent, agentId: readySigner().groupKey, sessionId: 'coordinator', nowMs: atMs };
    const chargedAt = ledger.chargedAt(messageId, action);
    const decision = ledger.decide(requiredWindows(layers, input), (view) => {
      const writes = ledgerWritesFor(input);
      const d = evaluatePolicy(layers, input, chargedAt === undefined ? view : withoutCharge(view, writes, chargedAt));
      // A signer node has no approval flow: what would need a human is refused here.
      const allowed = d.decision === 'allow';
      if (!allowed) return { atMs, eventId: messageId, action, decision: 'deny', allowedBy: d.allowedBy, violations: d.violations, policy: d.policyVersion, writes: [] };
      // A replay was judged as a new request would be, so it counts as one: its charge moves to now (the ledger).
      if (chargedAt !== undefined) return { atMs, eventId: messageId, action, decision: 'replay', allowedBy: d.allowedBy, violations: [], policy: d.policyVersion, writes };
      return { atMs, eventId: messageId, action, decision: 'allow', allowedBy: d.allowedBy, violations: [], policy: d.policyVersion, writes };
    });
    if (decision.decision === 'deny') {
      throw new AirlockError('policy_denied', `signer node ${state.name} refused: ${(decision.violations as { code: string }[]).map((v) => v.code).join(', ')}`, {
        violations: decision.violations as never,
        details: { node: state.name, decision: decision.seq },
      });
    }
    return decision;
  }

  app.post('/v1/frost/sign', async (c) => {
    const signer = readySigner();
    const fields = await body(c);
    // A PSBT: one FROST session per input it signs (node-taproot.ts).
    if ('sessions' in fields) return c.json(signTaprootKeyPath({ signer, cluster, node: state.name, network, fields, decide }));
    const { commitmentId, commitments, request, ...rest } = fields;
    // Spent first: whatever is refused below, these nonces are never used again.
    const nonces = signer.take(commitmentId);
    if (Object.keys(rest).length > 0) throw new AirlockError('invalid_request', 'unknown field in the sign request');
    const list = parseCommitmentList(cluster, commitments);
    signer.checkCommitmentList(nonces, list);
    const { action, event, ...extra } = (request ?? {}) as Record<string, unknown>;
    if (typeof action !== 'string' || !SIGNABLE.has(action) || Object.keys(extra).length > 0) {
      throw new AirlockError('unsupported_action', 'a signer node signs request {action: "nostr.event" | "nostr.http_auth", event}, or {sessions, request: {action: "bitcoin.taproot_key_path", psbt, network}}');
    }
    // The node decodes the request itself: the message it signs is the event id it computes, nothing else.
    const decoded = adapter.decode(action as 'nostr.event', event, { address: signer.groupKey });
    const eventId = bytesToHex(decoded.digest);
    const decision = decide(eventId, action, decoded.intent);
    const share = signer.sign(nonces, list, decoded.digest);
    return c.json({ node: state.name, identifier: signer.identifier, eventId, share, decision: decision.seq, replay: decision.decision === 'replay' });
  });

  return {
    app,
    close() {
      signer?.wipe();
      state.wipe();
      ledger.close();
    },
  };
}

/**
 * The ledger as it would be without one earlier charge of this message (`writes`, made at `chargedAtMs`): a window
 * that reaches back to it counts it out, so a replay is judged as itself, once, as a new request would be.
 */
function withoutCharge(view: LedgerView, writes: readonly LedgerWrite[], chargedAtMs: number): LedgerView {
  return {
    total(q) {
      const t = view.total(q);
      if (q.sinceMs > chargedAtMs) return t;
      let { amount, count } = t;
      for (const w of writes) {
        if (w.series !== q.series || w.asset !== q.asset) continue;
        amount -= w.amount;
        count -= w.count;
      }
      return { ...t, amount: amount < 0n ? 0n : amount, count: count < 0 ? 0 : count };
    },
  };
}

/**
 * The request body as text, refused with body_too_large as soon as it passes `max` bytes (by its declared
 * Content-Length, or while it is read): an oversized body is never held in memory whole.
 */
async function readCapped(request: Request, max: number): Promise<string> {
  const bytes = await readCappedBytes(request.body, max, request.headers.get('content-length'));
  if (!bytes) throw new AirlockError('body_too_large');
  return bytes.toString('utf8');
}
