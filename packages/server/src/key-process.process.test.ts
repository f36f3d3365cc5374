// The separate key process (docs/custody.md, "Separate key process"), as real processes: `airlock key-process`
// holds the vault and `airlock start` reaches it over a Unix socket. Agents sign through HTTP as usual; an
// attacker who holds the socket (a compromised HTTP process) gets nothing signed that the audit log does not
// show allowed; a dead key process fails closed and a restarted one resumes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { encodePaymentRequiredHeader, decodePaymentSignatureHeader } from '@x402/core/http';
import { parseTransaction, recoverTransactionAddress, recoverTypedDataAddress, keccak256, type Hex } from 'viem';
import { ALICE, BASE, USDC, usdcAuthorization, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { adminClient, httpJson, killAllDaemons, prepareDaemonData, sleep, startDaemon, startKeyProcessChild, type Daemon, type DaemonData } from './testing/processes.ts';
import { decodeWire, encodeWire } from './key-process/wire.ts';

/** One request to the key process's socket, as any process that can open it would send it. */
function ask(socketPath: string, method: string, params: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const body = encodeWire(params);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/${method}`, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: decodeWire(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const paymentPolicy = () => {
  const policy = usdcPolicy();
  return { ...policy, rules: [...policy.rules, { name: 'paid-api', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: ['https://api.example.com/**'] } }] };
};

describe('key process: a separate process holds the keys and signs only committed decisions', () => {
  let data: DaemonData;
  let keyProcess: Daemon;
  let daemon: Daemon;
  let socket: string;
  let admin: ReturnType<typeof adminClient>;
  let agentA: any;
  let agentB: any;
  let tokenA: string;
  let nonce = 0;
  const signTx = (token: string, amount = 1_000_000n) => httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, amount, nonce++) });

  before(async () => {
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    keyProcess = await startKeyProcessChild(data, socket);
    daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' });
    admin = adminClient(daemon.url, data.adminToken);
    const created = await admin('POST', '/v1/agents', { names: ['kp-a', 'kp-b'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    [agentA, agentB] = created.body.agents;
    for (const agent of [agentA, agentB]) assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: paymentPolicy() })).status, 200);
    const issued = await admin('POST', `/v1/agents/${agentA.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data'] });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    tokenA = issued.body.token;
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('the daemon opened no vault: health names the key process, the keys are the vault\'s', async () => {
    const health = await httpJson(daemon.url, 'GET', '/v1/health');
    assert.deepEqual(health.body, { status: 'ok', store: 'sqlite', keyProcess: 'ok' });
    assert.match(daemon.output(), /keys in the key process on/);
    assert.match(agentA.address, /^0x[0-9a-f]{40}$/);
  });

  test('a transaction, EIP-3009 typed data and an x402 payment sign through HTTP and verify with viem', async () => {
    const tx = await signTx(tokenA);
    assert.equal(tx.status, 200, JSON.stringify(tx.body));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: tx.body.signedTransaction as never })).toLowerCase(), agentA.address);

    const validBefore = Math.floor(Date.now() / 1000) + 3600;
    const typed = usdcAuthorization(agentA.address, ALICE, 2_000n, validBefore, `0x${'cd'.repeat(32)}`);
    const signedTyped = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token: tokenA, body: { ...typed, x402: { resource: 'https://api.example.com/a' } } });
    assert.equal(signedTyped.status, 200, JSON.stringify(signedTyped.body));
    const { domain, types, primaryType, message } = typed.typedData;
    const recovered = await recoverTypedDataAddress({ domain, types, primaryType, message: { ...message, value: BigInt(message.value), validAfter: 0n, validBefore: BigInt(validBefore) }, signature: signedTyped.body.signature as Hex } as never);
    assert.equal(recovered.toLowerCase(), agentA.address);

    const url = 'https://api.example.com/data';
    const accepts = [{ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }];
    const paymentRequired = encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
    const paid = await httpJson(daemon.url, 'POST', '/v1/x402/pay', { token: tokenA, body: { resource: url, paymentRequired } });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    const auth = (decodePaymentSignatureHeader(paid.body.header.value) as any).payload;
    const a = auth.authorization;
    const payer = await recoverTypedDataAddress({
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC }, types, primaryType: 'TransferWithAuthorization',
      message: { from: a.from, to: a.to, value: BigInt(a.value), validAfter: BigInt(a.validAfter), validBefore: BigInt(a.validBefore), nonce: a.nonce }, signature: auth.signature,
    } as never);
    assert.equal(payer.toLowerCase(), agentA.address);
  });

  test('a replay under the same Idempotency-Key is re-signed through its own sign.replay entry, byte for byte', async () => {
    const body = usdcTransfer(ALICE, 1_000n, nonce++);
    const headers = { 'idempotency-key': 'kp-replay-1' };
    const first = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: tokenA, body, headers });
    const second = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: tokenA, body, headers });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.replayed, true);
    assert.equal(second.body.signedTransaction, first.body.signedTransaction);
  });

  test('the audit key signs tree heads through the key process, over the root it computes', async () => {
    // Checkpoints run every second here (AIRLOCK_CHECKPOINT_INTERVAL): wait for one that covers the signatures above.
    const head = (await admin('GET', '/v1/audit/head')).body;
    let verify: any;
    for (let i = 0; i < 50; i++) {
      verify = await admin('POST', '/v1/audit/verify');
      if (verify.status === 200 && verify.body.treeHeads > 0 && verify.body.entries - verify.body.unanchored >= head.treeSize) break;
      await sleep(200);
    }
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    assert.ok(verify.body.treeHeads > 0 && verify.body.entries - verify.body.unanchored >= head.treeSize, JSON.stringify(verify.body));
    assert.match(keyProcess.output(), /"msg":"signed","method":"signTreeHead"/);
  });

  describe('an attacker holding the socket', () => {
    let allowed: { seq: number; body: unknown; signed: Hex };
    let denied: { seq: number; body: unknown };
    before(async () => {
      const body = usdcTransfer(ALICE, 3_000n, nonce++);
      const res = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: tokenA, body });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      allowed = { seq: res.body.auditSeq, body, signed: res.body.signedTransaction };
      const over = usdcTransfer(ALICE, 200_000_000n, nonce++); // over the per-request cap
      const refused = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: tokenA, body: over });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      denied = { seq: refused.body.auditSeq, body: over };
    });

    const logged = new Map<string, number>();
    const refusedWith = async (method: string, params: Record<string, unknown>, reason: string) => {
      const res = await ask(socket, method, params);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'key_process_refused');
      assert.equal(res.body.error.details.reason, reason, JSON.stringify(res.body));
      // The key process's own log names the refusal (one more line than before this request).
      const line = new RegExp(`"msg":"refused","method":"${method}","code":"key_process_refused","reason":"${reason}"`, 'g');
      const count = () => keyProcess.output().match(line)?.length ?? 0;
      const before = logged.get(line.source) ?? 0;
      for (let i = 0; i < 40 && count() <= before; i++) await sleep(25);
      assert.equal(count(), before + 1, keyProcess.output());
      logged.set(line.source, before + 1);
    };

    test('the committed decision it names is signed again, and only that: the bytes the agent already got', async () => {
      const res = await ask(socket, 'signBound', { auditSeq: allowed.seq, agentId: agentA.id, action: 'evm.transaction', payload: allowed.body });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.result.length, 1);
      const { r, s } = parseTransaction(allowed.signed);
      assert.equal(Buffer.from(res.body.result[0].compact).toString('hex'), `${r!.slice(2).padStart(64, '0')}${s!.slice(2).padStart(64, '0')}`);
    });

    test('no audit seq: binding_missing', () => refusedWith('signBound', { agentId: agentA.id, action: 'evm.transaction', payload: allowed.body }, 'binding_missing'));
    test('a seq that does not exist: audit_entry_not_found', () => refusedWith('signBound', { auditSeq: 9_999_999, agentId: agentA.id, action: 'evm.transaction', payload: allowed.body }, 'audit_entry_not_found'));
    test('a denied entry: decision_not_allow', () => refusedWith('signBound', { auditSeq: denied.seq, agentId: agentA.id, action: 'evm.transaction', payload: denied.body }, 'decision_not_allow'));
    test('an allowed entry with another payload: request_hash_mismatch', () =>
      refusedWith('signBound', { auditSeq: allowed.seq, agentId: agentA.id, action: 'evm.transaction', payload: usdcTransfer(ALICE, 400_000_000n, 0) }, 'request_hash_mismatch'));
    test("another agent's key for an allowed entry: agent_mismatch", () => refusedWith('signBound', { auditSeq: allowed.seq, agentId: agentB.id, action: 'evm.transaction', payload: allowed.body }, 'agent_mismatch'));
    test('an approval: refused while pending (decision_not_allow) or unknown; once an operator approves, the daemon gets it signed', async () => {
      const created = await admin('POST', '/v1/agents', { names: ['kp-c'] });
      const agentC = created.body.agents[0];
      assert.equal((await admin('PUT', `/v1/policies/${agentC.name}`, { document: usdcPolicy({ approvalAbove: '5000000' }) })).status, 200);
      const tokenC = (await admin('POST', `/v1/agents/${agentC.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
      const body = usdcTransfer(ALICE, 20_000_000n, 0);
      const pending = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: tokenC, body });
      assert.equal(pending.status, 202, JSON.stringify(pending.body));
      const bound = { auditSeq: pending.body.auditSeq, agentId: agentC.id, action: 'evm.transaction', payload: body };
      await refusedWith('signBound', { ...bound, approvalId: pending.body.approvalId }, 'decision_not_allow');
      await refusedWith('signBound', { ...bound, approvalId: 'apr_0000000000000000' }, 'audit_entry_not_found');
      await refusedWith('signBound', bound, 'decision_not_allow');
      const approved = await admin('POST', `/v1/approvals/${pending.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const fetched = await admin('GET', `/v1/approvals/${pending.body.approvalId}`);
      assert.equal((await recoverTransactionAddress({ serializedTransaction: fetched.body.result.signedTransaction })).toLowerCase(), agentC.address);
      // Approved, the same request with another payload is still refused.
      await refusedWith('signBound', { ...bound, payload: usdcTransfer(ALICE, 20_000_000n, 1), approvalId: pending.body.approvalId }, 'request_hash_mismatch');
    });
    test('a bare digest for an agent key, the audit key or the agent Nostr identity: unbound_digest', async () => {
      const digest = new Uint8Array(32).fill(7);
      await refusedWith('signDigest', { path: "m/44'/60'/0'/0/0", digest, scheme: 'ecdsa-secp256k1' }, 'unbound_digest');
      await refusedWith('signSchnorr', { path: "m/7447'/0'/0'", digest }, 'unbound_digest');
      await refusedWith('signSchnorr', { path: "m/44'/1237'/0'/0/0", digest }, 'unbound_digest');
      await refusedWith('signTaprootKeyPath', { path: "m/86'/0'/0'/0/0", digest }, 'unbound_digest');
    });
    test('a tree head over a root the log does not have, or older than those signed: tree_root_mismatch', async () => {
      const { treeSize } = (await admin('GET', '/v1/audit/head')).body;
      await refusedWith('signTreeHead', { path: "m/7447'/0'/0'", head: { treeSize, rootHash: keccak256('0x01').slice(2), at: Date.now() } }, 'tree_root_mismatch');
      await refusedWith('signTreeHead', { path: "m/7447'/0'/0'", head: { treeSize: 1, rootHash: keccak256('0x01').slice(2), at: Date.now() } }, 'tree_root_mismatch');
      await refusedWith('signTreeHead', { path: "m/7447'/0'/0'", head: { treeSize, rootHash: keccak256('0x01').slice(2), at: Date.now() - 3_600_000 } }, 'tree_head_stale');
    });
    test('secrets and ECDH only on their own paths: path_not_allowed', async () => {
      await refusedWith('deriveSecret', { path: "m/44'/60'/0'/0/0", label: 'webhook/x/1' }, 'path_not_allowed');
      await refusedWith('nip44ConversationKey', { path: "m/44'/60'/0'/0/0", peer: new Uint8Array(32).fill(2) }, 'path_not_allowed');
    });
  });

  test('key process killed: signing is refused key_process_unavailable (503) and health says so; restarted: signing resumes', async () => {
    await keyProcess.kill('SIGKILL');
    const refused = await signTx(tokenA);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'key_process_unavailable');
    assert.equal(refused.body.signedTransaction, undefined);
    const health = await httpJson(daemon.url, 'GET', '/v1/health');
    assert.equal(health.status, 503);
    assert.equal(health.body.error.code, 'key_process_unavailable');
    // The decision is on the record, and so is the failure to sign it.
    const failed = await admin('GET', '/v1/audit?type=sign.failed&limit=5');
    assert.ok(failed.body.entries.some((e: any) => e.data.errorCode === 'key_process_unavailable'), JSON.stringify(failed.body));

    // Restarted with a tight per-agent rate, for the next test.
    keyProcess = await startKeyProcessChild(data, socket, { AIRLOCK_KEY_PROCESS_AGENT_RATE: '1', AIRLOCK_KEY_PROCESS_AGENT_BURST: '3' });
    const resumed = await signTx(tokenA);
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: resumed.body.signedTransaction as never })).toLowerCase(), agentA.address);
  });

  test("the key process's own per-agent rate limit refuses with key_process_rate_limited", async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => signTx(tokenA, 1_000n)));
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 2, JSON.stringify(results.map((r) => r.status)));
    for (const r of limited) {
      assert.equal(r.body.error.code, 'key_process_rate_limited');
      assert.equal(r.body.error.details.reason, 'agent_rate');
    }
    assert.match(keyProcess.output(), /"code":"key_process_rate_limited","reason":"agent_rate"/);
  });
});
