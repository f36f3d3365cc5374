// Fail closed: when the audit log cannot record something, it does not happen. No signature, no
// reservation, no operator change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError, type AuditEntryInput, type StoreTx } from '@airlock/core';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';

/** Makes the store's audit append fail for entries matching `when`, as a full disk or a lost database would. */
function breakAuditAppend(h: Harness, when: (e: AuditEntryInput) => boolean): () => void {
  const store = h.airlock.store;
  const original = store.transaction.bind(store);
  store.transaction = ((fn: (tx: StoreTx) => Promise<unknown>, options?: Parameters<typeof original>[1]) =>
    original((tx) =>
      fn(
        new Proxy(tx, {
          get(target, prop) {
            if (prop === 'appendAudit') {
              return async (e: AuditEntryInput) => {
                if (when(e)) throw new AirlockError('store_unavailable', 'audit append failed (test)');
                return target.appendAudit(e);
              };
            }
            const value = (target as unknown as Record<string | symbol, unknown>)[prop];
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
      ),
    options)) as typeof store.transaction;
  return () => {
    store.transaction = original;
  };
}

test('a signing request whose audit entry cannot be written is not signed and reserves nothing', async () => {
  const h = await startHarness();
  try {
    const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '5' }) });
    const restore = breakAuditAppend(h, (e) => e.type === 'sign.request');
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5n) });
    restore();
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'store_unavailable');
    assert.equal(res.body.signedTransaction, undefined);
    // Nothing was reserved: the whole budget is still there.
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5n) })).status, 200);
  } finally {
    await h.close();
  }
});

test('an operator change whose audit entry cannot be written does not happen', async () => {
  const h = await startHarness();
  try {
    const { agent, token, session } = await provisionAgent(h, { policy: usdcPolicy() });
    const restore = breakAuditAppend(h, (e) => e.type.startsWith('agent.') || e.type.startsWith('session.') || e.type === 'policy.set');
    try {
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/freeze`)).status, 503);
      assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/revoke`)).status, 503);
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: { version: 1, rules: [] } })).status, 503);
    } finally {
      restore();
    }
    assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'active');
    assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/versions`)).body.versions.length, 1);
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 200, 'session still valid');
    const types = (await h.admin('GET', `/v1/audit?agent=${agent.name}`)).body.entries.map((e: { type: string }) => e.type);
    assert.ok(!types.includes('agent.frozen') && !types.includes('session.revoked'));
  } finally {
    await h.close();
  }
});
