// Two instances on one PostgreSQL run the x402 reconciler over the same reserved payments, as every daemon does on
// the same timer (and as overlapping ticks of one daemon may). When the other instance settles a payment between
// this round's unlocked read and finishPayment's locked re-check, finishPayment answers `conflict` and the
// transaction rolls back whole. Found by review: that `conflict` escaped PaymentReconciler.run, so the round
// rejected ("background job failed"), every later payment of its batch went unchecked (the cursor had already moved
// past them) and the round's alerts were never written. A conflict now means "another round got there first".
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ManualClock, PaymentReconciler, type ChainReader, type LedgerWrite, type PaymentRecord, type ServiceDeps, type Store, type StoreTx } from '@airlock/core';
import { openPostgresStore } from './postgres-store.ts';

const url = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `airlock_reconcile2_${randomBytes(4).toString('hex')}`;
after(async () => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
});

const asset = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const writes: LedgerWrite[] = [{ series: 'agent:ag_1', asset, amount: 700n, count: 1 }];
const payment = (i: number): PaymentRecord => ({
  id: `pay_${i.toString().padStart(16, '0')}`, agentId: 'ag_1', sessionId: 'ses_1', auditSeq: 1, protocol: 'x402', x402Version: 2, network: 'eip155:8453',
  asset: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', from: '0x1111111111111111111111111111111111111111', to: '0x2222222222222222222222222222222222222222',
  value: 700n, nonce: `0x${i.toString(16).padStart(64, '0')}`, validAfter: 0, validBefore: 1_000 + i,
  state: 'reserved', createdAt: 1_000, updatedAt: 1_000,
});

/** A chain on which every nonce was used by a transfer of exactly the held value. */
const chain: ChainReader = {
  supports: () => true,
  authorizationState: async () => true,
  latestBlockTimestamp: async () => 2_000_000_000,
  pinnedBlock: async () => ({ tag: 'finalized', number: 1n, timestamp: 2_000_000_000 }),
  findAuthorizationUse: async () => ({ transactionHash: `0x${'ab'.repeat(32)}`, blockNumber: 1n, transfer: { to: '0x2222222222222222222222222222222222222222', value: 700n } }),
};

/**
 * Instance B's store, seen through a tx whose getPayment (the reconciler's plain pre-check in finish()) returns and
 * then waits on `gate` once: only a widened timing window, the interleaving itself is what two daemons do.
 */
function gatedOnce(store: Store, gate: { reached: () => void; open: Promise<void> }): Store {
  let armed = true;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'transaction') return Reflect.get(target, prop, receiver);
      return (fn: (tx: StoreTx) => Promise<unknown>, options?: object) =>
        target.transaction((tx) => fn(new Proxy(tx, {
          get(t, p, r) {
            if (p !== 'getPayment') {
              const v = Reflect.get(t, p, r);
              return typeof v === 'function' ? v.bind(t) : v;
            }
            return async (id: string) => {
              const read = await t.getPayment(id);
              if (armed) {
                armed = false;
                gate.reached();
                await gate.open;
              }
              return read;
            };
          },
        })), options as never);
    },
  });
}

test('a payment the other instance settles mid-round is skipped; the rest of the round is settled', async () => {
  const a = await openPostgresStore({ connectionString: url, schema, poolSize: 4 });
  const b = await openPostgresStore({ connectionString: url, schema, poolSize: 4 });
  try {
    await a.migrate();
    await b.migrate();
    for (let i = 1; i <= 5; i++) await a.transaction((tx) => tx.holdPayment(payment(i), writes));

    const clock = new ManualClock(2_000_000_000_000);
    const depsFor = (store: Store) => ({ store, clock }) as unknown as ServiceDeps;
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    let openGate!: () => void;
    const open = new Promise<void>((r) => (openGate = r));

    const reconcilerA = new PaymentReconciler(depsFor(a), chain);
    const reconcilerB = new PaymentReconciler(depsFor(gatedOnce(b, { reached, open })), chain);

    // B starts its round (5 payments) and has read pay_1 as reserved; A now settles pay_1 (a round of 1).
    const roundB = reconcilerB.run(10);
    await atGate;
    const roundA = await reconcilerA.run(1);
    assert.equal(roundA.settled, 1);
    openGate();

    // B skips pay_1 (A settled it) and settles pay_2..pay_5: nothing left reserved, each settled once.
    const result = await roundB;
    assert.deepEqual({ checked: result.checked, settled: result.settled, errors: result.errors }, { checked: 5, settled: 4, errors: 0 });
    assert.deepEqual(await a.listPayments({ state: 'reserved' }), []);
    const settledEntries = await a.queryAudit({ type: 'x402.settled' } as never);
    assert.deepEqual(settledEntries.map((e) => (e.data as { paymentId: string }).paymentId).sort(), [1, 2, 3, 4, 5].map((i) => payment(i).id));
  } finally {
    await a.close();
    await b.close();
  }
});

test('two instances reconciling the same 300 payments at once: both rounds finish, every payment settled exactly once', async () => {
  const s2 = `${schema}_n`;
  const a = await openPostgresStore({ connectionString: url, schema: s2, poolSize: 4 });
  const b = await openPostgresStore({ connectionString: url, schema: s2, poolSize: 4 });
  try {
    await a.migrate();
    await b.migrate();
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.transaction((tx) => tx.holdPayment(payment(i + 1), writes))));
    const clock = new ManualClock(2_000_000_000_000);
    const ra = new PaymentReconciler({ store: a, clock } as unknown as ServiceDeps, chain);
    const rb = new PaymentReconciler({ store: b, clock } as unknown as ServiceDeps, chain);
    const [roundA, roundB] = await Promise.all([ra.run(1000), rb.run(1000)]);
    assert.equal(roundA.settled + roundB.settled, 300, `${JSON.stringify(roundA)} ${JSON.stringify(roundB)}`);
    assert.equal(roundA.errors + roundB.errors, 0);
    assert.deepEqual(await a.listPayments({ state: 'reserved' }), []);
    const settledEntries = await a.queryAudit({ type: 'x402.settled', limit: 1000 } as never);
    assert.equal(new Set(settledEntries.map((e) => (e.data as { paymentId: string }).paymentId)).size, 300);
    assert.equal(settledEntries.length, 300, 'one x402.settled entry per payment');
  } finally {
    await a.close();
    await b.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${s2}" CASCADE`);
    await c.end();
  }
});
