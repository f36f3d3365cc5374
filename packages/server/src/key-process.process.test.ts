// The separate key process (docs/custody.md, "Separate key process"), as real processes: `airlock key-process`
// holds the vault and `airlock start` reaches it over a Unix socket. Agents sign through HTTP as usual; an
// attacker who holds the socket (a compromised HTTP process) gets nothing signed that the audit log does not
// show allowed; a dead key process fails closed and a restarted one resumes. The lifecycle path (rotation sweeps,
// revoke-all) signs bound to its committed `lifecycle.planned` entries, on anvil, and the key process re-checks
// each planned call itself: even a plan forged into the store cannot send funds anywhere but the agent's own key
// or the treasury. The key process signs only from audit leaves it read and checked itself: a daemon that rewrites
// the log under it (leaf, hash column, tree nodes) gets nothing signed from the rewrite, and cannot hide an entry it
// forged and had signed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { encodePaymentRequiredHeader, decodePaymentSignatureHeader } from '@x402/core/http';
import { createPublicClient, http, parseAbi, parseSignature, parseTransaction, recoverTransactionAddress, recoverTypedDataAddress, keccak256, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createEvmAdapter } from '@airlock/chains';
import { canonicalJson, leafHash, lifecycleTransactionPayload, MerkleFrontier, requestHash, storedLeafHash } from '@airlock/core';
import { AUDIT_KEY_PATH, WEBHOOK_SECRET_KEY_PATH } from '@airlock/keys';
import { openStore } from '@airlock/store';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { compiledContracts } from '../../x402-testbed/src/compile.ts';
import { balanceOf, deployToken, mint, rpc } from '../../x402-testbed/src/token.ts';
import { ALICE, BASE, MALLORY, USDC, usdcAuthorization, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { DROP_AUDIT_TRIGGERS } from './testing/forge-audit.ts';
import { adminClient, askKeyProcess, httpJson, killAllDaemons, prepareDaemonData, waitForCoveringHead, runAirlock, sleep, startDaemon, startKeyProcessChild, type Daemon, type DaemonData } from './testing/processes.ts';
import { RemoteKeyBackend } from './key-process/remote-key-backend.ts';
import { openNodeTokens, sealNodeTokens, THRESHOLD_NODE_TOKENS_LABEL } from './threshold/node-tokens.ts';
import { parseExposition } from './testing/prometheus-text.ts';
import { createSoftHsmToken, softHsmSkip } from '../../keys/src/softhsm-token.ts';

/**
 * The key process's log line for a request it answered: its log is written through a queue (AIRLOCK_LOG_QUEUE), so
 * the line may reach the pipe a moment after the answer; waits up to 5 s for it, then fails with the output.
 */
async function outputMatches(output: () => string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(output()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(output(), pattern);
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

  test('an approved EIP-3009 authorization sent again is released through the key process under its approval (a replay)', async () => {
    // Found by review: the replay was bound to its own sign.replay entry, whose original is the held request (not
    // an allow), so the key process refused it (key_process_refused) and the agent never got the approved signature.
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-approved'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ approvalAbove: '1000000', daily: '50000000' }) })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] })).body.token;
    const body = usdcAuthorization(agent.address, ALICE, 3_000_000n, Math.floor(Date.now() / 1000) + 600, `0x${'a8'.repeat(32)}`);
    const held = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token, body });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const approved = await admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const again = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token, body });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.replayed, true);
    assert.equal(again.body.signature, approved.body.result.signature);
    // Sent again under an Idempotency-Key, twice: the nonce replay records the key, the second is an idempotent retry
    // of that record, bound to the approval too (found by review: refused by the key process).
    const headers = { 'idempotency-key': 'approved-then-retried' };
    for (let i = 0; i < 2; i++) {
      const retried = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token, body, headers });
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      assert.equal(retried.body.signature, approved.body.result.signature);
    }
    assert.deepEqual((await admin('GET', `/v1/audit?agent=${agent.name}&type=sign.failed`)).body.entries, []);
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
    await outputMatches(() => keyProcess.output(), /"msg":"signed","method":"signTreeHead"/);
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
      const res = await askKeyProcess(socket, method, params);
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
      const res = await askKeyProcess(socket, 'signBound', { auditSeq: allowed.seq, agentId: agentA.id, action: 'evm.transaction', payload: allowed.body });
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
    test('the key threshold node tokens are sealed under is served (binding a FROST cluster needs it; it was refused)', async () => {
      const derived = await askKeyProcess(socket, 'deriveSecret', { path: WEBHOOK_SECRET_KEY_PATH, label: THRESHOLD_NODE_TOKENS_LABEL });
      assert.equal(derived.status, 200, JSON.stringify(derived.body));
      // Sealed through the key process and opened through it again: the same key both ways.
      const keys = new RemoteKeyBackend(socket);
      const context = { agentId: 'ag_0000000000000001', namespace: 'nostr', groupKey: 'ab'.repeat(33) };
      const sealed = await sealNodeTokens(keys, context, { 'node-1': 'tok_one' });
      assert.deepEqual(await openNodeTokens(keys, context, sealed), { 'node-1': 'tok_one' });
    });

    test('secrets and ECDH only on their own paths: path_not_allowed', async () => {
      await refusedWith('deriveSecret', { path: "m/44'/60'/0'/0/0", label: 'webhook/x/1' }, 'path_not_allowed');
      await refusedWith('deriveSecret', { path: WEBHOOK_SECRET_KEY_PATH, label: 'threshold-node-tokens/v2' }, 'path_not_allowed');
      await refusedWith('deriveSecret', { path: WEBHOOK_SECRET_KEY_PATH, label: 'anything-else' }, 'path_not_allowed');
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
    await outputMatches(() => keyProcess.output(), /"code":"key_process_rate_limited","reason":"agent_rate"/);
  });
});

