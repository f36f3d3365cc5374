// Part 6, replay: every signed request is replayed with its idempotency key (sequentially and several at
// once), with the key and an altered payload, and under a fresh key; every approval is approved twice (one
// after the other and concurrently) and denied after approval; revoked and expired sessions retry what they
// signed before. All must be refused or replayed identically, and the ledger must count each signature once.
import { ALICE, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, USDC_ASSET, type Harness, type StoreKind } from '../packages/server/src/testing/harness.ts';
import { brief, Violations, type Mode, type Part, type PartReport } from './lib.ts';

const BUDGET = 10n ** 15n;
const APPROVAL_ABOVE = 50_000_000n;

interface Signed {
  path: string;
  body: unknown;
  key: string;
  answer: any;
  amount: bigint;
}

/** USDC the ledger holds for the agent, read through an operator dry-run that must exceed the budget. */
async function ledgerUsed(h: Harness, agent: string): Promise<bigint | undefined> {
  const probe = await h.admin('POST', '/v1/policies/dry-run', { agent, action: 'evm.transaction', payload: usdcTransfer(ALICE, BUDGET, 0) });
  const used = probe.body?.decision?.violations?.find((x: any) => x.code === 'budget_exceeded')?.used;
  return used === undefined ? undefined : BigInt(used);
}

