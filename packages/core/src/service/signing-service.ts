import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { ACTIONS, intentToJson, type Action, type Intent } from '../intent.ts';
import { normaliseResource } from '../policy/resource-pattern.ts';
import type { PaymentRecord } from '../ports/payments.ts';
import { AirlockError, isAirlockError } from '../errors.ts';
import type { ErrorCode } from '../codes.ts';
import type { DecodedRequest, SignResult, ChainAdapter, SignerContext } from '../ports/chain-adapter.ts';
import type { DecisionBoundRequest, ProducedSignature } from '../ports/key-backend.ts';
import { bip32Fingerprint, type ExtendedPublicKey } from '../ports/chain-adapter.ts';
import { ledgerViewFrom, type LedgerWrite, type WindowQuery, type WindowTotal } from '../ports/ledger.ts';
import type { Agent, ApprovalRecord, AuditEntryOrigin, IdempotencyRecord, NonceClaim, Session, StoreTx } from '../ports/store.ts';
import type { Decision, Violation } from '../policy/decision.ts';
import { countWritesFor, evaluatePolicy, ledgerWritesFor, requiredWindows, sessionScopeViolations, type EvaluationInput } from '../policy/index.ts';
import type { ServiceDeps } from './deps.ts';
import { PolicyLayerLoader } from './policy-layers.ts';
import { ShadowPolicies, type ShadowComparison } from './shadow-evaluation.ts';
import { enrichFromLayers } from './intent-enrichment.ts';
import { assertAuditIntact } from './audit-integrity.ts';
import { receiptForSeq, receiptOf } from '../audit/stored-tree.ts';
import type { AuditEntry } from '../audit/types.ts';
import { constantTimeEqual, hashSecret, parseSessionToken, requestHash } from './tokens.ts';
import { CredentialCache } from './credential-cache.ts';
import { CircuitBreakers, breakerOpenViolation, type Screening } from './circuit-breakers.ts';
import type { PolicyLayer } from '../policy/layers.ts';
import { checkAncestorsUsable, readAncestors } from './session-chain.ts';
import { seriesFor } from '../ports/ledger.ts';
import { decodedForAnotherKey } from '../approvals/decoded-for.ts';
import { quorumMet, requiredQuorum, withOperatorApproval } from '../approvals/quorum.ts';
import { grantsOf } from '../dependencies/grants.ts';
import { releasedSignatures } from './released-signatures.ts';
import { THRESHOLD_NAMESPACES, type ThresholdBinding } from '../ports/threshold-keys.ts';

export interface AgentAuth {
  agent: Agent;
  session: Session;
}

/** An HTTP-shaped outcome: the server turns it into a response as is. */
export interface SignOutcome {
  status: 200 | 202 | 403;
  body: Record<string, unknown>;
}

/** What binds a signature to its committed decision (KeyBackend.signBound), less what the caller knows already. */
type SignBinding = Omit<DecisionBoundRequest, 'agentId' | 'action'>;

/** What a request says beyond its payload. */
export interface SignContext {
  /** x402: the paid resource URL this payment is for (POST /v1/x402/pay, or `x402.resource` on /v1/sign/typed-data). */
  x402?: { resource: string; x402Version?: number; plan?: unknown };
}

/** One signing request on its way through the transaction. */
interface SignRequest {
  auth: AgentAuth;
  action: string;
  payload: unknown;
  context: SignContext;
  now: number;
  reqHash: string;
  idempotencyKey: string | undefined;
  /** Hex of the digest the payload decodes to: what would be signed. */
  digest: string;
  /** The address of the key that would sign it (an EVM rotation changes it; Bitcoin and Nostr keys do not). */
  signer: string;
  input: EvaluationInput;
  /** The session's ancestors as the transaction read them (a derived session), nearest first. */
  ancestors?: Session[];
}

/** What the signing transaction decided: refuse, release a signature after commit, or answer as is. */
type TxOutcome =
  | { refused: AirlockError }
  | { release: { auditSeq: number; replayed: boolean; decision?: Decision; extra: Record<string, unknown>; entry?: AuditEntry; approvalId?: string } }
  | { status: SignOutcome['status']; body: Record<string, unknown> };

export interface DryRunOutcome {
  decision: Decision;
  intent: unknown;
  digest: string;
  /** What each staged candidate policy would decide (only when one is staged for the agent). */
  shadow?: ShadowComparison[];
}

/**
 * The hot path: authenticate -> decode -> (transaction: re-check credentials, idempotency,
 * evaluate policy against fresh ledger totals, reserve, append audit) -> commit -> sign -> verify -> respond.
 * Nothing is signed before its reservation and audit entry have committed, and no signature leaves before they
 * are durable (on SQLite the signing runs beside the commit's sync: Store.transaction's `afterCommit`).
 */