describe("key process: a log reader that stops reading its stderr", () => {
  let data: DaemonData;
  before(async () => {
    data = await prepareDaemonData('sqlite');
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  /** `n` refused requests on the socket (a bare digest: unbound_digest), 50 at a time: one `refused` line each. */
  const refusals = async (socket: string, n: number) => {
    for (let sent = 0; sent < n; sent += 50) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => askKeyProcess(socket, 'signDigest', { path: "m/44'/60'/0'/0/0", digest: new Uint8Array(32).fill(7), scheme: 'ecdsa-secp256k1' })));
      assert.deepEqual([...new Set(answers.map((a) => `${a.body.error.code}/${a.body.error.details?.reason}`))], ['key_process_refused/unbound_digest']);
    }
  };
  /** Everything read from the key process's stderr from now on (its output() keeps only the last 200,000 characters). */
  const stderrOf = (keyProcess: { child: import('node:child_process').ChildProcess }) => {
    let text = '';
    keyProcess.child.stderr!.on('data', (chunk: Buffer) => void (text += chunk.toString()));
    return () => text;
  };
  const refusedLines = (text: string) => text.split('\n').filter((l) => l.includes('"msg":"refused"')).length;

  test("its dropped lines show in the daemon's metrics, its notice says how many, and it keeps refusing and signing meanwhile", async () => {
    const socket = join(data.dataDir, 'keys.sock');
    const keyProcess = await startKeyProcessChild(data, socket, { AIRLOCK_LOG_QUEUE: '65536' });
    // No audit checkpoint during the test: its tree head would be one more line signed through the key process.
    const daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_METRICS_LISTEN: '127.0.0.1:0', AIRLOCK_CHECKPOINT_INTERVAL: '1h' });
    const metricsUrl = /Metrics on (http:\/\/\S+)/.exec(daemon.output())?.[1];
    assert.ok(metricsUrl, daemon.output());
    const scrape = async () => parseExposition(await (await fetch(metricsUrl)).text());
    assert.equal((await scrape()).value('airlock_key_process_log_lines_dropped_total'), 0);

    // The reader of its stderr stops: the pipe, this side's buffer, then its 64 KiB queue fill up.
    keyProcess.child.stderr!.pause();
    const stderr = stderrOf(keyProcess);
    await refusals(socket, 3000);
    const dropped = (await scrape()).value('airlock_key_process_log_lines_dropped_total');
    assert.ok(dropped > 1000, `dropped ${dropped}`);
    assert.equal(stderr(), '', 'nothing was read meanwhile');
    // Still signing: an agent's transaction goes through the key process while its log is stalled.
    const admin = adminClient(daemon.url, data.adminToken);
    const created = await admin('POST', '/v1/agents', { names: ['kp-log'] });
    assert.equal((await admin('PUT', '/v1/policies/kp-log', { document: usdcPolicy() })).status, 200);
    const { token } = (await admin('POST', '/v1/agents/kp-log/sessions', { ttl: '1h', actions: ['evm.transaction'] })).body;
    const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 0) });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as never })).toLowerCase(), created.body.agents[0].address);

    // The reader is back: one notice ends the gap and says how many; what was kept and dropped add up.
    keyProcess.child.stderr!.resume();
    const deadline = Date.now() + 10_000;
    while (!stderr().includes('"msg":"log lines dropped"') && Date.now() < deadline) await sleep(50);
    const lines = stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const notice = lines.find((l) => l.msg === 'log lines dropped');
    // The signature's `signed` line came while the queue was still full: it is one of the dropped ones.
    const afterSigning = (await scrape()).value('airlock_key_process_log_lines_dropped_total');
    assert.equal(afterSigning, dropped + 1);
    assert.deepEqual({ level: notice?.level, dropped: notice?.dropped, queueBytes: notice?.queueBytes }, { level: 'error', dropped: afterSigning, queueBytes: 65536 });
    assert.equal(refusedLines(stderr()) + dropped, 3000);
    // A key process that does not answer has no sample (a missing series, never a false 0); the scrape still works.
    await keyProcess.kill('SIGKILL');
    const without = await scrape();
    assert.deepEqual(without.find('airlock_key_process_log_lines_dropped_total'), []);
    assert.equal(without.value('airlock_sealed'), 0);
    await daemon.kill('SIGTERM');
  });

  test('on SIGTERM it waits for a slow reader to take the lines still queued, then exits 0', async () => {
    const socket = join(data.dataDir, 'keys2.sock');
    const keyProcess = await startKeyProcessChild(data, socket);
    keyProcess.child.stderr!.pause();
    const stderr = stderrOf(keyProcess);
    // 3,000 lines of about 200 bytes: far more than the pipe and this side's buffer hold, far less than the 8 MiB queue.
    await refusals(socket, 3000);
    // 'close': it exited and its stderr has ended, so everything it wrote has been read.
    const exited = new Promise<number | null>((resolve) => keyProcess.child.once('close', (code) => resolve(code)));
    keyProcess.child.kill('SIGTERM');
    // The reader comes back within the 2 s grace: every line reaches it, then the process exits by itself.
    await sleep(500);
    keyProcess.child.stderr!.resume();
    assert.equal(await exited, 0);
    assert.equal(refusedLines(stderr()), 3000);
    assert.match(stderr(), /SIGTERM: key process stopping/);
  });
});

