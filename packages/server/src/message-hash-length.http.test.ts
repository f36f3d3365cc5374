// A personal message of exactly 32 bytes is the length of a hash: Safe's checkSignatures takes an `eth_sign`
// signature (v + 4) over EIP-191 of a safeTxHash as the owner's approval, and some smart accounts (SimpleAccount
// v0.7, Solady) take EIP-191 over the userOpHash. Signing one releases approval of a transaction nobody decoded.
// A `pattern` does not keep hashes out: an agent varies a free SafeTx field (refundReceiver, baseGas with gasPrice
// 0) until the hash is text the pattern matches (about 2^27 tries for valid UTF-8). So a 32-byte message is
// refused unless the granting rule has a fixed `prefix` of at least 16 bytes (128 bits no grinding reaches) or says
// `message.allow_hash_length: true` (docs/policy.md, `message`). Over HTTP, on
// SQLite and PostgreSQL; signatures checked with viem.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashTypedData, verifyMessage, type Hex } from 'viem';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const SAFE = '0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe';
const MALLORY = '0x000000000000000000000000000000000000bad1';
/** The hash a Safe owner approves: a SafeTx sending the Safe's whole ETH balance to MALLORY. */
const safeTxHash = hashTypedData({
  domain: { chainId: 1, verifyingContract: SAFE },
  types: { SafeTx: [{ name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'data', type: 'bytes' }, { name: 'operation', type: 'uint8' }, { name: 'safeTxGas', type: 'uint256' }, { name: 'baseGas', type: 'uint256' }, { name: 'gasPrice', type: 'uint256' }, { name: 'gasToken', type: 'address' }, { name: 'refundReceiver', type: 'address' }, { name: 'nonce', type: 'uint256' }] },
  primaryType: 'SafeTx',
  message: { to: MALLORY, value: 10n ** 20n, data: '0x', operation: 0, safeTxGas: 0n, baseGas: 0n, gasPrice: 0n, gasToken: '0x0000000000000000000000000000000000000000', refundReceiver: '0x0000000000000000000000000000000000000000', nonce: 0n },
});
/** A hash ground until it is text: 32 bytes of valid UTF-8 that a loose `pattern` matches. */
const groundHash = 'Sign in 7f3a9c2e1b4d8f6a0c5e9b2d';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a 32-byte personal message is signed only where a rule allows hashes (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(() => h?.close());

    const loose = { version: 1, rules: [{ name: 'any-text', type: 'allow', match: { actions: ['evm.message'], message: { pattern: '.*' } } }] };

    test('under a loose pattern: a safeTxHash as raw bytes and a ground hash that is text are refused message_hash_length, audited, nothing signed', async () => {
      assert.equal(Buffer.byteLength(groundHash), 32);
      const { token, agent } = await provisionAgent(h, { policy: loose });
      for (const message of [{ raw: safeTxHash }, groundHash, { raw: `0x${Buffer.from(groundHash).toString('hex')}` as Hex }]) {
        const res = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message } });
        assert.equal(res.status, 403, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'policy_denied');
        assert.deepEqual(res.body.error.violations.map((v: any) => v.code), ['message_hash_length']);
        assert.match(res.body.error.violations[0].message, /allow_hash_length/);
        assert.equal(res.body.signature, undefined);
      }
      const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=1000`)).body.entries as any[];
      assert.equal(audit.filter((e) => e.decision === 'deny' && e.data.violations?.[0]?.code === 'message_hash_length').length, 3);
    });

    test('31 and 33 bytes of text still sign under the same pattern (only the length of a hash is held back)', async () => {
      const { token, agent } = await provisionAgent(h, { policy: loose });
      for (const message of [groundHash.slice(0, 31), `${groundHash}!`]) {
        const res = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.ok(await verifyMessage({ address: agent.address, message, signature: res.body.signature }));
      }
    });

    test('a fixed prefix of at least 16 bytes grants a 32-byte text (a hash cannot be ground to it); a shorter prefix does not', async () => {
      const login = 'Sign in to example.com\nNonce: 42'; // 32 bytes, as a real sign-in message may be
      assert.equal(Buffer.byteLength(login), 32);
      const long = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign in to example.com' } } }] } });
      const ok = await h.call('POST', '/v1/sign/message', { token: long.token, body: { chainId: 1, message: login } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(await verifyMessage({ address: long.agent.address, message: login, signature: ok.body.signature }));
      const short = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign in ' } } }] } });
      const refused = await h.call('POST', '/v1/sign/message', { token: short.token, body: { chainId: 1, message: login } });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.deepEqual(refused.body.error.violations.map((v: any) => v.code), ['message_hash_length']);
    });

    test('a rule with allow_hash_length: true grants it (and the policy validator refuses allow_hash_length: false)', async () => {
      const { token, agent } = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'hashes', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign in ', allow_hash_length: true } } }] } });
      const res = await h.call('POST', '/v1/sign/message', { token, body: { chainId: 1, message: groundHash } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(await verifyMessage({ address: agent.address, message: groundHash, signature: res.body.signature }));
      const bad = await h.admin('POST', '/v1/policies/validate', { document: { version: 1, rules: [{ name: 'x', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'a', allow_hash_length: false } } }] } });
      assert.ok(bad.status === 400 || bad.body?.valid === false, JSON.stringify(bad.body));
    });
  });
}
