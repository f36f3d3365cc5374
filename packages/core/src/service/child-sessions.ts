import { AirlockError, isAirlockError } from '../errors.ts';
import { ACTIONS } from '../intent.ts';
import { parseDuration } from '../policy/duration.ts';
import { assertSessionScope } from '../policy/layers.ts';
import { seriesFor, type WindowQuery } from '../ports/ledger.ts';
import type { Session, SessionScope, StoreTx } from '../ports/store.ts';
import type { ServiceDeps } from './deps.ts';
import { MAX_SESSION_DEPTH, readAncestors, type SessionReader } from './session-chain.ts';
import { assertSessionLabel } from './session-label.ts';
import { checkNarrower, type AncestorBudgetUse } from './session-narrowing.ts';
import type { AgentAuth, SigningService } from './signing-service.ts';
import { formatSessionToken, hashSecret } from './tokens.ts';

/** What an agent asks for its sub-agent. Omitted actions and chains are the parent's; omitted expiry is the parent's. */
export interface DeriveSessionInput {
  actions?: string[];
  chains?: string[];
  budgets?: SessionScope['budgets'];
  /** Lifetime from now, in seconds; or `expiresAt` (ms since epoch); not both. */
  ttlSeconds?: number;
  expiresAt?: number;
  label?: string;
}

/** One budget of a session or of a session above it, with its window's use. Amounts are base units. */
export interface SessionBudgetUse extends AncestorBudgetUse {
  remaining: bigint;
}

const REFUSALS = new Set<string>(['session_not_narrower', 'session_depth_exceeded', 'session_children_exceeded', 'session_derivations_exceeded']);

/** Live children one session may have at once: each costs a row and a credential an operator may have to read. */
export const MAX_LIVE_CHILDREN = 100;

/**
 * Sessions that may be derived under one operator-issued session over its whole life, at any depth, revoked and
 * expired ones included: a session row is kept for the audit trail, so a derive-and-revoke loop would otherwise
 * grow the sessions table (and the tree an operator reads) without bound. Counted per tree, not per parent: a
 * per-parent cap multiplies with depth (a loop through intermediate children would reach 1000^4 rows). Revoking
 * a child frees a live slot, never one of these.
 */
export const MAX_DERIVATIONS_PER_TREE = 1000;

/** GET /v1/session/children: sessions per page, by default and at most. */
export const CHILD_LIST_DEFAULT_LIMIT = 100;
export const CHILD_LIST_MAX_LIMIT = 1000;

/** A page of the sessions derived from the caller's: `next` is the cursor of the next page, when there may be one. */
export interface ChildSessionPage {
  sessions: Session[];
  next?: string;
}

/**
 * Sessions an agent derives for its sub-agents from its own session (docs/api.md, "Child sessions"). A child
 * is narrower than its parent on every axis when created, and stays bounded by it when used: the signing
 * transaction checks every ancestor's scope and budgets and charges each ancestor's session series
 * (signing-service.ts, session-chain.ts). Every derivation, refused or not, and every revocation is audited.
 */
export class ChildSessionService {
  private readonly deps: ServiceDeps;
  private readonly signing: SigningService;

  constructor(deps: ServiceDeps, signing: SigningService) {
    this.deps = deps;
    this.signing = signing;
  }