describe('key process: it signs only from audit leaves it read and checked itself (a daemon that rewrites the log)', () => {
  // The attacker is the daemon: it owns the database (drops the append-only triggers) and holds the socket. Here
  // the daemon makes a real decision and gets a tree head over it, then stops; the test plays the compromised
  // daemon with the database file and the socket.
  let data: DaemonData;
  let keyProcess: Daemon;
  let socket: string;
  let agent: any;
  let allowed: { seq: number; body: unknown; compact: string };
  let db: DatabaseSync;
  const evil = usdcTransfer(MALLORY, 400_000_000n, 7); // not a partner, over the per-request cap
  const evilAsk = (auditSeq: number) => askKeyProcess(socket, 'signBound', { auditSeq, agentId: agent.id, action: 'evm.transaction', payload: evil });
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  /** The leaf `leaf` with its decision's request hash and digest those of `payload` (a valid canonical leaf, other bytes). */
  const decidingFor = (leaf: string, payload: unknown) => {
    const parsed = JSON.parse(leaf);
    parsed.data.requestHash = requestHash('evm.transaction', payload, canonicalJson);
    parsed.data.digest = hex(createEvmAdapter().decode('evm.transaction', payload as never, { address: agent.address }).digest);
    return canonicalJson(parsed) as string;
  };
  const row = (seq: number) => db.prepare('SELECT leaf, hash, leaf_index FROM audit_entries WHERE seq = ?').get(seq) as { leaf: string; hash: string; leaf_index: number };
  const setLeaf = (seq: number, leaf: string, hash?: string) => db.prepare('UPDATE audit_entries SET leaf = ?, hash = coalesce(?, hash) WHERE seq = ?').run(leaf, hash ?? null, seq);
  const storedLeafHashes = () => (db.prepare('SELECT hash, hash_version FROM audit_entries ORDER BY leaf_index').all() as { hash: string; hash_version: number }[]).map((r) => storedLeafHash({ hash: r.hash, hashVersion: r.hash_version as 3 }));
  const rootOf = (hashes: Uint8Array[]) => {
    const f = new MerkleFrontier();
    for (const h of hashes) f.push(h);
    return hex(f.root());
  };
  const treeNodes = () => db.prepare('SELECT level, idx, hash FROM audit_tree_nodes').all() as { level: number; idx: number; hash: Uint8Array }[];
  const putTreeNodes = (nodes: { level: number; idx: number; hash: Uint8Array }[]) => {
    db.exec('DELETE FROM audit_tree_nodes');
    const insert = db.prepare('INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)');
    for (const n of nodes) insert.run(n.level, n.idx, n.hash);
  };
  const refused = (res: { status: number; body: any }, reason: string) => {
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'key_process_refused');
    assert.equal(res.body.error.details.reason, reason, JSON.stringify(res.body));
    assert.equal(res.body.result, undefined);
  };

  before(async () => {
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    keyProcess = await startKeyProcessChild(data, socket);
    const daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' });
    const admin = adminClient(daemon.url, data.adminToken);
    agent = (await admin('POST', '/v1/agents', { names: ['kp-rewrite'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy() })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const body = usdcTransfer(ALICE, 1_000n, 0);
    const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const { r, s } = parseTransaction(signed.body.signedTransaction);
    allowed = { seq: signed.body.auditSeq, body, compact: `${r!.slice(2).padStart(64, '0')}${s!.slice(2).padStart(64, '0')}` };
    // A tree head the key process signed covers the decision (and its stored tree nodes are built).
    await waitForCoveringHead(admin);
    await daemon.kill('SIGTERM');
    db = new DatabaseSync(join(data.dataDir, 'airlock.db'));
    db.exec('PRAGMA busy_timeout = 5000');
    db.exec(DROP_AUDIT_TRIGGERS.sqlite);
  });
  after(async () => {
    db?.close();
    await killAllDaemons();
    await data?.cleanup();
  });

  test('an allowed entry under a signed head, its leaf rewritten to decide another transaction (hash column kept), then put back: refused audit_leaf_mismatch, nothing signed', async () => {
    refused(await evilAsk(allowed.seq), 'request_hash_mismatch'); // as stored, the entry allowed another request
    const original = row(allowed.seq);
    setLeaf(allowed.seq, decidingFor(original.leaf, evil));
    try {
      refused(await evilAsk(allowed.seq), 'audit_leaf_mismatch');
    } finally {
      setLeaf(allowed.seq, original.leaf);
    }
    await outputMatches(() => keyProcess.output(), new RegExp(`"msg":"refused","method":"signBound","code":"key_process_refused","reason":"audit_leaf_mismatch","agentId":"${agent.id}","auditSeq":${allowed.seq}`));
  });

  test('the same with its hash column and every stored tree node rewritten to match (a laundered log): refused audit_leaf_mismatch, and from the leaves when the nodes are deleted', async () => {
    const original = row(allowed.seq);
    const nodes = treeNodes();
    assert.ok(nodes.length > 0, 'the daemon built the stored tree');
    const leaf = decidingFor(original.leaf, evil);
    setLeaf(allowed.seq, leaf, hex(leafHash(leaf)));
    try {
      // Every node rebuilt from the leaves as they are now: the leaf, its hash and the tree all agree.
      const laundered: { level: number; idx: number; hash: Uint8Array }[] = [];
      const f = new MerkleFrontier();
      for (const h of storedLeafHashes()) f.push(h, (id, hash) => laundered.push({ level: id.level, idx: id.index, hash }));
      putTreeNodes(laundered);
      refused(await evilAsk(allowed.seq), 'audit_leaf_mismatch');
      // Without the nodes the key process folds the leaf's subtree from the leaves: the same answer.
      putTreeNodes([]);
      refused(await evilAsk(allowed.seq), 'audit_leaf_mismatch');
    } finally {
      setLeaf(allowed.seq, original.leaf, original.hash);
      putTreeNodes(nodes);
    }
  });

  test('the allowed entry re-asked as it is (a replay) still signs the bytes the agent got, through the stored tree nodes or, without them, its leaves', async () => {
    const again = () => askKeyProcess(socket, 'signBound', { auditSeq: allowed.seq, agentId: agent.id, action: 'evm.transaction', payload: allowed.body });
    const withNodes = await again();
    assert.equal(withNodes.status, 200, JSON.stringify(withNodes.body));
    assert.equal(hex(withNodes.body.result[0].compact), allowed.compact);
    const nodes = treeNodes();
    putTreeNodes([]);
    try {
      const fromLeaves = await again();
      assert.equal(fromLeaves.status, 200, JSON.stringify(fromLeaves.body));
      assert.equal(hex(fromLeaves.body.result[0].compact), allowed.compact);
    } finally {
      putTreeNodes(nodes);
    }
    // Its `signed` line names the leaf it was signed from: the entry's leaf hash in the log.
    await outputMatches(() => keyProcess.output(), new RegExp(`"msg":"signed","method":"signBound","kind":"decision","agentId":"${agent.id}","action":"evm.transaction","auditSeq":${allowed.seq},"leafHash":"${row(allowed.seq).hash}"`));
  });

  test('a decision forged into the log, signed, then rewritten before the next head: the head over the rewritten log is refused tree_root_mismatch; the one over what the key process read makes `audit verify` fail', async () => {
    // Forging a decision is what the key process cannot stop (docs/custody.md): it is then on the record for good.
    const store = await openStore(data.storeUrl);
    let forged: number;
    try {
      forged = (await store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'sign.request', actor: 'agent', agentId: agent.id, action: 'evm.transaction', decision: 'allow', data: { intent: { from: agent.address }, requestHash: requestHash('evm.transaction', evil, canonicalJson), digest: hex(createEvmAdapter().decode('evm.transaction', evil as never, { address: agent.address }).digest) } }))).seq;
    } finally {
      await store.close();
    }
    const signed = await evilAsk(forged);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const asRead = row(forged);
    // Covering the tracks: the forged leaf rewritten (hash column too) to decide a harmless transfer instead.
    const harmless = decidingFor(asRead.leaf, usdcTransfer(ALICE, 1n, 99));
    setLeaf(forged, harmless, hex(leafHash(harmless)));

    const size = storedLeafHashes().length;
    const head = (rootHash: string) => askKeyProcess(socket, 'signTreeHead', { path: AUDIT_KEY_PATH, head: { treeSize: size, rootHash, at: Date.now() } });
    refused(await head(rootOf(storedLeafHashes())), 'tree_root_mismatch');
    // The only head the key process signs over these leaves is over the forged leaf as it read it...
    const readHashes = storedLeafHashes();
    readHashes[asRead.leaf_index] = leafHash(asRead.leaf);
    const at = Date.now();
    const rootHash = rootOf(readHashes);
    const sth = await askKeyProcess(socket, 'signTreeHead', { path: AUDIT_KEY_PATH, head: { treeSize: size, rootHash, at } });
    assert.equal(sth.status, 200, JSON.stringify(sth.body));
    // ...and once it is in the log, `audit verify` fails on it: the rewrite shows.
    const publicKey = hex((await askKeyProcess(socket, 'getPublicKey', { path: AUDIT_KEY_PATH })).body.result).slice(2);
    const writer = await openStore(data.storeUrl);
    try {
      await writer.appendTreeHead({ treeSize: size, rootHash, at, publicKey, signature: hex(sth.body.result) });
    } finally {
      await writer.close();
    }
    const daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1h' });
    const verify = (await adminClient(daemon.url, data.adminToken)('POST', '/v1/audit/verify')).body;
    await daemon.kill('SIGTERM');
    assert.equal(verify.ok, false, JSON.stringify(verify));
    assert.equal(verify.firstBad.seq, size, JSON.stringify(verify));
    assert.match(verify.firstBad.reason, new RegExp(`does not match the signed tree head of size ${size}`));
    // The key process's own record: the forged entry's seq, and the leaf it signed from.
    await outputMatches(() => keyProcess.output(), new RegExp(`"msg":"signed","method":"signBound","kind":"decision","agentId":"${agent.id}","action":"evm.transaction","auditSeq":${forged},"leafHash":"${asRead.hash}"`));
  });
});

