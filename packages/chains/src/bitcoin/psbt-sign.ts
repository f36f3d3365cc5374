// Putting the agent's signatures into the PSBT (and, when asked, finalizing and extracting the transaction).
// The same code runs at decode with placeholder signatures, so a PSBT that could not be completed is refused
// before anything is signed or charged, never after.
import { AirlockError, type DecodedRequest, type ProducedSignature, type SignResult } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { Transaction } from '@scure/btc-signer';
import { PSBT_OPTIONS } from './psbt-parse.ts';
import { checkedEcdsaSignature, checkedTaprootSignature } from './signatures.ts';

/** How a PSBT that parsePsbt accepted is re-read to be completed (see completePsbt). */
const COMPLETION_OPTIONS = Object.freeze({ ...PSBT_OPTIONS, disableScriptCheck: true });

/** An input the agent signs, as decode proved it. */
export interface OwnInput {
  index: number;
  type: 'p2wpkh' | 'p2tr';
  /** m/84'/1'/3'/0/7 */
  path: string;
  /** The derived 33-byte key (P2TR: the BIP-86 internal key). */
  publicKey: Uint8Array;
  /** P2TR: the x-only output key of the spent script (what the key-path signature verifies against). */
  outputKey?: Uint8Array;
  sighash: number;
}

/** What `bitcoin.psbt` decode hands to finalize. */
export interface PreparedPsbt {
  kind: 'bitcoin.psbt';
  tx: Transaction;
  /** The PSBT as it came (what `tx` was parsed from): each completion starts from a fresh parse of it. */
  bytes: Uint8Array;
  version: 0 | 2;
  finalize: boolean;
  inputs: readonly OwnInput[];
}

export function isPreparedPsbt(value: unknown): value is PreparedPsbt {
  return typeof value === 'object' && value !== null && (value as PreparedPsbt).kind === 'bitcoin.psbt';
}

/** Checks every produced signature against its input's key and digest, then completes the PSBT. */
export function finalizePsbt(decoded: DecodedRequest, all: readonly ProducedSignature[]): SignResult {
  const prepared = decoded.prepared;
  const tasks = decoded.tasks;
  if (!isPreparedPsbt(prepared) || !tasks || tasks.length !== prepared.inputs.length || all.length !== tasks.length) {
    throw new AirlockError('signature_check_failed', 'the signatures do not match the decoded PSBT');
  }
  const signatures = prepared.inputs.map((own, k) =>
    own.type === 'p2wpkh'
      ? checkedEcdsaSignature(all[k], tasks[k]!.digest, own.publicKey, own.sighash)
      : checkedTaprootSignature(all[k], tasks[k]!.digest, own.outputKey!, own.sighash),
  );
  try {
    return completePsbt(prepared, signatures);
  } catch (e) {
    // Decode rehearsed exactly this with placeholder signatures: reaching here is a bug, not a bad request.
    throw new AirlockError('internal', 'the signed PSBT could not be assembled', { cause: e });
  }
}

/** Adds one signature per own input (already encoded as the PSBT carries it) and serialises the result. */
export function completePsbt(prepared: PreparedPsbt, signatures: readonly Uint8Array[]): SignResult {
  // A fresh parse of the bytes decode parsed (never modified since), instead of `tx.clone()` (a serialisation and
  // a parse); and without btc-signer's script and taproot commitment checks, which parse ran on these very bytes:
  // they are the costly part of each pass (a point decompression and a tweak per taproot input and leaf), and a
  // PSBT is completed twice (the rehearsal, then the signatures). What the checks guard was decided at parse.
  const tx = Transaction.fromPSBT(prepared.bytes, COMPLETION_OPTIONS);
  prepared.inputs.forEach((own, k) => {
    const signature = signatures[k]!;
    if (own.type === 'p2wpkh') {
      // Only the agent's key satisfies this P2WPKH input: whatever else sits in its partial signatures (an older
      // signature of ours, another key's) goes, so the finalized witness is ours.
      tx.updateInput(own.index, { partialSig: undefined }, true);
      tx.updateInput(own.index, { partialSig: [[own.publicKey, signature]] }, true);
    } else {
      tx.updateInput(own.index, { tapKeySig: signature }, true);
    }
  });
  const signedInputs = prepared.inputs.map((own) => own.index);
  if (!prepared.finalize) return { psbt: base64.encode(tx.toPSBT(prepared.version)), signedInputs };
  for (const own of prepared.inputs) tx.finalizeIdx(own.index);
  const transaction = bytesToHex(tx.extract());
  return { psbt: base64.encode(tx.toPSBT(prepared.version)), signedInputs, transaction, txid: tx.id };
}

/** Placeholder signatures of the right lengths, for the rehearsal at decode. */
export function placeholderSignatures(inputs: readonly OwnInput[]): Uint8Array[] {
  return inputs.map((own) => {
    if (own.type === 'p2wpkh') return Uint8Array.of(...new Uint8Array(71), own.sighash);
    return own.sighash === 0 ? new Uint8Array(64) : Uint8Array.of(...new Uint8Array(64), own.sighash);
  });
}