  async derive(auth: AgentAuth, input: DeriveSessionInput): Promise<{ session: Session; token: string }> {
    const now = this.deps.clock.now();
    const requested = validated(input, now);
    const secret = this.deps.randomSecret();
    const id = this.deps.randomId('ses');
    const outcome = await this.deps.store.transaction(async (tx): Promise<{ session: Session } | { refused: AirlockError }> => {
      const { parent, ancestors } = await this.usableSession(tx, auth, now);
      try {
        if (ancestors.length + 1 > MAX_SESSION_DEPTH) throw new AirlockError('session_depth_exceeded', `Sessions derive children at most ${MAX_SESSION_DEPTH} levels below an operator-issued session.`);
        // Counted by the store (one indexed query): what a derivation costs does not grow with revoked history.
        const children = await tx.childSessionCounts(parent.id, now);
        if (children.live >= MAX_LIVE_CHILDREN) throw new AirlockError('session_children_exceeded', `The session already has ${children.live} live child sessions.`);
        // The whole tree under the operator-issued session, counted by the store up to the cap (bounded walk).
        const root = ancestors.at(-1) ?? parent;
        const derived = await tx.sessionTreeDerivations(root.id, MAX_DERIVATIONS_PER_TREE);
        if (derived >= MAX_DERIVATIONS_PER_TREE) {
          throw new AirlockError('session_derivations_exceeded', `${MAX_DERIVATIONS_PER_TREE} sessions have been derived under the operator-issued session this one belongs to, as many as one such session may (at any depth, revoked ones included); ask the operator for a new session.`, { details: { limit: MAX_DERIVATIONS_PER_TREE } });
        }
        const scope: SessionScope = {
          actions: requested.actions ?? [...parent.scope.actions],
          chains: requested.chains ?? [...parent.scope.chains],
          budgets: requested.budgets,
        };
        const expiresAt = requested.expiresAt ?? parent.expiresAt;
        checkNarrower(parent, { scope, expiresAt }, await budgetUse(tx, [parent, ...ancestors], now));
        const session: Session = {
          id, agentId: parent.agentId, tokenHash: hashSecret(secret), scope, parentId: parent.id, createdAt: now, expiresAt,
          ...(requested.label !== undefined ? { label: requested.label } : {}),
        };
        await tx.createSession(session);
        await tx.appendAudit({
          at: now, type: 'session.derived', actor: 'agent', agentId: parent.agentId, sessionId: parent.id, decision: 'allow',
          data: { childId: id, parentId: parent.id, depth: ancestors.length + 1, scope, expiresAt },
        });
        return { session };
      } catch (e) {
        if (!isAirlockError(e) || !REFUSALS.has(e.code)) throw e;
        // An attempt to widen is evidence: it is on the record, and nothing else is written.
        await tx.appendAudit({
          at: now, type: 'session.derived', actor: 'agent', agentId: parent.agentId, sessionId: parent.id, decision: 'deny',
          data: { errorCode: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) },
        });
        return { refused: e };
      }
    }, { affinity: auth.agent.id });
    if ('refused' in outcome) throw outcome.refused;
    return { session: outcome.session, token: formatSessionToken(id, secret) };
  }

  /**
   * Sessions derived from the caller's session, at any depth, oldest first, one page at a time: by default only
   * live ones (not revoked, not expired), `includeInactive` for all. `after` is the `next` of the previous page.
   */
  async list(auth: AgentAuth, opts: { includeInactive?: boolean; after?: string; limit?: number } = {}): Promise<ChildSessionPage> {
    const limit = opts.limit ?? CHILD_LIST_DEFAULT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > CHILD_LIST_MAX_LIMIT) throw new AirlockError('invalid_request', `limit: an integer from 1 to ${CHILD_LIST_MAX_LIMIT}.`);
    const after = opts.after === undefined ? undefined : parseChildCursor(opts.after);
    const sessions = await this.deps.store.sessionDescendantsPage(auth.session.id, {
      now: this.deps.clock.now(), includeInactive: opts.includeInactive === true, limit: limit + 1, ...(after ? { after } : {}),
    });
    if (sessions.length <= limit) return { sessions };
    const page = sessions.slice(0, limit);
    const last = page.at(-1)!;
    return { sessions: page, next: `${last.createdAt}.${last.id}` };
  }

  /**
   * Revokes a session derived from the caller's (and every session derived from that one). Any other id,
   * another agent's session or the caller's own parent included, is answered as if it did not exist.
   */
  async revoke(auth: AgentAuth, id: string): Promise<Session> {
    const now = this.deps.clock.now();
    // Unknown or already revoked: answered from a read, before the exclusive transaction below, which holds back
    // every signing batch on PostgreSQL while it runs: an id that revokes nothing must not cost the fleet that.
    const listed = await descendantOf(this.deps.store, auth.session.id, id);
    if (!listed) throw new AirlockError('not_found', 'No such child session.');
    if (listed.revokedAt !== undefined) return listed;
    const { revoked, descendants } = await this.deps.store.transaction(async (tx) => {
      await this.usableSession(tx, auth, now);
      const target = await descendantOf(tx, auth.session.id, id);
      if (!target) throw new AirlockError('not_found', 'No such child session.');
      if (target.revokedAt !== undefined) return { revoked: target, descendants: [] as string[] };
      const descendants = (await tx.sessionDescendants(id)).filter((s) => s.revokedAt === undefined).map((s) => s.id);
      const revoked = await tx.revokeSession(id, now);
      await tx.appendAudit({
        at: now, type: 'session.revoked', actor: 'agent', agentId: auth.agent.id, sessionId: auth.session.id,
        data: { sessionId: id, ...(descendants.length ? { descendants } : {}), by: auth.session.id },
      });
      return { revoked, descendants };
      // Exclusive, as the operator's revoke is (revoke-all.ts says why): a request of the child waiting on
      // another instance must read the session revoked, not a snapshot from before this commit.
    }, { exclusive: true });
    for (const sessionId of [id, ...descendants]) this.signing.credentials.forgetSession(sessionId);
    return revoked;
  }

  /** The caller's session budgets and those of every session above it, with what each window has used and left. */
  async budgets(auth: AgentAuth): Promise<SessionBudgetUse[]> {
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      const { parent: session, ancestors } = await this.usableSession(tx, auth, now);
      const uses = await budgetUse(tx, [session, ...ancestors], now);
      return uses.map((u) => ({ ...u, remaining: u.used >= u.max ? 0n : u.max - u.used }));
    });
  }

  /** The caller's session as the transaction reads it, refused unless it and every session above it are usable. */
  private async usableSession(tx: StoreTx, auth: AgentAuth, now: number): Promise<{ parent: Session; ancestors: Session[] }> {
    const fresh = await this.signing.recheck(tx, auth, now);
    if (fresh.error) {
      this.signing.credentials.forgetSession(auth.session.id);
      throw fresh.error;
    }
    return { parent: fresh.session!, ancestors: fresh.ancestors! };
  }
}