describe('key process on PostgreSQL: tree heads asked for at once (overlapping checkpoints, several daemons)', () => {
  let data: DaemonData;
  let socket: string;
  before(async () => {
    data = await prepareDaemonData('postgres');
    socket = join(data.dataDir, 'keys.sock');
    await startKeyProcessChild(data, socket);
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('4 correct heads at once all sign, each leaf read once: the next head signs too', async () => {
    const store = await openStore(data.storeUrl);
    try {
      const append = () => store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'operator.note', actor: 'operator', data: { note: 'a leaf' } }));
      for (let i = 0; i < 3; i++) await append();
      const currentHead = async () => {
        const f = new MerkleFrontier();
        for (const e of await store.readAuditLeaves(0, 10_000)) f.push(storedLeafHash(e));
        return { treeSize: f.size, rootHash: Buffer.from(f.root()).toString('hex'), at: Date.now() };
      };
      const head = await currentHead();
      const answers = await Promise.all(Array.from({ length: 4 }, () => askKeyProcess(socket, 'signTreeHead', { path: AUDIT_KEY_PATH, head })));
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200], JSON.stringify(answers.map((a) => a.body.error)));
      await append();
      const next = await askKeyProcess(socket, 'signTreeHead', { path: AUDIT_KEY_PATH, head: await currentHead() });
      assert.equal(next.status, 200, JSON.stringify(next.body));
    } finally {
      await store.close();
    }
  });
});

