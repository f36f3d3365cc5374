// bitcoin.message (BIP-322 simple signatures): the BIP's vectors (message hashes, to_spend / to_sign txids and
// the P2WPKH signatures of its test key), and signatures made through the adapter for the vault's P2WPKH and P2TR
// addresses, verified by bip322-js (an implementation that shares no code with ours).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, isAirlockError } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { Address, OutScript, RawWitness, WIF } from '@scure/btc-signer';
import { Verifier } from 'bip322-js';
import { deriveBitcoinAddress } from './account-view.ts';
import { createBitcoinAdapter } from './adapter.ts';
import { bip322MessageHash, bip322Transactions } from './message.ts';
import { segwitV0Sighash } from './sighash.ts';
import { openTestVault, produceSignatures, signRequest } from './testing/test-vault.ts';

const adapter = createBitcoinAdapter();

function assertRefused(run: () => unknown, code: string, what: string): void {
  assert.throws(run, (e: unknown) => isAirlockError(e) && e.code === code, `${what}: expected ${code}`);
}

// bitcoin/bips bip-0322.mediawiki, "Test vectors".
const VECTOR = {
  privateKey: 'L3VFeEujGtevx9w18HD1fhRbCH67Az2dpCymeRE1SoPK6XQtaN2k',
  address: 'bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l',
  cases: [
    {
      message: '',
      hash: 'c90c269c4f8fcbe6880f72a721ddfbf1914268a794cbb21cfafee13770ae19f1',
      toSpend: 'c5680aa69bb8d860bf82d4e9cd3504b55dde018de765a91bb566283c545a99a7',
      toSign: '1e9654e951a5ba44c8604c4de6c67fd78a27e81dcadcfe1edf638ba3aaebaed6',
      signatures: [
        'AkcwRAIgM2gBAQqvZX15ZiysmKmQpDrG83avLIT492QBzLnQIxYCIBaTpOaD20qRlEylyxFSeEA2ba9YOixpX8z46TSDtS40ASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=',
        'AkgwRQIhAPkJ1Q4oYS0htvyuSFHLxRQpFAY56b70UvE7Dxazen0ZAiAtZfFz1S6T6I23MWI2lK/pcNTWncuyL8UL+oMdydVgzAEhAsfxIAMZZEKUPYWI4BruhAQjzFT8FSFSajuFwrDL1Yhy',
      ],
    },
    {
      message: 'Hello World',
      hash: 'f0eb03b1a75ac6d9847f55c624a99169b5dccba2a31f5b23bea77ba270de0a7a',
      toSpend: 'b79d196740ad5217771c1098fc4a4b51e0535c32236c71f1ea4d61a2d603352b',
      toSign: '88737ae86f2077145f93cc4b153ae9a1cb8d56afa511988c149c5c8c9d93bddf',
      signatures: [
        'AkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=',
        'AkgwRQIhAOzyynlqt93lOKJr+wmmxIens//zPzl9tqIOua93wO6MAiBi5n5EyAcPScOjf1lAqIUIQtr3zKNeavYabHyR8eGhowEhAsfxIAMZZEKUPYWI4BruhAQjzFT8FSFSajuFwrDL1Yhy',
      ],
    },
  ],
};

test('BIP-322 vectors: message hashes, to_spend and to_sign txids, and the P2WPKH signature of the test key', () => {
  const privateKey = WIF().decode(VECTOR.privateKey);
  const publicKey = secp256k1.getPublicKey(privateKey, true);
  const script = OutScript.encode(Address().decode(VECTOR.address));
  for (const c of VECTOR.cases) {
    const bytes = utf8ToBytes(c.message);
    assert.equal(bytesToHex(bip322MessageHash(bytes)), c.hash, `hash of "${c.message}"`);
    const { toSpendTxid, toSign } = bip322Transactions(bytes, script);
    assert.equal(toSpendTxid, c.toSpend, `to_spend of "${c.message}"`);
    assert.equal(toSign.id, c.toSign, `to_sign of "${c.message}"`);
    // RFC 6979 ECDSA over our sighash, as the key backend signs: one of the two signatures the BIP lists.
    const digest = segwitV0Sighash(toSign, 0, publicKey, 0n, 1);
    const compact = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true });
    const der = secp256k1.Signature.fromBytes(compact, 'compact').toBytes('der');
    const ours = base64.encode(RawWitness.encode([concatBytes(der, Uint8Array.of(1)), publicKey]));
    assert.ok(c.signatures.includes(ours), `signature of "${c.message}": ${ours}`);
    for (const s of c.signatures) assert.equal(Verifier.verifySignature(VECTOR.address, c.message, s), true);
  }
});