export class SigningService {
  private readonly layers = new PolicyLayerLoader();
  /** Staged candidate policies, evaluated beside the active ones (shadow-evaluation.ts). */
  readonly shadows = new ShadowPolicies();
  private readonly deps: ServiceDeps;
  /** Credentials of the signing routes, re-read by every signing transaction (credential-cache.ts). */
  readonly credentials = new CredentialCache();
  /** Anomaly detectors and circuit breakers, run in the signing transaction after policy (circuit-breakers.ts). */
  readonly breakers: CircuitBreakers;
  /** Signer addresses derived from the key backend (adapters whose address is not the agent record's), by namespace and path. */
  private readonly derivedSigners = new Map<string, string>();
  /** Signer contexts of adapters that derive the agent's keys themselves (`signerKeyPaths`), by namespace and account. */
  private readonly accountSigners = new Map<string, SignerContext>();

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    this.breakers = new CircuitBreakers(deps, this.credentials);
  }

  /**
   * Throws the reason an authenticated credential is no longer usable (revoked, expired, frozen, retired, an
   * ancestor session dead), read afresh: for a request that outlives its authentication (a long poll), before
   * it hands out what was decided meanwhile.
   */
  async assertStillUsable(auth: AgentAuth): Promise<void> {
    const [session, agent] = await Promise.all([this.deps.store.getSession(auth.session.id), this.deps.store.getAgent(auth.agent.id)]);
    if (!session || !agent) throw new AirlockError('unauthenticated', 'Unknown session token.');
    const now = this.deps.clock.now();
    checkUsable(agent, session, now);
    if (session.parentId !== undefined) checkAncestorsUsable(await readAncestors(this.deps.store, session), now);
  }

  /**
   * Whether this credential may collect the signed result of a request made by session `sessionId`: its own
   * requests and those of sessions derived from it (a parent's scope covers its children's), not a sibling's or
   * a child's view of its parent's (found by review: any session of the agent, whatever its scope, collected any
   * approved signature). The replay paths check the sending session's scope the same way.
   */
  async mayCollectResultOf(auth: AgentAuth, sessionId: string): Promise<boolean> {
    if (sessionId === auth.session.id) return true;
    const session = await this.deps.store.getSession(sessionId);
    if (!session || session.agentId !== auth.agent.id || session.parentId === undefined) return false;
    try {
      return (await readAncestors(this.deps.store, session)).some((a) => a.id === auth.session.id);
    } catch {
      return false; // a broken chain of sessions shows nothing
    }
  }

  /**
   * Resolves a session token to its agent. Throws the reason it is not usable. `admit` runs once the token
   * is proven genuine and before anything is written: it may refuse (the per-session rate limit), so a
   * flood with a dead credential cannot append one `auth.refused` entry per request.
   */
  async authenticate(token: string, admit?: (auth: AgentAuth) => void): Promise<AgentAuth> {
    const parsed = parseSessionToken(token);
    if (!parsed) throw new AirlockError('unauthenticated', 'Missing or malformed session token.');
    const session = await this.deps.store.getSession(parsed.sessionId);
    if (!session || !constantTimeEqual(session.tokenHash, hashSecret(parsed.secret))) {
      throw new AirlockError('unauthenticated', 'Unknown session token.');
    }
    const agent = await this.deps.store.getAgent(session.agentId);
    if (!agent) throw new AirlockError('unauthenticated', 'Unknown session token.');
    admit?.({ agent, session });
    const now = this.deps.clock.now();
    try {
      checkUsable(agent, session, now);
      // A derived session dies with any session above it (usually revoked with it already: this is the backstop).
      if (session.parentId !== undefined) checkAncestorsUsable(await readAncestors(this.deps.store, session), now);
    } catch (e) {
      // A genuine credential of a frozen/retired agent or a dead session: record the attempt (incident evidence).
      const code = (e as AirlockError).code;
      await this.deps.store.transaction((tx) =>
        tx.appendAudit({ at: now, type: 'auth.refused', actor: 'agent', agentId: agent.id, sessionId: session.id, decision: 'error', data: { errorCode: code } }),
      );
      throw e;
    }
    return { agent, session };
  }

  /**
   * `authenticate` for the signing routes (`sign`), whose transaction reads the session and the agent again
   * before anything is reserved: a usable credential authenticated before is taken from the cache, without a
   * store read. Everything else (a miss, an unusable cached credential) goes through `authenticate`.
   */
  async authenticateForSigning(token: string, admit?: (auth: AgentAuth) => void): Promise<AgentAuth> {
    const parsed = parseSessionToken(token);
    const cached = parsed ? this.credentials.get(parsed.sessionId) : undefined;
    if (parsed && cached) {
      // A session's token hash never changes: a mismatch is a wrong secret, refused like any unknown token.
      if (!constantTimeEqual(cached.session.tokenHash, hashSecret(parsed.secret))) throw new AirlockError('unauthenticated', 'Unknown session token.');
      if (isUsable(cached.agent, cached.session, this.deps.clock.now())) {
        admit?.(cached);
        return cached;
      }
      this.credentials.forgetSession(parsed.sessionId);
    }
    const auth = await this.authenticate(token, admit);
    this.credentials.set(auth);
    return auth;
  }

  async sign(auth: AgentAuth, action: string, payload: unknown, idempotencyKey?: string, context: SignContext = {}): Promise<SignOutcome> {
    assertAuditIntact(this.deps.auditIntegrity);
    const now = this.deps.clock.now();
    // The x402 context is part of what was asked: a retry naming another resource is another request.
    const reqHash = requestHash(action, context.x402 ? { payload, x402: context.x402 } : payload, canonicalJson);
    let adapter: ChainAdapter;
    let decoded: DecodedRequest;
    let signer: SignerContext;
    let threshold: ThresholdBinding | undefined;
    try {
      adapter = this.adapterFor(action);
      ({ signer, threshold } = await this.resolveSigner(adapter, auth.agent));
      const otherSigner = namedOtherSigner(adapter, action, payload, signer);
      if (otherSigner !== undefined) await this.refuseEarlierKey(auth, otherSigner);
      decoded = adapter.decode(action as Action, payload, signer);
      attachPaymentContext(decoded.intent, context);
    } catch (e) {
      // Bad input that reached the signer is recorded, then refused. Nothing is reserved.
      await this.auditRefusal(auth, action, reqHash, e, now);
      throw e;
    }
    const request: SignRequest = {
      auth, action, payload, context, now, reqHash, idempotencyKey,
      digest: bytesToHex(decoded.digest),
      signer: signer.address,
      input: { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now },
    };

    const signingTx = async (tx: StoreTx): Promise<TxOutcome> => {
      // What a new signature charges (a derived session's ancestors are added once read): locked with the agent.
      tx.lockAhead?.(ledgerWritesFor(request.input).map((w) => w.series));
      const fresh = await this.recheck(tx, auth, now, request.input);
      if (fresh.error) {
        // A credential cached by the signing routes went stale (another instance froze or revoked it).
        this.credentials.forgetSession(auth.session.id);
        const entry = await this.appendErrorEntry(tx, auth, action, reqHash, fresh.error, now);
        // Found by review: a NIP-46 sign_event refused here (agent frozen, session revoked) kept nothing under its key,
        // and delivered again after an unfreeze on another instance it was signed and charged, its client told it was
        // refused. A bunker key keeps the refusal (never over a record it has: that answer stands); an HTTP client
        // retrying under its own key after an unfreeze is still served.
        if (idempotencyKey?.startsWith('nip46/') && !(await tx.getIdempotency(idempotencyScope(auth), idempotencyKey))) {
          const body = { decision: 'deny', error: { code: fresh.error.code, message: fresh.error.message }, auditSeq: entry.seq };
          await tx.putIdempotency({ scope: idempotencyScope(auth), key: idempotencyKey, requestHash: reqHash, digest: request.digest, auditSeq: entry.seq, response: { status: 403, body }, createdAt: now });
        }
        return { refused: fresh.error };
      }
      const session = fresh.session!;
      request.ancestors = fresh.ancestors;
      if (idempotencyKey !== undefined) {
        const prior = await tx.getIdempotency(idempotencyScope(auth), idempotencyKey);
        if (prior) return this.retry(tx, request, session, prior);
      }
      const keys = decoded.intent.nonceKeys ?? [];
      const claims = keys.length > 0 ? await tx.getNonceClaims(keys) : [];
      // A lapsed claim on a sequential nonce (its permit's deadline passed unused) blocks nothing: the next
      // permit has to use that nonce. The new signature is charged for its own value like any other.
      const lapsed = claims.filter((c) => claimLapsed(c, request.digest, now));
      if (lapsed.length > 0) await tx.releaseNonceClaims(lapsed.map((c) => c.key));
      const live = claims.filter((c) => !lapsed.includes(c));
      if (live.length > 0) return this.reuse(tx, request, session, live);
      return this.decide(tx, request, session);
    };
    const afterDecision = async (outcome: TxOutcome): Promise<SignOutcome> => {
      if ('refused' in outcome) throw outcome.refused;
      if (!('release' in outcome)) return outcome;
      const { auditSeq, replayed, decision, extra, entry, approvalId } = outcome.release;
      // The receipt is read off the entry now, after commit: a store may give an entry its leaf index only
      // when its batch commits (PostgreSQL).
      // A key process signs only what the entry of this very request allowed: a replay's own entry points at the
      // original; the replay of an approved request is bound to the approval, as its first signature was.
      const binding: SignBinding = approvalId !== undefined
        ? { auditSeq, approvalId, payload, ...(context.x402 ? { x402: context.x402 } : {}) }
        : { auditSeq: typeof extra.replayAuditSeq === 'number' ? extra.replayAuditSeq : auditSeq, payload, ...(context.x402 ? { x402: context.x402 } : {}) };
      return this.release(auth, action, adapter, signer, decoded, auditSeq, replayed, decision, entry ? { ...extra, receipt: receiptOf(entry) } : extra, binding, threshold);
    };
    // A threshold cluster's nodes each record what they sign (their own ledgers): they are asked only once the
    // decision is on disk, so none records a decision that a power cut could take back.
    if (threshold) return afterDecision(await this.deps.store.transaction(signingTx, { affinity: auth.agent.id }));
    // Otherwise the signature is made once the decision has committed, beside the commit's sync where the store
    // syncs apart from COMMIT (SQLite), and released only once the commit is on disk (dropped if it cannot be).
    return this.deps.store.transaction(signingTx, { affinity: auth.agent.id, afterCommit: afterDecision });
  }

  /**
   * Keeps, under `idempotencyKey`, that this request was answered with the signature of approval `approvalId`
   * (granted, this agent's, over the same digest, made by this session or one it may collect from), as `reuse`
   * keeps a nonce replay of an approved request: a retry under the key is then re-released bound to that approval.
   * Found by review: the bunker handed out an approved event without going through `sign`, nothing was kept under
   * the new request's key, and the same envelope delivered again on another instance opened a second approval.
   * Writes nothing when the key has a record already, or the approval does not match. True when the approved
   * signature is this key's answer (kept now, or the key's record is that approval's: its hold or its answer); false
   * when the key answers otherwise (a refusal kept while the credential was dead, another approval) or the approval
   * does not match: that answer stands, and the caller must ask under the key (found by review: the bunker handed the
   * approved event out over a refusal its key kept, so one key got two answers).
   */
  async rememberApprovedAnswer(auth: AgentAuth, action: string, payload: unknown, idempotencyKey: string, approvalId: string): Promise<boolean> {
    // Computed exactly as `sign` computes them, so a retry under the key is the same request.
    const reqHash = requestHash(action, payload, canonicalJson);
    const adapter = this.adapterFor(action);
    const { signer } = await this.resolveSigner(adapter, auth.agent);
    const digest = bytesToHex(adapter.decode(action as Action, payload, signer).digest);
    const now = this.deps.clock.now();
    // A granted approval stays granted: read once, before the transaction.
    const approval = await this.deps.store.getApproval(approvalId);
    if (approval?.state !== 'approved' || approval.agentId !== auth.agent.id || approval.action !== action || approval.digest !== digest) return false;
    if (!(await this.mayCollectResultOf(auth, approval.sessionId))) return false;
    return this.deps.store.transaction(async (tx) => {
      const prior = await tx.getIdempotency(idempotencyScope(auth), idempotencyKey);
      if (prior) return prior.requestHash === reqHash && (prior.response.body as { approvalId?: unknown } | undefined)?.approvalId === approvalId && prior.response.status !== 403;
      const body = { decision: 'allow', auditSeq: approval.auditSeq, resign: true, signer: signer.address, approvalId };
      await tx.putIdempotency({ scope: idempotencyScope(auth), key: idempotencyKey, requestHash: reqHash, digest, auditSeq: approval.auditSeq, response: { status: 200, body }, createdAt: now });
      return true;
    }, { affinity: auth.agent.id });
  }

  /** A new request: evaluate, append the decision, then reserve and claim (allow) or hold (approval). */
  private async decide(tx: StoreTx, req: SignRequest, session: Session): Promise<TxOutcome> {
    const { auth, action, input, digest, reqHash, idempotencyKey, context, now } = req;
    const { intent } = input;
    const { decision, screening } = await this.evaluateScreened(tx, session, input, auth.agent, ledgerWritesFor(input).map((w) => w.series));
    const entry = await tx.appendAudit({
      at: now,
      type: 'sign.request',
      actor: 'agent',
      agentId: auth.agent.id,
      sessionId: auth.session.id,
      action,
      decision: decision.decision,
      data: {
        intent: intentToJson(intent),
        violations: decision.violations,
        allowedBy: decision.allowedBy,
        policyVersion: decision.policyVersion,
        digest,
        requestHash: reqHash,
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      },
    });

    if (decision.violations.some((v) => v.code === 'loop_guard_tripped')) await this.appendLoopGuardAlert(tx, auth, intent.payment?.resource, decision, entry.seq, now);
    if (screening) await this.breakers.record(tx, screening, entry.seq, auth.session.id);
    await this.shadows.record(tx, decision, { seq: entry.seq, agentId: auth.agent.id, at: now, action }, intent.summary);

    let outcome: TxOutcome;
    let stored: { status: number; body: Record<string, unknown> };
    if (decision.decision === 'allow') {
      const paymentId = await this.reserveSpend(tx, { agentId: auth.agent.id, sessionId: auth.session.id }, input, entry.seq, now, context.x402?.x402Version);
      await tx.claimNonces(nonceClaims(req, entry.seq, 'signed'));
      // What the key hands to others (allowances, permits): the dependency map's rows. Most intents grant nothing.
      const grants = grantsOf(intent, { agentId: auth.agent.id, auditSeq: entry.seq, nowMs: now });
      if (grants.length > 0) await tx.recordGrants(grants);
      const extra = paymentId !== undefined ? { paymentId } : {};
      // The signature is produced after commit; a replay signs again (RFC 6979 makes it identical) or, with a key
      // backend that is not deterministic, returns the bytes kept at the first release (released-signatures.ts).
      // `signer`: a retry is re-signed only by the same key (a rotation in between must not re-sign it with another).
      stored = { status: 200, body: { decision: 'allow', auditSeq: entry.seq, resign: true, signer: req.signer, ...extra } };
      outcome = { release: { auditSeq: entry.seq, replayed: false, decision, extra, entry } };
    } else if (decision.decision === 'require_approval') {
      const approval: ApprovalRecord = {
        id: this.deps.randomId('apr'),
        agentId: auth.agent.id,
        sessionId: auth.session.id,
        auditSeq: entry.seq,
        action,
        request: req.payload,
        digest,
        summary: { intent: intentToJson(intent), violations: decision.violations, policyVersion: decision.policyVersion, ...(context.x402?.plan !== undefined ? { x402: context.x402.plan } : {}) },
        state: 'pending',
        createdAt: now,
        expiresAt: now + this.deps.approvalTtlMs,
      };
      // Who may vote is fixed now; a grant must also meet the quorum the policy in force asks for then (OperatorService.policyRecheck).
      const quorum = requiredQuorum(decision.violations);
      if (quorum) approval.quorum = quorum;
      await tx.holdForApproval(approval, ledgerWritesFor(input));
      // The nonce is held while a human decides: a different authorization over it is refused meanwhile.
      await tx.claimNonces(nonceClaims(req, entry.seq, 'pending', approval.id));
      stored = {
        status: 202,
        body: {
          decision: 'require_approval',
          approvalId: approval.id,
          expiresAt: new Date(approval.expiresAt).toISOString(),
          violations: decision.violations,
          policyVersion: decision.policyVersion,
          auditSeq: entry.seq,
          intent: intentToJson(intent),
        },
      };
      outcome = stored as TxOutcome;
    } else {
      stored = { status: 403, body: denialBody(decision, entry.seq) };
      outcome = stored as TxOutcome;
    }
    if (idempotencyKey !== undefined) {
      await tx.putIdempotency({ scope: idempotencyScope(auth), key: idempotencyKey, requestHash: reqHash, digest, auditSeq: entry.seq, response: stored, createdAt: now });
    }
    return outcome;
  }

  /**
   * A request under an Idempotency-Key seen before. It must be the same request (request hash) decoding to
   * the same digest; a stored allow is then re-released as a replay, anything else is answered as stored.
   * Conflicts and replays are both audited.
   */
  private async retry(tx: StoreTx, req: SignRequest, session: Session, prior: IdempotencyRecord): Promise<TxOutcome> {
    const { auth, action, reqHash, digest, now } = req;
    const sameRequest = prior.requestHash === reqHash && (prior.digest === undefined ? prior.response.status !== 200 : prior.digest === digest);
    if (!sameRequest) {
      const error = new AirlockError('idempotency_conflict', prior.requestHash === reqHash
        ? 'This Idempotency-Key was recorded without a digest (before an upgrade) and cannot be re-signed; use a new key.'
        : 'This Idempotency-Key was already used with a different request.');
      await this.appendErrorEntry(tx, auth, action, reqHash, error, now, { idempotencyKey: req.idempotencyKey, digest, originalSeq: prior.auditSeq });
      return { refused: error };
    }
    const body = prior.response.body as Record<string, unknown>;
    if (prior.response.status === 200 && !signedBySameKey(body, req)) {
      // Re-signing would make a second, uncharged signature of the same request with the agent's new key.
      const error = new AirlockError('key_rotated', "Refused by agent_keys/rotated: this Idempotency-Key was signed with an earlier key of this agent, rotated since; send the request again under a new key.", { details: { rule: 'agent_keys/rotated', originalSeq: prior.auditSeq } });
      await this.appendErrorEntry(tx, auth, action, reqHash, error, now, { idempotencyKey: req.idempotencyKey, digest, originalSeq: prior.auditSeq });
      return { refused: error };
    }
    const stranded = prior.response.status === 202 ? await this.grantWithoutResult(tx, req, body) : undefined;
    if (stranded) {
      // Granted and charged, but its signature never left the instance that granted it (its key backend failed, or
      // it died or lost its store between the grant's commit and the stored result): no result will be written, so
      // the approval's poll never ends, and asking under a new key opened a second approval of the same bytes,
      // charged again (found by review). Released here as a nonce replay of an approved request is (`reuse`).
      return this.replay(tx, req, session, stranded.auditSeq, await heldPaymentExtra(tx, req.input.intent), stranded.id);
    }
    if (prior.response.status !== 200) {
      // The sending session is judged as for a signature's replay (replay): a derived session out of the action's or
      // chain's scope, or not below the session that sent it, is refused, not handed its parent's hold or refusal
      // (found by review: a child without evm.typed_data got its parent's 202, approval id and intent).
      const refused = await this.replaySessionRefusal(tx, req, session, prior.auditSeq);
      if (refused) return refused;
      const entry = await this.appendReplayEntry(tx, req, prior.auditSeq, prior.response.status === 202 ? 'require_approval' : 'deny');
      return { status: prior.response.status as SignOutcome['status'], body: { ...body, replayed: true, replayAuditSeq: entry.seq } };
    }
    // Recorded by a nonce replay of an approved request (`reuse`): bound to that approval again (found by review:
    // a second retry under the key was refused by the key process).
    const approvalId = typeof body.approvalId === 'string' ? body.approvalId : undefined;
    return this.replay(tx, req, session, prior.auditSeq, paymentExtra(body), approvalId);
  }

  /**
   * The approval a stored 202 names, when it was granted (charged) and has no result: the grant's signing never
   * finished. Only this agent's approval of this very request (action, digest), decoded for the key it signs with
   * now (a key rotated since the grant signs nothing: completeGrant's `key_rotated`). Anything else: undefined, and
   * the stored 202 is replayed as before (a granted approval with its result is read from the approval).
   */
  private async grantWithoutResult(tx: StoreTx, req: SignRequest, body: Record<string, unknown>): Promise<ApprovalRecord | undefined> {
    if (typeof body.approvalId !== 'string') return undefined;
    const approval = await tx.getApproval(body.approvalId);
    if (approval?.state !== 'approved' || approval.result !== undefined) return undefined;
    if (approval.agentId !== req.auth.agent.id || approval.action !== req.action || approval.digest !== req.digest) return undefined;
    if (decodedForAnotherKey(approval, req.signer) !== undefined) return undefined;
    return approval;
  }

  /**
   * A request over authorization nonces that are already claimed. Only the byte-identical authorization
   * (same digest) is released again, as a replay; anything else is `nonce_reused`, refused before signing.
   */
  private async reuse(tx: StoreTx, req: SignRequest, session: Session, claims: NonceClaim[]): Promise<TxOutcome> {
    const { auth, action, reqHash, digest, input, now, idempotencyKey } = req;
    const conflicting = claims.find((c) => c.digest !== digest);
    if (conflicting) {
      const error = new AirlockError('nonce_reused', 'This nonce (of an authorization or permit, a Safe transaction or a user operation) was already signed over different content; only a byte-identical replay is released.');
      await tx.appendAudit({
        at: now, type: 'sign.request', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action, decision: 'deny',
        data: { errorCode: error.code, intent: intentToJson(input.intent), digest, requestHash: reqHash, nonceKeys: input.intent.nonceKeys ?? [], conflictsWithSeq: conflicting.auditSeq, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) },
      });
      return { refused: error };
    }
    const pending = claims.find((c) => c.state === 'pending');
    if (pending) {
      // The same authorization is waiting for a human: point at that approval, hold nothing more; to a session
      // allowed it and at or above the one that sent it, as the signature's replay would be (found by review).
      const refused = await this.replaySessionRefusal(tx, req, session, pending.auditSeq);
      if (refused) return refused;
      const entry = await this.appendReplayEntry(tx, req, pending.auditSeq, 'require_approval');
      return { status: 202, body: { decision: 'require_approval', approvalId: pending.approvalId, auditSeq: pending.auditSeq, intent: intentToJson(input.intent), replayed: true, replayAuditSeq: entry.seq } };
    }
    const original = claims[0]!.auditSeq;
    const extra = await heldPaymentExtra(tx, input.intent);
    // The original was held and approved: a key process signs it again under that approval (the entry it allowed is
    // the held request, not an `allow`), as it signed it when the approval was granted.
    const approvalId = claims[0]!.approvalId;
    const outcome = await this.replay(tx, req, session, original, extra, approvalId);
    if (idempotencyKey !== undefined && 'release' in outcome) {
      await tx.putIdempotency({ scope: idempotencyScope(auth), key: idempotencyKey, requestHash: reqHash, digest, auditSeq: original, response: { status: 200, body: { decision: 'allow', auditSeq: original, resign: true, signer: req.signer, ...extra, ...(approvalId !== undefined ? { approvalId } : {}) } }, createdAt: now });
    }
    return outcome;
  }

  /**
   * Re-releases a charged signature. No new value is charged (it is the same signature), but the sending
   * session must still be allowed the action and chain, the policy in force must not refuse the request, the
   * request is counted (rate limits and the loop guard count signatures), and the replay has its own audit
   * entry pointing at the original.
   *
   * The policy is judged again because a charged signature is not always a delivered one: when the key backend
   * failed after the commit (`sign.failed`), the retry is the first release, and a deny rule, an approval tier or
   * a breaker the operator set in between must stop it (found by review: it was released unjudged). It is judged
   * as a held approval is (`evaluateHeld`): what the request charged is taken out of the totals, so the budgets
   * count it once, as itself. A denial refuses it; so do a tripped freeze breaker and a hold for approval
   * (`replayRefusal`), the hold unless the original was itself granted by an approval.
   */
  private async replay(tx: StoreTx, req: SignRequest, session: Session, originalSeq: number, extra: Record<string, unknown>, approvalId?: string): Promise<TxOutcome> {
    const origin = await tx.auditEntryOrigin(originalSeq);
    const refused = await this.replaySessionRefusal(tx, req, session, originalSeq, origin);
    if (refused) return refused;
    // Decode calls against the registered ABIs as the original was, so the counts land in the same series (and
    // the ancestors' series are named, as the original's charge named them).
    req.input.sessionAncestors = (req.ancestors ?? []).map((a) => a.id);
    enrichFromLayers(this.adapterFor(req.action), await this.layers.load(tx, req.input.agentId, session, req.ancestors), req.input);
    const judged = await this.evaluateHeld(tx, session, req.input, await this.originalCharge(tx, req, origin), await this.originalHeldAt(tx, req, origin, originalSeq, approvalId));
    const refusal = judged.decision === 'deny' ? judged : await this.replayRefusal(tx, req, judged, originalSeq, origin, approvalId);
    if (refusal) {
      const entry = await this.appendReplayEntry(tx, req, originalSeq, 'deny', refusal.violations);
      // A retry loop the loop guard stops is an incident, as for a fresh request.
      if (refusal.violations.some((v) => v.code === 'loop_guard_tripped')) await this.appendLoopGuardAlert(tx, req.auth, req.input.intent.payment?.resource, refusal, entry.seq, req.now);
      return { status: 403, body: denialBody(refusal, entry.seq) };
    }
    const entry = await this.appendReplayEntry(tx, req, originalSeq, 'allow');
    await tx.appendLedger(countWritesFor(req.input), req.now, entry.seq);
    return { release: { auditSeq: originalSeq, replayed: true, extra: { ...extra, replayAuditSeq: entry.seq }, ...(approvalId !== undefined ? { approvalId } : {}) } };
  }

  /**
   * When the original's charge was made, for the windows it counts in: a hold while it is a reserved payment's
   * (its amount counted in every window until the chain settles or expires it, its count where its time is); for a
   * request an approval granted, the grant's time (its holds became ledger entries then, never earlier: found by
   * review, dated at the ask it was counted twice in a window that began between the two); otherwise the original's
   * time (a ledger charge ages out of a window as any does). Never later than the charge: a later time would take
   * it out of a window it is not in.
   */
  private async originalHeldAt(tx: StoreTx, req: SignRequest, origin: AuditEntryOrigin | undefined, originalSeq: number, approvalId: string | undefined): Promise<OwnChargeAt> {
    const { intent } = req.input;
    if (isHeldPayment(intent)) {
      const payment = await tx.getPaymentByNonce(intent.payment!.network, heldToken(intent), intent.from, intent.payment!.nonce);
      if (payment?.state === 'reserved') return { held: true, at: payment.createdAt };
    }
    if (approvalId !== undefined && origin?.decision === 'require_approval') {
      const approval = await tx.getApproval(approvalId);
      if (approval?.state === 'approved' && approval.decidedAt !== undefined && approval.auditSeq === originalSeq) return { held: false, at: approval.decidedAt };
    }
    return { held: false, at: origin?.at ?? req.now };
  }

  /**
   * What the original request charged, as `ledgerWritesFor` wrote it: to the series of the session that made it and
   * of its ancestors (and the agent's and fleet's), not to the replaying session's when another one made it. Only
   * that is taken out of the totals: a session the operator issued that spent 90 of its 100 had its own series
   * reduced by another session's 60 and collected it (found by review).
   */
  private async originalCharge(tx: StoreTx, req: SignRequest, origin: AuditEntryOrigin | undefined): Promise<LedgerWrite[]> {
    if (origin?.sessionId === undefined || origin.sessionId === req.input.sessionId) return ledgerWritesFor(req.input);
    const originSession = await tx.getSession(origin.sessionId);
    const ancestors = originSession ? await readAncestors(tx, originSession).catch(() => []) : [];
    return ledgerWritesFor({ ...req.input, sessionId: origin.sessionId, sessionAncestors: ancestors.map((a) => a.id) });
  }

  /**
   * The refusal of a replay that a tripped breaker binding the agent stops, or that the policy in force would hold
   * for approval (the detectors are not run again: a replay trips nothing). A tripped `freeze` breaker refuses it
   * `breaker_open`, as it refuses a fresh request (found by review: with the agent unfrozen by hand and the breaker
   * left tripped, a replay was released). A replay cannot be held (its spend is charged already), so one a
   * `require_approval` breaker or an approval tier holds is refused, naming what holds it; undefined when nothing does, or when the original request
   * was granted by an approval (`approvalId`) that meets what holds it now, and no breaker holds the agent (the hold
   * it meets is the one a human granted). A quorum the policy now asks, which the grant's votes do not meet (one
   * added or raised since the grant, or any quorum where the admin token granted), holds it as it holds a pending
   * approval (operator-service `policyRecheck`; found by review: the old quorum's grant released it).
   */
  private async replayRefusal(tx: StoreTx, req: SignRequest, decision: Decision, originalSeq: number, origin: AuditEntryOrigin | undefined, approvalId: string | undefined): Promise<Decision | undefined> {
    const tripped = await tx.trippedBreakersFor(req.auth.agent.id);
    const freezing = tripped.filter((b) => b.action === 'freeze');
    if (freezing.length > 0) return { ...decision, decision: 'deny', violations: freezing.map(breakerOpenViolation) };
    const open = tripped.filter((b) => b.action === 'require_approval');
    const approvalHolds = decision.decision === 'require_approval' ? decision.violations.filter((v) => v.code !== 'anomaly_detected') : [];
    if (open.length === 0 && (approvalHolds.length === 0 || (origin?.decision === 'require_approval' && (await this.grantMeetsQuorum(tx, approvalHolds, approvalId))))) return undefined;
    const holds: Violation[] = [...approvalHolds, ...open.map(breakerOpenViolation)];
    const approved = origin?.decision === 'require_approval';
    const why = approved && open.length > 0
      ? `a tripped require_approval breaker holds this agent's requests, the signature recorded at audit entry ${originalSeq} included`
      : approved
        ? `the signature recorded at audit entry ${originalSeq} was approved by fewer votes than the quorum the policy in force now asks`
        : `the signature recorded at audit entry ${originalSeq} was not approved by a human, and the policy in force now holds such a request for approval`;
    return {
      ...decision,
      decision: 'deny',
      violations: [{ rule: holds[0]!.rule, code: 'replay_not_approved', message: `${why}; a replay cannot be held (its spend is charged already), so it is refused` }, ...holds],
    };
  }

  /**
   * Whether the grant of the approval `approvalId` meets every quorum `holds` ask now: its approving votes as they
   * stood when it was granted. Disabling an approver withdraws their votes from pending approvals only: a granted one
   * is charged, and counting only active approvers here stranded its charge with no way to release it (the approval
   * decided, the admin token never meets a quorum; found by review). No quorum asked: met (an operator's grant
   * stands). Unknown approval: not met.
   */
  private async grantMeetsQuorum(tx: StoreTx, holds: readonly Violation[], approvalId: string | undefined): Promise<boolean> {
    const quorum = requiredQuorum(holds);
    if (!quorum) return true;
    const approval = approvalId === undefined ? undefined : await tx.getApproval(approvalId);
    if (approval?.state !== 'approved') return false;
    // A recorded vote carries what the quorum counts (approver, groups when cast, decision); the operator's approval,
    // where the quorum asks for it too, is recorded on the approval's own quorum.
    return quorumMet(withOperatorApproval(quorum, approval.quorum)!, approval.votes ?? []);
  }

  /**
   * Whether `session` may collect the signature of the request recorded at `originalSeq` (`origin`: its entry). A
   * derived session collects only its own requests' and those of sessions derived from it, as it reads approval
   * results (`mayCollectResultOf`): a replay charges nothing, so a sub-agent whose budget is 1 USDC collected its
   * parent's 60 USDC authorization by resending the request its approval showed (found by review). A session the
   * operator issued (no parent) collects any of the agent's, so a renewed session may retry (within its own
   * budgets: `replay` judges it).
   */
  private async replayOriginViolations(tx: StoreTx, session: Session, originalSeq: number, originEntry: AuditEntryOrigin | undefined): Promise<Violation[]> {
    if (session.parentId === undefined) return [];
    const origin = originEntry?.sessionId;
    if (origin === session.id) return [];
    if (origin !== undefined) {
      const originSession = await tx.getSession(origin);
      const below = originSession?.agentId === session.agentId && originSession.parentId !== undefined
        && (await readAncestors(tx, originSession).catch(() => [])).some((a) => a.id === session.id);
      if (below) return [];
    }
    return [{ rule: `session/${session.id}/replay`, code: 'replay_not_allowed', message: `the signature recorded at audit entry ${originalSeq} was requested by another session; a derived session collects only its own requests' signatures and those of sessions derived from it` }];
  }

  /**
   * replayOriginViolations for an answer replayed outside this service (an x402 plan's stored refusal or hold under
   * its Idempotency-Key): empty when the session may collect what the original's sender asked.
   */
  async replayOriginCheck(tx: StoreTx, session: Session, originalSeq: number): Promise<Violation[]> {
    return this.replayOriginViolations(tx, session, originalSeq, await tx.auditEntryOrigin(originalSeq));
  }

  /**
   * A replay's session check (a signature's, a stored hold's or refusal's, a pending approval's of the same
   * authorization): refused, with its `sign.replay` entry, when the sending session is out of the request's
   * scope or not at or above the session that sent the original (replayOriginViolations); undefined otherwise.
   */
  private async replaySessionRefusal(tx: StoreTx, req: SignRequest, session: Session, originalSeq: number, origin?: AuditEntryOrigin): Promise<TxOutcome | undefined> {
    const violations = [
      ...(await this.replayOriginViolations(tx, session, originalSeq, origin ?? (await tx.auditEntryOrigin(originalSeq)))),
      ...sessionScopeViolations(session.scope, session.id, req.input, req.ancestors),
    ];
    if (violations.length === 0) return undefined;
    const decision: Decision = { decision: 'deny', violations, allowedBy: [], policyVersion: `session:${session.id}` };
    const entry = await this.appendReplayEntry(tx, req, originalSeq, 'deny', violations);
    return { status: 403, body: denialBody(decision, entry.seq) };
  }

  private appendReplayEntry(tx: StoreTx, req: SignRequest, originalSeq: number, decision: 'allow' | 'deny' | 'require_approval', violations?: Violation[]) {
    const { auth, action, digest, reqHash, idempotencyKey, input, now } = req;
    return tx.appendAudit({
      at: now, type: 'sign.replay', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action, decision,
      data: {
        originalSeq, digest, requestHash: reqHash, summary: input.intent.summary,
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        ...(violations ? { violations } : {}),
      },
    });
  }

  /**
   * Where an allowed request's spend goes. An EIP-3009 authorization is a payment: its spend is HELD
   * (counted by every window) until the reconciler sees it settled (converted into ledger entries) or
   * expired unused (released). Everything else is charged to the ledger now.
   */
  async reserveSpend(tx: StoreTx, who: { agentId: string; sessionId: string }, input: EvaluationInput, auditSeq: number, now: number, x402Version?: number): Promise<string | undefined> {
    const { intent } = input;
    const payment = intent.payment;
    const spend = intent.spends[0];
    if (!payment || !spend || !isHeldPayment(intent)) {
      await tx.appendLedger(ledgerWritesFor(input), now, auditSeq);
      return undefined;
    }
    const token = heldToken(intent);
    // No shortcut for a nonce seen before: nonce claims turn such a request into a replay or `nonce_reused`
    // before this point, and the store refuses a second payment over one nonce (fail closed).
    const record: PaymentRecord = {
      id: this.deps.randomId('pay'),
      agentId: who.agentId,
      sessionId: who.sessionId,
      auditSeq,
      protocol: 'x402',
      ...(x402Version !== undefined ? { x402Version } : {}),
      network: payment.network,
      asset: token,
      from: intent.from,
      to: payment.payTo,
      value: spend.amount,
      nonce: payment.nonce,
      validAfter: intent.validity?.validAfter ?? 0,
      validBefore: payment.validBefore,
      ...(payment.resource !== undefined ? { resource: payment.resource } : {}),
      ...(payment.origin !== undefined ? { origin: payment.origin } : {}),
      state: 'reserved',
      createdAt: now,
      updatedAt: now,
    };
    await tx.holdPayment(record, ledgerWritesFor(input));
    return record.id;
  }

  /** A runaway loop is an incident: the denial is on the record, and so is an alert an operator can query. */
  private async appendLoopGuardAlert(tx: StoreTx, auth: AgentAuth, resource: string | undefined, decision: Decision, requestSeq: number, now: number): Promise<void> {
    await tx.appendAudit({
      at: now,
      type: 'alert.loop_guard',
      actor: 'system',
      agentId: auth.agent.id,
      sessionId: auth.session.id,
      decision: 'deny',
      data: {
        requestSeq,
        ...(resource !== undefined ? { resource } : {}),
        violations: decision.violations.filter((v) => v.code === 'loop_guard_tripped'),
      },
    });
  }

  /**
   * Records a refusal decided outside `sign` (x402: no requirement was allowed, so nothing was signed),
   * with the loop-guard alert when one tripped. Returns the audit entry's seq and the decision as recorded.
   *
   * `screenAs`: the evaluation input of a request policy refused (x402: one of the refused requirements). The
   * refusal is then screened by the detectors as a refused `sign` request is (circuit-breakers.ts), in this
   * transaction, and what they write (the `agent:<id>|refused` count of refusal_run, a tripped breaker and the
   * agents it freezes, alerts) is written with its audit entry: an agent probing through x402 trips on the same
   * count as through /v1/sign/*. The decision's own detector violations (a dry-run's view) are replaced by the
   * screening's. Nothing is reserved or signed either way.
   */
  async recordRefusal(auth: AgentAuth, type: string, refused: Decision, data: Record<string, unknown>, resource?: string, evaluated: readonly Decision[] = [], screenAs?: EvaluationInput): Promise<{ auditSeq: number; decision: Decision }> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      let decision = refused;
      let screening: Screening | undefined;
      if (screenAs) ({ decision, screening } = await this.screenRefusal(tx, auth, { ...screenAs, nowMs: now }, refused));
      const entry = await tx.appendAudit({ at: now, type, actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, decision: 'deny', data: { ...data, violations: decision.violations, policyVersion: decision.policyVersion } });
      if (decision.violations.some((v) => v.code === 'loop_guard_tripped')) await this.appendLoopGuardAlert(tx, auth, resource, decision, entry.seq, now);
      if (screening) await this.breakers.record(tx, screening, entry.seq, auth.session.id);
      // The refusal sums up the evaluations of each requirement: so does what the candidates said about them.
      await this.shadows.recordAcross(tx, evaluated, decision, { seq: entry.seq, agentId: auth.agent.id, at: now, action: type });
      return { auditSeq: entry.seq, decision };
    }, { affinity: auth.agent.id });
  }

  /**
   * The detectors on a refusal decided outside `sign` (`recordRefusal`): the agent read in `tx` (PostgreSQL: its
   * lock, under which its refusal count is exact), the layers loaded as `evaluateScreened` loads them, and the
   * detector violations of `refused` left to the screening (which names each open or tripped breaker once).
   */
  private async screenRefusal(tx: StoreTx, auth: AgentAuth, input: EvaluationInput, refused: Decision): Promise<{ decision: Decision; screening?: Screening }> {
    const agent = (await tx.getAgent(auth.agent.id)) ?? auth.agent;
    const { layers } = await this.layersFor(tx, auth.session, input);
    const policyOnly: Decision = { ...refused, decision: 'deny', violations: refused.violations.filter((v) => !DETECTOR_CODES.has(v.code)) };
    const screening = await this.breakers.screen(tx, layers, input, agent, policyOnly);
    if (!screening) return { decision: refused };
    return { decision: screening.decision, screening };
  }

  /** The longest validity any validity_window rule of the agent's layers allows (the x402 builder clamps to it). */
  async maxValiditySeconds(auth: AgentAuth): Promise<number | undefined> {
    const layers = await this.deps.store.transaction((tx) => this.layers.load(tx, auth.agent.id, auth.session));
    let max: number | undefined;
    for (const { policy } of layers) {
      for (const rule of policy.rules) {
        if (rule.maxValiditySeconds !== undefined) max = max === undefined ? rule.maxValiditySeconds : Math.min(max, rule.maxValiditySeconds);
      }
    }
    return max;
  }

  /** Evaluates without reserving or signing. Same decode and policy as `sign`. */
  async dryRun(auth: AgentAuth, action: string, payload: unknown, context: SignContext = {}): Promise<DryRunOutcome> {
    return (await this.dryRunWithInput(auth, action, payload, context)).outcome;
  }

  /**
   * `dryRun`, with the evaluation input it judged (x402: a refused requirement's, which `recordRefusal` screens).
   * Writes nothing.
   */
  async dryRunWithInput(auth: AgentAuth, action: string, payload: unknown, context: SignContext = {}): Promise<{ outcome: DryRunOutcome; input: EvaluationInput }> {
    assertAuditIntact(this.deps.auditIntegrity);
    const now = this.deps.clock.now();
    const adapter = this.adapterFor(action);
    const signer = await this.signerFor(adapter, auth.agent);
    const otherSigner = namedOtherSigner(adapter, action, payload, signer);
    if (otherSigner !== undefined) await this.refuseEarlierKey(auth, otherSigner);
    const decoded = adapter.decode(action as Action, payload, signer);
    attachPaymentContext(decoded.intent, context);
    const input: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
    const digest = bytesToHex(decoded.digest);
    const { decision, evaluated } = await this.deps.store.transaction(async (tx) => {
      // What the detectors would do, without tripping anything: screening writes nothing, only `record` does.
      const { decision: evaluated } = await this.evaluateScreened(tx, auth.session, input, auth.agent);
      const keys = decoded.intent.nonceKeys ?? [];
      const conflicting = keys.length > 0 ? (await tx.getNonceClaims(keys)).find((c) => c.digest !== digest && !claimLapsed(c, digest, now)) : undefined;
      if (!conflicting) return { decision: evaluated, evaluated };
      // Signing would be refused with the `nonce_reused` error: the dry-run names it as a violation.
      const violation: Violation = { rule: 'ledger/nonces', code: 'nonce_reused', message: `the nonce is already claimed by the signature recorded at audit entry ${conflicting.auditSeq}` };
      return { decision: { ...evaluated, decision: 'deny' as const, violations: [...(evaluated.decision === 'deny' ? evaluated.violations : []), violation] }, evaluated };
    });
    // What the candidates said about the policy decision (a nonce conflict is no policy's doing).
    const shadow = this.shadows.comparisonsOf(evaluated);
    return { outcome: { decision, intent: intentToJson(decoded.intent), digest, ...(shadow.length ? { shadow: [...shadow] } : {}) }, input };
  }

  /**
   * Policy against the layers and ledger totals as they are inside `tx` (the same code for sign and dry-run).
   *
   * Policy alone: no circuit breaker is consulted. An agent's request (signature, NIP-44/NIP-04, Lightning, and
   * their dry-runs) is judged by `evaluateScreened`, never by this: a tripped breaker must refuse or hold it.
   *
   * A derived session is judged by its own scope and each ancestor's (their budgets on their own session
   * series), and `input` names the ancestors so that what it charges is charged to each of them too.
   * Staged candidate policies (shadow-evaluation.ts) are evaluated here too, against the same totals (their
   * extra windows are read in the same call): what they say is kept for `recordShadow`, and never changes
   * the decision returned.
   */
  async evaluateIn(tx: StoreTx, session: Session, input: EvaluationInput, charging?: string[]): Promise<Decision> {
    return (await this.evaluateWithLayers(tx, session, input, charging)).decision;
  }

  /**
   * `evaluateIn`, then the detectors on what policy decided (circuit-breakers.ts): a tripped breaker refuses or
   * holds this very request. The caller appends the decision's entry, then `breakers.record(screening)`. Public for
   * the sibling services (Lightning) that decide inside their own transaction.
   */
  async evaluateScreened(tx: StoreTx, session: Session, input: EvaluationInput, agent: Agent, charging?: string[]): Promise<{ decision: Decision; screening?: Screening }> {
    const evaluated = await this.evaluateWithLayers(tx, session, input, charging);
    const screening = await this.breakers.screen(tx, evaluated.layers, input, agent, evaluated.decision);
    if (!screening) return { decision: evaluated.decision };
    this.shadows.carry(evaluated.decision, screening.decision);
    return { decision: screening.decision, screening };
  }

  /**
   * `evaluateIn` for a request whose own reservation is already in the ledger (a pending approval, judged again
   * under the policy in force when it is granted): `held`, what it holds, is taken out of the totals, so the
   * budgets count the request once, as itself. The detectors are not run (nothing is recorded for a grant).
   */
  async evaluateHeld(tx: StoreTx, session: Session, input: EvaluationInput, held: readonly LedgerWrite[], heldAt: OwnChargeAt): Promise<Decision> {
    return (await this.evaluateWithLayers(tx, session, input, undefined, { writes: held, at: heldAt })).decision;
  }

  /**
   * Decodes a held request again as `sign` did: its adapter, the agent's signer now (a threshold binding read in
   * `tx`). An error of the decoding itself is answered as `undecodable`; anything else (no adapter, the key
   * backend) is thrown.
   */
  async decodeHeld(tx: StoreTx, agent: Agent, action: string, payload: unknown): Promise<{ decoded: DecodedRequest } | { undecodable: AirlockError }> {
    const adapter = this.adapterFor(action);
    const binding = THRESHOLD_NAMESPACES.has(adapter.namespace) ? await tx.getThresholdBinding(agent.id, adapter.namespace) : undefined;
    const signer = binding ? { address: binding.groupKey } : await this.keySigner(adapter, agent);
    try {
      return { decoded: adapter.decode(action as Action, payload, signer) };
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      return { undecodable: e };
    }
  }

  /**
   * The policy layers that judge `input` in `tx`: the agent's, the session's and each ancestor session's. Names
   * the ancestors in `input`, so that what it charges is charged to each of them too.
   */
  private async layersFor(tx: StoreTx, session: Session, input: EvaluationInput): Promise<{ layers: PolicyLayer[]; ancestorIds: string[] }> {
    const ancestors = await readAncestors(tx, session);
    const ancestorIds = ancestors.map((a) => a.id);
    input.sessionAncestors = ancestorIds;
    return { layers: await this.layers.load(tx, input.agentId, session, ancestors), ancestorIds };
  }

  /** `evaluateIn`, with the layers it loaded (the detectors are in them). `held`: taken out of the totals (`evaluateHeld`). */
  private async evaluateWithLayers(tx: StoreTx, session: Session, input: EvaluationInput, charging?: string[], held?: { writes: readonly LedgerWrite[]; at: OwnChargeAt }): Promise<{ decision: Decision; layers: PolicyLayer[] }> {
    const { layers, ancestorIds } = await this.layersFor(tx, session, input);
    const candidates = await this.shadows.candidatesFor(tx, input.agentId);
    const shadow = candidates.length ? this.shadows.begin(candidates, layers, input) : undefined;
    const adapter = this.adapterFor(input.intent.action);
    const undecodable = enrichFromLayers(adapter, layers, input);
    if (undecodable && !shadow) return { decision: undecodable, layers };
    const queries = undecodable ? [] : requiredWindows(layers, input);
    const all = shadow ? [...queries, ...shadow.windows(adapter, queries)] : queries;
    // Locked with the reads (PostgreSQL): the ancestors' series are charged too.
    const locking = charging && !undecodable ? [...charging, ...ancestorIds.map(seriesFor.session)] : undefined;
    const read = all.length ? await tx.windowTotals(all, locking ? { charging: locking } : {}) : [];
    const totals = held?.writes.length ? withoutHeld(all, read, held.writes, held.at) : read;
    const ledger = ledgerViewFrom(all, totals);
    const decision = undecodable ?? evaluatePolicy(layers, input, ledger);
    shadow?.finish(decision, ledger);
    return { decision, layers };
  }

  /** Records what the staged candidates said about `decision` with its request's audit entry (sibling services). */
  recordShadow(tx: StoreTx, decision: Decision, entry: { seq: number; agentId: string; at: number; action?: string }, summary?: string): Promise<void> {
    return this.shadows.record(tx, decision, entry, summary);
  }

  /**
   * Signs a decoded request whose reservation is committed (an approval, its decision charged at `auditSeq`),
   * verifies, and returns the result. A nonce replay of the same request may already have released its signature
   * (released-signatures.ts): that is the one returned. `approvalId`: the approval, which a key process checks
   * before it signs (KeyBackend.signBound).
   */
  async signCommitted(agent: Agent, action: string, payload: unknown, auditSeq: number, expectedDigest?: string, approvalId?: string): Promise<{ adapter: ChainAdapter; decoded: DecodedRequest; result: SignResult }> {
    assertAuditIntact(this.deps.auditIntegrity); // approvals sign here, not through sign()
    const adapter = this.adapterFor(action);
    const { signer, threshold } = await this.resolveSigner(adapter, agent);
    const decoded = adapter.decode(action as Action, payload, signer);
    if (expectedDigest !== undefined && bytesToHex(decoded.digest) !== expectedDigest) {
      throw new AirlockError('signature_check_failed', 'The stored request no longer decodes to the approved digest.');
    }
    const binding = approvalId !== undefined ? { auditSeq, approvalId, payload } : undefined;
    const sign = threshold
      ? () => this.thresholdSignatures(threshold, action, payload, decoded, auditSeq)
      : () => this.produceSignatures(adapter, action, agent, decoded, binding);
    const signatures = await releasedSignatures(this.deps, { auditSeq, digest: decoded.digest, replayed: true }, sign, threshold ? false : this.deps.keys.deterministic);
    const result = adapter.finalize(action as Action, decoded, signatures[0]!, signer, signatures);
    return { adapter, decoded, result };
  }

  /**
   * Who signs for `agent` through `adapter`: the agent record's address (eip155), or the address of the key the
   * adapter's path names, read once from the key backend (a Nostr x-only pubkey) and kept: a path's key never changes.
   */
  async signerFor(adapter: ChainAdapter, agent: Agent): Promise<SignerContext> {
    return (await this.resolveSigner(adapter, agent)).signer;
  }

  /**
   * `signerFor`, with the agent's threshold binding when a cluster holds its key for this adapter: the group key
   * signs then (ports/threshold-keys.ts). Read for each request of such an adapter (one keyed read; Nostr only),
   * not cached: an operator binds or unbinds on any instance, and the next request follows.
   */
  private async resolveSigner(adapter: ChainAdapter, agent: Agent): Promise<{ signer: SignerContext; threshold?: ThresholdBinding }> {
    if (THRESHOLD_NAMESPACES.has(adapter.namespace)) {
      const binding = await this.deps.store.getThresholdBinding(agent.id, adapter.namespace);
      if (binding) return { signer: { address: binding.groupKey }, threshold: binding };
    }
    return { signer: await this.keySigner(adapter, agent) };
  }

  /** The signer whose key the key backend holds. */
  private async keySigner(adapter: ChainAdapter, agent: Agent): Promise<SignerContext> {
    if (adapter.signerKeyPaths) return this.accountSigner(adapter, agent);
    if (adapter.signerIsAgentAddress) return { address: agent.address };
    const path = adapter.derivationPath(agent.accountIndex, agent.keyIndex);
    const key = `${adapter.namespace}|${path}`;
    let address = this.derivedSigners.get(key);
    if (address === undefined) {
      address = adapter.addressFromPublicKey(await this.deps.keys.getPublicKey(path));
      this.derivedSigners.set(key, address);
    }
    return { address };
  }

  /**
   * `address` was named as the signer of a request of `auth` (a transaction's `from`, a permit's `owner`, a
   * JSON-RPC address parameter) and is not the key the request would be signed with. An earlier key of the same
   * agent is refused `key_rotated` (rule agent_keys/rotated). The agent's current key as the store has it means
   * this instance authenticated the session before a rotation elsewhere: refused `conflict` and the cached
   * credential dropped, so the agent's next request is checked against the new key. Any other address returns:
   * the caller's own refusal applies. Cold path only (a mismatch): one or two store reads. `audit`: append the
   * refusal as `sign.request` (callers whose refusals are not audited otherwise: JSON-RPC).
   */
  async refuseEarlierKey(auth: AgentAuth, address: string, audit?: { action: string; payload: unknown }): Promise<void> {
    const key = await this.deps.store.findAgentKey(address);
    if (!key || key.agentId !== auth.agent.id) return;
    const current = await this.deps.store.getAgent(auth.agent.id);
    if (!current) return;
    let error: AirlockError;
    if (key.keyIndex === current.keyIndex) {
      this.credentials.forgetSession(auth.session.id);
      error = new AirlockError('conflict', "The agent's key changed while this request was in flight; send it again.");
    } else {
      error = new AirlockError('key_rotated', `Refused by agent_keys/rotated: ${key.address} is this agent's key ${key.keyIndex}, rotated since; the agent signs with ${current.address} (key ${current.keyIndex}) now.`, {
        hints: ["Read the agent's address again (GET /v1/session, or recreate the SDK account) and build the request for it."],
        details: { rule: 'agent_keys/rotated', address: key.address, keyIndex: key.keyIndex, state: key.state, currentAddress: current.address, currentKeyIndex: current.keyIndex },
      });
    }
    if (audit) await this.auditRefusal(auth, audit.action, requestHash(audit.action, audit.payload, canonicalJson), error, this.deps.clock.now());
    throw error;
  }

  /** The signer context of `agent` for the adapter of `namespace` (the Bitcoin account routes read its extended keys). */
  async signerOf(namespace: string, agent: Agent): Promise<SignerContext> {
    const adapter = this.deps.adapters.get(namespace);
    if (!adapter) throw new AirlockError('unsupported_action', `No ${namespace} adapter is configured.`);
    return this.signerFor(adapter, agent);
  }

  /**
   * An adapter that derives the agent's keys itself (Bitcoin: every input and change output has its own key
   * under the agent's account) gets the account's extended public keys and the master fingerprint, read once
   * from the key backend and kept (a path's key never changes).
   */
  private async accountSigner(adapter: ChainAdapter, agent: Agent): Promise<SignerContext> {
    const cacheKey = `${adapter.namespace}|account|${agent.accountIndex}`;
    const cached = this.accountSigners.get(cacheKey);
    if (cached) return cached;
    const paths = adapter.signerKeyPaths!(agent.accountIndex);
    const extendedKeys: Record<string, ExtendedPublicKey> = {};
    for (const path of paths) extendedKeys[path] = await this.deps.keys.getExtendedPublicKey(path);
    const master = await this.deps.keys.getExtendedPublicKey('m');
    const signer: SignerContext = {
      address: adapter.addressFromPublicKey(extendedKeys[paths[0]!]!.publicKey),
      extendedKeys,
      masterFingerprint: bip32Fingerprint(master.publicKey),
    };
    this.accountSigners.set(cacheKey, signer);
    return signer;
  }

  /**
   * Every signature a decoded request needs: one per task (a PSBT's inputs, each at its own path), or the one
   * signature over `digest` with the agent's key. In task order; `finalize` gets the first and the list.
   * A backend that takes bound requests (a key process) gets the committed entry and the request instead of
   * digests, and decodes and signs them itself.
   */
  private async produceSignatures(adapter: ChainAdapter, action: string, agent: Agent, decoded: DecodedRequest, binding?: SignBinding): Promise<ProducedSignature[]> {
    if (binding && this.deps.keys.signBound) return this.deps.keys.signBound({ ...binding, agentId: agent.id, action });
    if (!decoded.tasks) return [await this.produceSignature(adapter, action, adapter.derivationPath(agent.accountIndex, agent.keyIndex), decoded.digest)];
    const out: ProducedSignature[] = [];
    for (const task of decoded.tasks) {
      if (task.scheme === 'taproot-key-path') out.push({ schnorr: await this.deps.keys.signTaprootKeyPath(task.path, task.digest) });
      else if (task.scheme === 'schnorr-secp256k1') out.push({ schnorr: await this.deps.keys.signSchnorr(task.path, task.digest) });
      else out.push(await this.deps.keys.signDigest(task.path, task.digest, 'ecdsa-secp256k1'));
    }
    return out;
  }

  /**
   * The signature of a committed decision of an agent whose key a threshold cluster holds: the cluster's
   * coordinator (ThresholdSigner) in place of the key backend, after commit like any signature.
   */
  private async thresholdSignatures(binding: ThresholdBinding, action: string, payload: unknown, decoded: DecodedRequest, auditSeq: number): Promise<ProducedSignature[]> {
    if (!this.deps.threshold) throw new AirlockError('frost_threshold_not_met', "The agent's key is held by a threshold cluster and this daemon has no coordinator for it; nothing was signed.");
    return [await this.deps.threshold.sign({ binding, action, payload, digest: decoded.digest, auditSeq })];
  }

  /** The key backend signs with the scheme the adapter names for this action (ECDSA unless it says otherwise). */
  private async produceSignature(adapter: ChainAdapter, action: string, path: string, digest: Uint8Array): Promise<ProducedSignature> {
    if (adapter.signatureScheme?.(action as Action) === 'schnorr-secp256k1') return { schnorr: await this.deps.keys.signSchnorr(path, digest) };
    return this.deps.keys.signDigest(path, digest, 'ecdsa-secp256k1');
  }

  /**
   * A request under policy that produces no signature (NIP-44 encryption): decode -> (transaction: re-check
   * credentials, evaluate, append the audit entry, charge the request counts) -> commit. The caller acts only
   * once this returns. A denial throws `policy_denied` with the violations; so does a tier asking for a human
   * (these operations are not held for approval). The circuit breakers screen it as they screen a signature: a
   * freeze refuses it (`policy_denied`, `breaker_open`), a require_approval breaker too, with `breaker_holds_agent`
   * naming the breaker. The audit entry is `auditType` and carries the intent only.
   */
  async authorize(auth: AgentAuth, action: string, payload: unknown, auditType: string): Promise<{ auditSeq: number; decoded: DecodedRequest; signer: SignerContext; path: string }> {
    assertAuditIntact(this.deps.auditIntegrity);
    const now = this.deps.clock.now();
    const adapter = this.adapterFor(action);
    const { signer, threshold } = await this.resolveSigner(adapter, auth.agent);
    // NIP-44/NIP-04 need an ECDH with the agent's private key; a threshold cluster holds it in shares and does no ECDH.
    if (threshold) throw new AirlockError('unsupported_action', "The agent's Nostr key is a threshold key (a FROST cluster holds it in shares): NIP-44 and NIP-04 need the whole key for ECDH and are not available for it.");
    const decoded = adapter.decode(action as Action, payload, signer);
    const input: EvaluationInput = { intent: decoded.intent, agentId: auth.agent.id, sessionId: auth.session.id, nowMs: now };
    const digest = bytesToHex(decoded.digest);
    const outcome = await this.deps.store.transaction(async (tx): Promise<{ refused: AirlockError } | { decision: Decision; auditSeq: number; heldBy?: { rule: string; breakerId?: string } }> => {
      const fresh = await this.recheck(tx, auth, now, input);
      if (fresh.error) {
        this.credentials.forgetSession(auth.session.id);
        await this.appendErrorEntry(tx, auth, action, digest, fresh.error, now);
        return { refused: fresh.error };
      }
      const writes = ledgerWritesFor(input);
      // Policy, then the circuit breakers, as for a signature: a tripped breaker refuses this request too.
      const { decision, screening } = await this.evaluateScreened(tx, fresh.session!, input, auth.agent, writes.map((w) => w.series));
      const allowed = decision.decision === 'allow';
      const entry = await tx.appendAudit({
        at: now, type: auditType, actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id, action, decision: allowed ? 'allow' : 'deny',
        data: { intent: intentToJson(decoded.intent), violations: decision.violations, allowedBy: decision.allowedBy, policyVersion: decision.policyVersion, digest },
      });
      // What would be held is refused here (not held, not charged): its trips and alerts are recorded, the
      // detectors' series (refusals, hours) count nothing of it.
      if (screening) await this.breakers.record(tx, decision.decision === 'require_approval' ? { ...screening, records: {} } : screening, entry.seq, auth.session.id);
      await this.shadows.record(tx, decision, { seq: entry.seq, agentId: auth.agent.id, at: now, action }, decoded.intent.summary);
      if (allowed) await tx.appendLedger(writes, now, entry.seq);
      const hold = decision.decision === 'require_approval' ? decision.violations.find((v) => v.code === 'breaker_open' || v.code === 'breaker_tripped') : undefined;
      if (!hold) return { decision, auditSeq: entry.seq };
      // The breaker that holds the agent: open before this request, or tripped by it just now (`record`).
      const breaker = screening?.open.find((b) => b.detector === hold.rule && b.action === 'require_approval')
        ?? (await tx.trippedBreakersFor(auth.agent.id)).find((b) => b.detector === hold.rule && b.action === 'require_approval');
      return { decision, auditSeq: entry.seq, heldBy: { rule: hold.rule, ...(breaker ? { breakerId: breaker.id } : {}) } };
    }, { affinity: auth.agent.id });
    if ('refused' in outcome) throw outcome.refused;
    const { decision, auditSeq, heldBy } = outcome;
    if (heldBy) {
      // A breaker holds the agent's requests for a human, and this operation cannot wait for one: refused, naming it.
      const named = heldBy.breakerId ? `breaker ${heldBy.breakerId}` : 'its breaker';
      throw new AirlockError('breaker_holds_agent', `Refused by ${heldBy.rule}: ${named} holds this agent's requests for approval, and ${action} cannot be held for one; refused until an operator resets the breaker.`, {
        violations: decision.violations,
        hints: [heldBy.breakerId ? `An operator resets it with POST /v1/breakers/${heldBy.breakerId}/reset (airlock breaker reset ${heldBy.breakerId}).` : 'An operator lists the tripped breakers with GET /v1/breakers and resets one with POST /v1/breakers/{id}/reset.'],
        details: { rule: heldBy.rule, ...(heldBy.breakerId ? { breakerId: heldBy.breakerId } : {}), auditSeq, policyVersion: decision.policyVersion },
      });
    }
    if (decision.decision !== 'allow') {
      const first = decision.violations[0];
      throw new AirlockError('policy_denied', first ? `Denied by ${first.rule}: ${first.message}` : 'Denied by policy.', { violations: decision.violations, details: { auditSeq, policyVersion: decision.policyVersion } });
    }
    return { auditSeq, decoded, signer, path: adapter.derivationPath(auth.agent.accountIndex, auth.agent.keyIndex) };
  }

  private async release(auth: AgentAuth, action: string, adapter: ChainAdapter, signer: SignerContext, decoded: DecodedRequest, auditSeq: number, replayed: boolean, decision?: Decision, extra: Record<string, unknown> = {}, binding?: SignBinding, threshold?: ThresholdBinding): Promise<SignOutcome> {
    let result: SignResult;
    try {
      // A replay returns the bytes charged at `auditSeq` (kept when the key backend, or the cluster, is not deterministic).
      const sign = threshold
        ? () => this.thresholdSignatures(threshold, action, binding?.payload, decoded, binding?.auditSeq ?? auditSeq)
        : () => this.produceSignatures(adapter, action, auth.agent, decoded, binding);
      const signatures = await releasedSignatures(this.deps, { auditSeq, digest: decoded.digest, replayed }, sign, threshold ? false : this.deps.keys.deterministic);
      // Finalised from the one decode made before the transaction: no second decode, no re-serialisation.
      result = adapter.finalize(action as Action, decoded, signatures[0]!, signer, signatures);
    } catch (e) {
      // The reservation stays (conservative: budget counted, nothing signed); the failure is audited, with the
      // rules that refused when a threshold cluster's nodes did (their names and codes, never a node's credential).
      const now = this.deps.clock.now();
      const violations = isAirlockError(e) && e.violations?.length ? { violations: e.violations } : {};
      await this.deps.store.transaction((tx) =>
        tx.appendAudit({ at: now, type: 'sign.failed', actor: 'system', agentId: auth.agent.id, sessionId: auth.session.id, action, decision: 'error', data: { auditSeq, errorCode: isAirlockError(e) ? e.code : 'internal', ...violations } }),
      );
      if (isAirlockError(e)) throw e;
      throw new AirlockError('internal', 'Signing failed; nothing was returned.', { cause: e });
    }
    return {
      status: 200,
      body: {
        decision: 'allow',
        ...result,
        auditSeq,
        ...extra,
        // Where the entry sits in the audit tree (a replay: the original's entry, read back).
        receipt: extra.receipt ?? (await receiptForSeq(this.deps.store, auditSeq)),
        ...(decision ? { policyVersion: decision.policyVersion, allowedBy: decision.allowedBy } : {}),
        intent: intentToJson(decoded.intent),
        ...(replayed ? { replayed: true } : {}),
      },
    };
  }

  private adapterFor(action: string): ChainAdapter {
    if (!(ACTIONS as readonly string[]).includes(action)) throw new AirlockError('unsupported_action', 'Unknown action.');
    const namespace = action.startsWith('evm.') ? 'eip155' : action.split('.')[0]!;
    const adapter = this.deps.adapters.get(namespace);
    if (!adapter || !adapter.actions.includes(action as Action)) throw new AirlockError('unsupported_action', 'No adapter for this action.');
    return adapter;
  }

  /**
   * Credentials are read inside the transaction, once: a freeze or revoke wins over an in-flight request, and
   * over a credential the signing routes took from their cache. A derived session is usable only while each of its
   * ancestors is (read here too). Given the request's evaluation `input`, names those ancestors in it: its charges go
   * to each of them.
   */
  async recheck(tx: StoreTx, auth: AgentAuth, now: number, input?: EvaluationInput): Promise<{ session?: Session; ancestors?: Session[]; error?: AirlockError }> {
    const [agent, session] = await Promise.all([tx.getAgent(auth.agent.id), tx.getSession(auth.session.id)]);
    if (!agent || !session) return { error: new AirlockError('unauthenticated', 'Unknown session token.') };
    // The request was decoded for the key it authenticated with; a key that changed since must not sign it.
    if (agent.address !== auth.agent.address || agent.accountIndex !== auth.agent.accountIndex || agent.keyIndex !== auth.agent.keyIndex) {
      return { error: new AirlockError('conflict', "The agent's key changed while this request was in flight; send it again.") };
    }
    let ancestors: Session[];
    try {
      checkUsable(agent, session, now);
      ancestors = await readAncestors(tx, session);
      checkAncestorsUsable(ancestors, now);
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      return { error: e };
    }
    if (input) input.sessionAncestors = ancestors.map((a) => a.id);
    return { session, ancestors };
  }

  /**
   * Records a request refused before its signing transaction (bad input that reached the signer). The credential
   * is read again first: one cached by the signing routes may have been revoked or frozen on another instance, and
   * a request that never reached the signing transaction's re-read never found out (found by review: a revoked
   * child's undecodable requests kept being served from the cache, recorded under the decode error and drawing its
   * live parent's rate tokens). Such a credential's refusal is recorded and thrown instead, and the cache forgets it.
   */
  async auditRefusal(auth: AgentAuth, action: string, reqHash: string, e: unknown, now: number): Promise<void> {
    if (!isAirlockError(e)) return;
    const dead = await this.deps.store.transaction(async (tx) => {
      const fresh = await this.recheck(tx, auth, now);
      const refusal = fresh.error && CREDENTIAL_REFUSAL_CODES.has(fresh.error.code) ? fresh.error : undefined;
      await this.appendErrorEntry(tx, auth, action, reqHash, refusal ?? e, now);
      return refusal;
    });
    if (dead) {
      this.credentials.forgetSession(auth.session.id);
      throw dead;
    }
  }

  appendErrorEntry(tx: StoreTx, auth: AgentAuth, action: string, reqHash: string, e: AirlockError, now: number, extra: Record<string, unknown> = {}) {
    return tx.appendAudit({
      at: now,
      type: 'sign.request',
      actor: 'agent',
      agentId: auth.agent.id,
      sessionId: auth.session.id,
      action,
      decision: 'error',
      data: { errorCode: e.code as ErrorCode, message: e.message, requestHash: reqHash, ...extra },
    });
  }
}

