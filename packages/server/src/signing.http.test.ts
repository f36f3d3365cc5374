// The operator + agent walkthrough over the real HTTP app, on SQLite and on PostgreSQL.
// Signatures are checked with viem (an independent implementation), not with our own code.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseTransaction, recoverTransactionAddress, verifyMessage, verifyTypedData, type Hex } from 'viem';
import { schnorr } from '@noble/curves/secp256k1.js';
import { mnemonicToAccount } from 'viem/accounts';
import { leafHash, treeHeadDigest, verifyConsistency, verifyInclusion } from '@airlock/core';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../../keys/src/softhsm-token.ts';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

// The same walkthrough with the EVM agent keys in a PKCS#11 token (SoftHSM2; skipped with the reason without it).
const variants: { store: StoreKind; hsm: boolean }[] = [{ store: 'sqlite', hsm: false }, { store: 'postgres', hsm: false }, { store: 'sqlite', hsm: true }];

for (const { store, hsm } of variants) {
  describe(`signing over HTTP (${store}${hsm ? ', PKCS#11 token' : ''})`, { skip: hsm ? softHsmSkip() : false }, () => {
    let h: Harness;
    let token: SoftHsmToken | undefined;
    before(async () => {
      token = hsm ? createSoftHsmToken() : undefined;
      h = await startHarness({ store, ...(token ? { pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile } } : {}) });
      assert.equal(h.airlock.deps.keys.kind, hsm ? 'pkcs11' : h.airlock.keyBackend.kind === 'native' ? 'native' : 'hd');
    });
    after(async () => {
      await h?.close();
      token?.remove();
    });

    test('an allowed ERC-20 transfer is signed, verifies independently, and is audited', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000n) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.decision, 'allow');
      assert.equal(res.body.intent.kind, 'erc20.transfer');
      assert.equal(res.body.intent.to, ALICE);
      const signed = res.body.signedTransaction as Hex;
      const parsed = parseTransaction(signed);
      assert.equal(parsed.to?.toLowerCase(), USDC);
      assert.equal(parsed.chainId, 8453);
      const signer = await recoverTransactionAddress({ serializedTransaction: signed as never });
      assert.equal(signer.toLowerCase(), agent.address);
      assert.ok(BigInt(parsed.s!) <= 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n, 'low-S');

      const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`);
      const entry = audit.body.entries.at(-1);
      assert.equal(entry.seq, res.body.auditSeq);
      assert.equal(entry.decision, 'allow');
      assert.equal(entry.data.intent.kind, 'erc20.transfer');
      assert.match(entry.data.digest, /^[0-9a-f]{64}$/);
      assert.ok(!JSON.stringify(audit.body).includes(token.split('.')[1]!), 'no token in the audit log');
    });

    test(hsm ? 'the agent key is made in the token: its address is not one the recovery phrase derives' : 'the agent key is derived from the recovery phrase (BIP-44)', async () => {
      const { agent } = await provisionAgent(h, { policy: usdcPolicy() });
      const derived = Array.from({ length: 40 }, (_, accountIndex) => mnemonicToAccount(h.mnemonic, { accountIndex }).address.toLowerCase());
      assert.equal(derived.includes(agent.address), !hsm);
    });

    test('a transfer to an address no rule allows is denied with the named rule and nothing signed', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(MALLORY, 1n) });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'policy_denied');
      assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
      assert.equal(res.body.signature, undefined);
      assert.equal(res.body.signedTransaction, undefined);
    });

    test('per-request cap and rolling budget name their rule, limit, used and requested', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '100000000', daily: '250000000' }) });
      const big = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100_000_001n) });
      assert.equal(big.status, 403);
      const cap = big.body.error.violations.find((v: any) => v.code === 'amount_exceeds_max');
      assert.equal(cap.rule, 'agent/usdc-per-request');
      assert.equal(cap.limit, '100000000');
      assert.equal(cap.requested, '100000001');

      for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 100_000_000n, i) })).status, 200);
      const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 50_000_001n, 2) });
      assert.equal(over.status, 403);
      const budget = over.body.error.violations.find((v: any) => v.code === 'budget_exceeded');
      assert.deepEqual({ rule: budget.rule, limit: budget.limit, used: budget.used, requested: budget.requested, asset: budget.asset }, { rule: 'agent/usdc-daily', limit: '250000000', used: '200000000', requested: '50000001', asset: USDC_ASSET });
      // Exactly the remainder still fits.
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 50_000_000n, 3) })).status, 200);
    });

    test('EIP-3009 authorizations are spend: signed within budget, verified by viem, and counted', async () => {
      const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '3000000' }) });
      const validBefore = Math.floor(Date.now() / 1000) + 600;
      const req = usdcAuthorization(agent.address, ALICE, 2_000_000n, validBefore);
      const res = await h.call('POST', '/v1/sign/typed-data', { token, body: req });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.intent.kind, 'eip3009.transfer_with_authorization');
      const td = req.typedData;
      const ok = await verifyTypedData({ address: agent.address, domain: td.domain as never, types: td.types, primaryType: 'TransferWithAuthorization', message: { ...td.message, value: 2_000_000n, validAfter: 0n, validBefore: BigInt(validBefore) } as never, signature: res.body.signature });
      assert.ok(ok);
      const second = await h.call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(agent.address, ALICE, 2_000_000n, validBefore, `0x${'cd'.repeat(32)}`) });
      assert.equal(second.status, 403);
      assert.equal(second.body.error.violations[0].code, 'budget_exceeded');
    });

    test('personal messages are denied unless a rule names them; unknown typed data likewise', async () => {
      const { agent, token } = await provisionAgent(h, {
        policy: { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign in to example.com' } } }] },
      });
      const other = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message: 'Transfer all my funds' } });
      assert.equal(other.status, 403);
      assert.equal(other.body.error.violations[0].code, 'message_not_allowed');
      const login = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message: 'Sign in to example.com\nNonce: 42' } });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      assert.ok(await verifyMessage({ address: agent.address, message: 'Sign in to example.com\nNonce: 42', signature: login.body.signature }));

      const mail = { typedData: { domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xcccccccccccccccccccccccccccccccccccccccc' }, types: { Mail: [{ name: 'contents', type: 'string' }] }, primaryType: 'Mail', message: { contents: 'hi' } } };
      const unknown = await h.call('POST', '/v1/sign/typed-data', { token, body: mail });
      assert.equal(unknown.status, 403);
      assert.equal(unknown.body.error.violations[0].code, 'unknown_typed_data');
    });

    test('dry-run explains without reserving; idempotent retries never count twice', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '10000000' }) });
      for (let i = 0; i < 3; i++) {
        const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 10_000_000n) } });
        assert.equal(dry.status, 200);
        assert.equal(dry.body.decision.decision, 'allow');
      }
      const body = usdcTransfer(ALICE, 10_000_000n);
      const first = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'order-1' } });
      assert.equal(first.status, 200, 'dry-runs reserved nothing, so the whole budget is still there');
      const retry = await h.call('POST', '/v1/sign/transaction', { token, body, headers: { 'idempotency-key': 'order-1' } });
      assert.equal(retry.status, 200);
      assert.equal(retry.body.signedTransaction, first.body.signedTransaction);
      assert.equal(retry.body.auditSeq, first.body.auditSeq);
      assert.equal(retry.body.replayed, true);
      const conflict = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n), headers: { 'idempotency-key': 'order-1' } });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error.code, 'idempotency_conflict');
      // The budget is exactly used up (retry did not count): a further 1 unit is denied.
      const more = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(more.status, 403);
      assert.equal(more.body.error.violations[0].used, '10000000');
    });

    test('freeze takes effect on the very next request; revoke likewise; both audited', async () => {
      const { agent, token, session } = await provisionAgent(h, { policy: usdcPolicy() });
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) })).status, 200);
      assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/freeze`)).body.status, 'frozen');
      const frozen = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(frozen.status, 403);
      assert.equal(frozen.body.error.code, 'agent_frozen');
      await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`);
      assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 2) })).status, 200);
      await h.admin('POST', `/v1/sessions/${session.id}/revoke`);
      const revoked = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 3) });
      assert.equal(revoked.status, 401);
      assert.equal(revoked.body.error.code, 'session_revoked');
      const types = (await h.admin('GET', `/v1/audit?agent=${agent.name}`)).body.entries.map((e: any) => e.type);
      for (const t of ['agent.frozen', 'agent.unfrozen', 'session.issued', 'session.revoked', 'policy.set']) assert.ok(types.includes(t), t);
    });

    test('policies are versioned, diffable, and a bad document points at the exact path', async () => {
      const { agent } = await provisionAgent(h, { policy: usdcPolicy({ daily: '1' }) });
      await h.admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ daily: '2' }) });
      const versions = await h.admin('GET', `/v1/policies/${agent.name}/versions`);
      assert.deepEqual(versions.body.versions.map((v: any) => v.version), [2, 1]);
      const diff = await h.admin('GET', `/v1/policies/${agent.name}/diff`);
      assert.match(diff.body.diff, /^- .*'?1'?/m);
      assert.match(diff.body.diff, /^\+ .*'?2'?/m);
      const bad = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: { version: 1, rules: [{ name: 'x', type: 'budget', asset: USDC_ASSET, max: '-5', window: '24h', scope: 'agent' }] } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_policy');
      assert.match(bad.body.error.message, /rules\[0\]\.max/);
      assert.equal((await h.admin('GET', `/v1/policies/${agent.name}/versions`)).body.versions.length, 2, 'nothing stored');
    });

    test('a fleet ceiling below the agent limit wins; a fleet deny beats an agent allow', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '100000000' }) });
      await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [{ name: 'fleet-cap', type: 'max_amount', asset: USDC_ASSET, max: '1000' }, { name: 'sanctioned', type: 'deny', match: { to: [ALICE], kinds: ['erc20.transfer'], chains: [BASE] } }] } });
      try {
        const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5000n) });
        assert.equal(res.status, 403);
        const rules = res.body.error.violations.map((v: any) => `${v.rule}:${v.code}`).sort();
        assert.deepEqual(rules, ['fleet/fleet-cap:amount_exceeds_max', 'fleet/sanctioned:denied_by_rule']);
      } finally {
        await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [] } });
      }
    });

    test('the audit log verifies end to end with a signed checkpoint', async () => {
      await h.airlock.audit.checkpoint();
      const res = await h.admin('POST', '/v1/audit/verify');
      assert.equal(res.status, 200);
      assert.equal(res.body.ok, true, JSON.stringify(res.body));
      assert.ok(res.body.entries > 10);
      assert.ok(res.body.treeHeads >= 1);
      assert.equal(res.body.unanchored, 0);
    });

    test('a signature carries its receipt at once; its inclusion proof verifies against the signed tree head; another agent is refused it', async () => {
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const signed = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 7) });
      assert.equal(signed.status, 200);
      const { receipt } = signed.body;
      assert.equal(receipt.auditSeq, signed.body.auditSeq);
      assert.equal(typeof receipt.leafIndex, 'number');
      assert.equal((await h.call('GET', `/v1/audit/receipts/${receipt.auditSeq}`, { token })).status, 409, 'not yet under a signed head');
      await h.airlock.audit.checkpoint();
      const own = await h.call('GET', `/v1/audit/receipts/${receipt.auditSeq}`, { token });
      assert.equal(own.status, 200, JSON.stringify(own.body));
      const { treeHead, proof, entry } = own.body;
      // Checked here with the RFC 9162 algorithms and the audit key, from the response alone.
      assert.equal(Buffer.from(leafHash(entry.leaf)).toString('hex'), receipt.leafHash);
      assert.ok(verifyInclusion(receipt.leafIndex, treeHead.treeSize, Buffer.from(receipt.leafHash, 'hex'), proof.map((p: string) => Buffer.from(p, 'hex')), Buffer.from(treeHead.rootHash, 'hex')));
      const auditKey = (await h.admin('GET', '/v1/audit/checkpoints')).body.publicKey;
      assert.equal(treeHead.publicKey, auditKey);
      assert.ok(schnorr.verify(Buffer.from(treeHead.signature, 'hex'), treeHeadDigest(treeHead), Buffer.from(auditKey, 'hex')));
      assert.equal((await h.admin('GET', `/v1/audit/receipts/${receipt.auditSeq}`)).status, 200, 'the operator sees any entry');

      const other = await provisionAgent(h, { policy: usdcPolicy() });
      const refused = await h.call('GET', `/v1/audit/receipts/${receipt.auditSeq}`, { token: other.token });
      assert.equal(refused.status, 404);
      assert.equal(refused.body.error.code, 'not_found');

      // The log only grew: a consistency proof between the first and the latest signed heads.
      const heads = (await h.admin('GET', '/v1/audit/checkpoints')).body.treeHeads;
      const c = await h.call('GET', `/v1/audit/consistency?from=${heads[0].treeSize}`, { token });
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.ok(verifyConsistency(c.body.from.treeSize, c.body.to.treeSize, Buffer.from(c.body.from.rootHash, 'hex'), Buffer.from(c.body.to.rootHash, 'hex'), c.body.proof.map((p: string) => Buffer.from(p, 'hex'))));
    });
  });
}
