// Child sessions: an agent hands a sub-agent a narrower session derived from its own, never its own token
// (docs/api.md, "Child sessions"). Airlock refuses a child wider than its parent on any axis, charges the
// child's spending to the parent's budgets too, and stops every child when its parent is revoked.
import { createAirlockHttp, type AirlockHttp, type AirlockHttpOptions } from './http.ts';
import { airlockHttpOf, type AirlockClient } from './lightning.ts';

export interface SessionScope {
  actions: string[];
  /** Empty: the agent's policy decides. */
  chains: string[];
  /** Amounts in base units, as decimal strings. */
  budgets: { asset: string; max: string; window: string }[];
}

/** A session as Airlock describes it (never its token). */
export interface AirlockSession {
  id: string;
  agentId: string;
  scope: SessionScope;
  label?: string;
  /** The session it was derived from; absent for operator-issued sessions. */
  parentId?: string;
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
}

/** What the child may do. Omitted actions and chains are the parent's; an omitted expiry is the parent's. */
export interface ChildSessionRequest {
  actions?: string[];
  chains?: string[];
  /** The child's own sub-budgets, each at most what the parent has left in that asset. */
  budgets?: { asset: string; max: string | bigint; window: string }[];
  /** Seconds from now; or `expiresAt`. Never later than the parent's expiry. */
  ttlSeconds?: number;
  expiresAt?: Date | string;
  label?: string;
}

/** A derived session: hand `options` (or `http`) to the sub-agent, e.g. `airlockAccount(child.options)`. */
export interface ChildSession {
  session: AirlockSession;
  /** Shown once by Airlock: give it to the sub-agent, keep it out of logs. */
  token: string;
  /** The parent's connection options with the child's token: what the sub-agent's SDK calls take. */
  options: AirlockHttpOptions;
  http: AirlockHttp;
}

/** One budget of a session or of a session above it, over its window. Amounts in base units. */
export interface SessionBudgetUse {
  sessionId: string;
  asset: string;
  window: string;
  max: bigint;
  used: bigint;
  remaining: bigint;
}

/**
 * Derives a child session from the session of `parent` (its options: the child's connection reuses the URL
 * and fetch). Refused with `AirlockApiError` code `session_not_narrower` (`details.axis`: actions, chains,
 * budgets or expiry), `session_depth_exceeded` or `session_children_exceeded`; nothing is created then.
 */
export async function deriveChildSession(parent: AirlockHttpOptions, request: ChildSessionRequest = {}): Promise<ChildSession> {
  const body = {
    ...(request.actions ? { actions: request.actions } : {}),
    ...(request.chains ? { chains: request.chains } : {}),
    ...(request.budgets ? { budgets: request.budgets.map((b) => ({ asset: b.asset, max: b.max.toString(), window: b.window })) } : {}),
    ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
    ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt instanceof Date ? request.expiresAt.toISOString() : request.expiresAt } : {}),
    ...(request.label !== undefined ? { label: request.label } : {}),
  };
  const { body: issued } = await createAirlockHttp(parent).request<{ session: AirlockSession; token: string }>('POST', '/v1/session/children', body);
  const options: AirlockHttpOptions = { ...parent, token: issued.token };
  return { session: issued.session, token: issued.token, options, http: createAirlockHttp(options) };
}

/**
 * The sessions derived from this client's session, at any depth, oldest first: the live ones, or with
 * `includeInactive` revoked and expired ones too. Follows the server's pages (`next`) to the end.
 */
export async function listChildSessions(client: AirlockClient, options: { includeInactive?: boolean } = {}): Promise<AirlockSession[]> {
  const http = airlockHttpOf(client);
  const sessions: AirlockSession[] = [];
  let after: string | undefined;
  do {
    const query = new URLSearchParams({ limit: '1000', ...(options.includeInactive ? { includeInactive: 'true' } : {}), ...(after !== undefined ? { after } : {}) });
    const { body } = await http.request<{ sessions: AirlockSession[]; next?: string }>('GET', `/v1/session/children?${query}`);
    sessions.push(...body.sessions);
    after = body.next;
  } while (after !== undefined);
  return sessions;
}

/** Revokes a session derived from this client's session, with every session derived from it. */
export async function revokeChildSession(client: AirlockClient, sessionId: string): Promise<AirlockSession> {
  return (await airlockHttpOf(client).request<AirlockSession>('POST', `/v1/session/children/${encodeURIComponent(sessionId)}/revoke`)).body;
}

/** This session's budgets and those of every session above it: what each window has used and has left. */
export async function sessionBudgets(client: AirlockClient): Promise<SessionBudgetUse[]> {
  const { body } = await airlockHttpOf(client).request<{ budgets: { sessionId: string; asset: string; window: string; max: string; used: string; remaining: string }[] }>('GET', '/v1/session/budgets');
  return body.budgets.map((b) => ({ ...b, max: BigInt(b.max), used: BigInt(b.used), remaining: BigInt(b.remaining) }));
}
