// The separate key process (docs/custody.md, "What the key process checks") takes a decision from the audit log,
// never from a row the daemon can rewrite, as real processes: a compromised daemon that flips a denied approval's
// row to `approved` (no `approval.granted` on the record) gets nothing signed, while a real grant still signs; and
// one that names a pre-rotation allow through a `sign.replay` entry it appended (replay entries carry no intent),
// or an allow that records no key at all, is refused `agent_key_changed` instead of getting the old decision signed
// again by the agent's new key. Both were found by review; the attacker here holds the socket and the store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createEvmAdapter } from '@airlock/chains';
import { canonicalJson, requestHash } from '@airlock/core';
import { openStore } from '@airlock/store';
import { ALICE, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { adminClient, askKeyProcess, httpJson, killAllDaemons, prepareDaemonData, readWholeAudit, startDaemon, startKeyProcessChild, waitForCoveringHead, type Daemon, type DaemonData } from './testing/processes.ts';

describe('key process: decisions are read from the audit log, not from rows the daemon can rewrite', () => {
  let data: DaemonData;
  let daemon: Daemon;
  let socket: string;
  let admin: ReturnType<typeof adminClient>;

  before(async () => {
    data = await prepareDaemonData('sqlite');
    socket = join(data.dataDir, 'keys.sock');
    await startKeyProcessChild(data, socket);
    daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_CHECKPOINT_INTERVAL: '1s' });
    admin = adminClient(daemon.url, data.adminToken);
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
  });

  test('a denied request whose approval row the daemon sets to approved is refused decision_not_allow; a granted one signs', async () => {
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-flip'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ approvalAbove: '5000000' }) })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const holdFor = async (body: unknown) => {
      const held = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      return { auditSeq: held.body.auditSeq as number, approvalId: held.body.approvalId as string };
    };
    const signBound = (auditSeq: number, approvalId: string, payload: unknown) => askKeyProcess(socket, 'signBound', { auditSeq, agentId: agent.id, action: 'evm.transaction', payload, approvalId });

    // 20 USDC held for a human, who denies it (its hold released: nothing is charged).
    const deniedBody = usdcTransfer(ALICE, 20_000_000n, 0);
    const denied = await holdFor(deniedBody);
    assert.equal((await admin('POST', `/v1/approvals/${denied.approvalId}/deny`, { reason: 'not this one' })).status, 200);
    // The compromised daemon: one UPDATE on its own database, no entry in the log.
    const db = new DatabaseSync(join(data.dataDir, 'airlock.db'));
    try {
      db.exec('PRAGMA busy_timeout = 5000');
      db.prepare("UPDATE approvals SET state = 'approved' WHERE id = ?").run(denied.approvalId);
    } finally {
      db.close();
    }
    const flipped = await signBound(denied.auditSeq, denied.approvalId, deniedBody);
    assert.equal(flipped.status, 403, JSON.stringify(flipped.body));
    assert.equal(flipped.body.error.code, 'key_process_refused');
    assert.equal(flipped.body.error.details.reason, 'decision_not_allow');
    const audit = await readWholeAudit(daemon.url, data.adminToken, `agent=${agent.name}`);
    assert.equal(audit.filter((e: any) => e.type === 'approval.granted').length, 0);

    // The same shape, granted by the operator: its `approval.granted` entry is found and it signs (and re-signs).
    const grantedBody = usdcTransfer(ALICE, 20_000_000n, 1);
    const granted = await holdFor(grantedBody);
    const approved = await admin('POST', `/v1/approvals/${granted.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const again = await signBound(granted.auditSeq, granted.approvalId, grantedBody);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    // Another approval's grant does not grant this one.
    const stillDenied = await signBound(denied.auditSeq, granted.approvalId, deniedBody);
    assert.equal(stillDenied.status, 403, JSON.stringify(stillDenied.body));
  });

  test('a pre-rotation allow named through a forged sign.replay entry, or an allow recording no key, is refused agent_key_changed', async () => {
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-rot'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy() })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const body = usdcTransfer(ALICE, 3_000n, 0);
    const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const original = signed.body.auditSeq as number;
    const rotated = await admin('POST', `/v1/agents/${agent.name}/rotate`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const signBound = (auditSeq: number, payload: unknown) => askKeyProcess(socket, 'signBound', { auditSeq, agentId: agent.id, action: 'evm.transaction', payload });

    // Named directly, the pre-rotation decision was refused before the fix too.
    const direct = await signBound(original, body);
    assert.equal(direct.status, 403, JSON.stringify(direct.body));
    assert.equal(direct.body.error.details.reason, 'agent_key_changed');
    await waitForCoveringHead(admin);
    await daemon.kill('SIGTERM');

    // The compromised daemon appends what an honest replay entry looks like, and an allow with no intent.
    const other = usdcTransfer(ALICE, 3_000n, 1);
    const store = await openStore(data.storeUrl);
    let replaySeq: number;
    let keylessSeq: number;
    try {
      const [orig] = await store.readAudit(original, 1);
      const entry = { at: Date.now(), type: 'sign.replay', actor: 'agent' as const, agentId: agent.id, sessionId: orig!.sessionId!, action: 'evm.transaction', decision: 'allow' as const };
      replaySeq = (await store.transaction((tx) => tx.appendAudit({ ...entry, data: { originalSeq: original, digest: orig!.data.digest, requestHash: requestHash('evm.transaction', body, canonicalJson) } }))).seq;
      // Decided for no key: what a forging daemon would write to step around the check (the digest is the new key's).
      const otherDigest = Buffer.from(createEvmAdapter().decode('evm.transaction', other as never, { address: rotated.body.current.address }).digest).toString('hex');
      keylessSeq = (await store.transaction((tx) => tx.appendAudit({ ...entry, type: 'sign.request', data: { digest: otherDigest, requestHash: requestHash('evm.transaction', other, canonicalJson) } }))).seq;
    } finally {
      await store.close();
    }
    const replayed = await signBound(replaySeq, body);
    assert.equal(replayed.status, 403, JSON.stringify(replayed.body));
    assert.equal(replayed.body.error.details.reason, 'agent_key_changed');
    const keyless = await signBound(keylessSeq, other);
    assert.equal(keyless.status, 403, JSON.stringify(keyless.body));
    assert.equal(keyless.body.error.details.reason, 'agent_key_changed');
  });
});
