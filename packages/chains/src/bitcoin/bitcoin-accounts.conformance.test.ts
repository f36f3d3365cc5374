// BIP-84 and BIP-86 test vectors (bips bip-0084 / bip-0086 "Test vectors", shared/vectors) through the HD key
// backend and our account helpers: the account's extended public key, and the receive and change addresses
// derived from it without any private key; descriptors built on them carry a valid BIP-380 checksum.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base58check } from '@scure/base';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { mnemonicToSeedSync } from '@scure/bip39';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { bitcoinAccountView, deriveBitcoinAddress, encodeExtendedPublicKey } from './account-view.ts';
import { hasValidDescriptorChecksum } from './descriptor-checksum.ts';
import { openTestVault } from './testing/test-vault.ts';

const skip = vectorsSkipReason;
const b58 = base58check(sha256);

interface Entry {
  description: string;
  path: string;
  xpub?: string;
  pubkey?: string;
  address?: string;
  internal_key?: string;
  output_key?: string;
  scriptPubKey?: string;
}

function pathParts(path: string): { change: 0 | 1; index: number } | undefined {
  const m = /^m\/8[46]'\/0'\/0'\/([01])\/(\d+)$/.exec(path);
  return m ? { change: Number(m[1]) as 0 | 1, index: Number(m[2]) } : undefined;
}

test('BIP-84: the account zpub (as xpub) and the P2WPKH receive and change addresses of "abandon … about"', { skip }, async () => {
  const v = JSON.parse(readVector('bip84-test-vectors.json')) as { mnemonic: string; passphrase: string; entries: Entry[] };
  const vault = await openTestVault(0, mnemonicToSeedSync(v.mnemonic, v.passphrase));
  const view = bitcoinAccountView(vault.signer, 'bitcoin', 'p2wpkh');
  let checked = 0;
  for (const e of v.entries) {
    const at = pathParts(e.path);
    if (!at) {
      // BIP-84 prints the account key as a zpub (SLIP-132 version bytes 04b24746); descriptors use the same key
      // as an xpub (0488b21e): everything after the 4 version bytes is identical.
      const zpub = b58.decode(e.xpub!);
      const xpub = b58.decode(view.xpub);
      assert.equal(bytesToHex(zpub.slice(0, 4)), '04b24746');
      assert.equal(bytesToHex(xpub.slice(0, 4)), '0488b21e');
      assert.equal(bytesToHex(xpub.slice(4)), bytesToHex(zpub.slice(4)), e.description);
      assert.equal(view.path, e.path);
      checked++;
      continue;
    }
    const derived = deriveBitcoinAddress(vault.signer, 'bitcoin', 'p2wpkh', at.change, at.index);
    assert.equal(derived.address, e.address, e.description);
    assert.equal(derived.publicKey, e.pubkey, e.description);
    assert.equal(derived.path, e.path);
    checked++;
  }
  assert.equal(checked, v.entries.length);
  assert.equal(view.keyOrigin, '[73c5da0a/84h/0h/0h]');
  assert.equal(view.descriptors.multipath, `wpkh([73c5da0a/84h/0h/0h]${view.xpub}/<0;1>/*)${view.descriptors.multipath.slice(-9)}`);
  for (const d of Object.values(view.descriptors)) assert.equal(hasValidDescriptorChecksum(d), true, d);
});

test('BIP-86: the account xpub, the BIP-86 internal and output keys, scripts and P2TR addresses of "abandon … about"', { skip }, async () => {
  const v = JSON.parse(readVector('bip86-test-vectors.json')) as { mnemonic: string; passphrase: string; entries: Entry[] };
  const vault = await openTestVault(0, mnemonicToSeedSync(v.mnemonic, v.passphrase));
  const view = bitcoinAccountView(vault.signer, 'bitcoin', 'p2tr');
  for (const e of v.entries) {
    // Every level's xpub, serialised from the key backend's extended key by our encoder.
    assert.equal(encodeExtendedPublicKey(await vault.backend.getExtendedPublicKey(e.path), 'bitcoin'), e.xpub, e.description);
    const at = pathParts(e.path);
    if (!at) {
      assert.equal(view.xpub, e.xpub, e.description);
      continue;
    }
    const derived = deriveBitcoinAddress(vault.signer, 'bitcoin', 'p2tr', at.change, at.index);
    assert.equal(derived.publicKey.slice(2), e.internal_key, e.description);
    assert.equal(derived.scriptPubKey, e.scriptPubKey, e.description);
    assert.equal(derived.scriptPubKey.slice(4), e.output_key, e.description);
    assert.equal(derived.address, e.address, e.description);
  }
  assert.match(view.descriptors.receive, /^tr\(\[73c5da0a\/86h\/0h\/0h\]xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ\/0\/\*\)#[a-z0-9]{8}$/);
  for (const d of Object.values(view.descriptors)) assert.equal(hasValidDescriptorChecksum(d), true, d);
  // On a test network the same key is a tpub and the account is coin type 1.
  const testnet = bitcoinAccountView(vault.signer, 'testnet', 'p2tr');
  assert.match(testnet.xpub, /^tpub/);
  assert.equal(testnet.path, "m/86'/1'/0'");
});
