/**
 * BIP-39 / BIP-32 glue: entropy <-> mnemonic, and entropy -> seed -> BIP-32 root.
 * The vault calls exactly these functions; the conformance tests call them too, so the
 * spec vectors exercise the code path that produces real keys.
 */
import { AirlockError } from '@airlock/core';
import { HDKey } from '@scure/bip32';
import { entropyToMnemonic, mnemonicToEntropy, mnemonicToSeedSync } from '@scure/bip39';
import { wordlist as englishWordlist } from '@scure/bip39/wordlists/english.js';

/** BIP-39 entropy sizes: 128..256 bits in steps of 32 (12..24 words). */
export const ENTROPY_LENGTHS: readonly number[] = [16, 20, 24, 28, 32];
const WORD_COUNTS: readonly number[] = [12, 15, 18, 21, 24];

export function mnemonicFromEntropy(entropy: Uint8Array): string {
  if (!ENTROPY_LENGTHS.includes(entropy.length)) {
    throw new AirlockError('internal', 'entropy must be 16, 20, 24, 28 or 32 bytes');
  }
  return entropyToMnemonic(entropy, englishWordlist);
}

/**
 * Parses an English BIP-39 mnemonic back into its entropy, checking every word and the checksum.
 * Errors name word positions, never the words themselves (they are the secret).
 */
export function entropyFromMnemonic(mnemonic: string): Uint8Array {
  const words = normalizeMnemonic(mnemonic).split(' ').filter((w) => w !== '');
  if (!WORD_COUNTS.includes(words.length)) {
    throw new AirlockError('invalid_request', `a mnemonic has 12, 15, 18, 21 or 24 words, got ${words.length}`);
  }
  const known = new Set(englishWordlist);
  const unknownPositions = words.flatMap((w, i) => (known.has(w) ? [] : [i + 1]));
  if (unknownPositions.length > 0) {
    throw new AirlockError('invalid_request', 'the mnemonic contains words that are not in the BIP-39 English list', {
      hints: [`check word number ${unknownPositions.join(', ')}`],
    });
  }
  try {
    return mnemonicToEntropy(words.join(' '), englishWordlist);
  } catch {
    // scure's message may quote the input; drop it (no cause) and say what is wrong.
    throw new AirlockError('invalid_request', 'the mnemonic checksum does not match', {
      hints: ['a word is probably mistyped or the words are out of order'],
    });
  }
}

/** BIP-39 normalises with NFKD; we also accept any whitespace and upper case from a paste. */
function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.normalize('NFKD').trim().toLowerCase().split(/\s+/).join(' ');
}

export interface RootKey {
  /** 64-byte BIP-39 seed. Secret: the caller must zero it when done. */
  seed: Uint8Array;
  /** BIP-32 master node. Secret: the caller must call `wipePrivateData()` when done. */
  root: HDKey;
}

/**
 * BIP-39 entropy -> mnemonic -> PBKDF2 seed (with `bip39Passphrase`, the vault uses none)
 * -> BIP-32 master key (HMAC-SHA512 with "Bitcoin seed").
 */
export function deriveRootFromEntropy(entropy: Uint8Array, bip39Passphrase = ''): RootKey {
  const mnemonic = mnemonicFromEntropy(entropy);
  const seed = mnemonicToSeedSync(mnemonic, bip39Passphrase);
  return { seed, root: HDKey.fromMasterSeed(seed) };
}
