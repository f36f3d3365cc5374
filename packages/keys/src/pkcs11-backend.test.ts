// Pkcs11KeyBackend against a real PKCS#11 token (SoftHSM2 in a temp dir): keys made in the token and not
// extractable, signatures checked by independent code (noble verify with low-S, viem recovery), the vault keeping
// what a token cannot hold, and the refusals with their codes. Skipped (with the reason) without SoftHSM2.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { HDKey } from '@scure/bip32';
import { publicKeyToAddress } from 'viem/accounts';
import { recoverAddress, type Hex } from 'viem';
import { AirlockError } from '@airlock/core';
import { AUDIT_KEY_PATH, WEBHOOK_SECRET_KEY_PATH, evmPath } from './derivation-path.ts';
import { HdKeyBackend } from './hd-backend.ts';
import { NativeKeyBackend, nativeRecoverPublicKey } from './native-backend.ts';
import { Pkcs11KeyBackend, isTokenPath, legacyTokenKeyId, normaliseTokenSignature, tokenKeyId, tokenKeyLabel, type TokenDeployment } from './pkcs11-backend.ts';
import { createSoftHsmToken, destroySoftHsmKey, makeSoftHsmKeyLegacy, softHsmSkip, type SoftHsmToken } from './softhsm-token.ts';