/** The violations a detector or breaker adds (circuit-breakers.ts `screen`), as opposed to policy's. */
const DETECTOR_CODES: ReadonlySet<string> = new Set(['breaker_open', 'breaker_tripped', 'anomaly_detected']);

/**
 * When a request's own charge was made, judged again (a grant, a replay): `held` while it is a hold (a pending
 * approval's, a reserved payment's), made at `at`; otherwise a ledger charge made at `at`.
 */
export interface OwnChargeAt {
  held: boolean;
  at: number;
}

/**
 * Window totals less a request's own charge, judged again, taken out only where the stores count it: a hold's amount
 * counts in every window while held, whatever its age, so it is taken out of each window of its series and asset;
 * its count, and all of a ledger charge, only out of the windows its time is in. Never below zero.
 */
function withoutHeld(queries: readonly WindowQuery[], totals: readonly WindowTotal[], held: readonly LedgerWrite[], heldAt: OwnChargeAt): WindowTotal[] {
  const byKey = new Map(held.map((w) => [`${w.series}\u0000${w.asset}`, w]));
  return queries.map((q, i) => {
    const total = totals[i] ?? { amount: 0n, count: 0 };
    const own = byKey.get(`${q.series}\u0000${q.asset}`);
    // Only where the held charge is counted: its own series, and a window it has not aged out of (found by review:
    // taken out of a window it had left, or of another session's series it never reached, it made room it never
    // took). A hold's amount counts in every window whatever its age, so it is taken out of each (found by review:
    // aged past the window, it was counted twice and refused its own grant); its count ages out as a request does.
    if (!own) return total;
    const inWindow = heldAt.at >= q.sinceMs;
    const amount = heldAt.held || inWindow ? total.amount - own.amount : total.amount;
    const count = inWindow ? total.count - own.count : total.count;
    return { amount: amount > 0n ? amount : 0n, count: count > 0 ? count : 0 };
  });
}