async function replayScenario(store: StoreKind, requests: number, v: Violations) {
  const h = await startHarness({ store, manualClock: true });
  const figures = { replays: 0, conflicts: 0, freshKeyResigns: 0, freshKeyRecounted: 0, nonceRaceRefused: 0, approvalsReused: 0, staleSessionRetries: 0 };
  try {
    const label = store;
    const { agent, token, session } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: BUDGET.toString(), daily: BUDGET.toString(), approvalAbove: APPROVAL_ABOVE.toString() }) });
    const sign = (path: string, body: unknown, key?: string, t = token) => h.call('POST', path, { token: t, body, ...(key ? { headers: { 'idempotency-key': key } } : {}) });
    const validBefore = Math.floor(h.clock!.now() / 1000) + 3000;

    // 1. Sign: transactions and EIP-3009 authorizations, each under its own key.
    const signed: Signed[] = [];
    for (let i = 0; i < requests; i++) {
      const amount = BigInt(1_000 + i);
      const [path, body] = i % 2
        ? ['/v1/sign/typed-data', usdcAuthorization(agent.address, ALICE, amount, validBefore, `0x${i.toString(16).padStart(64, '0')}`)]
        : ['/v1/sign/transaction', usdcTransfer(ALICE, amount, i)];
      const key = `replay-${i}`;
      const answer = await sign(path, body, key);
      if (v.check(answer.status === 200, () => `${label}: request ${i} not signed: ${answer.status} ${brief(answer.body)}`)) signed.push({ path, body, key, answer: answer.body, amount });
    }
    let expected = signed.reduce((s, x) => s + x.amount, 0n);

    // 2. The same key and payload, once and then five at a time: the identical answer, marked as a replay.
    for (const s of signed) {
      const again = [await sign(s.path, s.body, s.key), ...(await Promise.all(Array.from({ length: 5 }, () => sign(s.path, s.body, s.key))))];
      for (const r of again) {
        figures.replays++;
        v.check(r.status === 200 && r.body.replayed === true && r.body.auditSeq === s.answer.auditSeq && r.body.signature === s.answer.signature && r.body.signedTransaction === s.answer.signedTransaction,
          () => `${label}: replay of ${s.key} differs: ${r.status} ${brief(r.body)}`);
      }
      // 3. The same key with an altered payload: refused, nothing signed.
      const altered = s.path === '/v1/sign/transaction' ? usdcTransfer(ALICE, s.amount + 1n, 999_999) : usdcAuthorization(agent.address, ALICE, s.amount + 1n, validBefore);
      const conflict = await sign(s.path, altered, s.key);
      figures.conflicts++;
      v.check(conflict.status === 409 && conflict.body.error?.code === 'idempotency_conflict' && !conflict.body.signature, () => `${label}: altered payload under ${s.key}: ${conflict.status} ${brief(conflict.body)}`);
    }
    let used = await ledgerUsed(h, agent.name);
    v.check(used === expected, () => `${label}: after replays the ledger holds ${used}, the distinct signatures ${expected}`);

    // 4. The same payload under a fresh key. A transaction is a new request: Airlock signs it again (RFC 6979:
    // the same bytes) and the ledger counts it again (conservative: the chain accepts only one). An
    // authorization's nonce is already claimed by this very digest: a replay, the same signature, not recounted.
    let recounted = expected;
    for (const s of signed.slice(0, 4)) {
      const fresh = await sign(s.path, s.body, `${s.key}-fresh`);
      figures.freshKeyResigns++;
      if (s.path === '/v1/sign/typed-data') {
        v.check(fresh.status === 200 && fresh.body.replayed === true && fresh.body.auditSeq === s.answer.auditSeq && fresh.body.signature === s.answer.signature,
          () => `${label}: fresh key for authorization ${s.key} is not a replay: ${fresh.status} ${brief(fresh.body)}`);
      } else if (fresh.status === 200) {
        v.check(fresh.body.auditSeq !== s.answer.auditSeq && !fresh.body.replayed, () => `${label}: fresh key for ${s.key} answered as a replay`);
        recounted += s.amount;
      } else v.check(fresh.status === 403 || fresh.status === 409, () => `${label}: fresh key for ${s.key}: ${fresh.status} ${brief(fresh.body)}`);
    }
    // 4b. Many different authorizations race for one fresh nonce: exactly one is signed and charged, every
    // other is refused with nonce_reused (the claim is taken in the signing transaction, so no race wins twice).
    const raceNonce = `0x${'5e'.repeat(32)}`;
    const racers = await Promise.all(Array.from({ length: 12 }, (_, i) => sign('/v1/sign/typed-data', usdcAuthorization(agent.address, ALICE, BigInt(2_000 + i), validBefore, raceNonce))));
    const winners = racers.filter((r) => r.status === 200);
    figures.nonceRaceRefused = racers.filter((r) => r.status === 409 && r.body.error?.code === 'nonce_reused').length;
    if (v.check(winners.length === 1 && figures.nonceRaceRefused === racers.length - 1, () => `${label}: nonce race: ${winners.length} signed, ${figures.nonceRaceRefused} nonce_reused`)) {
      const amount = BigInt(winners[0]!.body.intent.spends[0].amount);
      expected += amount;
      recounted += amount;
    }
    used = await ledgerUsed(h, agent.name);
    v.check(used !== undefined && used >= expected && used <= recounted, () => `${label}: after fresh-key retries the ledger holds ${used}, expected ${expected}..${recounted}`);
    figures.freshKeyRecounted = Number(used! - expected);
    // From here on the ledger's own figure is the baseline (it was just checked to lie within the bounds).
    const allowedBefore = recounted;
    expected = used ?? expected;

    let approvedTotal = 0n;
    // 5. Approvals: approve, approve again, deny after approval; and two approvals racing for one request.
    for (let i = 0; i < 3; i++) {
      const amount = APPROVAL_ABOVE + BigInt(i + 1);
      const key = `approval-${i}`;
      const pending = await sign('/v1/sign/transaction', usdcTransfer(ALICE, amount, 10_000 + i), key);
      if (!v.check(pending.status === 202 && pending.body.approvalId, () => `${label}: approval request ${i}: ${pending.status} ${brief(pending.body)}`)) continue;
      const id = pending.body.approvalId;
      const approvals = i === 0
        ? [await h.admin('POST', `/v1/approvals/${id}/approve`), await h.admin('POST', `/v1/approvals/${id}/approve`)]
        : await Promise.all([h.admin('POST', `/v1/approvals/${id}/approve`), h.admin('POST', `/v1/approvals/${id}/approve`)]);
      figures.approvalsReused++;
      const ok = approvals.filter((r) => r.status === 200);
      v.check(ok.length === 1, () => `${label}: approval ${i} approved ${ok.length} times: ${brief(approvals.map((r) => [r.status, r.body?.error?.code]))}`);
      v.check(approvals.filter((r) => r.status === 409 && r.body.error?.code === 'approval_not_pending').length === 1, () => `${label}: second approval of ${i} not refused with approval_not_pending`);
      const deny = await h.admin('POST', `/v1/approvals/${id}/deny`, {});
      v.check(deny.status === 409 && deny.body.error?.code === 'approval_not_pending', () => `${label}: deny after approve: ${deny.status} ${brief(deny.body)}`);
      // The agent's own retry of the request replays the pending answer; it opens no second approval.
      const retry = await sign('/v1/sign/transaction', usdcTransfer(ALICE, amount, 10_000 + i), key);
      v.check(retry.body?.replayed === true && (retry.body.approvalId === undefined || retry.body.approvalId === id), () => `${label}: retry after approval: ${retry.status} ${brief(retry.body)}`);
      if (ok.length) {
        expected += amount;
        approvedTotal += amount;
      }
    }
    const open = (await h.admin('GET', '/v1/approvals?state=pending')).body.approvals;
    v.check(open.length === 0, () => `${label}: ${open.length} approvals still pending after the retries`);
    used = await ledgerUsed(h, agent.name);
    v.check(used === expected, () => `${label}: after approvals the ledger holds ${used}, expected ${expected}`);

    // 6. A revoked session and an expired one retry what they signed before, with and without the key.
    await h.admin('POST', `/v1/sessions/${session.id}/revoke`);
    for (const s of signed) {
      for (const key of [s.key, undefined]) {
        const r = await sign(s.path, s.body, key);
        figures.staleSessionRetries++;
        v.check(r.status === 401 && r.body.error?.code === 'session_revoked' && !r.body.signature, () => `${label}: revoked session retry of ${s.key}: ${r.status} ${brief(r.body)}`);
      }
    }
    const short = await provisionAgent(h, { name: `short-${store}`, policy: usdcPolicy(), ttl: '1m' });
    const before = await sign('/v1/sign/transaction', usdcTransfer(ALICE, 5n, 1), 'short-1', short.token);
    v.check(before.status === 200, () => `${label}: short session could not sign: ${before.status}`);
    h.clock!.advance(61_000);
    for (const key of ['short-1', 'short-2', undefined]) {
      const r = await sign('/v1/sign/transaction', usdcTransfer(ALICE, 5n, 1), key, short.token);
      figures.staleSessionRetries++;
      v.check(r.status === 401 && r.body.error?.code === 'session_expired' && !r.body.signature, () => `${label}: expired session retry (${key}): ${r.status} ${brief(r.body)}`);
    }
    const shortUsed = await ledgerUsed(h, short.agent.name);
    v.check(shortUsed === undefined || shortUsed === 5n, () => `${label}: expired-session agent ledger holds ${shortUsed}, expected 5`);

    // Finally the audit log agrees: one allow entry per counted signature, and the chain verifies.
    const allowed = (await h.admin('GET', `/v1/audit?agent=${agent.name}&decision=allow&type=sign.request&limit=1000`)).body.entries;
    const allowedSum = allowed.flatMap((e: any) => e.data.intent.spends).filter((s: any) => s.asset === USDC_ASSET && s.kind !== 'fee').reduce((a: bigint, s: any) => a + BigInt(s.amount), 0n);
    // Approved requests are recorded as require_approval plus an approval decision, not as sign.request allows.
    v.check(allowedSum === allowedBefore, () => `${label}: audit allows ${allowedSum}, the client holds ${allowedBefore} in signatures outside approvals`);
    const verify = await h.admin('POST', '/v1/audit/verify');
    v.check(verify.body?.ok === true, () => `${label}: audit verify: ${brief(verify.body)}`);
    return figures;
  } finally {
    await h.close();
  }
}

export const replayPart: Part = {
  name: 'replay',
  summary: 'idempotent replays, altered payloads and keys, approvals reused, revoked and expired sessions',
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    const figures: PartReport['figures'] = {};
    const stores: StoreKind[] = ['sqlite', 'postgres'];
    for (const store of stores) {
      const f = await replayScenario(store, mode === 'full' ? 200 : 20, v);
      for (const [k, n] of Object.entries(f)) figures[`${store}.${k}`] = n;
    }
    return { figures, violations: v.done() };
  },
};