const skip = softHsmSkip();
const N = secp256k1.Point.CURVE().n;
const digestOf = (i: number) => Uint8Array.from(createHash('sha256').update(`hsm digest ${i}`).digest());
const vault = () => new HdKeyBackend(HDKey.fromMasterSeed(Uint8Array.from(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'))));
const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}` as Hex;
const isCode = (code: string) => (e: unknown) => e instanceof AirlockError && e.code === code;

let token: SoftHsmToken;
const FINGERPRINT = '0a1b2c3d';
const open = (over: Partial<Parameters<typeof Pkcs11KeyBackend.open>[0]> = {}, deployment: TokenDeployment = { fingerprint: FINGERPRINT }) =>
  Pkcs11KeyBackend.open({ library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile, ...over }, vault(), deployment);

before(() => {
  if (!skip) token = createSoftHsmToken();
});
after(() => token?.remove());

test('the token/vault split and the key mapping: only m/44\'/60\'/a\'/0/i is a token path; CKA_ID is SHA-256 of the label, which names the deployment', () => {
  assert.equal(isTokenPath(evmPath(0, 0)), true);
  assert.equal(isTokenPath(evmPath(7, 3)), true);
  for (const path of [AUDIT_KEY_PATH, WEBHOOK_SECRET_KEY_PATH, "m/44'/1237'/0'/0/0", "m/86'/0'/0'/0/0", "m/44'/60'/0'/1/0", "m/44'/60'/0/0/0"]) assert.equal(isTokenPath(path), false, path);
  assert.equal(tokenKeyLabel('42d80376', evmPath(3, 1)), "airlock:42d80376:m/44'/60'/3'/0/1");
  assert.deepEqual(tokenKeyId('42d80376', evmPath(3, 1)), createHash('sha256').update("airlock:42d80376:m/44'/60'/3'/0/1").digest());
  assert.notDeepEqual(tokenKeyId('42d80376', evmPath(3, 1)), tokenKeyId('42d80377', evmPath(3, 1)));
  // Keys made before the id named the deployment: SHA-256 of the path alone.
  assert.deepEqual(legacyTokenKeyId(evmPath(3, 1)), createHash('sha256').update("m/44'/60'/3'/0/1").digest());
  assert.throws(() => Pkcs11KeyBackend.open({ library: '/nonexistent.so', tokenLabel: 'x', pinFile: '/nonexistent' }, vault(), { fingerprint: 'not-hex!' }), isCode('invalid_request'));
});

test('a high-S token signature is normalised to low-S with the recovery id that gives back the key; garbage is refused', () => {
  const privateKey = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(privateKey, true);
  let highSeen = 0;
  for (let i = 0; i < 40; i++) {
    const digest = digestOf(i);
    const low = secp256k1.Signature.fromBytes(secp256k1.sign(digest, privateKey, { prehash: false, lowS: true }), 'compact');
    // What a token may return: either half (tokens do not normalise).
    const raw = i % 2 ? new secp256k1.Signature(low.r, N - low.s).toBytes('compact') : low.toBytes('compact');
    if (i % 2) highSeen++;
    const { compact, recovery } = normaliseTokenSignature(raw, digest, publicKey);
    if (NativeKeyBackend.available()) assert.deepEqual(normaliseTokenSignature(raw, digest, publicKey, nativeRecoverPublicKey), { compact, recovery });
    assert.deepEqual(compact, low.toBytes('compact'));
    assert.ok(secp256k1.verify(compact, digest, publicKey, { prehash: false, lowS: true }));
    assert.deepEqual(secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(true), publicKey);
  }
  assert.equal(highSeen, 20);
  const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  const good = secp256k1.sign(digestOf(1), privateKey, { prehash: false });
  assert.throws(() => normaliseTokenSignature(good, digestOf(1), other), isCode('signature_check_failed'));
  assert.throws(() => normaliseTokenSignature(new Uint8Array(64), digestOf(1), publicKey), isCode('signature_check_failed'));
  assert.throws(() => normaliseTokenSignature(good.subarray(0, 63), digestOf(1), publicKey), isCode('signature_check_failed'));
});

test('keys generated in the token sign digests that noble (low-S) and viem verify to the agent address', { skip }, async () => {
  const hsm = open();
  try {
    const hd = vault();
    for (let account = 0; account < 3; account++) {
      const path = evmPath(account, 0);
      const publicKey = await hsm.getPublicKey(path);
      assert.equal(publicKey.length, 33);
      // Made in the token, not derived from the seed: the BIP-32 key at the same path is another key.
      assert.notDeepEqual(publicKey, await hd.getPublicKey(path));
      const address = publicKeyToAddress(hex(secp256k1.Point.fromBytes(publicKey).toBytes(false)));
      for (let i = 0; i < 20; i++) {
        const digest = digestOf(account * 100 + i);
        const { compact, recovery } = await hsm.signDigest(path, digest, 'ecdsa-secp256k1');
        assert.ok(secp256k1.verify(compact, digest, publicKey, { prehash: false, lowS: true }), `low-S verify ${account}/${i}`);
        const signature = hex(Uint8Array.from([...compact, 27 + recovery]));
        assert.equal(await recoverAddress({ hash: hex(digest), signature }), address);
        // The token's nonce is random: signing again gives other valid bytes, which is why the backend says it is
        // not deterministic and the signing service keeps what it released (signing.http.test.ts, replays).
        const again = await hsm.signDigest(path, digest, 'ecdsa-secp256k1');
        assert.notDeepEqual(again.compact, compact);
        assert.ok(secp256k1.verify(again.compact, digest, publicKey, { prehash: false, lowS: true }));
      }
    }
  } finally {
    hsm.close();
  }
});

test('the private key is sensitive and not extractable: the token refuses CKA_VALUE', { skip }, async () => {
  const hsm = open();
  try {
    await hsm.getPublicKey(evmPath(9, 0));
    assert.deepEqual(await hsm.inspectPrivateKey(evmPath(9, 0)), { sensitive: true, extractable: false, valueReadable: false });
  } finally {
    hsm.close();
  }
});

test('keys persist in the token: a reopened backend finds the same key by path and does not make a new one', { skip }, async () => {
  const first = open();
  const publicKey = await first.getPublicKey(evmPath(4, 2));
  first.close();
  await assert.rejects(first.getPublicKey(evmPath(4, 2)), isCode('sealed'));
  const second = open();
  try {
    assert.deepEqual(await second.getPublicKey(evmPath(4, 2)), publicKey);
    // Signing never provisions: a path nobody asked a key for is a fault, refused before the token signs.
    await assert.rejects(second.signDigest(evmPath(4, 3), digestOf(1), 'ecdsa-secp256k1'), isCode('hsm_key_missing'));
    await assert.rejects(second.signDigest(evmPath(4, 2), new Uint8Array(31), 'ecdsa-secp256k1'), isCode('invalid_request'));
  } finally {
    second.close();
  }
});

test('what the token cannot hold stays on the vault: audit key, webhook secrets, Nostr; token paths refuse those operations', { skip }, async () => {
  const hsm = open();
  const hd = vault();
  try {
    assert.deepEqual(await hsm.getPublicKey(AUDIT_KEY_PATH), await hd.getPublicKey(AUDIT_KEY_PATH));
    const digest = digestOf(7);
    const checkpoint = await hsm.signSchnorr(AUDIT_KEY_PATH, digest);
    assert.ok(schnorr.verify(checkpoint, digest, (await hd.getPublicKey(AUDIT_KEY_PATH)).slice(1)));
    assert.deepEqual(await hsm.deriveSecret(WEBHOOK_SECRET_KEY_PATH, 'webhook/x/1'), await hd.deriveSecret(WEBHOOK_SECRET_KEY_PATH, 'webhook/x/1'));
    assert.deepEqual(await hsm.getPublicKey("m/44'/1237'/0'/0/0"), await hd.getPublicKey("m/44'/1237'/0'/0/0"));
    const path = evmPath(0, 0);
    await hsm.getPublicKey(path);
    await assert.rejects(hsm.signSchnorr(path, digest), isCode('hsm_unsupported'));
    await assert.rejects(hsm.deriveSecret(path, 'x'), isCode('hsm_unsupported'));
    await assert.rejects(hsm.getExtendedPublicKey(path), isCode('hsm_unsupported'));
    await assert.rejects(hsm.signTaprootKeyPath(path, digest), isCode('hsm_unsupported'));
    await assert.rejects(hsm.nip44ConversationKey(path, new Uint8Array(32)), isCode('hsm_unsupported'));
  } finally {
    hsm.close();
  }
});

test('64 signatures in flight over 4 sessions all verify', { skip }, async () => {
  const hsm = open();
  try {
    const path = evmPath(0, 0);
    const publicKey = await hsm.getPublicKey(path);
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => hsm.signDigest(path, digestOf(5000 + i), 'ecdsa-secp256k1')));
    results.forEach(({ compact }, i) => assert.ok(secp256k1.verify(compact, digestOf(5000 + i), publicKey, { prehash: false, lowS: true }), `in flight ${i}`));
  } finally {
    hsm.close();
  }
});

test('fails closed with stable codes, never echoing the PIN: wrong PIN, no PIN file, unknown token, missing module, one owner per process', { skip }, async () => {
  const wrong = join(token.dir, 'wrong-pin');
  writeFileSync(wrong, '999999-not-the-pin\n', { mode: 0o600 });
  assert.throws(() => open({ pinFile: wrong }), (e: unknown) => isCode('hsm_login_failed')(e) && !JSON.stringify([(e as Error).message, (e as AirlockError).hints]).includes('999999'));
  assert.throws(() => open({ pinFile: join(token.dir, 'absent') }), isCode('hsm_login_failed'));
  assert.throws(() => open({ tokenLabel: 'no-such-token' }), (e: unknown) => isCode('hsm_unavailable')(e) && JSON.stringify((e as AirlockError).hints).includes(token.tokenLabel));
  assert.throws(() => open({ library: join(token.dir, 'libnothing.so') }), isCode('hsm_unavailable'));
  assert.throws(() => open({ tokenLabel: undefined }), isCode('config_invalid'));
  const owner = open();
  try {
    assert.throws(() => open(), (e: unknown) => isCode('hsm_unavailable')(e) && /already open/.test((e as Error).message));
    // The failed attempts left the owner working.
    const publicKey = await owner.getPublicKey(evmPath(0, 0));
    const { compact } = await owner.signDigest(evmPath(0, 0), digestOf(3), 'ecdsa-secp256k1');
    assert.ok(secp256k1.verify(compact, digestOf(3), publicKey, { prehash: false, lowS: true }));
  } finally {
    owner.close();
  }
});

test('a PIN file that group or others may read or write is refused before the token is opened, naming the file and the chmod, never the PIN', { skip }, async () => {
  const pin = readFileSync(token.pinFile, 'utf8');
  const file = join(token.dir, 'pin-copy');
  writeFileSync(file, pin, { mode: 0o600 });
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o440]) {
    chmodSync(file, mode);
    assert.throws(() => open({ pinFile: file }), (e: unknown) => {
      const text = JSON.stringify([(e as Error).message, (e as AirlockError).hints]);
      assert.ok(isCode('hsm_login_failed')(e), text);
      assert.match((e as Error).message, new RegExp(`PIN file ${file} is open to other users \\(mode 0${mode.toString(8)}\\)`));
      assert.deepEqual((e as AirlockError).hints, [`Make it readable by its owner (the service user) only: chmod 400 ${file}`]);
      assert.ok(!text.includes(pin.trim()), 'the PIN is never shown');
      return true;
    }, `mode ${mode.toString(8)}`);
  }
  // Owner-only, read-only or read-write: the token opens and signs.
  for (const mode of [0o400, 0o600]) {
    chmodSync(file, mode);
    const hsm = open({ pinFile: file });
    try {
      const publicKey = await hsm.getPublicKey(evmPath(0, 0));
      const { compact } = await hsm.signDigest(evmPath(0, 0), digestOf(11), 'ecdsa-secp256k1');
      assert.ok(secp256k1.verify(compact, digestOf(11), publicKey, { prehash: false, lowS: true }));
    } finally {
      hsm.close();
    }
  }
});

test('new keys are generated one at a time off the event loop: signing goes on meanwhile, and one new path asked for at once gets one key pair', { skip }, async () => {
  const hsm = open();
  const fresh = Array.from({ length: 6 }, (_, i) => evmPath(600 + i, 0));
  const shared = evmPath(700, 0);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    const signer = evmPath(0, 0);
    const publicKey = await hsm.getPublicKey(signer);
    const order: string[] = [];
    const created = fresh.map((path) => hsm.getPublicKey(path).then(() => order.push('created')));
    const signed = hsm.signDigest(signer, digestOf(21), 'ecdsa-secp256k1').then((s) => (order.push('signed'), s));
    const sameKey = Promise.all(Array.from({ length: 4 }, () => hsm.getPublicKey(shared)));
    const [{ compact }, keys] = await Promise.all([signed, sameKey, ...created]);
    assert.ok(secp256k1.verify(compact, digestOf(21), publicKey, { prehash: false, lowS: true }));
    // The signature did not wait for the generations (they hold one session); each generation let timers run.
    assert.ok(order.indexOf('signed') < fresh.length / 2, order.join(','));
    assert.ok(ticks >= fresh.length, `${ticks} timer ticks during ${fresh.length + 1} key generations`);
    assert.ok(keys.every((k) => Buffer.from(k).equals(Buffer.from(keys[0]!))));
  } finally {
    clearInterval(timer);
    hsm.close();
  }
  // One private and one public object for the path asked for four times at once.
  assert.equal(destroySoftHsmKey(token, shared), 2);
});

test('a lost session or login (another application logs out, or closes every session) is renewed: the next signature works', { skip }, async () => {
  const hsm = open();
  // A second handle on the same module in this process, as another application of the token (or a network HSM's
  // failover) would act; it is never finalised, which would close the module under the backend.
  const { default: pkcs11js } = await import('pkcs11js');
  const other = new pkcs11js.PKCS11();
  other.load(token.library);
  try {
    other.C_Initialize();
  } catch {
    // already initialised by the backend: the module is shared
  }
  const slot = other.C_GetSlotList(true).find((s) => other.C_GetTokenInfo(s).label.trim() === token.tokenLabel)!;
  try {
    const path = evmPath(11, 0);
    const publicKey = await hsm.getPublicKey(path);
    const verifies = async (i: number) => {
      const digest = digestOf(1100 + i);
      const { compact } = await hsm.signDigest(path, digest, 'ecdsa-secp256k1');
      assert.ok(secp256k1.verify(compact, digest, publicKey, { prehash: false, lowS: true }), `verify ${i}`);
    };
    await verifies(0);
    // Logged out under it: object handles turn invalid (before: hsm_unavailable CKR_OBJECT_HANDLE_INVALID until a restart).
    const session = other.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    other.C_Logout(session);
    for (let i = 1; i <= 8; i++) await verifies(i);
    // Every session closed under it (before: CKR_SESSION_HANDLE_INVALID for good).
    other.C_CloseAllSessions(slot);
    for (let i = 9; i <= 16; i++) await verifies(i);
    assert.deepEqual(await hsm.getPublicKey(path), publicKey, 'the same key is found again');
  } finally {
    hsm.close();
  }
});

test('two deployments on one token never share a key: each finds and makes its own under its own CKA_ID', { skip }, async () => {
  const path = evmPath(40, 0);
  const first = open({}, { fingerprint: '11111111' });
  const firstKey = await first.getPublicKey(path);
  first.close();
  // Found by review: the second deployment was handed the first one's key (the id was the path alone).
  const second = open({}, { fingerprint: '22222222' });
  try {
    assert.equal(await second.findPublicKey(path), undefined, 'the other deployment\'s key is not found');
    await assert.rejects(second.signDigest(path, digestOf(40), 'ecdsa-secp256k1'), isCode('hsm_key_missing'));
    const secondKey = await second.getPublicKey(path);
    assert.notDeepEqual(secondKey, firstKey);
    const { compact } = await second.signDigest(path, digestOf(41), 'ecdsa-secp256k1');
    assert.ok(secp256k1.verify(compact, digestOf(41), secondKey, { prehash: false, lowS: true }));
  } finally {
    second.close();
  }
  const again = open({}, { fingerprint: '11111111' });
  try {
    assert.deepEqual(await again.getPublicKey(path), firstKey, 'the first deployment keeps its key');
  } finally {
    again.close();
  }
  assert.equal(destroySoftHsmKey(token, path, '22222222'), 2, 'one private and one public object per deployment');
  assert.equal(destroySoftHsmKey(token, path), 2);
});

test('a key under the legacy id (made before ids named the deployment) is used only when the store records it at that path', { skip }, async () => {
  const path = evmPath(41, 0);
  const made = open({}, { fingerprint: '33333333' });
  const legacyKey = await made.getPublicKey(path);
  made.close();
  assert.equal(makeSoftHsmKeyLegacy(token, path, '33333333'), 2);
  const asked: [string, string][] = [];
  const records = (answer: boolean): TokenDeployment['recordsKey'] => async (p, publicKey) => (asked.push([p, Buffer.from(publicKey).toString('hex')]), answer);
  // Its own deployment after the upgrade (its store records the key): found, signs, and restore finds it.
  const upgraded = open({}, { fingerprint: '33333333', recordsKey: records(true) });
  try {
    assert.deepEqual(await upgraded.findPublicKey(path), legacyKey);
    assert.deepEqual(asked, [[path, Buffer.from(legacyKey).toString('hex')]]);
    const { compact } = await upgraded.signDigest(path, digestOf(42), 'ecdsa-secp256k1');
    assert.ok(secp256k1.verify(compact, digestOf(42), legacyKey, { prehash: false, lowS: true }));
    assert.deepEqual(await upgraded.getPublicKey(path), legacyKey, 'no new key for a path it has one at');
  } finally {
    upgraded.close();
  }
  // Another deployment (its store does not record the key), or one that cannot ask: never used, refused when
  // signing, and a key of its own is made when provisioning.
  for (const deployment of [{ fingerprint: '44444444', recordsKey: records(false) }, { fingerprint: '55555555' }]) {
    const other = open({}, deployment);
    try {
      assert.equal(await other.findPublicKey(path), undefined);
      await assert.rejects(other.signDigest(path, digestOf(43), 'ecdsa-secp256k1'), (e: unknown) => isCode('hsm_key_missing')(e) && /no key of this deployment/.test((e as Error).message));
      const own = await other.getPublicKey(path);
      assert.notDeepEqual(own, legacyKey);
      const { compact } = await other.signDigest(path, digestOf(44), 'ecdsa-secp256k1');
      assert.ok(secp256k1.verify(compact, digestOf(44), own, { prehash: false, lowS: true }));
    } finally {
      other.close();
    }
  }
  // The legacy key is still there for its deployment, untouched.
  const still = open({}, { fingerprint: '33333333', recordsKey: records(true) });
  try {
    assert.deepEqual(await still.findPublicKey(path), legacyKey);
  } finally {
    still.close();
  }
});
