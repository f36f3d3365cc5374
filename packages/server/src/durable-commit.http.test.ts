// SQLite durability: a commit's WAL sync runs in the thread pool (off the event loop), and nobody hears of the
// commit before it is done. The sync is held open or failed here through the store's fdatasync hook; everything
// else is the real daemon path (HTTP route, policy, group commit, key backend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasync } from 'node:fs';
import { recoverTransactionAddress, type Hex } from 'viem';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from './testing/harness.ts';

type Fdatasync = (fd: number, done: (err: Error | null) => void) => void;

/** An fdatasync that can be held: while held, every sync waits; `release` lets them all through. */
function gatedSync(): { fn: Fdatasync; hold(): void; release(): void; waiting(): number } {
  let held = false;
  let queued: (() => void)[] = [];
  return {
    fn: (fd, done) => {
      const run = () => fdatasync(fd, done);
      if (held) queued.push(run);
      else run();
    },
    hold: () => {
      held = true;
    },
    release: () => {
      held = false;
      const go = queued;
      queued = [];
      for (const run of go) run();
    },
    waiting: () => queued.length,
  };
}

const settledWithin = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('a signature and the state it changed are released only once the commit\'s WAL sync is done', async () => {
  const sync = gatedSync();
  const h = await startHarness({ sqliteFdatasync: sync.fn });
  try {
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
    sync.hold();
    const signing = h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 4_000_000n) });
    // The request committed (its charge is in the WAL) but the sync has not run: no answer yet, and a reader
    // of the budget it changed waits too rather than see a charge a power cut could take back.
    assert.equal(await settledWithin(signing, 300), false, 'the signature waits for the sync');
    assert.ok(sync.waiting() >= 1, 'a WAL sync is pending');
    const budget = h.admin('GET', `/v1/agents/${agent.name}`);
    assert.equal(await settledWithin(budget, 100), false, 'a read of the agent, after that commit, waits too');
    sync.release();
    const res = await signing;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const signer = await recoverTransactionAddress({ serializedTransaction: res.body.signedTransaction as Hex as never });
    assert.equal(signer.toLowerCase(), agent.address.toLowerCase());
    assert.equal((await budget).status, 200);
    // Nothing lost across a restart: the audit log has the request and verifies.
    await h.restart();
    const verified = await h.admin('POST', '/v1/audit/verify');
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.equal(verified.body.ok, true);
  } finally {
    sync.release();
    await h.close();
  }
});

test('a failed WAL sync fails the request closed: 503 store_unavailable, no signature, and the store refuses until restarted', async () => {
  let fail = false;
  const failing: Fdatasync = (fd, done) => (fail ? setImmediate(() => done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))) : fdatasync(fd, done));
  const h = await startHarness({ sqliteFdatasync: failing });
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 1) })).status, 200);
    fail = true;
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 2) });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'store_unavailable');
    assert.equal(res.body.signedTransaction, undefined);
    assert.equal(res.body.signature, undefined);
    assert.doesNotMatch(JSON.stringify(res.body), /EIO/, 'the cause stays in the log, not in the answer');
    // A failed fsync leaves nothing this process wrote trustworthy: the store stays closed, even once the disk answers.
    fail = false;
    const next = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 3) });
    assert.equal(next.status, 503);
    assert.equal(next.body.error.code, 'store_unavailable');
    assert.equal((await h.admin('GET', '/v1/agents')).status, 503, 'reads refuse too');
    // A restart reopens the store (SQLite recovers the WAL) and the daemon signs again; the log verifies.
    await h.restart();
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, 4) })).status, 200);
    const verified = await h.admin('POST', '/v1/audit/verify');
    assert.equal(verified.body.ok, true);
  } finally {
    await h.close();
  }
});
