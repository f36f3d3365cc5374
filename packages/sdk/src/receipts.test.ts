// The SDK fetches a signature's audit receipt and verifies its inclusion proof itself (against the audit
// key the agent was given), through the real HTTP app; and the entry it returns is the proven leaf's, field
// for field, even when the server lies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from '../../server/src/testing/harness.ts';
import { writeLegacyAuditChain } from '../../server/src/testing/legacy-audit.ts';
import { signedAuditLog } from '../../server/src/testing/signed-audit-log.ts';
import { AirlockApiError } from './http.ts';
import { fetchAuditReceipt, verifyAuditReceipt, type VerifiedAuditReceipt } from './receipts.ts';

/** A fetch that goes through the harness's app (same routes, auth and schemas as over a socket). */
const harnessFetch = (h: Harness, token: string): typeof fetch => (async (url: string | URL | Request, init?: RequestInit) => {
  const u = new URL(String(url));
  const r = await h.call(init?.method ?? 'GET', u.pathname + u.search, { token });
  return new Response(JSON.stringify(r.body ?? {}), { status: r.status });
}) as typeof fetch;

test('fetchAuditReceipt verifies a signature\'s receipt; a wrong audit key, a changed receipt and another agent are refused', async () => {
  const h = await startHarness();
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    const signed = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n) });
    const receipt = signed.body.receipt;
    const auditPublicKey = await h.airlock.audit.auditPublicKey();
    const options = { url: 'http://airlock.test', token, auditPublicKey, fetch: harnessFetch(h, token) };
    await assert.rejects(fetchAuditReceipt(options, receipt.auditSeq, receipt), (e: unknown) => e instanceof AirlockApiError && e.code === 'conflict');
    await h.airlock.audit.checkpoint();

    const verified: VerifiedAuditReceipt = await fetchAuditReceipt(options, receipt.auditSeq, receipt);
    assert.equal(verified.treeHead.publicKey, auditPublicKey);
    assert.equal(verifyAuditReceipt(verified, 'ab'.repeat(32)), false, 'another audit key');
    assert.equal(verifyAuditReceipt(verified, auditPublicKey, { ...receipt, leafHash: '00'.repeat(32) }), false, 'not the receipt the signature came with');
    assert.equal(verifyAuditReceipt({ ...verified, proof: verified.proof.slice(1) }, auditPublicKey), false, 'a shortened proof');

    const other = await provisionAgent(h, { policy: usdcPolicy() });
    await assert.rejects(fetchAuditReceipt({ ...options, token: other.token, fetch: harnessFetch(h, other.token) }, receipt.auditSeq), (e: unknown) => e instanceof AirlockApiError && e.code === 'not_found');
  } finally {
    await h.close();
  }
});

/** A server that lies about the receipt it serves: `edit` rewrites the response body before the SDK sees it. */
const lyingFetch = (h: Harness, token: string, edit: (body: any) => void): typeof fetch => (async (url: string | URL | Request) => {
  const r = await h.call('GET', new URL(String(url)).pathname, { token });
  edit(r.body);
  return new Response(JSON.stringify(r.body), { status: r.status });
}) as typeof fetch;

