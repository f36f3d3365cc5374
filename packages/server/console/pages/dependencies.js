import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { ErrorNote, Loading, StatusBadge, useLoad } from '../components.js';
import { formatTime, groupDigits, relativeTime, shortHex } from '../format.js';
import { html } from '../html.js';
import { MarkedText } from '../marked-text.js';

/**
 * The dependency map of one agent: what its key handed out (allowances, permits, authorizations), what is open
 * (sessions, approvals, payments in flight, NWC connections), and, once the chain has been read, what is live.
 * Tokens, spenders and payees are drawn whole: 0x + 4 + 4 hex digits is 32 bits, which an agent grinds in minutes
 * to make its own spender read like a known one (Permit2's 0x0000…8ba3); what the agent wrote (a summary) is marked
 * as on the approval card (found by review).
 */
export function DependenciesPage({ params, query }) {
  const id = params.id;
  const [reconcile, setReconcile] = useState(query.get('reconcile') === 'true');
  const map = useLoad(() => get(`/v1/agents/${encodeURIComponent(id)}/dependencies${reconcile ? '?reconcile=true' : ''}`), [id, reconcile]);
  const heading = html`<p class="crumbs"><a href="#/fleet">Fleet</a> › <a href=${`#/agents/${encodeURIComponent(id)}`}>agent</a> › dependencies</p>`;
  if (map.loading && !map.data) return html`<section>${heading}<h1 id="page-title" tabindex="-1">Dependencies of ${id}</h1><${Loading} what=${reconcile ? 'Reading the chain' : 'Loading the map'} /></section>`;
  if (map.error) return html`<section>${heading}<h1 id="page-title" tabindex="-1">Dependencies of ${id}</h1><${ErrorNote} error=${map.error} /></section>`;
  const m = map.data;
  return html`<section aria-labelledby="page-title">
    ${heading}
    <h1 id="page-title" tabindex="-1">Dependencies of ${m.agent.name} <${StatusBadge} status=${m.agent.status} /></h1>
    <p>What the key <code>${m.agent.address}</code> handed out. Allowances and permits outlive its sessions and a freeze: only the chain can say whether they are still live.</p>
    <div class="actions">
      <button type="button" class="btn btn-primary" disabled=${map.loading} onClick=${() => (reconcile ? map.reload() : setReconcile(true))}>${reconcile ? 'Read the chain again' : 'Read the chain'}</button>
      <span role="status" class="muted">${map.loading ? 'Reading…' : m.reconciled ? `Read from the chain ${formatTime(m.generatedAt)}.` : 'Not read from the chain yet.'}</span>
    </div>
    <h2>Allowances and permits</h2>
    ${m.grants.length === 0 ? html`<p class="muted">None recorded.</p>` : html`<div class="table-wrap"><table class="deps">
      <caption class="visually-hidden">Allowances and permits, oldest first</caption>
      <thead><tr><th scope="col">Seq</th><th scope="col">Kind</th><th scope="col">Chain</th><th scope="col">Token</th><th scope="col">Spender</th><th scope="col">Amount</th><th scope="col">Nonce</th><th scope="col">Deadline / expiry</th><th scope="col">Live</th></tr></thead>
      <tbody>${m.grants.map((g) => html`<tr>
        <td class="num"><a href=${`#/audit?seq=${g.auditSeq}`}>${g.auditSeq}</a></td>
        <td><code>${g.kind}</code></td>
        <td>${g.chain}</td>
        <td><code class="address">${g.token}</code></td>
        <td><code class="address">${g.spender}</code></td>
        <td class="num">${g.unlimited ? 'unlimited' : groupDigits(g.amount)}</td>
        <td class="num">${g.nonce ?? ''}</td>
        <td>${unixTime(g.deadline ?? g.expiresAt)}</td>
        <td><${Live} item=${g} /></td>
      </tr>`)}</tbody>
    </table></div>`}
    <h2>EIP-3009 authorizations not settled</h2>
    ${m.authorizations.length === 0 ? html`<p class="muted">None outstanding.</p>` : html`<div class="table-wrap"><table class="deps">
      <caption class="visually-hidden">Outstanding EIP-3009 authorizations</caption>
      <thead><tr><th scope="col">Seq</th><th scope="col">Payment</th><th scope="col">Token</th><th scope="col">To</th><th scope="col">Value</th><th scope="col">Valid before</th><th scope="col">Live</th></tr></thead>
      <tbody>${m.authorizations.map((a) => html`<tr>
        <td class="num"><a href=${`#/audit?seq=${a.auditSeq}`}>${a.auditSeq}</a></td>
        <td><code>${a.paymentId}</code></td>
        <td><code class="address">${a.token}</code></td>
        <td><code class="address">${a.to}</code></td>
        <td class="num">${groupDigits(a.value)}</td>
        <td>${unixTime(a.validBefore)}</td>
        <td><${Live} item=${a} /></td>
      </tr>`)}</tbody>
    </table></div>`}
    <h2>Open sessions</h2>
    ${m.sessions.length === 0 ? html`<p class="muted">No open session.</p>` : html`<ul class="plain">${m.sessions.map((s) => html`<li><code>${s.id}</code>${s.parentId ? html` <span class="muted">child of <code>${s.parentId}</code></span>` : ''} · ${s.actions.join(', ')} · expires ${relativeTime(s.expiresAt)}</li>`)}</ul>`}
    <h2>Pending approvals</h2>
    ${m.approvals.length === 0 ? html`<p class="muted">None pending.</p>` : html`<ul class="plain">${m.approvals.map((a) => html`<li><a href="#/approvals"><code>${a.id}</code></a> · <${MarkedText} text=${a.summary ?? a.action} ours="…" /></li>`)}</ul>`}
    <h2>Lightning payments in flight and NWC connections</h2>
    ${m.lightningPayments.length + m.nwcConnections.length === 0 ? html`<p class="muted">None.</p>` : html`<ul class="plain">
      ${m.lightningPayments.map((l) => html`<li>payment <code>${l.id}</code> · ${groupDigits(l.amountMsat)} msat</li>`)}
      ${m.nwcConnections.map((c) => html`<li>NWC client <code>${shortHex(c.clientPubkey, 8, 6)}</code> on session <code>${c.sessionId}</code> · ${c.open ? 'open' : 'ended with its session'}</li>`)}
    </ul>`}
    ${m.notes.map((n) => html`<p class="muted">${n}</p>`)}
  </section>`;
}

/** Live as words, never colour alone; the evidence on hover and for screen readers. */
function Live({ item }) {
  if (item.live === undefined) return html`<span class="muted">not read</span>`;
  const word = item.live === true ? 'live' : item.live === false ? 'not live' : 'unknown';
  const cls = item.live === true ? 'badge badge-frozen' : item.live === false ? 'badge badge-retired' : 'badge badge-pending';
  return html`<span class=${cls}>${word}</span> <span class="muted">${item.evidence?.message ?? ''}</span>`;
}

function unixTime(seconds) {
  return seconds === undefined ? '' : formatTime(new Date(seconds * 1000).toISOString());
}
