// `airlock agent deps <agent> [--reconcile]`: the dependency map (issue 14), what the agent's key handed out.
import type { AirlockHttp } from '@airlock/sdk';
import { printJson, table } from '../format.ts';

export const AGENT_DEPS_USAGE = 'airlock agent deps <id|name> [--reconcile]   (what the key granted; --reconcile reads the chain)';

interface LiveFields { live?: boolean | 'unknown'; evidence?: { reason: string } }
interface DependencyMapJson {
  agent: { id: string; name: string; address: string; status: string };
  reconciled: boolean;
  grants: (LiveFields & { kind: string; chain: string; token: string; spender: string; amount: string; unlimited: boolean; auditSeq: number; nonce?: string; deadline?: number; expiresAt?: number })[];
  authorizations: (LiveFields & { paymentId: string; chain: string; token: string; to: string; value: string; auditSeq: number; validBefore: number })[];
  sessions: { id: string; parentId?: string; expiresAt: string }[];
  approvals: { id: string; action: string; auditSeq: number; expiresAt: string }[];
  lightningPayments: { id: string; amountMsat: string; auditSeq: number }[];
  nwcConnections: { sessionId: string; clientPubkey: string; open: boolean; auditSeq: number }[];
  notes: string[];
}

const liveText = (x: LiveFields) => (x.live === undefined ? '-' : `${String(x.live)} (${x.evidence?.reason ?? ''})`);

export async function agentDeps(http: AirlockHttp, agent: string, reconcile: boolean, json: boolean): Promise<void> {
  const { body: map } = await http.request<DependencyMapJson>('GET', `/v1/agents/${encodeURIComponent(agent)}/dependencies${reconcile ? '?reconcile=true' : ''}`);
  if (json) return printJson(map);
  const out: string[] = [`${map.agent.name} (${map.agent.id}) ${map.agent.address} ${map.agent.status}${map.reconciled ? ', reconciled against the chain' : ''}`];
  const section = (title: string, rows: Record<string, unknown>[], columns: string[]) => {
    out.push('', `${title}: ${rows.length}`);
    if (rows.length) out.push(table(rows as never, columns));
  };
  section('grants', map.grants.map((g) => ({ seq: g.auditSeq, kind: g.kind, chain: g.chain, token: g.token, spender: g.spender, amount: g.unlimited ? 'UNLIMITED' : g.amount, nonce: g.nonce ?? '', live: liveText(g) })), ['seq', 'kind', 'chain', 'token', 'spender', 'amount', 'nonce', 'live']);
  section('EIP-3009 authorizations', map.authorizations.map((a) => ({ seq: a.auditSeq, payment: a.paymentId, token: a.token, to: a.to, value: a.value, validBefore: a.validBefore, live: liveText(a) })), ['seq', 'payment', 'token', 'to', 'value', 'validBefore', 'live']);
  section('open sessions', map.sessions.map((s) => ({ id: s.id, parent: s.parentId ?? '', expiresAt: s.expiresAt })), ['id', 'parent', 'expiresAt']);
  section('pending approvals', map.approvals.map((a) => ({ id: a.id, seq: a.auditSeq, action: a.action, expiresAt: a.expiresAt })), ['id', 'seq', 'action', 'expiresAt']);
  section('Lightning payments in flight', map.lightningPayments.map((l) => ({ id: l.id, seq: l.auditSeq, msat: l.amountMsat })), ['id', 'seq', 'msat']);
  section('NWC connections', map.nwcConnections.map((c) => ({ session: c.sessionId, client: c.clientPubkey, open: c.open, seq: c.auditSeq })), ['session', 'client', 'open', 'seq']);
  for (const note of map.notes) out.push('', `note: ${note}`);
  console.log(out.join('\n'));
}