/**
 * The session `id` if it derives from `ancestorId` (at any depth), else undefined: read upwards from `id`, at most
 * MAX_SESSION_DEPTH + 1 reads, whatever the size of `ancestorId`'s tree. Any other session (the caller's own, its
 * parent, a sibling, another agent's) or a broken chain is undefined.
 */
async function descendantOf(reader: SessionReader, ancestorId: string, id: string): Promise<Session | undefined> {
  if (id === ancestorId) return undefined;
  const session = await reader.getSession(id);
  if (!session || session.parentId === undefined) return undefined;
  try {
    return (await readAncestors(reader, session)).some((a) => a.id === ancestorId) ? session : undefined;
  } catch {
    return undefined;
  }
}

/** `next` of a page of GET /v1/session/children: `<createdAt>.<id>` of its last session. */
function parseChildCursor(cursor: string): { createdAt: number; id: string } {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{1,100})$/.exec(cursor);
  const createdAt = m ? Number(m[1]) : Number.NaN;
  if (!m || !Number.isSafeInteger(createdAt)) throw new AirlockError('invalid_request', 'after: the `next` of a previous page.');
  return { createdAt, id: m[2]! };
}

/** Every budget of these sessions with its window's use, read from the sessions' own series (holds included). */
async function budgetUse(tx: StoreTx, sessions: readonly Session[], now: number): Promise<AncestorBudgetUse[]> {
  const budgets = sessions.flatMap((s) => s.scope.budgets.map((b) => ({ sessionId: s.id, asset: b.asset.toLowerCase(), max: BigInt(b.max), window: b.window })));
  if (budgets.length === 0) return [];
  const queries: WindowQuery[] = budgets.map((b) => ({ series: seriesFor.session(b.sessionId), asset: b.asset, sinceMs: now - parseDuration(b.window) }));
  const totals = await tx.windowTotals(queries);
  return budgets.map((b, i) => ({ ...b, used: totals[i]!.amount }));
}

/** The request checked on its own (the route's schema checks shapes; this is what the service relies on). */
function validated(input: DeriveSessionInput, now: number): { actions?: string[]; chains?: string[]; budgets: SessionScope['budgets']; expiresAt?: number; label?: string } {
  if (input.actions !== undefined && (input.actions.length === 0 || !input.actions.every((a) => (ACTIONS as readonly string[]).includes(a)))) {
    throw new AirlockError('invalid_request', `actions: each must be one of ${ACTIONS.join(', ')}, and at least one.`);
  }
  if (input.ttlSeconds !== undefined && input.expiresAt !== undefined) throw new AirlockError('invalid_request', 'Give ttlSeconds or expiresAt, not both.');
  if (input.ttlSeconds !== undefined && (!Number.isSafeInteger(input.ttlSeconds) || input.ttlSeconds <= 0)) throw new AirlockError('invalid_request', 'ttlSeconds: a positive integer.');
  const expiresAt = input.ttlSeconds !== undefined ? now + input.ttlSeconds * 1000 : input.expiresAt;
  if (expiresAt !== undefined && (!Number.isSafeInteger(expiresAt) || expiresAt <= now)) throw new AirlockError('invalid_request', 'expiresAt: a time in the future.');
  const budgets = (input.budgets ?? []).map((b) => {
    try {
      parseDuration(b.window);
    } catch {
      throw new AirlockError('invalid_request', 'budgets[].window: a duration such as 1h or 7d.');
    }
    if (!/^\d{1,78}$/.test(b.max)) throw new AirlockError('invalid_amount', 'budgets[].max must be a non-negative integer string.');
    return { asset: b.asset, max: b.max, window: b.window };
  });
  assertSessionLabel(input.label);
  // Actions and chains left out are the parent's (already a valid scope); what is given must build as one.
  assertSessionScope({ actions: input.actions ?? [ACTIONS[0]], chains: input.chains ?? [], budgets });
  return {
    ...(input.actions !== undefined ? { actions: [...new Set(input.actions)] } : {}),
    ...(input.chains !== undefined ? { chains: [...new Set(input.chains)] } : {}),
    budgets,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(input.label !== undefined ? { label: input.label } : {}),
  };
}