/** The first address the payload names as its signer that is not `signer`'s, if any (ChainAdapter.namedSigners). */
function namedOtherSigner(adapter: ChainAdapter, action: string, payload: unknown, signer: SignerContext): string | undefined {
  const named = adapter.namedSigners?.(action as Action, payload);
  if (!named) return undefined;
  const own = signer.address.toLowerCase();
  return named.find((address) => address !== own);
}

/**
 * EIP-3009 authorizations are payments whose spend is held until the chain settles or expires them
 * (a single spend: the authorized transfer). Everything else is charged to the ledger when signed.
 *
 * Not an authorization over a domain without a chainId (`allow_chainless_domains`): it is valid on every chain whose
 * token has such a domain, and the reconciler asks one chain, the request's, whether its nonce was used. The payee
 * submitting it on another chain, that one said "unused" and the hold was released as expired, the budget handed
 * back for value that moved (found by review). It is charged when signed, for good, as Permit2 is.
 */
export function isHeldPayment(intent: Intent): boolean {
  return intent.payment !== undefined && intent.spends.length === 1
    && (intent.kind === 'eip3009.transfer_with_authorization' || intent.kind === 'eip3009.receive_with_authorization')
    && intent.typedData?.domain.chainId !== undefined;
}

/** The token contract of a held payment (its single spend's CAIP-19 asset). */
function heldToken(intent: Intent): string {
  const asset = intent.spends[0]!.asset;
  return asset.slice(asset.indexOf('/erc20:') + '/erc20:'.length);
}

