// `airlock approver` and `airlock approvals view|vote` end to end: the real command, as child processes, against a
// real daemon (`airlock start`). Approvers vote with their own key file and no admin token; the agent waits on the
// long poll and is answered when the quorum is met, with the approvers named.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminClient, httpJson, prepareDaemonData, type DaemonData } from '../../server/src/testing/processes.ts';
import { ALICE, BASE, USDC_ASSET, usdcTransfer } from '../../server/src/testing/harness.ts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { cliEnv, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

describe('airlock approver and approvals vote, end to end', () => {
  let dir: string;
  let data: DaemonData;
  let daemon: Daemon;
  /** The operator's shell: daemon URL and admin token. */
  const operator = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: data.adminToken }));
  /** An approver's shell: the daemon URL and their key file, no admin token. */
  const approver = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: daemon.url }));
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const admin = (method: string, path: string, body?: unknown) => adminClient(daemon.url, data.adminToken)(method, path, body);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-cli-approvers-'));
    data = await prepareDaemonData('sqlite');
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase }));
  });
  after(async () => {
    await daemon?.stop();
    await data?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('two treasury approvers meet the quorum from their own shells; self-approval and the admin token are refused', async () => {
    const agent = (await admin('POST', '/v1/agents', { names: ['payer'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { source: docPolicy('docs/policy.md#Approvals by stakes').source })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token as string;

    // The key pair is made by the CLI: the private key goes to a 0600 file (or is printed once), never to Airlock.
    const aKey = join(dir, 'tre-a.key');
    const added = ok(await operator('approver', 'add', 'tre-a', '--groups', 'treasury', '--key-out', aKey));
    assert.equal(statSync(aKey).mode & 0o777, 0o600);
    const aFile = JSON.parse(readFileSync(aKey, 'utf8'));
    assert.match(aFile.secretKey, /^[0-9a-f]{64}$/);
    assert.ok(!added.includes(aFile.secretKey), 'the private key is not printed when written to a file');
    assert.match(added, /^approver tre-a \(apv_[0-9a-f]{16}\) in treasury$/m);
    const again = await operator('approver', 'add', 'tre-x', '--groups', 'treasury', '--key-out', aKey);
    assert.notEqual(again.code, 0, 'an existing key file is never overwritten');
    assert.equal(JSON.parse(readFileSync(aKey, 'utf8')).secretKey, aFile.secretKey);

    const printed = ok(await operator('approver', 'add', 'tre-b', '--groups', 'treasury,risk', '--key-out', '-'));
    const bLine = printed.split('\n').find((l) => l.startsWith('{'))!;
    const bKey = join(dir, 'tre-b.key');
    writeFileSync(bKey, bLine, { mode: 0o600 });
    const ownKey = join(dir, 'own.key');
    ok(await operator('approver', 'add', 'payer-owner', '--groups', 'treasury', '--agents', agent.name, '--key-out', ownKey));
    const listed = ok(await operator('approver', 'list'));
    assert.match(listed, /tre-a\s+treasury\s+-\s+active/);
    assert.match(listed, new RegExp(`payer-owner\\s+treasury\\s+${agent.id}\\s+active`));

    const held = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000_000n) });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const id = held.body.approvalId as string;

    const view = ok(await approver('approvals', 'view', id, '--key', aKey));
    assert.match(view, new RegExp(`^${id}: pending$`, 'm'));
    assert.match(view, /needs: {3}2 of treasury/);
    assert.match(view, /request: .*5000000000/);

    const first = ok(await approver('approvals', 'vote', id, 'approve', '--key', aKey, '--comment', 'invoice 7'));
    assert.match(first, new RegExp(`^${id}: pending$`, 'm'));
    assert.match(first, /votes: {3}tre-a approve \(invoice 7\)/);

    // Refused when reading what to vote on, and (with the digest known from elsewhere) when voting: then audited.
    const selfView = await approver('approvals', 'vote', id, 'approve', '--key', ownKey);
    assert.match(selfView.stderr, /^error \[self_approval\]/m);
    const digest = (await admin('GET', `/v1/approvals/${id}`)).body.digest as string;
    const self = await approver('approvals', 'vote', id, 'approve', '--key', ownKey, '--digest', digest);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /^error \[self_approval\]/m);
    const bypass = await operator('approvals', 'approve', id);
    assert.equal(bypass.code, 1);
    assert.match(bypass.stderr, /^error \[quorum_required\]/m);
    const twice = await approver('approvals', 'vote', id, 'approve', '--key', aKey);
    assert.match(twice.stderr, /^error \[approver_already_voted\]/m);

    // The agent waits on the long poll; the second vote answers it.
    const waiting = httpJson(daemon.url, 'GET', `/v1/approvals/${id}?wait=30`, { token });
    const second = ok(await approver('approvals', 'vote', id, 'approve', '--key', bKey, '--json'));
    assert.deepEqual(JSON.parse(second).approvers, ['tre-a', 'tre-b']);
    const answered = await waiting;
    // The agent reads how the votes went, not who cast them; the approver's --json answer above names them.
    assert.deepEqual([answered.body.state, answered.body.voteCounts, answered.body.approvers], ['approved', { approve: 2, reject: 0 }, undefined]);
    assert.match(answered.body.result.signedTransaction, /^0x02/);

    const audit = (await admin('GET', `/v1/audit?agent=${agent.name}&type=approval.vote`)).body.entries.map((e: any) => [e.data.approver, e.data.accepted, e.data.code]);
    assert.deepEqual(audit, [['tre-a', true, undefined], ['payer-owner', false, 'self_approval'], ['tre-a', false, 'approver_already_voted'], ['tre-b', true, undefined]]);
  });

  test('a vote on another digest than the one reviewed is refused; a disabled approver\'s key stops working', async () => {
    const agent = (await admin('POST', '/v1/agents', { names: ['payer-2'] })).body.agents[0];
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { source: docPolicy('docs/policy.md#Approvals by stakes').source })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token as string;
    const held = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 500_000_000n) });
    const id = held.body.approvalId as string;
    const opsKey = join(dir, 'ops.key');
    ok(await operator('approver', 'add', 'ops-a', '--groups', 'ops', '--key-out', opsKey));

    const wrong = await approver('approvals', 'vote', id, 'approve', '--key', opsKey, '--digest', 'ab'.repeat(32));
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^error \[vote_digest_mismatch\]/m);
    assert.match(ok(await operator('approver', 'disable', 'ops-a')), /^ops-a: disabled$/m);
    const disabled = await approver('approvals', 'vote', id, 'approve', '--key', opsKey);
    assert.match(disabled.stderr, /^error \[approver_disabled\]/m);
    const missing = await approver('approvals', 'vote', id, 'approve');
    assert.equal(missing.code, 2, 'usage: --key is required');
    writeFileSync(join(dir, 'bad.key'), '{"type":"airlock-approver-key","approver":"ops-a","secretKey":"00"}', { mode: 0o600 });
    const bad = await approver('approvals', 'vote', id, 'approve', '--key', join(dir, 'bad.key'));
    assert.match(bad.stderr, /^error \[invalid_request\]: The --key file is not an approver key file/m);
    // A key file other users can read is refused before it is read, as every secret file is.
    const shared = join(dir, 'shared.key');
    writeFileSync(shared, readFileSync(opsKey, 'utf8'), { mode: 0o644 });
    chmodSync(shared, 0o644);
    const loose = await approver('approvals', 'vote', id, 'approve', '--key', shared);
    assert.match(loose.stderr, /^error \[invalid_request\]: The --key file can be read by other users \(mode 644\)/m);
    assert.equal((await admin('GET', `/v1/approvals/${id}`)).body.state, 'pending');
  });

  test('an approval that needs the operator as well as the votes prints "the operator", then who approved it; the operator\'s approve prints it recorded and pending', async () => {
    // The fleet holds payments above 1,000 USDC for the operator; the agent's own tier asks one devops approver.
    assert.equal((await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'big-by-operator', type: 'approval_tier', asset: USDC_ASSET, above: '1000000000' }] } })).status, 200);
    try {
      const agent = (await admin('POST', '/v1/agents', { names: ['payer-3'] })).body.agents[0];
      const policy = { version: 1, rules: [
        { name: 'pay', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], to: [ALICE] } },
        { name: 'devops', type: 'approval_tier', asset: USDC_ASSET, above: '100000000', quorum: { min: 1, groups: ['devops'] } },
      ] };
      assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
      const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token as string;
      const devKey = join(dir, 'dev.key');
      ok(await operator('approver', 'add', 'dev-a', '--groups', 'devops', '--key-out', devKey));
      const held = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000_000n, 3) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const id = held.body.approvalId as string;

      assert.match(ok(await approver('approvals', 'view', id, '--key', devKey)), /^ {2}needs: {3}1 of devops and the operator$/m);
      assert.match(ok(await operator('approvals', 'approve', id)), new RegExp(`^${id}: pending \\(the operator's approval is recorded; waiting for 1 of devops\\)$`, 'm'));
      assert.match(ok(await approver('approvals', 'view', id, '--key', devKey)), /^ {2}needs: {3}1 of devops and the operator \(approved by admin\)$/m);
      const granted = ok(await approver('approvals', 'vote', id, 'approve', '--key', devKey));
      assert.match(granted, new RegExp(`^${id}: approved by dev-a$`, 'm'));
    } finally {
      assert.equal((await admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } })).status, 200);
    }
  });
});
