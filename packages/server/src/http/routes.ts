import { buildDependencyRoutes } from './dependency-routes.ts';
import type { Context } from 'hono';
import { ACTIONS, AirlockError, parseDuration, type AgentAuth, type ApprovalRecord, type AuditQuery, type LightningPayInput, type Session, type Violation } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { AuthEdge, Principal } from './auth.ts';
import { buildConsoleRoutes } from './console-routes.ts';
import { SpendHistoryResponse, SpendParams } from './console-schemas.ts';
import { spendHistory } from './spend-history.ts';
import { clientAddress } from './client-address.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import type { RouteSpec } from './route-table.ts';
import * as S from './schemas.ts';
import { agentJson, approvalForAgentJson, approvalJson, auditJson, sessionJson, shadowDifferenceJson } from './serialize.ts';
import { buildX402Routes } from './x402-routes.ts';
import { buildApproverRoutes } from './approver-routes.ts';
import { ApprovalWaiters } from './approval-waiters.ts';
import { buildNostrRoutes } from './nostr-routes.ts';
import { buildLightningRoutes } from './lightning-routes.ts';
import { buildBitcoinRoutes } from './bitcoin-routes.ts';
import { buildL402Routes } from './l402-routes.ts';
import { buildBreakerRoutes } from './breaker-routes.ts';
import { buildAdminRoutes } from './admin-routes.ts';
import { buildLifecycleRoutes } from './lifecycle-routes.ts';
import { buildAgentKeyRoutes } from './agent-key-routes.ts';
import { buildThresholdRoutes } from './threshold-routes.ts';
import { buildChildSessionRoutes } from './child-session-routes.ts';
import { LightningPayRequest } from './lightning-schemas.ts';
import { buildNostrBunkerRoutes } from '../nostr-bunker/routes.ts';
import { buildNwcRoutes } from '../nwc-service/routes.ts';
import { buildWebhookRoutes } from '../webhooks/routes.ts';

const OPERATOR = 'admin';

function timeParam(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  // Within the range of a JS Date (±8.64e15 ms): PostgreSQL's bigint refused 1e19 with a 500 (found by review).
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > 8.64e15) throw new AirlockError('invalid_request', `${name}: expected an ISO time or ms since epoch.`);
  return ms;
}

/** Operator dry-runs evaluate as a session that may use every action (the agent's policy still decides). */
function operatorSession(agentId: string): Session {
  return { id: 'ses_dryrun', agentId, tokenHash: '', scope: { actions: [...ACTIONS], chains: [], budgets: [] }, createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER };
}

