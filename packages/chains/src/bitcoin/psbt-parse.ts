// Parsing an untrusted PSBT (BIP-174 v0 or BIP-370 v2). btc-signer does the field-level work; before it builds its
// Transaction we check each input's previous transaction against its outpoint and its witness UTXO ourselves (and
// name a transaction version it cannot read), so that those refusals carry their own code (btc-signer would throw
// the same plain Error as for bad bytes).
import { AirlockError } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { Transaction, type TxOpts } from '@scure/btc-signer';
import { RawPSBTV0, RawPSBTV2 } from '@scure/btc-signer/psbt.js';
import { RawOldTx } from '@scure/btc-signer/script.js';
import { assertPsbtWithinLimits } from './psbt-limits.ts';

/**
 * How PSBTs are read: fields of other roles and other programs (unknown, proprietary) are kept, so the PSBT the
 * agent gets back is the one it sent plus our signatures; a v2 PSBT without PSBT_GLOBAL_TX_MODIFIABLE stays as
 * BIP-370 reads it (nothing modifiable) instead of gaining the field.
 */
export const PSBT_OPTIONS: TxOpts = Object.freeze({ unknown: 'ignore', proprietary: 'ignore', allowMissingTxModifiable: false });

type RawPsbt = ReturnType<typeof RawPSBTV0.decode>;

export interface ParsedPsbt {
  tx: Transaction;
  version: 0 | 2;
  /** Version bytes of the PSBT_GLOBAL_XPUB entries (they tell a mainnet key from a test one). */
  globalXpubVersions: number[];
}

function malformed(what: string, cause?: unknown): AirlockError {
  // btc-signer's messages can quote field bytes: they stay in `cause`, never in the message an agent sees.
  return new AirlockError('psbt_malformed', `the PSBT does not parse: ${what}`, cause === undefined ? {} : { cause });
}

/** The txid (display order, hex) of a transaction: double SHA-256 of its serialisation without witnesses. */
export function txidOf(tx: Parameters<typeof RawOldTx.encode>[0]): string {
  const bytes = RawOldTx.encode({ version: tx.version, inputs: tx.inputs, outputs: tx.outputs, lockTime: tx.lockTime });
  return bytesToHex(sha256(sha256(bytes)).reverse());
}

export function decodePsbtBase64(text: string): Uint8Array {
  if (typeof text !== 'string' || text.length === 0) throw malformed('expected base64 text');
  try {
    return base64.decode(text.trim());
  } catch (e) {
    throw malformed('not base64', e);
  }
}

export function parsePsbt(bytes: Uint8Array): ParsedPsbt {
  assertPsbtWithinLimits(bytes);
  let raw: RawPsbt;
  try {
    raw = RawPSBTV0.decode(bytes);
  } catch (e0) {
    try {
      raw = RawPSBTV2.decode(bytes) as RawPsbt;
    } catch {
      throw malformed('not a BIP-174 or BIP-370 PSBT', e0);
    }
  }
  const version = raw.global.version ?? 0;
  if (version !== 0 && version !== 2) throw malformed('unknown PSBT version');
  // btc-signer reads transaction versions -1 to 3 only; any other is one decode would refuse to sign anyway (a
  // BIP-174 vector has version 0, so parsing itself accepts what the library reads).
  const txVersion = version === 0 ? raw.global.unsignedTx?.version : raw.global.txVersion;
  if (txVersion !== undefined && (txVersion < -1 || txVersion > 3)) assertSignableVersion(txVersion);
  checkPreviousTransactions(raw, version);
  let tx: Transaction;
  try {
    tx = Transaction.fromPSBT(bytes, PSBT_OPTIONS);
  } catch (e) {
    throw malformed('a field is invalid', e);
  }
  return { tx, version, globalXpubVersions: (raw.global.xpub ?? []).map(([xpub]) => xpub.version) };
}

/**
 * Transaction versions 1 to 3 only: what nodes relay (3 is BIP-431's TRUC). A transaction of version 0 is BIP-322's
 * virtual `to_sign`: signed here, it would be a message proof obtained through bitcoin.psbt, past the
 * `message_not_allowed` default and the session's actions.
 */
export function assertSignableVersion(txVersion: number): void {
  if (txVersion < 1 || txVersion > 3) throw new AirlockError('psbt_tx_version_unsupported', `the transaction's version is ${txVersion}; Airlock signs versions 1 to 3`);
}

/**
 * BIP-174: a non-witness UTXO is the previous transaction itself, so it must hash to the txid the input spends,
 * have the output the input names, and agree with the input's witness UTXO when both are given.
 */
function checkPreviousTransactions(raw: RawPsbt, version: 0 | 2): void {
  raw.inputs.forEach((input, i) => {
    const previous = input.nonWitnessUtxo;
    if (!previous) return;
    const outpoint = version === 0 ? raw.global.unsignedTx?.inputs[i] : input;
    if (outpoint?.txid === undefined || outpoint.index === undefined) throw malformed(`input ${i} names no outpoint`);
    if (txidOf(previous) !== bytesToHex(outpoint.txid)) {
      throw new AirlockError('psbt_utxo_mismatch', `input ${i}: its previous transaction is not the one its outpoint names`);
    }
    const spent = previous.outputs[outpoint.index];
    if (!spent) throw new AirlockError('psbt_utxo_mismatch', `input ${i}: its previous transaction has no output ${outpoint.index}`);
    const witness = input.witnessUtxo;
    if (witness && (witness.amount !== spent.amount || bytesToHex(witness.script) !== bytesToHex(spent.script))) {
      throw new AirlockError('psbt_utxo_mismatch', `input ${i}: its witness UTXO disagrees with its previous transaction (amount or script)`);
    }
  });
}
