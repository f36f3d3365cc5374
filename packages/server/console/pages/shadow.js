import { useState } from 'preact/hooks';
import { api, get, post, qs } from '../api.js';
import { ConfirmButton, DecisionBadge, ErrorNote, Loading, Rules, useLoad } from '../components.js';
import { formatTime } from '../format.js';
import { html } from '../html.js';
import { MarkedText } from '../marked-text.js';

const EVENTS = ['policy.shadow_set', 'policy.shadow_cleared', 'policy.shadow_promoted'];

/**
 * The scopes with a staged candidate: the newest shadow event of each scope is a `policy.shadow_set`. Read from
 * the audit log (there is no list route), then each candidate from its own route.
 */
async function loadStaged() {
  const pages = await Promise.all(EVENTS.map((type) => get(`/v1/audit${qs({ type, order: 'newest', limit: 200 })}`)));
  const last = new Map();
  for (const e of pages.flatMap((p) => p.entries).sort((a, b) => a.seq - b.seq)) last.set(e.data?.scope, e.type);
  const scopes = [...last].filter(([scope, type]) => scope && type === 'policy.shadow_set').map(([scope]) => scope);
  scopes.sort((a, b) => (a === 'fleet' ? -1 : b === 'fleet' ? 1 : a.localeCompare(b)));
  const staged = await Promise.all(scopes.map(async (scope) => {
    const [shadow, diffs] = await Promise.all([get(`/v1/policies/${encodeURIComponent(scope)}/shadow`), get(`/v1/policies/${encodeURIComponent(scope)}/shadow/differences${qs({ limit: 100 })}`)]);
    return { scope, shadow, differences: diffs.differences };
  }));
  return staged;
}

/** Candidate policies evaluated on real traffic: how they would have decided, what differs, unstage or promote. */
export function ShadowPage() {
  const staged = useLoad(loadStaged);
  const agents = useLoad(() => get('/v1/agents?limit=500'));
  const [notice, setNotice] = useState(undefined);
  const names = new Map((agents.data?.agents ?? []).map((a) => [a.id, a.name]));
  // Scopes are `fleet` or `agent:<id>`, as the shadow routes and their audit entries name them.
  const label = (scope) => (scope === 'fleet' ? 'Fleet policy' : `Agent ${names.get(scope.replace(/^agent:/, '')) ?? scope}`);
  const unstage = async (scope) => {
    await api('DELETE', `/v1/policies/${encodeURIComponent(scope)}/shadow`);
    setNotice(`Unstaged the candidate of ${label(scope)}.`);
    staged.reload();
  };
  const promote = async (scope) => {
    const done = await post(`/v1/policies/${encodeURIComponent(scope)}/shadow/promote`);
    setNotice(`Promoted the candidate of ${label(scope)}: version ${done.record.version} is active.`);
    staged.reload();
  };
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Shadow policies</h1>
    <p class="muted">A staged candidate is evaluated on every request beside the active policy and decides nothing.</p>
    <p role="status" class="note note-ok" hidden=${!notice}>${notice}</p>
    ${staged.loading && !staged.data ? html`<${Loading} what="Loading candidates" />` : null}
    <${ErrorNote} error=${staged.error} />
    ${staged.data && staged.data.length === 0 ? html`<p class="muted">No candidate is staged: stage one with <code>airlock policy shadow</code> or <code>PUT /v1/policies/{scope}/shadow</code>.</p>` : null}
    ${(staged.data ?? []).map((s) => html`<${Candidate} key=${s.scope} staged=${s} title=${label(s.scope)} names=${names} onUnstage=${unstage} onPromote=${promote} />`)}
  </section>`;
}

function Candidate({ staged: { scope, shadow, differences }, title, names, onUnstage, onPromote }) {
  const o = shadow.summary.outcomes;
  const id = `shadow-${scope}`;
  return html`<article class="card" aria-labelledby=${id} data-scope=${scope}>
    <h2 id=${id}>${title}</h2>
    <p>Candidate <code>${shadow.candidate.hash.slice(0, 16)}</code> staged by ${shadow.candidate.author} ${formatTime(shadow.candidate.createdAt)}, against ${shadow.active ? `active version ${shadow.active.version}` : 'no active policy'}.</p>
    <ul class="stats" aria-label=${`${title}: outcomes so far`}>
      <li><span class="stat-value">${shadow.summary.evaluated}</span> evaluated</li>
      <li><span class="stat-value">${o.same}</span> same</li>
      <li><span class="stat-value">${o.rules_differ}</span> rules differ</li>
      <li><span class="stat-value">${o.would_allow}</span> would allow</li>
      <li><span class="stat-value">${o.would_deny}</span> would deny</li>
      <li><span class="stat-value">${o.would_require_approval}</span> would hold</li>
      <li><span class="stat-value">${o.error}</span> errors</li>
    </ul>
    <div class="actions">
      <${ConfirmButton} label="Promote" confirmLabel="Confirm promote" question=${`Make this candidate the active policy of ${title}?`} onConfirm=${() => onPromote(scope)} />
      <${ConfirmButton} kind="danger" label="Unstage" confirmLabel="Confirm unstage" question=${`Unstage the candidate of ${title}? Its summary stays in the audit log.`} onConfirm=${() => onUnstage(scope)} />
    </div>
    <details>
      <summary>Candidate document</summary>
      <pre class="policy" tabindex="0" aria-label="Candidate document">${JSON.stringify(shadow.document, null, 2)}</pre>
    </details>
    <h3>Differences <span class="count">${differences.length}</span></h3>
    ${differences.length === 0 ? html`<p class="muted">No request decided differently yet.</p>` : html`<div class="table-wrap"><table class="differences">
      <caption class="visually-hidden">${`${title}: requests the candidate decides differently, oldest first`}</caption>
      <thead><tr><th scope="col">Seq</th><th scope="col">Agent</th><th scope="col">Request</th><th scope="col">Outcome</th><th scope="col">Active</th><th scope="col">Candidate</th></tr></thead>
      <tbody>${differences.map((d) => html`<tr>
        <td class="num"><a href=${`#/audit?seq=${d.auditSeq}`}>${d.auditSeq}</a></td>
        <td>${names.get(d.agentId) ?? d.agentId}</td>
        <td><${MarkedText} text=${d.summary ?? d.action ?? ''} ours="…" /><br /><span class="muted">${formatTime(d.at)}</span></td>
        <td><code>${d.kind}</code></td>
        <td><${DecisionBadge} decision=${d.active.decision} /> <${Rules} violations=${d.active.violations} allowedBy=${d.active.allowedBy} /></td>
        <td>${d.candidate ? html`<${DecisionBadge} decision=${d.candidate.decision} /> <${Rules} violations=${d.candidate.violations} allowedBy=${d.candidate.allowedBy} />` : html`<span class="code">${d.error ?? 'error'}</span>`}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </article>`;
}
