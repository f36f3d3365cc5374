// Two deployments on one PKCS#11 token (an HSM partition shared with staging, a re-init after an incident), over
// HTTP on both stores. Found by review: a token key's CKA_ID was SHA-256 of the path alone, so the second
// deployment's first agent got the first deployment's first agent key and signed as it. Keys are now bound to the
// deployment (its vault fingerprint); keys made before that (the legacy id) keep signing for the deployment whose
// store records them and for no other. Skipped (with the reason) without SoftHSM2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { recoverTransactionAddress, type TransactionSerialized } from 'viem';
import { evmPath, unsealRecoveryPhrase } from '@airlock/keys';
import { createSoftHsmToken, destroySoftHsmKey, makeSoftHsmKeyLegacy, softHsmSkip, type SoftHsmToken } from '../../keys/src/softhsm-token.ts';
import { restoreAirlock } from './restore.ts';
import { ALICE, TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const skip = softHsmSkip();
let token: SoftHsmToken;
// Each deployment loads its own copy of the module, as a second process (or host) would: one owner per module.
const modules = ['a', 'b', 'c', 'restore'];
const pkcs11 = (copy: string) => ({ library: join(token.dir, `libsofthsm2-${copy}.so`), tokenLabel: token.tokenLabel, pinFile: token.pinFile });

before(() => {
  if (skip) return;
  token = createSoftHsmToken();
  for (const copy of modules) copyFileSync(token.library, pkcs11(copy).library);
});
after(() => token?.remove());

const fingerprintOf = (h: Harness): string => {
  const vault = unsealRecoveryPhrase(h.mnemonic);
  try {
    return vault.fingerprint();
  } finally {
    vault.wipe();
  }
};

async function signerOf(h: Harness, sessionToken: string): Promise<string> {
  const signed = await h.call('POST', '/v1/sign/transaction', { token: sessionToken, body: usdcTransfer(ALICE, 1n) });
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  return (await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as TransactionSerialized })).toLowerCase();
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`on ${store}`, { skip }, () => {
    let a: Harness;
    let b: Harness;
    let c: Harness | undefined;
    before(async () => {
      a = await startHarness({ store, pkcs11: pkcs11('a') });
      b = await startHarness({ store, pkcs11: pkcs11('b') });
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await c?.close();
      // The next store's deployments start at account 0 again: leave them a token without these keys.
      for (const path of [evmPath(0, 0), evmPath(0, 1)]) destroySoftHsmKey(token, path);
    });

    test('a second deployment on the token gets agent keys of its own and signs only as its own agents; the first keeps its keys', async () => {
      const first = await provisionAgent(a, { policy: usdcPolicy() });
      const second = await provisionAgent(b, { policy: usdcPolicy() });
      // The same path in both deployments: what used to hand the second one the first one's key.
      assert.equal(second.agent.accountIndex, first.agent.accountIndex);
      assert.notEqual(second.agent.address.toLowerCase(), first.agent.address.toLowerCase());
      assert.equal(await signerOf(b, second.token), second.agent.address.toLowerCase());
      assert.equal(await signerOf(a, first.token), first.agent.address.toLowerCase());
      // And after a restart each finds its own key again.
      await b.restart();
      assert.equal(await signerOf(b, second.token), second.agent.address.toLowerCase());
    });

    test('an agent key made before the upgrade (legacy id) keeps signing for its deployment; a new deployment is not handed it, and signing with it is refused hsm_key_missing', async () => {
      // A's agent of the first test, its key given the id and label a version before the fix made it.
      const agents = (await a.admin('GET', '/v1/agents')).body.agents as { name: string; address: string; accountIndex: number }[];
      assert.equal(agents.length, 1);
      const [legacy] = agents;
      assert.equal(makeSoftHsmKeyLegacy(token, evmPath(legacy!.accountIndex, 0), fingerprintOf(a)), 2);
      await a.restart();
      const session = await a.admin('POST', `/v1/agents/${legacy!.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      assert.equal(await signerOf(a, session.body.token), legacy!.address.toLowerCase(), 'the upgraded deployment signs with its legacy key');
      // A rotation makes the next key under the deployment's own id; it signs from the next request.
      const rotated = await a.admin('POST', `/v1/agents/${legacy!.name}/rotate`, {});
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      const current = (await a.admin('GET', `/v1/agents/${legacy!.name}`)).body;
      assert.notEqual(current.address.toLowerCase(), legacy!.address.toLowerCase());
      assert.equal(await signerOf(a, session.body.token), current.address.toLowerCase());

      // A fresh deployment on the token: its first agent is at the legacy key's path, and gets a key of its own.
      c = await startHarness({ store, pkcs11: pkcs11('c') });
      const fresh = await provisionAgent(c, { policy: usdcPolicy() });
      assert.equal(fresh.agent.accountIndex, legacy!.accountIndex);
      assert.notEqual(fresh.agent.address.toLowerCase(), legacy!.address.toLowerCase());
      assert.equal(await signerOf(c, fresh.token), fresh.agent.address.toLowerCase());
      // Its own key gone (a token restored from an older backup): the legacy key at the path is not its, so nothing is signed.
      assert.equal(destroySoftHsmKey(token, evmPath(fresh.agent.accountIndex, 0), fingerprintOf(c)), 2);
      await c.restart();
      const refused = await c.call('POST', '/v1/sign/transaction', { token: fresh.token, body: usdcTransfer(ALICE, 1n, 1) });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'hsm_key_missing');
      assert.equal(refused.body.signedTransaction, undefined);
    });

    test('airlock restore of the upgraded deployment finds its keys under both ids: the legacy key 0 and the rotated key 1', async () => {
      const restored = await restoreAirlock(a.config, a.mnemonic, TEST_PASSPHRASE, { force: true, vault: TEST_VAULT, pkcs11: pkcs11('restore') });
      assert.deepEqual(restored.token, { label: token.tokenLabel, keysFound: 2 });
      assert.equal(restored.keysChecked, 2);
      // The fresh deployment's store records no key the token holds for it any more: refused, nothing written.
      await assert.rejects(restoreAirlock(c!.config, c!.mnemonic, TEST_PASSPHRASE, { force: true, vault: TEST_VAULT, pkcs11: pkcs11('restore') }), (e: unknown) => (e as { code?: string }).code === 'restore_key_mismatch');
    });
  });
}