/** `edge`: the app's authentication edge, which the console login shares (absent when only the OpenAPI document is built). */
export function buildRoutes(holder: AirlockHolder, openapi: () => unknown, edge?: AuthEdge): RouteSpec[] {
  const A = () => holder.get();
  const waiters = new ApprovalWaiters();
  // `x402` is the request context the sign routes take (sign, below), so resource rules judge a dry-run as they judge the sign.
  // A Lightning payment is decoded with the backend's network and the time (what the payment would see), by its service.
  const dryRun = (auth: AgentAuth, action: string, payload: unknown, x402?: { resource: string }) => {
    if (action !== 'lightning.pay') return A().signing.dryRun(auth, action, payload, x402 ? { x402 } : {});
    if (x402) throw new AirlockError('invalid_request', 'x402.resource was given but a Lightning payment is not an x402 payment authorization.');
    return A().lightning.dryRun(auth, lightningDryRunPayload(payload));
  };
  const sign = (action: string) => async (c: Context, { body }: { body: unknown }) => {
    const idem = idempotencyKeyOf(c);
    // `x402` is request context, not part of what is signed: the adapter sees the payload without it.
    const { x402, ...payload } = body as { x402?: { resource: string } };
    const out = await A().signing.sign(agentOf(c), action, payload, idem, x402 ? { x402 } : {});
    return c.json(out.body, out.status);
  };
  /** An approved x402 payment carries the header to send (`result.x402`). */
  const withX402 = (approval: ApprovalRecord) => {
    const json = approvalJson(approval);
    if (approval.result === undefined) return json;
    const x402 = approval.result !== undefined ? A().x402.approvedPayment(approval.summary, approval.result) : undefined;
    return x402 ? { ...json, result: { ...(approval.result as Record<string, unknown>), x402 } } : json;
  };
  /**
   * An approval as this principal may read it: an operator sees everything; an agent's session sees the
   * signed result only of its own requests and of sessions derived from it (mayCollectResultOf), and the
   * votes only as counts, never the approvers who cast them (approvalForAgentJson).
   */
  const approvalFor = async (p: Principal, approval: ApprovalRecord, json: (a: ApprovalRecord) => ReturnType<typeof approvalJson> = withX402) => {
    if (p.kind !== 'agent') return json(approval);
    if (approval.result !== undefined && !(await A().signing.mayCollectResultOf(p.auth, approval.sessionId))) {
      const { result: _withheld, ...rest } = approval;
      return approvalForAgentJson(approvalJson(rest));
    }
    return approvalForAgentJson(json(approval));
  };
  // 403 is a policy denial (or, from the edge, the error body); 409 an Idempotency-Key or nonce conflict.
  const signing = { auth: 'agent', headers: [IDEMPOTENCY_KEY_HEADER], responses: { 200: S.SignResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse }, errors: [409], rechecksCredentials: true } as const;

  return [
    {
      method: 'get', path: '/v1/health', operationId: 'getHealth', summary: 'Liveness, seal state, store and key process reachability', tag: 'system', auth: 'none',
      responses: { 200: S.HealthResponse, 503: S.SealedHealthResponse }, errors: [503],
      handler: async (c) => {
        if (holder.sealed) return c.json({ status: 'sealed' }, 503);
        await A().store.auditHead();
        // A key process that does not answer is 503 key_process_unavailable, like a store that does not.
        const keyProcess = A().keyProcess;
        if (keyProcess) await keyProcess.hello();
        return c.json({ status: 'ok', store: A().store.dialect, ...(keyProcess ? { keyProcess: 'ok' as const } : {}) });
      },
    },
    {
      method: 'get', path: '/v1/health/live', operationId: 'getLiveness', summary: 'Liveness: the process answers HTTP (sealed, store down or shutting down included)', tag: 'system', auth: 'none',
      responses: { 200: S.LiveHealthResponse },
      handler: async (c) => c.json({ status: 'alive' }),
    },
    {
      method: 'get', path: '/v1/health/ready', operationId: 'getReadiness', summary: 'Readiness: unsealed, store reachable and not shutting down', tag: 'system', auth: 'none',
      responses: { 200: S.ReadyHealthResponse, 503: S.NotReadyHealthResponse }, errors: [503],
      handler: async (c) => {
        if (holder.sealed) return c.json({ status: 'sealed' }, 503);
        if (holder.draining) return c.json({ status: 'shutting_down' }, 503);
        // One index read: the same proof of a working store as /v1/health (503 store_unavailable otherwise).
        await A().store.auditHead();
        await A().keyProcess?.hello();
        return c.json({ status: 'ready', store: A().store.dialect });
      },
    },
    { method: 'get', path: '/v1/openapi.json', operationId: 'getOpenApi', summary: 'This API as OpenAPI 3.1', tag: 'system', auth: 'none', responses: { 200: S.OpenApiDocument }, handler: async (c) => c.json(openapi()) },
    {
      method: 'post', path: '/v1/unseal', operationId: 'unseal', summary: 'Unseal a server started sealed', tag: 'system', auth: 'none', body: S.UnsealRequest,
      responses: { 200: S.UnsealResponse }, errors: [429, 503],
      handler: async (c, { body }) => {
        if (!holder.sealed) return c.json({ status: 'ok', alreadyUnsealed: true });
        await holder.unseal((body as { passphrase: string }).passphrase, clientAddress(c));
        return c.json({ status: 'ok' });
      },
    },
    {
      method: 'get', path: '/v1/unseal/shares', operationId: 'getUnsealSharesProgress', summary: 'Progress of an unseal by SLIP-39 shares', tag: 'system', auth: 'none',
      responses: { 200: S.UnsealSharesProgress },
      handler: async (c) => c.json(holder.shareProgress()),
    },
    {
      method: 'post', path: '/v1/unseal/shares', operationId: 'unsealWithShare', summary: 'Enter one SLIP-39 share; the server unseals once the thresholds are met', tag: 'system', auth: 'none', body: S.UnsealShareRequest,
      responses: { 200: S.UnsealSharesProgress }, errors: [400, 429, 503],
      handler: async (c, { body }) => c.json(await holder.unsealWithShare((body as { share: string }).share, clientAddress(c))),
    },
    {
      method: 'post', path: '/v1/unseal/shares/reset', operationId: 'resetUnsealShares', summary: 'Forget the SLIP-39 shares entered so far', tag: 'system', auth: 'none',
      responses: { 200: S.UnsealSharesProgress },
      handler: async (c) => c.json(holder.resetShares()),
    },

    // ---- agents (session token) ----
    {
      method: 'get', path: '/v1/session', operationId: 'getSession', summary: 'Who am I: the agent and session behind this token', tag: 'agent', auth: 'agent',
      responses: { 200: S.WhoAmIResponse },
      handler: async (c) => {
        const { agent, session } = agentOf(c);
        const { pubkey, npub } = await A().nostr.identity(agent);
        return c.json({ agent: { id: agent.id, name: agent.name, address: agent.address, status: agent.status, nostr: { pubkey, npub } }, session: sessionJson(session) });
      },
    },
    { method: 'post', path: '/v1/sign/transaction', operationId: 'signTransaction', summary: 'Sign an EVM transaction', tag: 'agent', ...signing, body: S.SignTransactionRequest, handler: sign('evm.transaction') },
    { method: 'post', path: '/v1/sign/typed-data', operationId: 'signTypedData', summary: 'Sign EIP-712 typed data', tag: 'agent', ...signing, body: S.SignTypedDataRequest, handler: sign('evm.typed_data') },
    { method: 'post', path: '/v1/sign/user-operation', operationId: 'signUserOperation', summary: 'Sign an ERC-4337 user operation (policy runs on each call it executes)', tag: 'agent', ...signing, body: S.SignUserOperationRequest, handler: sign('evm.user_operation') },
    { method: 'post', path: '/v1/sign/authorization', operationId: 'signAuthorization', summary: 'Sign an EIP-7702 authorization (only for delegates a delegations rule lists)', tag: 'agent', ...signing, body: S.SignAuthorizationRequest, handler: sign('evm.authorization') },
    { method: 'post', path: '/v1/sign/message', operationId: 'signMessage', summary: 'Sign an EIP-191 personal message (denied unless a rule names it)', tag: 'agent', ...signing, body: S.SignMessageRequest, handler: sign('evm.message') },
    {
      method: 'post', path: '/v1/dry-run', operationId: 'dryRun', summary: 'Evaluate a request without reserving or signing', tag: 'agent', auth: 'agent', body: S.DryRunRequest,
      responses: { 200: S.DryRunResponse },
      handler: async (c, { body }) => {
        const b = body as { action: string; payload: unknown; x402?: { resource: string } };
        // What staged candidate policies would decide is the operator's to read (found by review: an agent's dry-run
        // showed each candidate's rules and limits, the fleet's next cap among them, so it could spend before it landed).
        const { shadow: _candidates, ...outcome } = await dryRun(agentOf(c), b.action, b.payload, b.x402);
        return c.json(outcome);
      },
    },
    {
      method: 'get', path: '/v1/approvals/:id', operationId: 'getApproval', summary: 'An approval and, once approved, its signing result; `wait` long-polls for the decision', tag: 'approvals', auth: 'admin_or_agent',
      query: S.GetApprovalParams, responses: { 200: S.ApprovalSchema }, errors: [404],
      handler: async (c, { query }) => {
        const id = c.req.param('id')!;
        const p = c.get('principal') as Principal;
        const deadline = Date.now() + ((query as { wait?: number }).wait ?? 0) * 1000;
        await A().operator.expireOverdue();
        for (;;) {
          const approval = await A().store.getApproval(id);
          // An agent sees only its own approvals; others look like they do not exist.
          if (!approval || (p.kind === 'agent' && approval.agentId !== p.auth.agent.id)) throw new AirlockError('not_found', 'No such approval.');
          // Decided means final: approved and signed (the result is stored just after the grant commits), denied or expired.
          const settled = approval.state !== 'pending' && !(approval.state === 'approved' && approval.result === undefined);
          if (settled || Date.now() >= deadline || holder.draining || c.req.raw.signal.aborted) return c.json(await approvalFor(p, approval));
          // Woken by a vote or decision on this instance; re-read at least once a second for other instances.
          await waiters.sleep(id, Math.min(1000, deadline - Date.now()), c.req.raw.signal);
          if (approval.state === 'pending' && approval.expiresAt <= A().deps.clock.now()) await A().operator.expireOverdue();
          // The credential was checked when the poll began: a session revoked (or an agent frozen), an admin token
          // rotated away or a console session ended while it waited gets nothing decided meanwhile, as its next
          // request would not (found by review: the admin's poll was not re-checked).
          if (p.kind === 'agent') await A().signing.assertStillUsable(p.auth);
          else await p.stillValid?.();
        }
      },
    },

    // ---- operators (admin token) ----
    {
      method: 'post', path: '/v1/agents', operationId: 'createAgents', summary: 'Create one agent, named agents, or `count` agents at once', tag: 'agents', auth: 'admin', body: S.CreateAgentsRequest,
      responses: { 201: S.AgentListResponse }, errors: [409],
      handler: async (c, { body }) => {
        const agents = await A().operator.createAgents(body as S.CreateAgentsInput, OPERATOR);
        return c.json({ agents: agents.map(agentJson) }, 201);
      },
    },
    {
      method: 'get', path: '/v1/agents', operationId: 'listAgents', summary: 'List agents, or find the agent that has or ever had an EVM `address`', tag: 'agents', auth: 'admin',
      query: S.ListAgentsParams, responses: { 200: S.AgentListResponse },
      handler: async (c, { query }) => {
        const q = query as { status?: 'active' | 'frozen' | 'retired'; limit?: number; after?: string; address?: string };
        if (q.address !== undefined) {
          // Attribution: an address rotated away from stays the agent's (GET /v1/agents/{id}/keys says which key).
          const found = await A().operator.findAgentByAddress(q.address);
          return c.json({ agents: found && (q.status === undefined || found.agent.status === q.status) ? [agentJson(found.agent)] : [] });
        }
        const agents = await A().store.listAgents({ ...(q.status ? { status: q.status } : {}), limit: q.limit ?? 100, ...(q.after ? { after: q.after } : {}) });
        return c.json({ agents: agents.map(agentJson) });
      },
    },
    { method: 'get', path: '/v1/agents/:id', operationId: 'getAgent', summary: 'One agent (by id or name)', tag: 'agents', auth: 'admin', responses: { 200: S.AgentDetailSchema }, errors: [404],
      handler: async (c) => {
        const agent = await A().operator.getAgent(c.req.param('id')!);
        const { pubkey, npub } = await A().nostr.identity(agent);
        return c.json({ ...agentJson(agent), nostr: { pubkey, npub }, lifecycle: await A().lifecycle.keyLifecycle(agent) });
      },
    },
    {
      method: 'get', path: '/v1/spend', operationId: 'getSpendHistory', summary: 'Spend per bucket and budget use over time, for the fleet or one agent (bounded range)', tag: 'agents', auth: 'admin',
      query: SpendParams, responses: { 200: SpendHistoryResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; bucket?: string; since?: string; until?: string; asset?: string };
        const now = A().deps.clock.now();
        const bucketMs = parseDuration(q.bucket ?? '1h');
        if (bucketMs < 60_000) throw new AirlockError('invalid_request', 'bucket: at least 1m.');
        const untilMs = Math.min(timeParam(q.until, 'until') ?? now, now);
        const sinceMs = timeParam(q.since, 'since') ?? untilMs - 24 * bucketMs;
        if (!(sinceMs < untilMs)) throw new AirlockError('invalid_request', 'since: must be before until (and until no later than now).');
        const agent = q.agent !== undefined ? await A().operator.getAgent(q.agent) : undefined;
        const h = await spendHistory(A(), { ...(agent ? { agent } : {}), sinceMs, untilMs, bucketMs, assets: q.asset ? [q.asset] : [] });
        return c.json({
          scope: agent ? ('agent' as const) : ('fleet' as const),
          ...(agent ? { agent: { id: agent.id, name: agent.name } } : {}),
          bucketMs,
          edges: h.edges.map((t) => new Date(t).toISOString()),
          assets: h.assets.map((a) => ({ asset: a.asset, amounts: a.amounts.map(String), counts: a.counts })),
          budgets: h.budgets.map((b) => ({ rule: b.rule, asset: b.asset, max: String(b.max), window: b.window, used: String(b.used), usedAt: b.usedAt.map(String) })),
        });
      },
    },
    ...(['freeze', 'unfreeze'] as const).map((verb): RouteSpec => ({
      method: 'post', path: `/v1/agents/:id/${verb}`, operationId: `${verb}Agent`, summary: verb === 'freeze' ? 'Freeze: the very next request is refused' : 'Unfreeze', tag: 'agents', auth: 'admin',
      responses: { 200: S.AgentSchema }, errors: [404],
      handler: async (c) => c.json(agentJson(await A().operator.setAgentStatus(c.req.param('id')!, verb === 'freeze' ? 'frozen' : 'active', OPERATOR))),
    })),
    {
      method: 'post', path: '/v1/agents/:id/sessions', operationId: 'issueSession', summary: 'Issue a session credential (the token is shown once)', tag: 'sessions', auth: 'admin', body: S.IssueSessionRequest,
      responses: { 201: S.IssuedSessionResponse }, errors: [404],
      handler: async (c, { body }) => {
        const { session, token } = await A().operator.issueSession(c.req.param('id')!, body as S.IssueSessionInput, OPERATOR);
        return c.json({ session: sessionJson(session), token }, 201);
      },
    },
    {
      method: 'get', path: '/v1/sessions', operationId: 'listSessions', summary: 'List sessions (active only unless all=true)', tag: 'sessions', auth: 'admin', query: S.ListSessionsParams,
      responses: { 200: S.SessionListResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; all?: string };
        return c.json({ sessions: (await A().operator.listSessions(q.agent, q.all === 'true')).map(sessionJson) });
      },
    },
    { method: 'post', path: '/v1/sessions/:id/revoke', operationId: 'revokeSession', summary: 'Revoke a session and every session derived from it (takes effect on the next request)', tag: 'sessions', auth: 'admin', responses: { 200: S.SessionSchema }, errors: [404], handler: async (c) => c.json(sessionJson(await A().operator.revokeSession(c.req.param('id')!, OPERATOR))) },

    {
      method: 'post', path: '/v1/policies/validate', operationId: 'validatePolicy', summary: 'Validate a policy document without storing it', tag: 'policies', auth: 'admin', body: S.SetPolicyRequest,
      responses: { 200: S.PolicyValidationResponse },
      handler: async (c, { body }) => {
        const b = body as { source?: string; document?: unknown };
        try {
          const { warnings } = A().operator.validatePolicy(b.source ?? b.document);
          return c.json({ valid: true, warnings });
        } catch (e) {
          if (e instanceof AirlockError && e.code === 'invalid_policy') return c.json({ valid: false, error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
          throw e;
        }
      },
    },
    {
      method: 'put', path: '/v1/policies/:scope', operationId: 'setPolicy', summary: 'Set the policy of `fleet` or of an agent (new version unless unchanged)', tag: 'policies', auth: 'admin', body: S.SetPolicyRequest,
      responses: { 200: S.SetPolicyResponse }, errors: [404],
      handler: async (c, { body }) => {
        const b = body as { source?: string; document?: unknown };
        return c.json(await A().operator.setPolicy(c.req.param('scope')!, b.source ?? b.document, OPERATOR));
      },
    },
    {
      method: 'get', path: '/v1/policies/:scope', operationId: 'getPolicy', summary: 'The current (or ?version=N) policy of `fleet` or an agent', tag: 'policies', auth: 'admin', query: S.PolicyVersionParams,
      responses: { 200: S.PolicyRecordSchema }, errors: [404],
      handler: async (c, { query }) => c.json(await A().operator.getPolicy(c.req.param('scope')!, (query as { version?: number }).version)),
    },
    { method: 'get', path: '/v1/policies/:scope/versions', operationId: 'listPolicyVersions', summary: 'Version history (hash, author, time)', tag: 'policies', auth: 'admin', responses: { 200: S.PolicyVersionsResponse }, errors: [404], handler: async (c) => c.json({ versions: await A().operator.listPolicyVersions(c.req.param('scope')!) }) },
    {
      method: 'get', path: '/v1/policies/:scope/diff', operationId: 'diffPolicy', summary: 'Diff two versions (default: from the previous to the current)', tag: 'policies', auth: 'admin', query: S.PolicyDiffParams,
      responses: { 200: S.PolicyDiffResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { from?: number; to?: number };
        const versions = await A().operator.listPolicyVersions(c.req.param('scope')!);
        const to = q.to ?? versions[0]?.version;
        const from = q.from ?? (to !== undefined ? to - 1 : undefined);
        if (to === undefined || from === undefined || from < 1) throw new AirlockError('not_found', 'Need two versions to diff.');
        return c.json({ from, to, diff: await A().operator.diffPolicy(c.req.param('scope')!, from, to) });
      },
    },
    {
      method: 'put', path: '/v1/policies/:scope/shadow', operationId: 'stageShadowPolicy', summary: 'Stage a candidate policy beside the active one: evaluated on every request, decides nothing', tag: 'policies', auth: 'admin', body: S.SetPolicyRequest,
      responses: { 200: S.ShadowStagedResponse }, errors: [404],
      handler: async (c, { body }) => {
        const b = body as { source?: string; document?: unknown };
        return c.json(await A().shadows.stage(c.req.param('scope')!, b.source ?? b.document, OPERATOR));
      },
    },
    {
      method: 'get', path: '/v1/policies/:scope/shadow', operationId: 'getShadowPolicy', summary: 'The staged candidate policy and how it compares with the active one so far', tag: 'policies', auth: 'admin',
      responses: { 200: S.ShadowPolicyResponse }, errors: [404],
      handler: async (c) => c.json(await A().shadows.get(c.req.param('scope')!)),
    },
    {
      method: 'delete', path: '/v1/policies/:scope/shadow', operationId: 'clearShadowPolicy', summary: 'Unstage the candidate policy (its summary is kept in the audit entry)', tag: 'policies', auth: 'admin',
      responses: { 200: S.ShadowClearedResponse }, errors: [404],
      handler: async (c) => c.json(await A().shadows.clear(c.req.param('scope')!, OPERATOR)),
    },
    {
      method: 'get', path: '/v1/policies/:scope/shadow/differences', operationId: 'listShadowDifferences', summary: 'Requests the candidate would have decided differently, oldest first (paged by audit seq)', tag: 'policies', auth: 'admin', query: S.ShadowDifferencesParams,
      responses: { 200: S.ShadowDifferencesResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { after?: number; limit?: number };
        const page = await A().shadows.differences(c.req.param('scope')!, { ...(q.after !== undefined ? { afterSeq: q.after } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}) });
        return c.json({ ...page, differences: page.differences.map(shadowDifferenceJson) });
      },
    },
    {
      method: 'post', path: '/v1/policies/:scope/shadow/promote', operationId: 'promoteShadowPolicy', summary: 'Make the candidate the active policy (a new version, audited) and unstage it', tag: 'policies', auth: 'admin',
      responses: { 200: S.ShadowPromotedResponse }, errors: [404, 409],
      handler: async (c) => c.json(await A().shadows.promote(c.req.param('scope')!, OPERATOR)),
    },
    {
      method: 'post', path: '/v1/policies/dry-run', operationId: 'dryRunForAgent', summary: 'Evaluate a request for an agent against current policy and ledger', tag: 'policies', auth: 'admin', body: S.AdminDryRunRequest,
      responses: { 200: S.DryRunResponse }, errors: [404],
      handler: async (c, { body }) => {
        const b = body as { agent: string; action: string; payload: unknown; x402?: { resource: string } };
        const agent = await A().operator.getAgent(b.agent);
        const outcome = await dryRun({ agent, session: operatorSession(agent.id) }, b.action, b.payload, b.x402);
        // Policy does not know the agent's status: a frozen or retired agent's every request is refused (403
        // agent_frozen / agent_retired) before policy runs, so its dry-run is a denial naming that, whatever policy
        // says (found by review: `airlock policy dry-run` answered ALLOW, exit 0, for a frozen agent).
        if (agent.status === 'active') return c.json(outcome);
        const refusal = agent.status === 'frozen' ? 'agent_frozen (until it is unfrozen)' : 'agent_retired (for good)';
        const status: Violation = { rule: `agent/${agent.name}/status`, code: 'agent_not_active', message: `the agent is ${agent.status}: every request of it is refused ${refusal}` };
        const before = outcome.decision.decision === 'deny' ? outcome.decision.violations : [];
        return c.json({ ...outcome, decision: { ...outcome.decision, decision: 'deny', violations: [status, ...before] } });
      },
    },

    {
      method: 'get', path: '/v1/audit', operationId: 'queryAudit', summary: 'Query the audit log (agent, time range, decision, type)', tag: 'audit', auth: 'admin', query: S.AuditQueryParams,
      responses: { 200: S.AuditEntriesResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; decision?: AuditQuery['decision']; type?: string; from?: string; to?: string; after?: number; limit?: number; order?: 'oldest' | 'newest' };
        const agentId = q.agent ? (await A().operator.getAgent(q.agent)).id : undefined;
        const fromMs = timeParam(q.from, 'from');
        const toMs = timeParam(q.to, 'to');
        const entries = await A().store.queryAudit({
          ...(agentId ? { agentId } : {}), ...(q.decision ? { decision: q.decision } : {}), ...(q.type ? { type: q.type } : {}),
          ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}), ...(q.after !== undefined ? { afterSeq: q.after } : {}), limit: q.limit ?? 100,
          ...(q.order === 'newest' ? { newestFirst: true } : {}),
        });
        return c.json({ entries: entries.map(auditJson) });
      },
    },
    {
      method: 'post', path: '/v1/audit/verify', operationId: 'verifyAudit', summary: 'Verify every entry, the Merkle tree and every signed tree head (and legacy checkpoint)', tag: 'audit', auth: 'admin',
      responses: { 200: S.AuditVerifyResponse },
      handler: async (c) => c.json(await A().audit.verify()),
    },
    { method: 'get', path: '/v1/audit/head', operationId: 'getAuditHead', summary: 'Sequence number and hash of the newest entry, and the tree size', tag: 'audit', auth: 'admin', responses: { 200: S.AuditHeadResponse }, handler: async (c) => c.json(await A().store.auditHead()) },
    {
      method: 'get', path: '/v1/audit/checkpoints', operationId: 'listAuditCheckpoints', summary: 'Signed tree heads, legacy signed checkpoints, and the audit public key', tag: 'audit', auth: 'admin', responses: { 200: S.AuditSignedHeadsResponse },
      handler: async (c) => c.json({ publicKey: await A().audit.auditPublicKey(), treeHeads: await A().store.listTreeHeads(), checkpoints: await A().store.listCheckpoints() }),
    },
    {
      method: 'get', path: '/v1/audit/receipts/:seq', operationId: 'getAuditReceipt', summary: 'Inclusion proof of an audit entry against the latest signed tree head (an agent: only entries its own requests wrote)', tag: 'audit', auth: 'admin_or_agent',
      responses: { 200: S.AuditReceiptResponse }, errors: [400, 404, 409],
      handler: async (c) => {
        const seq = Number(c.req.param('seq'));
        if (!Number.isSafeInteger(seq) || seq < 1) throw new AirlockError('invalid_request', 'seq: a positive integer.');
        const p = c.get('principal') as Principal;
        const r = await A().audit.receipt(seq, p.kind === 'agent' ? p.auth.agent.id : undefined);
        return c.json({ receipt: r.receipt, entry: auditJson(r.entry), treeHead: r.treeHead, proof: r.proof });
      },
    },
    {
      method: 'get', path: '/v1/audit/consistency', operationId: 'getAuditConsistency', summary: 'Consistency proof between two signed tree heads (RFC 9162): the log only grew', tag: 'audit', auth: 'admin_or_agent', query: S.AuditConsistencyParams,
      responses: { 200: S.AuditConsistencyResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { from: number; to?: number };
        return c.json(await A().audit.consistency(q.from, q.to));
      },
    },
    {
      method: 'post', path: '/v1/audit/acknowledge', operationId: 'acknowledgeAudit', summary: 'After an audit integrity alert: accept the log as it is, re-anchor at its head (audited) and resume signing', tag: 'audit', auth: 'admin',
      responses: { 200: S.AuditAcknowledgeResponse }, errors: [409],
      handler: async (c) => c.json(await A().audit.acknowledge(OPERATOR)),
    },

    {
      method: 'get', path: '/v1/approvals', operationId: 'listApprovals', summary: 'List approvals (default: pending); an agent lists its own', tag: 'approvals', auth: 'admin_or_agent', query: S.ListApprovalsParams,
      responses: { 200: S.ApprovalListResponse }, errors: [404],
      handler: async (c, { query }) => {
        await A().operator.expireOverdue();
        const q = query as { state?: 'pending' | 'approved' | 'denied' | 'expired' | 'all'; agent?: string };
        const p = c.get('principal') as Principal;
        // An agent sees only its own approvals (as with GET /v1/approvals/:id); naming another agent is refused.
        if (p.kind === 'agent' && q.agent !== undefined && q.agent !== p.auth.agent.id && q.agent !== p.auth.agent.name) {
          throw new AirlockError('forbidden', 'An agent lists only its own approvals.');
        }
        const agentId = p.kind === 'agent' ? p.auth.agent.id : q.agent ? (await A().operator.getAgent(q.agent)).id : undefined;
        const state = q.state ?? 'pending';
        const list = await A().store.listApprovals({ ...(state !== 'all' ? { state } : {}), ...(agentId ? { agentId } : {}), limit: 500 });
        return c.json({ approvals: await Promise.all(list.map((a) => approvalFor(p, a, approvalJson))) });
      },
    },
    {
      method: 'post', path: '/v1/approvals/:id/approve', operationId: 'approveApproval', summary: 'Approve (single use): reserves for good and signs; refused (quorum_required) where a quorum of approvers decides', tag: 'approvals', auth: 'admin',
      responses: { 200: S.ApprovalSchema }, errors: [404, 409],
      handler: async (c) => {
        const id = c.req.param('id')!;
        try {
          return c.json(withX402(await A().operator.approve(id, OPERATOR)));
        } finally {
          waiters.notify(id);
        }
      },
    },
    ...buildApproverRoutes(holder, waiters, edge),
    ...buildX402Routes(holder),
    ...buildNostrRoutes(holder),
    ...buildLightningRoutes(holder),
    ...buildBitcoinRoutes(holder),
    ...buildL402Routes(holder),
    ...buildBreakerRoutes(holder),
    ...buildAdminRoutes(holder),
    ...buildDependencyRoutes(holder),
    ...buildLifecycleRoutes(holder),
    ...buildAgentKeyRoutes(holder),
    ...buildThresholdRoutes(holder),
    ...buildChildSessionRoutes(holder),
    ...buildNostrBunkerRoutes(holder),
    ...buildNwcRoutes(holder),
    ...buildWebhookRoutes(holder),
    ...buildConsoleRoutes(edge),

    {
      method: 'post', path: '/v1/approvals/:id/deny', operationId: 'denyApproval', summary: 'Deny: releases the reservation', tag: 'approvals', auth: 'admin', body: S.DenyApprovalRequest,
      responses: { 200: S.ApprovalSchema }, errors: [404, 409],
      handler: async (c, { body }) => {
        const id = c.req.param('id')!;
        try {
          return c.json(approvalJson(await A().operator.deny(id, OPERATOR, (body as { reason?: string } | undefined)?.reason)));
        } finally {
          waiters.notify(id);
        }
      },
    },
  ];
}

/** A dry-run's `lightning.pay` payload is what POST /v1/lightning/pay takes, checked by the same schema. */
function lightningDryRunPayload(payload: unknown): LightningPayInput {
  const parsed = LightningPayRequest.safeParse(payload);
  if (!parsed.success) throw new AirlockError('invalid_request', `payload: ${parsed.error.issues[0]?.message ?? 'not a Lightning payment request'}`);
  return parsed.data;
}