describe('key process: rotation sweeps and revoke-all sign bound to their committed lifecycle plans (anvil)', () => {
  const CHAIN = 'eip155:31337';
  const TREASURY = '0x7ea5000000000000000000000000000000000003';
  const MALLORY = '0x2222222222222222222222222222222222222222';
  const ETH = 10n ** 18n;
  const ERC20 = parseAbi(['function transferFrom(address from, address to, uint256 value) returns (bool)', 'function allowance(address owner, address spender) view returns (uint256)']);
  const PERMIT_TYPES = { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] };
  const encode = (selector: string, address: string, amount: bigint) => `${selector}${address.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}` as Hex;
  let anvil: Anvil;
  let data: DaemonData;
  let keyProcess: Daemon;
  let daemon: Daemon;
  let socket: string;
  let admin: ReturnType<typeof adminClient>;
  let token: Address;
  let agent: any;
  let session: string;
  let client: ReturnType<typeof createPublicClient>;

  const jobsOf = async (purpose: string) => ((await admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs as any[]).filter((j) => j.purpose === purpose);
  const waitMined = async (purpose: string, count: number) => {
    let jobs: any[] = [];
    for (let i = 0; i < 120; i++) {
      jobs = await jobsOf(purpose);
      if (jobs.length === count && jobs.every((j) => j.state === 'mined' || j.state === 'failed')) break;
      await sleep(250);
    }
    return jobs;
  };

  before(async () => {
    anvil = await startAnvil();
    token = (await deployToken(anvil.rpcUrl)).toLowerCase() as Address;
    client = createPublicClient({ transport: http(anvil.rpcUrl) });
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    keyProcess = await startKeyProcessChild(data, socket);
    daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_EVM_RPC: `${CHAIN}=${anvil.rpcUrl}`, AIRLOCK_LIFECYCLE_INTERVAL: '1s' });
    admin = adminClient(daemon.url, data.adminToken);
    const fleet = await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: TREASURY }, sweep_assets: { [CHAIN]: [`${CHAIN}/erc20:${token}`] } } } });
    assert.equal(fleet.status, 200, JSON.stringify(fleet.body));
    agent = (await admin('POST', '/v1/agents', { names: ['kp-lifecycle'] })).body.agents[0];
    const policy = { version: 1, rules: [{ name: 'grants', type: 'allow', match: { chains: [CHAIN], kinds: ['erc20.approve', 'eip2612.permit'] } }] };
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
    session = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data'] })).body.token;
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
    await anvil?.stop();
  });

  test('`airlock agent rotate` sweeps the old key to the new one: planned, signed by the key process, mined', async () => {
    const oldAddress = agent.address as Address;
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [oldAddress, `0x${ETH.toString(16)}`]);
    await mint(anvil.rpcUrl, token, oldAddress, 7_000_000n);
    const run = await runAirlock(daemon.url, data.adminToken, ['agent', 'rotate', agent.name]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /sweeping the old address to the new one/, run.stdout);
    agent = (await admin('GET', `/v1/agents/${agent.id}`)).body;
    assert.notEqual(agent.address, oldAddress);

    const jobs = await waitMined('rotation', 2);
    assert.deepEqual(jobs.map((j) => `${j.kind}|${j.state}|${j.keyIndex}|${j.recipient}`).sort(), [`erc20_transfer|mined|0|${agent.address}`, `native_transfer|mined|0|${agent.address}`], JSON.stringify(jobs));
    assert.equal(await balanceOf(anvil.rpcUrl, token, agent.address), 7_000_000n);
    assert.equal(await balanceOf(anvil.rpcUrl, token, oldAddress), 0n);
    const native = jobs.find((j) => j.kind === 'native_transfer');
    assert.equal(await client.getBalance({ address: agent.address }), BigInt(native.amount));
    // Each job: its plan committed first (what the key process checked), then its signed bytes.
    for (const job of jobs) {
      const [planned] = (await admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}&limit=1000`)).body.entries.filter((e: any) => e.seq === job.auditSeq);
      assert.equal(planned.data.jobId, job.id);
      assert.ok(job.signedAuditSeq > job.auditSeq, JSON.stringify(job));
      assert.equal(parseTransaction(job.rawTransaction).nonce, planned.data.payload.transaction.nonce);
      await outputMatches(() => keyProcess.output(), new RegExp(`"msg":"signed","method":"signBound","kind":"lifecycle","agentId":"${agent.id}","action":"evm.transaction","auditSeq":${job.auditSeq}`));
    }
  });

  describe('revoke-all, then an attacker on the socket', () => {
    const spenders = Array.from({ length: 2 }, () => privateKeyToAccount(generatePrivateKey()));
    let approval: { auditSeq: number };
    let permitArgs: readonly unknown[];

    test('`airlock agent revoke-all --wait` revokes an on-chain allowance (approve 0) and a held EIP-2612 permit (a zero-value permit, its signature planned and bound too)', async () => {
      const [s1, s2] = spenders.map((s) => s.address.toLowerCase() as Address) as [Address, Address];
      for (const s of spenders) await rpc(anvil.rpcUrl, 'anvil_setBalance', [s.address, `0x${ETH.toString(16)}`]);
      const nonce = await client.getTransactionCount({ address: agent.address });
      const signedApprove = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: session, body: { chainId: 31337, transaction: { type: 'eip1559', to: token, value: '0', data: encode('0x095ea7b3', s1, 1000n), nonce, gas: '100000', maxFeePerGas: '5000000000', maxPriorityFeePerGas: '1000000' } } });
      assert.equal(signedApprove.status, 200, JSON.stringify(signedApprove.body));
      approval = { auditSeq: signedApprove.body.auditSeq };
      const hash = await client.sendRawTransaction({ serializedTransaction: signedApprove.body.signedTransaction });
      assert.equal((await client.waitForTransactionReceipt({ hash })).status, 'success');
      const now = Number((await client.getBlock()).timestamp);
      const message = { owner: agent.address, spender: s2, value: '700', nonce: '0', deadline: String(now + 3600) };
      const permit = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token: session, body: { typedData: { domain: { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: token }, types: PERMIT_TYPES, primaryType: 'Permit', message } } });
      assert.equal(permit.status, 200, JSON.stringify(permit.body));
      const sig = parseSignature(permit.body.signature);
      permitArgs = [agent.address, s2, 700n, BigInt(message.deadline), Number(sig.v), sig.r, sig.s];
      const tokenAbi = compiledContracts().TestUSDC.abi;
      const transferFrom = () => client.simulateContract({ account: spenders[0]!, address: token, abi: ERC20, functionName: 'transferFrom', args: [agent.address, s1, 1n] });
      const submitPermit = () => client.simulateContract({ account: spenders[1]!, address: token, abi: tokenAbi, functionName: 'permit', args: permitArgs as never });
      await transferFrom(); // both grants work before (so the checks after can fail)
      await submitPermit();

      const run = await runAirlock(daemon.url, data.adminToken, ['agent', 'revoke-all', agent.name, '--wait', '--timeout', '60']);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      // Three: the permit's nonce burnt (a zero-value permit, signed first), approve(S1, 0), and approve(S2, 0) in case the permit was used.
      assert.match(run.stdout, /on-chain revocations: 3 \(3 submitted, 0 failed\)/, run.stdout);
      assert.equal(run.stdout.match(/revoked \(block \d+\)/g)?.length, 3, run.stdout);
      const jobs = await jobsOf('revoke_all');
      assert.deepEqual(jobs.map((j) => `${j.kind}|${j.state}|${j.keyIndex}`), Array(3).fill('revocation|mined|1'), JSON.stringify(jobs));
      await assert.rejects(transferFrom());
      assert.equal(await client.readContract({ address: token, abi: ERC20, functionName: 'allowance', args: [agent.address, s1] }), 0n);
      await assert.rejects(submitPermit(), /ERC2612InvalidSigner|revert/);
      // The permit burn was signed bound to its own plan: a `lifecycle.planned` entry of typed data, checked by the key process.
      const plans = (await admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}&limit=1000`)).body.entries;
      const typedPlan = plans.find((e: any) => e.action === 'evm.typed_data');
      assert.equal(typedPlan.data.payload.typedData.message.value, '0');
      await outputMatches(() => keyProcess.output(), new RegExp(`"kind":"lifecycle","agentId":"${agent.id}","action":"evm.typed_data","auditSeq":${typedPlan.seq}`));
    });

    const logged = new Map<string, number>();
    const refusedWith = async (params: Record<string, unknown>, reason: string) => {
      const res = await askKeyProcess(socket, 'signBound', params);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'key_process_refused');
      assert.equal(res.body.error.details.reason, reason, JSON.stringify(res.body));
      const line = new RegExp(`"msg":"refused","method":"signBound","code":"key_process_refused","reason":"${reason}"`, 'g');
      const count = () => keyProcess.output().match(line)?.length ?? 0;
      const before = logged.get(reason) ?? 0;
      for (let i = 0; i < 40 && count() <= before; i++) await sleep(25);
      assert.equal(count(), before + 1, keyProcess.output());
      logged.set(reason, before + 1);
      return res.body.error;
    };

    test('a lifecycle request naming an agent decision (not a lifecycle plan): not_lifecycle_plan', async () => {
      const payload = lifecycleTransactionPayload(CHAIN, { to: TREASURY, value: 1n, data: '0x' }, { nonce: 50, gas: 21_000n, gasPrice: 1n });
      await refusedWith({ kind: 'lifecycle', auditSeq: approval.auditSeq, agentId: agent.id, action: 'evm.transaction', payload, keyIndex: 1 }, 'not_lifecycle_plan');
    });

    test('a real plan with its recipient changed to another address: request_hash_mismatch; the plan itself, once signed: lifecycle_job_not_planned', async () => {
      const plan = (await admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}&limit=1000`)).body.entries.find((e: any) => e.data.kind === 'native_transfer');
      const request = { kind: 'lifecycle', auditSeq: plan.seq, agentId: agent.id, action: 'evm.transaction', keyIndex: plan.data.keyIndex };
      const redirected = { ...plan.data.payload, transaction: { ...plan.data.payload.transaction, to: MALLORY } };
      await refusedWith({ ...request, payload: redirected }, 'request_hash_mismatch');
      await refusedWith({ ...request, payload: plan.data.payload }, 'lifecycle_job_not_planned');
      await refusedWith({ ...request, payload: plan.data.payload, keyIndex: 1 }, 'key_not_agents');
    });

    test('a plan forged into the store (an attacker who writes it too) for a transfer to another address, or a permit that grants: lifecycle_call_refused', async () => {
      // The strongest attacker: the HTTP process's own store access, appending a plan the lifecycle path never made.
      const adapter = createEvmAdapter();
      const oldAddress = (await admin('GET', `/v1/agents/${agent.id}/keys`)).body.keys.find((k: any) => k.keyIndex === 0).address;
      await rpc(anvil.rpcUrl, 'anvil_setBalance', [oldAddress, `0x${ETH.toString(16)}`]);
      const store = await openStore(data.storeUrl);
      const forge = async (action: 'evm.transaction' | 'evm.typed_data', payload: unknown) => {
        const digest = bytesToHex(adapter.decode(action, payload, { address: oldAddress }).digest);
        const entry = await store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'lifecycle.planned', actor: 'operator', agentId: agent.id, action, decision: 'allow', data: { jobId: 'lcj_0000000000000bad', kind: 'native_transfer', keyIndex: 0, from: oldAddress, payload, digest } }));
        return { kind: 'lifecycle', auditSeq: entry.seq, agentId: agent.id, action, payload, keyIndex: 0 };
      };
      try {
        const drain = lifecycleTransactionPayload(CHAIN, { to: MALLORY, value: ETH / 2n, data: '0x' }, { nonce: await client.getTransactionCount({ address: oldAddress }), gas: 21_000n, gasPrice: 2_000_000_000n });
        const refusal = await refusedWith(await forge('evm.transaction', drain), 'lifecycle_call_refused');
        assert.match(refusal.message, /treasury or the agent's current address/);
        const tokenDrain = lifecycleTransactionPayload(CHAIN, { to: token, value: 0n, data: encode('0xa9059cbb', MALLORY, 1n) }, { nonce: 0, gas: 80_000n, gasPrice: 1n });
        await refusedWith(await forge('evm.transaction', tokenDrain), 'lifecycle_call_refused');
        const grant = { typedData: { domain: { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: token }, types: PERMIT_TYPES, primaryType: 'Permit', message: { owner: oldAddress, spender: MALLORY, value: '1000000', nonce: '0', deadline: '99999999999' } } };
        await refusedWith(await forge('evm.typed_data', grant), 'lifecycle_call_refused');
      } finally {
        await store.close();
      }
      assert.equal(await client.getBalance({ address: MALLORY }), 0n);
    });
  });
});

// Found by review (2026-12-03): with keys in a PKCS#11 token, a public key asked for at a token path that has none
// makes a persistent key pair there. A compromised daemon (what the key process guards against) asked for path
// after path, unmetered: 200 calls, 200 key pairs, until the token is full and provisioning fails.
describe('key process with a PKCS#11 token: key creation through the socket is metered', { skip: softHsmSkip() }, () => {
  let data: DaemonData;
  let token: ReturnType<typeof createSoftHsmToken>;
  before(async () => {
    data = await prepareDaemonData('sqlite');
    token = createSoftHsmToken('kp-keygen');
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
    token?.remove();
  });

  test('new token keys stop at the key-creation rate (key_process_rate_limited, keygen_rate); existing keys stay free', async () => {
    const socket = join(data.dataDir, 'keys.sock');
    const keyProcess = await startKeyProcessChild(data, socket, {
      AIRLOCK_KEY_BACKEND: 'pkcs11', AIRLOCK_PKCS11_LIBRARY: token.library, AIRLOCK_PKCS11_TOKEN_LABEL: token.tokenLabel, AIRLOCK_PKCS11_PIN_FILE: token.pinFile,
      SOFTHSM2_CONF: process.env.SOFTHSM2_CONF!, AIRLOCK_KEY_PROCESS_KEYGEN_RATE: '1', AIRLOCK_KEY_PROCESS_KEYGEN_BURST: '3',
    });
    const answers = [];
    for (let account = 700; account < 706; account++) answers.push(await askKeyProcess(socket, 'getPublicKey', { path: `m/44'/60'/${account}'/0/0` }));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 429, 429, 429], JSON.stringify(answers.map((a) => a.body)));
    for (const refused of answers.slice(3)) {
      assert.equal(refused.body.error.code, 'key_process_rate_limited');
      assert.equal(refused.body.error.details.reason, 'keygen_rate');
    }
    // A key that exists costs nothing: read as often as the daemon likes, and the same key each time.
    for (let i = 0; i < 10; i++) {
      const again = await askKeyProcess(socket, 'getPublicKey', { path: "m/44'/60'/700'/0/0" });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.result, answers[0]!.body.result);
    }
    assert.equal(keyProcess.output().split('\n').filter((l) => l.includes('"msg":"key created"')).length, 3);
  });
});