/** The claims a signature makes on the nonces its intent consumes. */
function nonceClaims(req: SignRequest, auditSeq: number, state: NonceClaim['state'], approvalId?: string): NonceClaim[] {
  const validBefore = req.input.intent.validity?.validBefore;
  return (req.input.intent.nonceKeys ?? []).map((key) => ({
    key, agentId: req.auth.agent.id, digest: req.digest, auditSeq, state,
    ...(approvalId !== undefined ? { approvalId } : {}), ...(validBefore !== undefined ? { validBefore } : {}), createdAt: req.now,
  }));
}

/**
 * Sequential nonces (EIP-2612 `nonces(owner)`, Permit2 allowance nonces) advance only when a permit is used:
 * a permit signed and never submitted leaves the next one no other nonce. Once its deadline has passed it can
 * never be used, so its claim lapses. Random nonces (EIP-3009, Permit2 transfers) never need reusing: theirs
 * never lapse. A pending approval's claim never lapses here (the approval decides it).
 */
function claimLapsed(claim: NonceClaim, digest: string, nowMs: number): boolean {
  const sequential = claim.key.startsWith('eip2612|') || claim.key.startsWith('permit2-allowance|');
  return sequential && claim.state === 'signed' && claim.digest !== digest && claim.validBefore !== undefined && claim.validBefore * 1000 < nowMs;
}

