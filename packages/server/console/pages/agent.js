import { useState } from 'preact/hooks';
import { get, post, qs } from '../api.js';
import { ConfirmButton, DecisionBadge, ErrorNote, Loading, Rules, StatusBadge, useLoad } from '../components.js';
import { formatTime, pretty, relativeTime } from '../format.js';
import { html } from '../html.js';
import { MarkedText } from '../marked-text.js';
import { SpendCharts } from '../spend-charts.js';
import { AgentAnomalies } from '../anomalies.js';

/** One agent: its state (freeze, unfreeze), spend, policy, sessions and its recent decisions with their rules. */
export function AgentPage({ params }) {
  const id = params.id;
  const agent = useLoad(() => get(`/v1/agents/${encodeURIComponent(id)}`), [id]);
  const [notice, setNotice] = useState(undefined);
  if (agent.loading && !agent.data) return html`<${Loading} what="Loading the agent" />`;
  if (agent.error) return html`<section><h1 id="page-title" tabindex="-1">Agent ${id}</h1><${ErrorNote} error=${agent.error} /></section>`;
  const a = agent.data;
  const setStatus = async (verb) => {
    const updated = await post(`/v1/agents/${encodeURIComponent(a.id)}/${verb}`);
    setNotice(`${a.name} is now ${updated.status}.`);
    agent.reload();
  };
  return html`<section aria-labelledby="page-title">
    <p class="crumbs"><a href="#/fleet">Fleet</a> › agent</p>
    <h1 id="page-title" tabindex="-1">${a.name} <${StatusBadge} status=${a.status} /></h1>
    <p role="status" class="note note-ok" hidden=${!notice}>${notice}</p>
    <dl class="facts">
      <div><dt>Id</dt><dd><code>${a.id}</code></dd></div>
      <div><dt>EVM address</dt><dd><code>${a.address}</code></dd></div>
      <div><dt>Nostr</dt><dd><code>${a.nostr?.npub}</code></dd></div>
      <div><dt>Account index</dt><dd>${a.accountIndex}</dd></div>
      <div><dt>Created</dt><dd>${formatTime(a.createdAt)}</dd></div>
      <div><dt>Updated</dt><dd>${formatTime(a.updatedAt)}</dd></div>
    </dl>
    <div class="actions">
      ${a.status === 'active'
        ? html`<${ConfirmButton} kind="danger" label="Freeze agent" confirmLabel="Confirm freeze" question=${`Freeze ${a.name}? Its very next request is refused.`} onConfirm=${() => setStatus('freeze')} />`
        : a.status === 'frozen'
          ? html`<${ConfirmButton} label="Unfreeze agent" confirmLabel="Confirm unfreeze" question=${`Unfreeze ${a.name}? It may sign again within its policy.`} onConfirm=${() => setStatus('unfreeze')} />`
          : html`<p class="muted">Retired agents cannot be unfrozen.</p>`}
    </div>
    <p><a href=${`#/agents/${encodeURIComponent(a.id)}/dependencies`}>Dependency map</a>: what this key granted (allowances, permits, authorizations) and whether it is still live on chain.</p>
    <h2>Anomaly signals</h2>
    <${AgentAnomalies} agentId=${a.id} name=${a.name} onChanged=${agent.reload} />
    <h2>Spend and budgets</h2>
    <${SpendCharts} agent=${a.id} idPrefix="agent" />
    <h2>Recent decisions</h2>
    <${RecentDecisions} agentId=${a.id} />
    <h2>Policy</h2>
    <${AgentPolicy} name=${a.name} />
    <h2>Sessions</h2>
    <${AgentSessions} agentId=${a.id} />
  </section>`;
}

/** The newest audit entries of the agent that carry a decision, with the rules that decided. */
function RecentDecisions({ agentId }) {
  const { data, error, loading } = useLoad(() => get(`/v1/audit${qs({ agent: agentId, order: 'newest', limit: 50 })}`), [agentId]);
  if (loading && !data) return html`<${Loading} what="Loading decisions" />`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  const decisions = data.entries.filter((e) => e.decision);
  if (decisions.length === 0) return html`<p class="muted">No decisions yet.</p>`;
  return html`<div class="table-wrap"><table>
    <caption class="visually-hidden">Recent decisions, newest first</caption>
    <thead><tr><th scope="col">Seq</th><th scope="col">When</th><th scope="col">Type</th><th scope="col">Decision</th><th scope="col">What</th><th scope="col">Rules</th></tr></thead>
    <tbody>${decisions.map((e) => html`<tr>
      <td class="num"><a href=${`#/audit?seq=${e.seq}`}>${e.seq}</a></td>
      <td>${formatTime(e.at)}</td>
      <td><code>${e.type}</code></td>
      <td><${DecisionBadge} decision=${e.decision} /></td>
      <td><${MarkedText} text=${e.data?.intent?.summary ?? e.action ?? ''} ours="…" /></td>
      <td><${Rules} violations=${e.data?.violations} allowedBy=${e.data?.allowedBy} code=${e.data?.errorCode} /></td>
    </tr>`)}</tbody>
  </table></div>`;
}

function AgentPolicy({ name }) {
  const { data, error, loading } = useLoad(() => get(`/v1/policies/${encodeURIComponent(name)}`).catch((e) => (e.status === 404 ? null : Promise.reject(e))), [name]);
  if (loading && data === undefined) return html`<${Loading} what="Loading the policy" />`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (data === null) return html`<p class="muted">No policy of its own: only the fleet policy applies, and it allows nothing by itself.</p>`;
  return html`<div>
    <p>Version ${data.version}, set by ${data.author ?? 'admin'} ${data.createdAt ? formatTime(data.createdAt) : ''} <span class="muted">(hash <code>${String(data.hash ?? '').slice(0, 16)}</code>)</span></p>
    <details open>
      <summary>Policy document</summary>
      <pre class="policy" tabindex="0" aria-label="Policy document">${pretty(data.document)}</pre>
    </details>
  </div>`;
}

function AgentSessions({ agentId }) {
  const { data, error, loading, reload } = useLoad(() => get(`/v1/sessions${qs({ agent: agentId, all: 'true' })}`), [agentId]);
  if (loading && !data) return html`<${Loading} what="Loading sessions" />`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (data.sessions.length === 0) return html`<p class="muted">No sessions.</p>`;
  const now = Date.now();
  return html`<div class="table-wrap"><table>
    <caption class="visually-hidden">Sessions</caption>
    <thead><tr><th scope="col">Session</th><th scope="col">Label</th><th scope="col">Actions</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th></tr></thead>
    <tbody>${data.sessions.map((s) => {
      const state = s.revokedAt ? 'revoked' : new Date(s.expiresAt).getTime() <= now ? 'expired' : 'active';
      return html`<tr>
        <td><code>${s.id}</code></td>
        <td>${s.label ?? ''}</td>
        <td>${(s.scope?.actions ?? []).join(', ')}</td>
        <td>${formatTime(s.createdAt)}</td>
        <td>${formatTime(s.expiresAt)} <span class="muted">(${relativeTime(s.expiresAt)})</span></td>
        <td>${state === 'active'
          ? html`<${ConfirmButton} kind="danger" label="Revoke" confirmLabel="Confirm revoke" question=${`Revoke ${s.id}? Its next request is refused.`} onConfirm=${async () => { await post(`/v1/sessions/${encodeURIComponent(s.id)}/revoke`); reload(); }} />`
          : html`<${StatusBadge} status=${state} />`}</td>
      </tr>`;
    })}</tbody>
  </table></div>`;
}
