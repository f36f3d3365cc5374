// `airlock webhook …` as an operator runs it, against a real daemon process (`airlock start`) and a real
// receiver on loopback: the secret is printed once and never again (nor in the daemon's output), approvals
// arrive signed, the delivery log and a rotation show in the CLI, bad input exits non-zero with its code.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { prepareDaemonData, provisionRemoteAgent, type DaemonData } from '../../server/src/testing/processes.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../server/src/testing/webhook-receiver.ts';
import { cliEnv, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

describe('airlock webhook', () => {
  let data: DaemonData;
  let daemon: Daemon;
  let receiver: WebhookReceiver;
  after(async () => {
    await daemon?.stop();
    await receiver?.close();
    await data?.cleanup();
  });
  const airlock = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: data.adminToken }));
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };

  test('add prints the secret once; an approval held and denied arrives signed; list, deliveries, rotate and remove; bad input exits 1 with its code', async () => {
    data = await prepareDaemonData('sqlite');
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_PORT: '0', AIRLOCK_WEBHOOK_POLL_INTERVAL: '1s' }));
    receiver = await startWebhookReceiver();

    const added = ok(await airlock('webhook', 'add', receiver.url, '--events', 'approval.*', '--description', 'on-call'));
    const secret = /^\s*(whsec_[A-Za-z0-9_-]{43})\s*$/m.exec(added)?.[1];
    assert.ok(secret, added);
    receiver.secret = secret;
    const id = /webhook (whk_[0-9a-f]{16})/.exec(added)?.[1];
    assert.ok(id, added);

    const { token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ approvalAbove: '10000000' }) });
    const held = await fetch(`${daemon.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(usdcTransfer(ALICE, 20_000_000n)) });
    assert.equal(held.status, 202);
    const { approvalId } = (await held.json()) as { approvalId: string };
    ok(await airlock('approvals', 'deny', approvalId, '--reason', 'not today'));
    const got = [...(await receiver.waitFor(2))].sort((a, b) => a.event.leafIndex - b.event.leafIndex);
    assert.deepEqual(got.map((d) => [d.event.type, d.verified]), [['approval.requested', true], ['approval.denied', true]]);

    const list = ok(await airlock('webhook', 'list'));
    assert.match(list, new RegExp(`${id}\\s+${receiver.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+approval\\.\\*`));
    let log = ok(await airlock('webhook', 'deliveries', id));
    for (let i = 0; i < 20 && (log.match(/delivered/g) ?? []).length < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      log = ok(await airlock('webhook', 'deliveries', id));
    }
    assert.match(log, /approval\.requested\s+\d+\s+delivered\s+1\s+delivered 200/);
    assert.match(log, /approval\.denied\s+\d+\s+delivered\s+1\s+delivered 200/);

    const rotated = ok(await airlock('webhook', 'rotate', id));
    const newSecret = /^\s*(whsec_[A-Za-z0-9_-]{43})\s*$/m.exec(rotated)?.[1];
    assert.ok(newSecret && newSecret !== secret, rotated);
    assert.match(ok(await airlock('webhook', 'remove', id)), new RegExp(`${id}: removed at `));
    assert.equal(ok(await airlock('webhook', 'list')).trim(), '(none)');

    const bad = await airlock('webhook', 'add', 'https://ops:hunter2@hooks.example/x');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /webhook_url_credentials/);
    assert.doesNotMatch(bad.stderr, /hunter2/);
    const pattern = await airlock('webhook', 'add', receiver.url, '--events', 'sign.*');
    assert.equal(pattern.code, 1);
    assert.match(pattern.stderr, /webhook_event_unknown/);
    assert.equal((await airlock('webhook', 'frobnicate')).code, 2, 'a typo prints usage');

    for (const s of [secret, newSecret]) {
      assert.equal(daemon.output().includes(s.slice('whsec_'.length)), false, 'the secret is not in the daemon output');
      assert.equal(list.includes(s), false);
      assert.equal(log.includes(s), false);
    }
  });
});
