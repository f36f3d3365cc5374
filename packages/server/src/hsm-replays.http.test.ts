// Replays on a key backend that is not deterministic (issue 15 §1): a PKCS#11 token (SoftHSM2) signs with a random
// nonce, so signing a charged digest again would hand out a second, different valid signature. Every replay must
// return the bytes that were charged: an idempotent retry and an x402 nonce replay after a daemon restart, an
// approved request asked again after a restart, two instances on one PostgreSQL answering the same retry at once.
// A signature the store cannot keep is not released. Signatures are checked with viem, not with our own code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { recoverTransactionAddress, verifyTypedData, type Hex } from 'viem';
import { storeTarget } from '@airlock/store';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../../keys/src/softhsm-token.ts';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock, type Airlock } from './runtime.ts';
import { ALICE, PG_URL, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const skip = softHsmSkip();

/** viem's own check of an EIP-3009 signature from the harness fixture. */
async function authorizationSignedBy(address: string, body: ReturnType<typeof usdcAuthorization>, signature: Hex): Promise<boolean> {
  const td = body.typedData;
  const m = td.message;
  return verifyTypedData({ address: address as Hex, domain: td.domain as never, types: td.types, primaryType: 'TransferWithAuthorization', message: { ...m, value: BigInt(m.value), validAfter: BigInt(m.validAfter), validBefore: BigInt(m.validBefore) } as never, signature });
}

/** Runs SQL on the harness's store from outside the daemon (an operator's session): fault injection. */
async function onStore(h: Harness, sql: { sqlite: string; postgres: string }): Promise<void> {
  const target = storeTarget(h.config.storeUrl);
  if ('sqlite' in target) {
    const db = new DatabaseSync(target.sqlite);
    try {
      db.exec(sql.sqlite);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${target.postgres.schema}`);
    await client.query(sql.postgres);
  } finally {
    await client.end();
  }
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`replays on a PKCS#11 token are byte-identical (${store})`, { skip }, () => {
    let h: Harness;
    let token: SoftHsmToken;
    before(async () => {
      token = createSoftHsmToken();
      h = await startHarness({ store, pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile } });
      assert.equal(h.airlock.deps.keys.kind, 'pkcs11');
      assert.equal(h.airlock.deps.keys.deterministic, false);
    });
    after(async () => {
      await h?.close();
      token?.remove();
    });

    test('an idempotent retry after a daemon restart returns the signed transaction that was charged, byte for byte', async () => {
      const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
      const body = usdcTransfer(ALICE, 6_000_000n);
      const first = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'order-restart' } });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      await h.restart();
      for (let i = 0; i < 3; i++) {
        const retry = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'order-restart' } });
        assert.equal(retry.status, 200, JSON.stringify(retry.body));
        assert.equal(retry.body.replayed, true);
        assert.equal(retry.body.auditSeq, first.body.auditSeq);
        assert.equal(retry.body.signedTransaction, first.body.signedTransaction, 'the same bytes, not a second signature over the same nonce');
      }
      assert.equal((await recoverTransactionAddress({ serializedTransaction: first.body.signedTransaction as never })).toLowerCase(), agent.address);
      // Charged once: 6 of 10 used, so another 6 is over budget.
      const more = await h.call('POST', '/v1/sign/transaction', { token: session, body: usdcTransfer(ALICE, 6_000_000n, 1) });
      assert.equal(more.status, 403);
      assert.equal(more.body.error.violations[0].used, '6000000');
    });

    test('an x402 authorization sent again after a restart is the same signature (nonce replay), verified by viem', async () => {
      const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ daily: '5000000' }) });
      const body = usdcAuthorization(agent.address, ALICE, 2_000_000n, Math.floor(Date.now() / 1000) + 600, `0x${'5e'.repeat(32)}`);
      const context = { x402: { resource: 'https://api.example.com/paid' } };
      const first = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { ...body, ...context } });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      await h.restart();
      const again = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { ...body, ...context } });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.replayed, true);
      assert.equal(again.body.signature, first.body.signature);
      assert.equal(again.body.paymentId, first.body.paymentId);
      assert.ok(await authorizationSignedBy(agent.address, body, first.body.signature));
    });

    test('an approved request asked again after a restart is released with the approval\'s signature', async () => {
      const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: '1000000', daily: '50000000' }) });
      const body = usdcAuthorization(agent.address, ALICE, 3_000_000n, Math.floor(Date.now() / 1000) + 600, `0x${'a7'.repeat(32)}`);
      const held = await h.call('POST', '/v1/sign/typed-data', { token: session, body });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const signature = approved.body.result.signature as Hex;
      assert.ok(await authorizationSignedBy(agent.address, body, signature));
      await h.restart();
      const again = await h.call('POST', '/v1/sign/typed-data', { token: session, body });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.replayed, true);
      assert.equal(again.body.auditSeq, held.body.auditSeq);
      assert.equal(again.body.signature, signature);
    });

    test('a signature the store cannot keep is not released (signature_not_recorded, audited); the retry releases one, charged once', async () => {
      const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
      const body = usdcTransfer(ALICE, 7_000_000n, 4);
      await onStore(h, {
        sqlite: "CREATE TRIGGER refuse_release BEFORE INSERT ON released_signatures BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        postgres: "CREATE FUNCTION refuse_release() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; CREATE TRIGGER refuse_release BEFORE INSERT ON released_signatures FOR EACH ROW EXECUTE FUNCTION refuse_release()",
      });
      const refused = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'order-fault' } });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'signature_not_recorded');
      assert.equal(refused.body.signedTransaction, undefined);
      assert.ok(!JSON.stringify(refused.body).includes('"0x02f8'), 'no transaction bytes anywhere in the refusal');
      const failed = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.failed`);
      assert.equal(failed.body.entries.at(-1).data.errorCode, 'signature_not_recorded');

      await onStore(h, { sqlite: 'DROP TRIGGER refuse_release', postgres: 'DROP TRIGGER refuse_release ON released_signatures; DROP FUNCTION refuse_release()' });
      const retry = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'order-fault' } });
      assert.equal(retry.status, 200, JSON.stringify(retry.body));
      assert.equal(retry.body.replayed, true);
      assert.equal((await recoverTransactionAddress({ serializedTransaction: retry.body.signedTransaction as never })).toLowerCase(), agent.address);
      const again = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'order-fault' } });
      assert.equal(again.body.signedTransaction, retry.body.signedTransaction);
      const more = await h.call('POST', '/v1/sign/transaction', { token: session, body: usdcTransfer(ALICE, 7_000_000n, 5) });
      assert.equal(more.status, 403, 'the failed release and its retry charged 7 once: another 7 is over 10');
      assert.equal(more.body.error.violations[0].used, '7000000');
    });

    test('a charged signature never delivered is judged again on its retry: a deny rule added in between refuses it', async () => {
      // The key backend's answer could not be kept after the commit (sign.failed): nothing left Airlock. The
      // operator then denies the payee; the agent's retry under the same key must not release the signature.
      const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
      const body = usdcTransfer(ALICE, 3_000_000n, 6);
      await onStore(h, {
        sqlite: "CREATE TRIGGER refuse_release BEFORE INSERT ON released_signatures BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        postgres: "CREATE FUNCTION refuse_release() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; CREATE TRIGGER refuse_release BEFORE INSERT ON released_signatures FOR EACH ROW EXECUTE FUNCTION refuse_release()",
      });
      const failed = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'undelivered' } });
      assert.equal(failed.body.error?.code, 'signature_not_recorded', JSON.stringify(failed.body));
      await onStore(h, { sqlite: 'DROP TRIGGER refuse_release', postgres: 'DROP TRIGGER refuse_release ON released_signatures; DROP FUNCTION refuse_release()' });

      const policy = usdcPolicy({ daily: '10000000' });
      policy.rules.unshift({ name: 'alice-compromised', type: 'deny', match: { to: [ALICE] } } as never);
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
      const retry = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'undelivered' } });
      assert.equal(retry.status, 403, JSON.stringify(retry.body));
      assert.equal(retry.body.error.code, 'policy_denied');
      assert.equal(retry.body.error.violations[0].rule, 'agent/alice-compromised');
      assert.equal(retry.body.signedTransaction, undefined);
      assert.ok(!JSON.stringify(retry.body).includes('"0x02f8'), 'no transaction bytes anywhere in the refusal');
      const replays = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`);
      assert.deepEqual(replays.body.entries.map((e: any) => [e.decision, e.data.violations?.[0]?.rule]), [['deny', 'agent/alice-compromised']]);

      // The rule lifted, the same retry is released: the charged signature, not a second charge.
      assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '10000000' }) })).status, 200);
      const released = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'undelivered' } });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.replayed, true);
      const more = await h.call('POST', '/v1/sign/transaction', { token: session, body: usdcTransfer(ALICE, 7_000_001n, 7) });
      assert.equal(more.status, 403, 'the undelivered signature still holds its 3 of the 10');
      assert.equal(more.body.error.violations[0].used, '3000000');
    });

    if (store === 'postgres') {
      test('two instances on one PostgreSQL answering the same retry at once return the same bytes', async () => {
        // The second instance opens its own copy of the PKCS#11 module (one module instance per process: a copy of
        // the .so is a second one), logged in to the same SoftHSM2 token, as a second host would be.
        const secondModule = join(token.dir, 'libsofthsm2-second.so');
        copyFileSync(token.library, secondModule);
        const second: Airlock = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, pkcs11: { library: secondModule, tokenLabel: token.tokenLabel, pinFile: token.pinFile } });
        const secondApp = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
        const callSecond = async (sessionToken: string, body: unknown, key: string) => {
          const res = await secondApp.request('/v1/sign/transaction', { method: 'POST', headers: { authorization: `Bearer ${sessionToken}`, 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(body) });
          return { status: res.status, body: await res.json() as any };
        };
        try {
          const { agent, token: session } = await provisionAgent(h, { policy: usdcPolicy({ daily: '100000000' }) });
          for (let i = 0; i < 4; i++) {
            const body = usdcTransfer(ALICE, 1_000_000n, 20 + i);
            const key = `order-two-${i}`;
            const first = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': key } });
            assert.equal(first.status, 200, JSON.stringify(first.body));
            // The first release's row gone (as if its instance died after the commit and before keeping it): both
            // instances sign anew with the token's random nonce, and the first row kept must win on both.
            if (i % 2 === 1) await onStore(h, { sqlite: '', postgres: `DELETE FROM released_signatures WHERE audit_seq = ${Number(first.body.auditSeq)}` });
            const [a, b] = await Promise.all([
              h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': key } }),
              callSecond(session, body, key),
            ]);
            assert.equal(a.status, 200, JSON.stringify(a.body));
            assert.equal(b.status, 200, JSON.stringify(b.body));
            assert.equal(a.body.signedTransaction, b.body.signedTransaction, `retry ${i}: both instances answer the same bytes`);
            if (i % 2 === 0) assert.equal(a.body.signedTransaction, first.body.signedTransaction);
            assert.equal((await recoverTransactionAddress({ serializedTransaction: a.body.signedTransaction as never })).toLowerCase(), agent.address);
            // And that is what stays: a later retry on either instance returns it again.
            const later = await callSecond(session, body, key);
            assert.equal(later.body.signedTransaction, a.body.signedTransaction);
          }
        } finally {
          await second.close();
        }
      });
    }
  });
}

test('a deterministic backend (RFC 6979) writes no released-signature row: its replays sign again to the same bytes', async () => {
  const h = await startHarness({ store: 'sqlite' });
  try {
    assert.equal(h.airlock.deps.keys.deterministic, true);
    const { token: session } = await provisionAgent(h, { policy: usdcPolicy() });
    const body = usdcTransfer(ALICE, 1_000_000n);
    const first = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'det-1' } });
    await h.restart();
    const retry = await h.call('POST', '/v1/sign/transaction', { token: session, body, headers: { 'idempotency-key': 'det-1' } });
    assert.equal(retry.body.replayed, true);
    assert.equal(retry.body.signedTransaction, first.body.signedTransaction);
    assert.equal(await h.airlock.store.getReleasedSignatures(first.body.auditSeq), undefined, 'nothing written on the hot path');
  } finally {
    await h.close();
  }
});
