// The composition root's secp256k1 choice: native (libsecp256k1) when it loads unless AIRLOCK_KEY_BACKEND=js,
// and the native recovery/uncompression wired into the EVM adapter agree with the pure-JS reference.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { AirlockError, type EcdsaSignature } from '@airlock/core';
import { assertSignedBy, createEvmAdapter } from '@airlock/chains';
import { NativeKeyBackend, nativeRecoverPublicKey, nativeUncompressPublicKey } from '@airlock/keys';
import { recoverTransactionAddress, type Hex } from 'viem';
import { vectorsSkipReason } from '../../../testing/vectors.ts';
import { runReleaseCheckVectors } from '../../../testing/wycheproof-release.ts';
import { chooseKeyBackend } from './runtime.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from './testing/harness.ts';

const skip = NativeKeyBackend.available() ? false : `native secp256k1 not available: ${NativeKeyBackend.unavailableReason()}`;

test('AIRLOCK_KEY_BACKEND: js forces noble, unset picks native when it loads, anything else is refused', () => {
  assert.deepEqual(chooseKeyBackend({ AIRLOCK_KEY_BACKEND: 'js' }), { kind: 'js', reason: 'AIRLOCK_KEY_BACKEND=js' });
  assert.equal(chooseKeyBackend({}).kind, NativeKeyBackend.available() ? 'native' : 'js');
  assert.throws(() => chooseKeyBackend({ AIRLOCK_KEY_BACKEND: 'fast' }), (e: unknown) => e instanceof AirlockError && e.code === 'invalid_request');
});

test('AIRLOCK_KEY_BACKEND=pkcs11 needs the module, a PIN file and exactly one of token label and slot; a PIN in the environment is refused', () => {
  const base = { AIRLOCK_KEY_BACKEND: 'pkcs11', AIRLOCK_PKCS11_LIBRARY: '/usr/lib/softhsm/libsofthsm2.so', AIRLOCK_PKCS11_PIN_FILE: '/run/secrets/pin' };
  const chosen = chooseKeyBackend({ ...base, AIRLOCK_PKCS11_TOKEN_LABEL: 'airlock' });
  assert.equal(chosen.kind, 'pkcs11');
  assert.deepEqual(chosen.pkcs11, { library: base.AIRLOCK_PKCS11_LIBRARY, pinFile: base.AIRLOCK_PKCS11_PIN_FILE, tokenLabel: 'airlock' });
  assert.deepEqual(chooseKeyBackend({ ...base, AIRLOCK_PKCS11_SLOT: '3' }).pkcs11, { library: base.AIRLOCK_PKCS11_LIBRARY, pinFile: base.AIRLOCK_PKCS11_PIN_FILE, slot: 3 });
  const refused = (env: NodeJS.ProcessEnv) => assert.throws(() => chooseKeyBackend(env), (e: unknown) => e instanceof AirlockError && e.code === 'config_invalid' && !e.message.includes('123456'));
  refused({ ...base });
  refused({ ...base, AIRLOCK_PKCS11_TOKEN_LABEL: 'airlock', AIRLOCK_PKCS11_SLOT: '0' });
  refused({ ...base, AIRLOCK_PKCS11_SLOT: 'first' });
  refused({ ...base, AIRLOCK_PKCS11_TOKEN_LABEL: 'airlock', AIRLOCK_PKCS11_LIBRARY: '' });
  refused({ ...base, AIRLOCK_PKCS11_TOKEN_LABEL: 'airlock', AIRLOCK_PKCS11_PIN_FILE: undefined });
  refused({ ...base, AIRLOCK_PKCS11_TOKEN_LABEL: 'airlock', AIRLOCK_PKCS11_PIN: '123456' });
});

test('the EVM adapter with native recovery gives the same results as the pure-JS default, and refuses the same forgeries', { skip }, () => {
  const js = createEvmAdapter();
  const native = createEvmAdapter({ recoverPublicKey: nativeRecoverPublicKey, uncompressPublicKey: nativeUncompressPublicKey });
  for (let i = 1; i <= 100; i++) {
    const privateKey = secp256k1.utils.randomSecretKey();
    const publicKey = secp256k1.getPublicKey(privateKey, true);
    assert.equal(native.addressFromPublicKey(publicKey), js.addressFromPublicKey(publicKey));
    const signer = { address: js.addressFromPublicKey(publicKey) };
    const payload = usdcTransfer(ALICE, BigInt(i), i);
    const decoded = js.decode('evm.transaction', payload, signer);
    const recovered = secp256k1.sign(decoded.digest, privateKey, { prehash: false, format: 'recovered' });
    const signature: EcdsaSignature = { compact: recovered.slice(1), recovery: recovered[0]! };
    assert.deepEqual(native.finalize('evm.transaction', decoded, signature, signer), js.finalize('evm.transaction', decoded, signature, signer));
    // The wrong recovery id recovers another key: both must refuse to release it.
    const flipped = { ...signature, recovery: signature.recovery ^ 1 };
    for (const adapter of [js, native]) {
      assert.throws(() => adapter.finalize('evm.transaction', decoded, flipped, signer), (e: unknown) => e instanceof AirlockError && e.code === 'signature_check_failed');
    }
  }
});

test('a runtime on the native backend signs a transaction that viem recovers to the agent', { skip }, async () => {
  const before = process.env.AIRLOCK_KEY_BACKEND;
  delete process.env.AIRLOCK_KEY_BACKEND;
  const h = await startHarness();
  try {
    assert.equal(h.airlock.keyBackend.kind, 'native');
    assert.equal(h.airlock.deps.keys.kind, 'native');
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy() });
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 5_000_000n) });
    assert.equal(res.status, 200);
    const from = await recoverTransactionAddress({ serializedTransaction: res.body.signedTransaction as Hex as never });
    assert.equal(from.toLowerCase(), agent.address);
  } finally {
    await h.close();
    if (before !== undefined) process.env.AIRLOCK_KEY_BACKEND = before;
  }
});

// Production uses native recovery when it loads: the release check with it must judge every vector as the
// pure-JS one does (packages/chains/src/evm/signature.conformance.test.ts).
test('Wycheproof ECDSA secp256k1 (plain and Bitcoin): the release check with native recovery agrees with every vector', { skip: skip || vectorsSkipReason }, () => {
  for (const file of ['plain', 'bitcoin'] as const) {
    const native = runReleaseCheckVectors(file, (digest, signature, address) => assertSignedBy(digest, signature, address, nativeRecoverPublicKey));
    const js = runReleaseCheckVectors(file, (digest, signature, address) => assertSignedBy(digest, signature, address));
    assert.deepEqual(native.disagreements, [], file);
    assert.deepEqual(native, js, file);
  }
});