test('the agent signs BIP-322 proofs for its P2WPKH and P2TR addresses; bip322-js verifies them', async () => {
  const vault = await openTestVault();
  for (const addressType of ['p2wpkh', 'p2tr'] as const) {
    for (const [message, change, index] of [['Hello World', 0, 0], ['', 1, 7], ['Airlock ✓ signé', 0, 2]] as const) {
      const { decoded, result } = await signRequest(vault, 'bitcoin.message', { message, network: 'testnet', addressType, change, index });
      const expected = deriveBitcoinAddress(vault.signer, 'testnet', addressType, change, index);
      assert.equal(result.address, expected.address);
      assert.equal(Verifier.verifySignature(expected.address, message, result.signature!), true, `${addressType} "${message}"`);
      assert.equal(Verifier.verifySignature(expected.address, `${message}!`, result.signature!), false, 'another message does not verify');
      const { intent } = decoded;
      assert.equal(intent.kind, 'message.bip322');
      assert.equal(intent.chain, BITCOIN_CHAINS.testnet);
      assert.deepEqual(intent.spends, []);
      assert.deepEqual(intent.message, { text: message, hex: `0x${Buffer.from(message, 'utf8').toString('hex')}` });
      assert.equal(intent.bitcoin!.messageAddress, expected.address);
      assert.deepEqual(intent.bitcoin!.sighashes, [addressType === 'p2wpkh' ? 'all' : 'default']);
      assert.deepEqual(decoded.tasks!.map((t) => t.path), [expected.path]);
    }
  }
});

test('BIP-322 requests: defaults, refusals, and a signature that does not verify', async () => {
  const vault = await openTestVault();
  const decoded = adapter.decode('bitcoin.message', { message: 'hi', network: 'regtest', addressType: 'p2tr' }, vault.signer);
  assert.equal(decoded.intent.bitcoin!.messageAddress, deriveBitcoinAddress(vault.signer, 'regtest', 'p2tr', 0, 0).address);
  const request = (o: Record<string, unknown>) => () => adapter.decode('bitcoin.message', { message: 'hi', network: 'regtest', addressType: 'p2wpkh', ...o }, vault.signer);
  assertRefused(request({ addressType: 'p2pkh' }), 'invalid_request', 'p2pkh');
  assertRefused(request({ message: 42 }), 'invalid_request', 'not a string');
  assertRefused(request({ message: 'a\ud800b' }), 'invalid_request', 'a lone surrogate');
  assertRefused(request({ index: 2 ** 31 }), 'invalid_request', 'hardened index');
  assertRefused(request({ change: 2 }), 'invalid_request', 'change 2');
  assertRefused(request({ network: 'mainnet' }), 'invalid_request', 'unknown network');
  const wpkh = adapter.decode('bitcoin.message', { message: 'hi', network: 'regtest', addressType: 'p2wpkh' }, vault.signer);
  const [good] = await produceSignatures(vault.backend, wpkh);
  const [taproot] = await produceSignatures(vault.backend, decoded);
  assertRefused(() => adapter.finalize('bitcoin.message', wpkh, taproot!, vault.signer, [taproot!]), 'signature_check_failed', 'a BIP-340 signature for P2WPKH');
  const other = await vault.backend.signDigest(wpkh.tasks![0]!.path, new Uint8Array(32).fill(3), 'ecdsa-secp256k1');
  assertRefused(() => adapter.finalize('bitcoin.message', wpkh, other, vault.signer, [other]), 'signature_check_failed', 'ECDSA over another digest');
  assert.ok(adapter.finalize('bitcoin.message', wpkh, good!, vault.signer, [good!]).signature);
});
