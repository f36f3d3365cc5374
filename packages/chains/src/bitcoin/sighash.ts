// The digests an agent's inputs are signed over, through btc-signer's preimage code (the library checks them
// against Bitcoin Core's vectors; ours are checked against BIP-341's wallet vectors and an independent verifier).
import type { SighashName } from '@airlock/core';
import { hash160 } from '@scure/btc-signer/utils.js';
import { OutScript, type Transaction } from '@scure/btc-signer';

export const SIGHASH_DEFAULT = 0;
export const SIGHASH_ALL = 1;
export const SIGHASH_SINGLE = 3;

/** The sighash types BIP-341 allows (0x00 only for taproot), by name. */
const NAMES: ReadonlyMap<number, SighashName> = new Map([
  [0x00, 'default'],
  [0x01, 'all'],
  [0x02, 'none'],
  [0x03, 'single'],
  [0x81, 'all_anyonecanpay'],
  [0x82, 'none_anyonecanpay'],
  [0x83, 'single_anyonecanpay'],
]);

export function sighashName(type: number): SighashName | undefined {
  return NAMES.get(type);
}

/** SIGHASH_SINGLE or SINGLE|ANYONECANPAY: the signature commits to the output at the input's own index only. */
export function isSighashSingle(type: number): boolean {
  return (type & 0x1f) === SIGHASH_SINGLE;
}

/** ANYONECANPAY: the signature commits to its own input only, so others can be added, removed or replaced after it. */
export function isAnyoneCanPay(type: number): boolean {
  return (type & 0x80) !== 0;
}

/**
 * Whether the signature of input `inputIndex` with this sighash type commits to output `outputIndex`: ALL (and
 * taproot's DEFAULT) to every output, SINGLE to the one at its own input's index, NONE to none. An output no
 * signature of a set commits to can be changed or removed after they are made.
 */
export function commitsToOutput(type: number, inputIndex: number, outputIndex: number): boolean {
  const base = type & 0x1f;
  if (base === 0 || base === SIGHASH_ALL) return true;
  return isSighashSingle(type) && inputIndex === outputIndex;
}

/**
 * BIP-143 for a P2WPKH input: the script code is the P2PKH script of the key's hash, and the digest commits to
 * this input's amount only (hence the full previous transaction we require for the agent's segwit v0 inputs).
 */
export function segwitV0Sighash(tx: Transaction, index: number, publicKey: Uint8Array, amount: bigint, type: number): Uint8Array {
  const scriptCode = OutScript.encode({ type: 'pkh', hash: hash160(publicKey) });
  return tx.preimageWitnessV0(index, scriptCode, type, amount);
}

/** BIP-341 key-path spend (no annex): commits to every input's amount and script, unless ANYONECANPAY (its own only). */
export function taprootSighash(tx: Transaction, index: number, prevouts: readonly { script: Uint8Array; amount: bigint }[], type: number): Uint8Array {
  return tx.preimageWitnessV1(
    index,
    prevouts.map((p) => p.script),
    type,
    prevouts.map((p) => p.amount),
  );
}
