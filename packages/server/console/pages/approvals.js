import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { ConfirmButton, ErrorNote, Loading, Rules, StatusBadge, useLoad } from '../components.js';
import { formatTime, groupDigits, relativeTime, shortAsset } from '../format.js';
import { html } from '../html.js';
import { KeyFileError, loadApproverKey, signVote } from '../approver-key.js';
import { MarkedText, UnusualCharactersNote, unusualCharacters } from '../marked-text.js';
import { ProfileFields, readProfileContent } from '../nostr-profile.js';

/** Requests held for a human: what each would sign and which rule asked, approve (signs) or reject (releases). */
export function ApprovalsPage() {
  const pending = useLoad(() => get('/v1/approvals'));
  const agents = useLoad(() => get('/v1/agents?limit=500'));
  const decided = useLoad(() => get('/v1/approvals?state=all'));
  const approvers = useLoad(() => get('/v1/approvers'));
  const [notice, setNotice] = useState(undefined);
  // The approver credential lives in this component's state only: gone on Forget, on leaving the page, on reload.
  const [credential, setCredential] = useState(undefined);
  const names = new Map((agents.data?.agents ?? []).map((a) => [a.id, a.name]));
  const refresh = () => {
    pending.reload();
    decided.reload();
  };
  const approve = async (a) => {
    const done = await post(`/v1/approvals/${encodeURIComponent(a.id)}/approve`);
    // The operator's part of a quorum approval is recorded; the approvers' votes still decide when it is granted.
    setNotice(done.state === 'pending' ? `The operator's approval of ${a.id} is recorded: it waits for the approvers' votes.` : `Approved ${a.id}: ${done.result ? 'signed and handed to the agent' : done.state}.`);
    refresh();
  };
  const reject = async (a, reason) => {
    await post(`/v1/approvals/${encodeURIComponent(a.id)}/deny`, reason ? { reason } : {});
    setNotice(`Rejected ${a.id}: the hold on the budget is released.`);
    refresh();
  };
  const vote = async (a, decision, comment) => {
    const body = await signVote(credential, { approvalId: a.id, digest: a.digest, decision, comment });
    const done = await post(`/v1/approvals/${encodeURIComponent(a.id)}/votes`, body);
    setNotice(`${credential.approver} voted ${decision} on ${a.id}: ${done.state === 'pending' ? `${done.votes?.length ?? 0} vote(s) so far` : done.state === 'approved' ? 'approved, signed and handed to the agent' : done.state}.`);
    refresh();
  };
  const list = pending.data?.approvals ?? [];
  const hasQuorum = list.some((a) => a.quorum?.length);
  const recent = (decided.data?.approvals ?? []).filter((a) => a.state !== 'pending').sort((x, y) => (y.decidedAt ?? y.createdAt).localeCompare(x.decidedAt ?? x.createdAt)).slice(0, 20);
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Approvals</h1>
    <p role="status" class="note note-ok" hidden=${!notice}>${notice}</p>
    ${hasQuorum || credential ? html`<${ApproverCredential} credential=${credential} approvers=${approvers.data?.approvers ?? []} onLoad=${setCredential} />` : null}
    <h2>Pending <span class="count">${list.length}</span></h2>
    ${pending.loading && !pending.data ? html`<${Loading} what="Loading approvals" />` : null}
    <${ErrorNote} error=${pending.error} />
    ${pending.data && list.length === 0 ? html`<p class="muted">Nothing waits for approval.</p>` : null}
    <ul class="cards" aria-label="Pending approvals">
      ${list.map((a) => html`<${PendingApproval} key=${a.id} approval=${a} agentName=${names.get(a.agentId) ?? a.agentId} approvers=${approvers.data?.approvers ?? []} credential=${credential} onVote=${vote} onApprove=${approve} onReject=${reject} />`)}
    </ul>
    <h2>Recently decided</h2>
    ${recent.length === 0 ? html`<p class="muted">None yet.</p>` : html`<div class="table-wrap"><table>
      <caption class="visually-hidden">Recently decided approvals</caption>
      <thead><tr><th scope="col">Approval</th><th scope="col">Agent</th><th scope="col">Request</th><th scope="col">State</th><th scope="col">Decided</th><th scope="col">By</th></tr></thead>
      <tbody>${recent.map((a) => html`<tr>
        <td><code>${a.id}</code></td><td><a href=${`#/agents/${encodeURIComponent(names.get(a.agentId) ?? a.agentId)}`}>${names.get(a.agentId) ?? a.agentId}</a></td>
        <td><${MarkedText} text=${a.summary?.intent?.summary ?? a.action} ours=${SUMMARY_MARKS} /></td><td><${StatusBadge} status=${a.state} /></td>
        <td>${a.decidedAt ? formatTime(a.decidedAt) : ''}</td><td>${a.decidedBy ?? ''}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

/**
 * Loads an approver's key file (file picker or paste) into page memory: checked against the registered public key,
 * never sent to the daemon, never stored. The text field is cleared once read.
 */
function ApproverCredential({ credential, approvers, onLoad }) {
  const [error, setError] = useState(undefined);
  const [pasted, setPasted] = useState('');
  const load = async (text) => {
    setError(undefined);
    try {
      onLoad(await loadApproverKey(text, approvers));
    } catch (e) {
      setError(e instanceof KeyFileError ? { code: 'invalid_key_file', message: e.message } : e);
    } finally {
      setPasted('');
    }
  };
  const onFile = async (e) => {
    const file = e.currentTarget.files?.[0];
    e.currentTarget.value = '';
    if (file) await load(await file.text());
  };
  return html`<section class="card approver-key" aria-labelledby="approver-key-title">
    <h2 id="approver-key-title">Vote as an approver</h2>
    ${credential
      ? html`<p role="status">Signing as <strong>${credential.approver}</strong> (${credential.groups.join(', ')}), key <code>${credential.publicKey.slice(0, 12)}…</code>, held in this page only.
          <button type="button" class="btn btn-secondary" onClick=${() => onLoad(undefined)}>Forget key</button></p>`
      : html`<p class="muted">Approvals held for a quorum are decided by approvers' signed votes, not by the admin token. Load your key file: it stays in this page's memory, is never sent to the daemon and is forgotten when you leave the page.</p>`}
    <div class="actions">
      <label class="inline-field">Approver key file <input type="file" accept=".json,application/json" onChange=${onFile} /></label>
      <label class="inline-field">or paste it <textarea rows="1" cols="30" autocomplete="off" spellcheck="false" value=${pasted} onInput=${(e) => setPasted(e.currentTarget.value)}></textarea></label>
      <button type="button" class="btn btn-secondary" disabled=${!pasted.trim()} onClick=${() => load(pasted)}>Use pasted key</button>
    </div>
    <${ErrorNote} error=${error} />
  </section>`;
}

/**
 * A quorum approval: each requirement, the votes so far, and the approvers who may vote. The operator's requirement
 * (`operator`: a tier the operator decides that the quorum of a less trusted layer cannot replace, or a tripped
 * breaker) takes no votes: it shows whether the operator has approved.
 */
function Quorum({ approval: a, approvers }) {
  const voted = new Map((a.votes ?? []).map((v) => [v.approver, v]));
  return html`<div class="quorum">
    ${a.quorum.map((q) => {
      if (q.operator) {
        return html`<p><strong>Operator:</strong> ${q.operator.approvedBy ? html`<${StatusBadge} status="approved" /> by ${q.operator.approvedBy}` : 'not approved yet: the operator\'s approval is needed as well as the votes'} <span class="muted">(<code>${q.rule}</code>)</span></p>`;
      }
      const eligible = approvers.filter((p) => p.status === 'active' && (p.groups ?? []).some((g) => q.groups.includes(g)));
      const count = (a.votes ?? []).filter((v) => v.decision === 'approve' && eligible.some((p) => p.name === v.approver)).length;
      return html`<p><strong>Quorum:</strong> ${count} of ${q.min} approvals from ${q.groups.join(', ')} <span class="muted">(<code>${q.rule}</code>)</span></p>
        <ul class="approvers" aria-label=${`Approvers of ${q.groups.join(', ')}`}>${eligible.map((p) => html`<li>${p.name}: ${voted.has(p.name) ? html`<${StatusBadge} status=${voted.get(p.name).decision === 'approve' ? 'approved' : 'denied'} /> <span class="muted">${formatTime(voted.get(p.name).at)}</span>` : html`<span class="muted">not voted</span>`}</li>`)}</ul>`;
    })}
  </div>`;
}

/** What the daemon's summaries write themselves (`nostr kind 0 event 2ac3b2a6f27f… (17 bytes, 1 tags)`). */
const SUMMARY_MARKS = '…';

/**
 * A held request. Everything the agent wrote (the request as sent, the summary decoded from it, a kind 0 profile's
 * fields) is drawn through MarkedText: wrapped, nothing off screen, every character outside printable ASCII marked,
 * so that the card cannot show something else than what would be signed (found by review).
 */
function PendingApproval({ approval: a, agentName, approvers, credential, onVote, onApprove, onReject }) {
  const [reason, setReason] = useState('');
  const quorum = a.quorum?.length > 0;
  // The admin token approves a quorum approval only where the operator's own approval is asked for and not given yet.
  const operatorAsked = quorum && a.quorum.some((q) => q.operator && q.operator.approvedBy === undefined);
  const mayVote = credential && quorum && a.quorum.some((q) => credential.groups.some((g) => q.groups.includes(g))) && !(a.votes ?? []).some((v) => v.approver === credential.approver);
  const intent = a.summary?.intent ?? {};
  const titleId = `apr-${a.id}`;
  const requestJson = a.request !== undefined ? JSON.stringify(a.request, null, 2) : undefined;
  const profile = a.action === 'nostr.event' && a.request?.kind === 0 && typeof a.request.content === 'string' ? a.request.content : undefined;
  const profileTexts = profile === undefined ? [] : (readProfileContent(profile).fields ?? []).flatMap((f) => [f.key, ...f.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)))]);
  // What a payment buys (x402, L402): the resource as the agent named it, which the signature does not bind.
  const paysFor = intent.payment?.resource;
  const unusual = unusualCharacters([{ text: requestJson ?? '', json: true }, { text: intent.summary ?? '', ours: SUMMARY_MARKS }, intent.to ?? '', a.action, paysFor ?? '', ...(intent.spends ?? []).map((s) => `${s.amount} ${s.asset}`), ...profileTexts]);
  return html`<li class="card" aria-labelledby=${titleId} data-approval=${a.id}>
    <h3 id=${titleId}><${MarkedText} text=${intent.summary ?? a.action} ours=${SUMMARY_MARKS} /></h3>
    <${UnusualCharactersNote} found=${unusual} />
    <dl class="facts">
      <div><dt>Agent</dt><dd><a href=${`#/agents/${encodeURIComponent(agentName)}`}>${agentName}</a></dd></div>
      <div><dt>Action</dt><dd><code><${MarkedText} text=${a.action} /></code></dd></div>
      ${intent.to ? html`<div><dt>To</dt><dd><code><${MarkedText} text=${intent.to} /></code></dd></div>` : null}
      ${paysFor ? html`<div><dt>Pays for</dt><dd><code><${MarkedText} text=${paysFor} /></code> <span class="muted">(${intent.payment.protocol}: the resource as the agent named it)</span></dd></div>` : null}
      ${(intent.spends ?? []).map((s) => html`<div><dt>Spends</dt><dd><${MarkedText} text=${groupDigits(s.amount)} /> <span title=${s.asset}><${MarkedText} text=${shortAsset(s.asset)} ours="…" /></span></dd></div>`)}
      <div><dt>Requested</dt><dd>${formatTime(a.createdAt)}</dd></div>
      <div><dt>Expires</dt><dd>${formatTime(a.expiresAt)} (${relativeTime(a.expiresAt)})</dd></div>
      <div><dt>Approval id</dt><dd><code>${a.id}</code></dd></div>
    </dl>
    <div><strong>Why it needs a human:</strong> <${Rules} violations=${a.summary?.violations} /></div>
    ${profile !== undefined ? html`<${ProfileFields} content=${profile} />` : null}
    ${requestJson !== undefined ? html`<details class="request" open=${a.action.startsWith('nostr.')}><summary>The request as sent (what is signed)</summary><pre dir="ltr"><${MarkedText} text=${requestJson} json /></pre></details>` : null}
    ${quorum ? html`<${Quorum} approval=${a} approvers=${approvers} />` : null}
    <div class="actions">
      ${quorum
        ? mayVote
          ? html`<${ConfirmButton} label=${`Approve as ${credential.approver}`} confirmLabel="Sign and send vote" question=${`Sign an approve vote on ${a.id} (digest ${a.digest.slice(0, 12)}…) as ${credential.approver}?`} onConfirm=${() => onVote(a, 'approve', reason.trim())} />
              <${ConfirmButton} kind="danger" label=${`Reject as ${credential.approver}`} confirmLabel="Sign and send reject" question=${`Sign a reject vote on ${a.id} as ${credential.approver}? One reject denies it.`} onConfirm=${() => onVote(a, 'reject', reason.trim())} />`
          : html`<span class="muted">${credential ? `${credential.approver} cannot vote on this one (not in its groups, or already voted).` : 'Load an approver key file above to vote.'}</span>`
        : html`<${ConfirmButton} label="Approve" confirmLabel="Confirm approve" question=${`Approve and sign ${a.id}?`} onConfirm=${() => onApprove(a)} />`}
      ${operatorAsked ? html`<${ConfirmButton} label="Approve as operator" confirmLabel="Confirm operator approval" question=${`Give the operator's approval to ${a.id}? It is signed when the approvers' votes meet the rest of its quorum (at once if they already do).`} onConfirm=${() => onApprove(a)} />` : null}
      <label class="inline-field">${quorum ? 'Comment or reason (optional)' : 'Reason (optional)'} <input type="text" maxlength="500" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} /></label>
      <${ConfirmButton} kind="danger" label="Reject" confirmLabel="Confirm reject" question=${`Reject ${a.id}? The budget hold is released.`} onConfirm=${() => onReject(a, reason.trim())} />
    </div>
  </li>`;
}