/**
 * Whether a stored allow was signed by the key that would sign its retry. Records written before they named their
 * signer were all signed with key index 0 (there was no rotation): EVM ones match only while the agent is on it.
 */
function signedBySameKey(body: Record<string, unknown>, req: SignRequest): boolean {
  if (typeof body.signer === 'string') return body.signer === req.signer;
  return !req.action.startsWith('evm.') || req.auth.agent.keyIndex === 0;
}

/** The paymentId a stored allow body carries, to hand back on release and replay. */
/** `{paymentId}` of the payment a held-payment intent (an EIP-3009 authorization) reserved, for its replay's answer; `{}` otherwise. */
async function heldPaymentExtra(tx: StoreTx, intent: Intent): Promise<Record<string, unknown>> {
  if (!isHeldPayment(intent)) return {};
  const payment = await tx.getPaymentByNonce(intent.payment!.network, heldToken(intent), intent.from, intent.payment!.nonce);
  return payment ? { paymentId: payment.id } : {};
}

function paymentExtra(body: Record<string, unknown>): Record<string, unknown> {
  return typeof body.paymentId === 'string' ? { paymentId: body.paymentId } : {};
}

/**
 * Fills the payment's resource and origin from the request context. Without a resource, rules that
 * require one do not match (fail closed). A resource on a request that is not a payment is refused:
 * the caller believes it is paying and it is not.
 */