test('a receipt whose entry says something its proven leaf does not is refused: each field changed, and one entry\'s proof shown as another\'s', async () => {
  const h = await startHarness();
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    const a = (await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 1) })).body.receipt;
    const b = (await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2_000n, 2) })).body.receipt;
    await h.airlock.audit.checkpoint();
    const auditPublicKey = await h.airlock.audit.auditPublicKey();
    const fetchWith = (edit: (body: any) => void, seq = a.auditSeq) => fetchAuditReceipt({ url: 'http://airlock.test', token, auditPublicKey, fetch: lyingFetch(h, token, edit) }, seq);
    const honest = await fetchWith(() => {});
    assert.equal(honest.entry.decision, 'allow');

    const edits: [string, (e: any) => void][] = [
      ['seq', (e) => (e.seq = b.auditSeq)],
      ['at', (e) => (e.at = new Date(Date.parse(e.at) - 1000).toISOString())],
      ['type', (e) => (e.type = 'sign.failed')],
      ['actor', (e) => (e.actor = 'operator')],
      ['agentId', (e) => (e.agentId = 'ag_0000000000000000')],
      ['sessionId removed', (e) => delete e.sessionId],
      ['action', (e) => (e.action = 'evm.message')],
      ['decision', (e) => (e.decision = 'deny')],
      ['data.digest', (e) => (e.data.digest = '00'.repeat(32))],
      ['data.requestHash', (e) => (e.data.requestHash = '11'.repeat(32))],
      ['data member added', (e) => (e.data.approvedBy = 'someone')],
      ['data replaced', (e) => (e.data = { forged: true })],
    ];
    for (const [name, edit] of edits) {
      await assert.rejects(fetchWith((body) => edit(body.entry)), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid', name);
      const tampered = structuredClone(honest);
      edit(tampered.entry);
      assert.equal(verifyAuditReceipt(tampered, auditPublicKey), false, name);
    }
    // Asked for B, the server answers with A's proven leaf relabelled as B (another amount, a denial).
    const relabel = (body: any) => {
      body.receipt.auditSeq = b.auditSeq;
      Object.assign(body.entry, { seq: b.auditSeq, decision: 'deny', data: { ...body.entry.data, intent: { summary: 'transfer 2000' } } });
    };
    await assert.rejects(fetchWith(relabel, b.auditSeq), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid');
    // Asked for B, the server answers with A's receipt untouched (valid, but another entry's: how a server hiding a
    // dropped entry answers an agent that kept only its auditSeq). It was returned as B's (found by review).
    const neighbour = (async (url: string | URL | Request) => {
      const r = await h.call('GET', new URL(String(url)).pathname.replace(`/receipts/${b.auditSeq}`, `/receipts/${a.auditSeq}`), { token });
      return new Response(JSON.stringify(r.body), { status: r.status });
    }) as typeof fetch;
    await assert.rejects(fetchAuditReceipt({ url: 'http://airlock.test', token, auditPublicKey, fetch: neighbour }, b.auditSeq), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid');
  } finally {
    await h.close();
  }
});