// Found by review (2026-12-03): the key process refused to read past a row that fails its checks, so after the
// operator acknowledged such a log (docs/operations.md, "Audit integrity alert") every tree head and signature
// stayed refused for good. It now folds such a row as the daemon's acknowledged tree has it, and signs nothing from it.
describe('key process: an acknowledged log with an entry that does not verify', () => {
  let data: DaemonData;
  let socket: string;
  before(async () => {
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    const keyProcess = await startKeyProcessChild(data, socket);
    keyProcessOutput = () => keyProcess.output();
  });
  let keyProcessOutput: () => string;
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('acknowledge resumes signing and tree heads; the edited entry is never signed from', async () => {
    const env = { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' };
    let daemon = await startDaemon(data, env);
    let admin = adminClient(daemon.url, data.adminToken);
    const agent = (await admin('POST', '/v1/agents', { names: ['ack'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy() })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    let n = 0;
    const sign = () => httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, n++) });
    assert.equal((await sign()).status, 200);
    await waitForCoveringHead(admin);
    await daemon.kill('SIGTERM');
    // Someone with the database edits an entry after the newest head: its decision column, not its leaf.
    const store = await openStore(data.storeUrl);
    const edited = await store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'operator.note', actor: 'operator', data: { note: 'x' } }));
    await store.close();
    const db = new DatabaseSync(join(data.dataDir, 'airlock.db'));
    db.exec(DROP_AUDIT_TRIGGERS.sqlite);
    db.prepare("UPDATE audit_entries SET decision = 'allow' WHERE seq = ?").run(edited.seq);
    db.close();

    daemon = await startDaemon(data, env);
    admin = adminClient(daemon.url, data.adminToken);
    let halted: Awaited<ReturnType<typeof sign>> | undefined;
    for (let i = 0; i < 50; i++) {
      halted = await sign();
      if (halted.status === 503) break;
      await sleep(200);
    }
    assert.equal(halted!.body.error.code, 'audit_integrity_failed', JSON.stringify(halted!.body));
    const ack = await admin('POST', '/v1/audit/acknowledge');
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    const resumed = await sign();
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    // Heads keep coming over the acknowledged log, past the edited row (folded as the daemon's tree has it).
    const treeSize = (await admin('GET', '/v1/audit/head')).body.treeSize as number;
    let newest = 0;
    for (let i = 0; i < 50 && newest < treeSize; i++) {
      newest = Math.max(0, ...(await admin('GET', '/v1/audit/checkpoints')).body.treeHeads.map((h: any) => h.treeSize));
      if (newest < treeSize) await sleep(200);
    }
    assert.ok(newest >= treeSize, `a head over ${treeSize} leaves (newest ${newest})`);
    assert.doesNotMatch(keyProcessOutput(), /"code":"key_process_refused".*"reason":"audit_leaf_mismatch".*signTreeHead|signTreeHead.*audit_leaf_mismatch/);
    // Nothing is signed from the edited entry: asked for directly, the key process refuses it.
    const asked = await askKeyProcess(socket, 'signBound', { kind: 'decision', auditSeq: edited.seq, agentId: agent.id, action: 'evm.transaction', payload: usdcTransfer(ALICE, 1n).transaction });
    assert.equal(asked.status, 403, JSON.stringify(asked.body));
    await daemon.kill('SIGTERM');
  });
});