export function attachPaymentContext(intent: Intent, context: SignContext): void {
  const url = context.x402?.resource;
  if (url === undefined) return;
  const normalised = normaliseResource(url);
  if (!normalised) throw new AirlockError('invalid_request', 'x402.resource must be an absolute http(s) URL without credentials.');
  if (!intent.payment) throw new AirlockError('invalid_request', 'x402.resource was given but the typed data is not an x402 payment authorization.');
  intent.payment.resource = normalised.resource;
  intent.payment.origin = normalised.origin;
}

function isUsable(agent: Agent, session: Session, now: number): boolean {
  return session.revokedAt === undefined && session.expiresAt > now && agent.status === 'active';
}

/** The codes checkUsable refuses a dead credential with: whatever the request asked, it gets one of these. */
export const CREDENTIAL_REFUSAL_CODES: ReadonlySet<string> = new Set(['session_revoked', 'session_expired', 'agent_frozen', 'agent_retired']);

/** Throws why the credential can no longer be used (one of CREDENTIAL_REFUSAL_CODES), if it cannot. */
export function checkUsable(agent: Agent, session: Session, now: number): void {
  if (session.revokedAt !== undefined) throw new AirlockError('session_revoked');
  if (session.expiresAt <= now) throw new AirlockError('session_expired');
  if (agent.status === 'frozen') throw new AirlockError('agent_frozen');
  if (agent.status === 'retired') throw new AirlockError('agent_retired');
}

function idempotencyScope(auth: AgentAuth): string {
  return `agent:${auth.agent.id}`;
}

export function denialBody(decision: Decision, auditSeq: number): Record<string, unknown> {
  const first = decision.violations[0];
  return {
    decision: 'deny',
    error: {
      code: 'policy_denied',
      message: first ? `Denied by ${first.rule}: ${first.message}` : 'Denied by policy.',
      violations: decision.violations,
    },
    policyVersion: decision.policyVersion,
    auditSeq,
  };
}