test('a receipt of an entry from before the tree (hash-chained, version 1) verifies, and is refused once a field is changed', async () => {
  const h = await startHarness();
  try {
    await writeLegacyAuditChain(h, 'sqlite');
    await h.airlock.audit.checkpoint();
    const auditPublicKey = await h.airlock.audit.auditPublicKey();
    const options = { url: 'http://airlock.test', token: h.adminToken, auditPublicKey };
    const legacy = await fetchAuditReceipt({ ...options, fetch: harnessFetch(h, h.adminToken) }, 2);
    assert.equal(legacy.entry.hashVersion, 1);
    assert.equal(legacy.entry.decision, 'deny');
    for (const edit of [(e: any) => (e.decision = 'allow'), (e: any) => (e.data.errorCode = 'none'), (e: any) => (e.agentId = 'ag_other')]) {
      await assert.rejects(fetchAuditReceipt({ ...options, fetch: lyingFetch(h, h.adminToken, (body) => edit(body.entry)) }, 2), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid');
    }
  } finally {
    await h.close();
  }
});

const signedLog = signedAuditLog;

test('edited content that canonicalises like the leaf is refused: 1e999 for a null (versions 1 and 3), an added __proto__ member (version 1)', () => {
  const { publicKey, receiptAt } = signedLog();
  for (const i of [1, 4]) {
    const honest = receiptAt(i);
    assert.equal(verifyAuditReceipt(JSON.parse(honest), publicKey), true, `leaf ${i} as written`);
    // JSON.parse reads 1e999 as Infinity, which JSON.stringify writes as null: the edit would hash like the original.
    const infinite = JSON.parse(honest.replace(/"(amount|note)":null/, '"$1":1e999'));
    assert.equal(Object.values(infinite.entry.data).includes(Infinity), true);
    assert.equal(verifyAuditReceipt(infinite, publicKey), false, `leaf ${i}: 1e999`);
  }
  // The version-1 form drops __proto__ members (assignment sets the prototype instead): an added one is unseen by the hash.
  const withProto = JSON.parse(receiptAt(1).replace('"note":null', '"note":null,"__proto__":{"approvedBy":"someone"}'));
  assert.equal(Object.hasOwn(withProto.entry.data, '__proto__'), true);
  assert.equal(verifyAuditReceipt(withProto, publicKey), false, '__proto__ in a version-1 entry');
  const nested = JSON.parse(receiptAt(1).replace('"note":null', '"note":{"__proto__":1}'));
  assert.equal(verifyAuditReceipt(nested, publicKey), false, 'a nested __proto__');
});

test('a malformed proof or a fractional leaf index is a receipt that does not verify (false, receipt_invalid), never an exception', async () => {
  const { publicKey, receiptAt } = signedLog();
  const honest = JSON.parse(receiptAt(4));
  assert.equal(verifyAuditReceipt(honest, publicKey), true);
  const edits: [string, (r: any) => void][] = [
    ['proof: null', (r) => (r.proof = null)],
    ['a proof element that is not hex', (r) => (r.proof[0] = 'zz')],
    ['a proof element that is not a string', (r) => (r.proof[0] = 7)],
    ['rootHash not hex', (r) => (r.treeHead.rootHash = 'not hex')],
    ['signature not hex', (r) => (r.treeHead.signature = 'zz')],
    ['no entry', (r) => delete r.entry],
    // The RFC 9162 walk halves the index, so leaf 4.5 would be taken for leaf 4 and proven.
    ['leaf 4.5 for the entry at leaf 4', (r) => (r.receipt.leafIndex = r.entry.leafIndex = 4.5)],
  ];
  for (const [name, edit] of edits) {
    const r = structuredClone(honest);
    edit(r);
    assert.equal(verifyAuditReceipt(r, publicKey), false, name);
    const served: typeof fetch = async () => new Response(JSON.stringify(r), { status: 200 });
    await assert.rejects(fetchAuditReceipt({ url: 'http://airlock.test', token: 't', auditPublicKey: publicKey, fetch: served }, 5), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid', name);
  }
});

test('a lying server serving the genuine head written otherwise (at as a string, as 0x hex, plus 2^64; treeSize as a string; an uppercase root) is refused: the receipt would carry a wrong `at`', async () => {
  const h = await startHarness();
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy() });
    const { receipt } = (await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n) })).body;
    await h.airlock.audit.checkpoint();
    const auditPublicKey = await h.airlock.audit.auditPublicKey();
    const fetchWith = (edit: (head: any) => void) => fetchAuditReceipt({ url: 'http://airlock.test', token, auditPublicKey, fetch: lyingFetch(h, token, (body) => edit(body.treeHead)) }, receipt.auditSeq, receipt);
    const honest = await fetchWith(() => {});
    assert.equal(typeof honest.treeHead.at, 'number');

    // BigInt() reads each of these as the signed value (setBigUint64 wraps 2^64 + at): the signature still checked out.
    const edits: [string, (head: any) => void][] = [
      ['at as a decimal string', (t) => (t.at = String(t.at))],
      ['at as 0x hex', (t) => (t.at = `0x${t.at.toString(16)}`)],
      ['at + 2^64, as a string', (t) => (t.at = String(BigInt(t.at) + 2n ** 64n))],
      ['treeSize as a string', (t) => (t.treeSize = String(t.treeSize))],
      ['rootHash in uppercase', (t) => (t.rootHash = t.rootHash.toUpperCase())],
    ];
    for (const [name, edit] of edits) {
      await assert.rejects(fetchWith(edit), (e: unknown) => e instanceof AirlockApiError && e.code === 'receipt_invalid', name);
      const tampered = structuredClone(honest);
      edit(tampered.treeHead);
      assert.equal(verifyAuditReceipt(tampered, auditPublicKey), false, name);
    }
    assert.equal(verifyAuditReceipt(honest, auditPublicKey, receipt), true, 'the genuine head');
  } finally {
    await h.close();
  }
});
