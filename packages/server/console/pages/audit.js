import { useState } from 'preact/hooks';
import { get, post, qs } from '../api.js';
import { DecisionBadge, ErrorNote, Loading, Rules, useLoad } from '../components.js';
import { formatTime, pretty, shortHex } from '../format.js';
import { html } from '../html.js';
import { MarkedText } from '../marked-text.js';

const EMPTY = { agent: '', decision: '', type: '', from: '', to: '', limit: '100' };

/** The audit log: search (agent, decision, type, time range; newest first) and verify the whole log. */
export function AuditPage({ query }) {
  const seq = query.get('seq');
  const [form, setForm] = useState(EMPTY);
  const [search, setSearch] = useState(EMPTY);
  const params = seq
    ? { after: Math.max(0, Number(seq) - 1), limit: 1 }
    : { agent: search.agent.trim(), decision: search.decision, type: search.type.trim(), from: toIso(search.from), to: toIso(search.to), limit: search.limit, order: 'newest' };
  const entries = useLoad(() => get(`/v1/audit${qs(params)}`), [JSON.stringify(params)]);
  const field = (name) => ({ value: form[name], onInput: (e) => setForm({ ...form, [name]: e.currentTarget.value }) });
  const submit = (e) => {
    e.preventDefault();
    if (seq) location.hash = '#/audit';
    setSearch({ ...form });
  };
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Audit log</h1>
    <${VerifyPanel} />
    <form class="search" role="search" aria-label="Search the audit log" onSubmit=${submit}>
      <label>Agent (name or id)<input type="text" name="agent" autocomplete="off" ...${field('agent')} /></label>
      <label>Decision
        <select name="decision" ...${field('decision')}>
          <option value="">any</option><option value="allow">allow</option><option value="deny">deny</option><option value="require_approval">require approval</option><option value="error">error</option>
        </select>
      </label>
      <label>Type<input type="text" name="type" placeholder="sign.request" autocomplete="off" ...${field('type')} /></label>
      <label>From<input type="datetime-local" name="from" ...${field('from')} /></label>
      <label>To<input type="datetime-local" name="to" ...${field('to')} /></label>
      <label>At most
        <select name="limit" ...${field('limit')}><option>50</option><option>100</option><option>500</option><option>1000</option></select>
      </label>
      <button type="submit" class="btn btn-primary">Search</button>
      <button type="button" class="btn btn-secondary" onClick=${() => (setForm(EMPTY), setSearch(EMPTY))}>Clear</button>
    </form>
    ${seq ? html`<p>Entry ${seq} only. <a href="#/audit">Show the newest entries</a></p>` : null}
    ${entries.loading && !entries.data ? html`<${Loading} what="Searching" />` : null}
    <${ErrorNote} error=${entries.error} />
    ${entries.data ? html`<p role="status" class="muted">${entries.data.entries.length} ${entries.data.entries.length === 1 ? 'entry' : 'entries'}${seq ? '' : ', newest first'}.</p>
      <div class="table-wrap"><table class="audit">
        <caption class="visually-hidden">Audit entries</caption>
        <thead><tr><th scope="col">Seq</th><th scope="col">When</th><th scope="col">Type</th><th scope="col">Actor</th><th scope="col">Agent</th><th scope="col">Decision</th><th scope="col">Rules / details</th></tr></thead>
        <tbody>${entries.data.entries.map((e) => html`<tr>
          <td class="num">${e.seq}</td>
          <td>${formatTime(e.at)}</td>
          <td><code>${e.type}</code></td>
          <td>${e.actor}</td>
          <td>${e.agentId ? html`<a href=${`#/agents/${encodeURIComponent(e.agentId)}`}><code>${shortHex(e.agentId, 10, 4)}</code></a>` : ''}</td>
          <td><${DecisionBadge} decision=${e.decision} /></td>
          <td>
            <${Rules} violations=${e.data?.violations} allowedBy=${e.data?.allowedBy} code=${e.data?.errorCode} />
            <details><summary>Entry ${e.seq} data</summary><pre tabindex="0" dir="ltr"><${MarkedText} text=${pretty(e.data)} json /></pre><p class="muted">hash <code>${e.hash}</code></p></details>
          </td>
        </tr>`)}</tbody>
      </table></div>` : null}
  </section>`;
}

/** `datetime-local` value (local time) -> ISO, which the audit route takes. */
function toIso(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** POST /v1/audit/verify: every entry, the Merkle tree and every signed tree head, checked by the daemon. */
function VerifyPanel() {
  const [state, setState] = useState({ busy: false });
  const verify = async () => {
    setState({ busy: true });
    try {
      setState({ busy: false, result: await post('/v1/audit/verify') });
    } catch (error) {
      setState({ busy: false, error });
    }
  };
  const r = state.result;
  return html`<div class="verify">
    <button type="button" class="btn btn-primary" onClick=${verify} disabled=${state.busy}>${state.busy ? 'Verifying…' : 'Verify the audit log'}</button>
    <div role="status" aria-live="polite" class="verify-result">
      ${r && r.ok ? html`<p class="note note-ok"><strong>Verified.</strong> ${r.entries} entries, ${r.treeHeads} signed tree heads${r.checkpoints ? `, ${r.checkpoints} legacy checkpoints` : ''}; root <code>${shortHex(r.rootHash, 12, 8)}</code>; ${r.unanchored} entries after the last signed head.</p>` : null}
      ${r && !r.ok ? html`<p class="note note-error"><strong>Verification failed</strong>${r.firstBad ? html` at entry ${r.firstBad.seq}: ${r.firstBad.reason}` : ''}. Treat the log as tampered with: see docs/operations.md.</p>` : null}
    </div>
    <${ErrorNote} error=${state.error} />
  </div>`;
}
