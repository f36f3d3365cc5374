// The admin credential's cache on its own (admin-credential.ts): how long a replaced hash can be trusted, how
// often a wrong token reaches the store, and that an old read never undoes a newer rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '@airlock/core';
import { AdminCredential, adminTokenHash, newAdminToken } from './admin-credential.ts';

/** A store with only the meta value, whose reads can be held open, counting them. */
function metaStore(hash: string) {
  const state = { hash, reads: 0, fail: false, hold: undefined as Promise<void> | undefined };
  const store = {
    async getMeta() {
      state.reads++;
      const value = state.hash;
      await state.hold;
      if (state.fail) throw Object.assign(new Error('down'), { code: 'store_unavailable' });
      return value;
    },
  } as unknown as Store;
  return { store, state };
}

test('a replaced hash is trusted for at most the staleness bound, then read again', async () => {
  const a = newAdminToken();
  const b = newAdminToken();
  const { store, state } = metaStore(a.hash);
  let now = 0;
  const admin = new AdminCredential(store, a.hash, { stalenessMs: 5000, rereadMs: 1000, elapsed: () => now, readAt: 0 });
  state.hash = b.hash; // rotated by another instance at t=0
  now = 5000;
  await admin.verify(a.token); // still inside the bound
  assert.equal(state.reads, 0);
  now = 5001;
  await assert.rejects(admin.verify(a.token), { code: 'unauthenticated' });
  await admin.verify(b.token);
  assert.equal(state.reads, 1);
});

test('wrong tokens read the store at most once per reread interval', async () => {
  const a = newAdminToken();
  const { store, state } = metaStore(a.hash);
  let now = 0;
  const admin = new AdminCredential(store, a.hash, { stalenessMs: 5000, rereadMs: 1000, elapsed: () => now, readAt: 0 });
  for (let i = 0; i < 50; i++) await assert.rejects(admin.verify(`adm_wrong${i}`), { code: 'unauthenticated' });
  assert.equal(state.reads, 1);
  now = 999;
  await assert.rejects(admin.verify('adm_wrong'), { code: 'unauthenticated' });
  assert.equal(state.reads, 1);
  now = 1000;
  await assert.rejects(admin.verify('adm_wrong'), { code: 'unauthenticated' });
  assert.equal(state.reads, 2);
  await admin.verify(a.token);
});

test('a read that started before this instance rotated cannot bring the old hash back', async () => {
  const a = newAdminToken();
  const { store, state } = metaStore(a.hash);
  let now = 0;
  const admin = new AdminCredential(store, a.hash, { stalenessMs: 5000, rereadMs: 1000, elapsed: () => now, readAt: 0 });
  let release!: () => void;
  state.hold = new Promise((r) => (release = r));
  now = 6000;
  const slow = admin.verify(a.token); // stale: starts a read that sees a.hash, held open
  await new Promise((r) => setImmediate(r));
  // Meanwhile a rotation on this instance commits (the store's compare-and-set is mocked by this transaction).
  const b = newAdminToken();
  (store as unknown as { transaction: unknown }).transaction = async (fn: (tx: unknown) => Promise<unknown>) =>
    fn({ compareAndSetMeta: async () => ((state.hash = b.hash), true), appendAudit: async () => ({ seq: 7 }) });
  now = 6001;
  const rotation = await admin.rotate(a.token, Date.now(), 'local');
  release();
  // Its read answered the old hash, but the rotation is newer: the request is judged by the new hash.
  await assert.rejects(slow, { code: 'unauthenticated' });
  assert.equal(await admin.currentHash(), adminTokenHash(rotation.token));
  await assert.rejects(admin.verify(a.token), { code: 'unauthenticated' });
});

test('a store that cannot be read when the hash is due refuses (fail closed)', async () => {
  const a = newAdminToken();
  const { store, state } = metaStore(a.hash);
  let now = 0;
  const admin = new AdminCredential(store, a.hash, { stalenessMs: 5000, elapsed: () => now, readAt: 0 });
  state.fail = true;
  now = 5001;
  await assert.rejects(admin.verify(a.token), { code: 'store_unavailable' });
});
