// What the Bitcoin wallet checks in Airlock's answers before the caller sees them, with @scure/btc-signer: a
// signed PSBT is the transaction sent with signatures added only where Airlock says it signed, each one valid
// (BIP-143 for P2WPKH, BIP-341 for a taproot key path); a BIP-322 signature verifies for the address named.
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { Address, NETWORK, OutScript, p2pkh, RawTx, RawWitness, Script, TEST_NETWORK, Transaction } from '@scure/btc-signer';
import { hash160, sha256x2, tagSchnorr } from '@scure/btc-signer/utils.js';
import { AirlockApiError } from './http.ts';

export type BitcoinNetworkName = 'bitcoin' | 'testnet' | 'testnet4' | 'signet' | 'regtest';

/** Address encodings per network: testnet3, testnet4 and signet share `tb`; regtest has its own bech32 prefix. */
export function btcNetwork(network: BitcoinNetworkName): typeof NETWORK {
  if (network === 'bitcoin') return NETWORK;
  if (network === 'regtest') return { ...TEST_NETWORK, bech32: 'bcrt' };
  return TEST_NETWORK;
}

/**
 * Reads PSBTs as they come, whatever else they hold: inputs and outputs the agent does not sign may be of any
 * kind, and fields this library does not know are kept, not judged. Only what is checked below must parse.
 */
const LENIENT = { allowUnknownInputs: true, allowUnknownOutputs: true, disableScriptCheck: true, allowLegacyWitnessUtxo: true, allowUnknownVersion: true, unknown: 'ignore' } as const;

const SIGHASH_ALL = 1;
const SIGHASH_DEFAULT = 0;

export function decodePsbt(psbtBase64: string): Transaction {
  return Transaction.fromPSBT(fromBase64(psbtBase64), LENIENT);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'base64'));
}

function fault(message: string): AirlockApiError {
  return new AirlockApiError(200, 'invalid_response', message);
}

export interface SignedPsbtAnswer {
  psbt: string;
  signedInputs: number[];
  transaction?: string;
  txid?: string;
}

/**
 * Airlock's signed PSBT must be the PSBT sent, signed where it says and nowhere else:
 *  1. it decodes, and its unsigned transaction is byte for byte the one sent (same txid, inputs, outputs);
 *  2. `signedInputs` are distinct input indexes, and each gained a signature that verifies for the key its
 *     previous output pays (every input of the agent is P2WPKH or a taproot key path);
 *  3. every other input's signature fields are untouched (nothing signed that Airlock did not report);
 *  4. asked to finalize: the transaction returned is the one the returned PSBT extracts to, under `txid`.
 * Any failure is a faulty answer, never a result.
 */
export function checkSignedPsbt(sentBase64: string, answer: SignedPsbtAnswer, finalize: boolean): void {
  let sent: Transaction;
  let back: Transaction;
  try {
    sent = decodePsbt(sentBase64);
  } catch {
    throw fault('Airlock signed a PSBT that this SDK cannot decode, so its answer cannot be checked.');
  }
  try {
    back = decodePsbt(answer.psbt);
  } catch {
    throw fault('Airlock returned a PSBT that does not decode.');
  }
  if (!equalBytes(sent.unsignedTx, back.unsignedTx)) throw fault('Airlock returned a PSBT of another transaction than the one sent.');
  const signed = new Set(answer.signedInputs);
  if (answer.signedInputs.length === 0 || signed.size !== answer.signedInputs.length || answer.signedInputs.some((i) => !Number.isInteger(i) || i < 0 || i >= sent.inputsLength)) {
    throw fault('Airlock reported signed inputs that are not distinct inputs of the PSBT.');
  }
  for (let i = 0; i < sent.inputsLength; i++) {
    const before = sent.getInput(i);
    const after = back.getInput(i);
    if (!signed.has(i)) {
      if (signatureFields(before) !== signatureFields(after)) throw fault(`Airlock changed the signatures of input ${i}, which it did not report as signed.`);
      continue;
    }
    const fresh = newSignatures(before, after);
    if (fresh.length === 0) throw fault(`Airlock reported input ${i} as signed, but it carries no new signature.`);
    for (const sig of fresh) {
      if (!verifyInputSignature(back, i, sig)) throw fault(`A signature Airlock added to input ${i} does not verify.`);
    }
  }
  if (finalize) checkExtracted(back, answer);
}

/** The signature-bearing fields of an input, as one comparable string. */
function signatureFields(input: ReturnType<Transaction['getInput']>): string {
  const hex = (b: Uint8Array | undefined) => (b ? bytesToHex(b) : '');
  return JSON.stringify([
    (input.partialSig ?? []).map(([k, s]) => `${hex(k)}:${hex(s)}`).sort(),
    hex(input.tapKeySig),
    (input.tapScriptSig ?? []).map(([k, s]) => `${hex(k.pubKey)}:${hex(k.leafHash)}:${hex(s)}`).sort(),
    hex(input.finalScriptSig),
    (input.finalScriptWitness ?? []).map(hex),
  ]);
}

/** A signature as it sits in the PSBT: DER+hashtype with its public key (segwit v0), or BIP-340 (+hashtype). */
type FoundSignature = { kind: 'ecdsa'; publicKey: Uint8Array; signature: Uint8Array } | { kind: 'schnorr'; signature: Uint8Array };

function signaturesOf(input: ReturnType<Transaction['getInput']>): FoundSignature[] {
  const found: FoundSignature[] = (input.partialSig ?? []).map(([publicKey, signature]) => ({ kind: 'ecdsa', publicKey, signature }));
  if (input.tapKeySig) found.push({ kind: 'schnorr', signature: input.tapKeySig });
  // A finalized input keeps its signatures in the witness only: [sig, pubkey] (P2WPKH) or [sig] (key path).
  const w = input.finalScriptWitness;
  if (w?.length === 2 && w[1]!.length === 33) found.push({ kind: 'ecdsa', publicKey: w[1]!, signature: w[0]! });
  if (w?.length === 1 && (w[0]!.length === 64 || w[0]!.length === 65)) found.push({ kind: 'schnorr', signature: w[0]! });
  return found;
}

function newSignatures(before: ReturnType<Transaction['getInput']>, after: ReturnType<Transaction['getInput']>): FoundSignature[] {
  const key = (s: FoundSignature) => bytesToHex(s.signature);
  const old = new Set(signaturesOf(before).map(key));
  return signaturesOf(after).filter((s) => !old.has(key(s)));
}

/** The previous output an input spends: its witness UTXO, else the output of its full previous transaction. */
function prevoutOf(tx: Transaction, i: number): { script: Uint8Array; amount: bigint } | undefined {
  const input = tx.getInput(i);
  if (input.witnessUtxo) return input.witnessUtxo;
  const out = input.nonWitnessUtxo?.outputs[input.index!];
  return out ? { script: out.script, amount: out.amount } : undefined;
}

/**
 * A signature verifies for the script the input spends, over the sighash it says it commits with (which must
 * be the one the input asks for, if it asks): BIP-143 for P2WPKH (the key must hash to the program), BIP-341
 * for a taproot key path (the output key itself).
 */
function verifyInputSignature(tx: Transaction, i: number, sig: FoundSignature): boolean {
  const prevout = prevoutOf(tx, i);
  if (!prevout) return false;
  const asked = tx.getInput(i).sighashType;
  let out;
  try {
    out = OutScript.decode(prevout.script);
  } catch {
    return false;
  }
  try {
    if (sig.kind === 'ecdsa' && out.type === 'wpkh') {
      if (!equalBytes(hash160(sig.publicKey), out.hash)) return false;
      const hashType = sig.signature[sig.signature.length - 1]!;
      if (hashType !== (asked ?? SIGHASH_ALL)) return false;
      const digest = tx.preimageWitnessV0(i, p2pkh(sig.publicKey).script, hashType, prevout.amount);
      return secp256k1.verify(sig.signature.subarray(0, -1), digest, sig.publicKey, { prehash: false, format: 'der' });
    }
    if (sig.kind === 'schnorr' && out.type === 'tr') {
      const hashType = sig.signature.length === 65 ? sig.signature[64]! : SIGHASH_DEFAULT;
      // BIP-341: a 65-byte signature never carries 0x00; DEFAULT is the 64-byte form.
      if (sig.signature.length === 65 && hashType === SIGHASH_DEFAULT) return false;
      // Not asked for a sighash, a signer commits to everything (DEFAULT, or ALL): never NONE or SINGLE on its own.
      if (asked === undefined ? hashType !== SIGHASH_DEFAULT && hashType !== SIGHASH_ALL : hashType !== asked) return false;
      const prevouts = Array.from({ length: tx.inputsLength }, (_, j) => prevoutOf(tx, j));
      if (prevouts.some((p) => p === undefined)) return false;
      const digest = tx.preimageWitnessV1(i, prevouts.map((p) => p!.script), hashType, prevouts.map((p) => p!.amount));
      return schnorr.verify(sig.signature.subarray(0, 64), digest, out.pubkey);
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * A finalized answer's transaction is what its PSBT extracts to, under its id (which is the unsigned
 * transaction's id only when every input is segwit: a legacy input's scriptSig is part of the txid).
 */
function checkExtracted(back: Transaction, answer: SignedPsbtAnswer): void {
  let extracted: Uint8Array;
  try {
    extracted = back.extract();
  } catch {
    throw fault('Airlock was asked to finalize, but the PSBT it returned is not final.');
  }
  if (answer.transaction === undefined || answer.transaction.toLowerCase() !== bytesToHex(extracted)) throw fault('Airlock returned a transaction that is not the one its PSBT holds.');
  if (answer.txid !== back.id) throw fault('Airlock returned a txid that is not the id of the transaction signed.');
}

/** BIP-322: the tagged hash of the message that to_spend commits to. */
const BIP322_TAG = 'BIP0322-signed-message';

/**
 * Verifies a BIP-322 "simple" signature (the witness of to_sign, base64) for a P2WPKH or P2TR address, step by
 * step as BIP-322 builds the two virtual transactions. Other address types: false (Airlock signs only these).
 */
export function verifyBip322Simple(address: string, message: string, signatureBase64: string, network: BitcoinNetworkName): boolean {
  try {
    const script = OutScript.encode(Address(btcNetwork(network)).decode(address));
    const out = OutScript.decode(script);
    const witness = RawWitness.decode(fromBase64(signatureBase64));
    // to_spend: version 0, one input 000…000:0xFFFFFFFF with scriptSig OP_0 PUSH32[message_hash], sequence 0,
    // one output of 0 sat paying the address's script, locktime 0.
    const messageHash = tagSchnorr(BIP322_TAG, utf8ToBytes(message));
    const toSpend = RawTx.encode({
      version: 0,
      segwitFlag: false,
      inputs: [{ txid: new Uint8Array(32), index: 0xffffffff, finalScriptSig: Script.encode(['OP_0', messageHash]), sequence: 0 }],
      outputs: [{ amount: 0n, script }],
      witnesses: [],
      lockTime: 0,
    });
    // to_sign: version 0, spends to_spend:0 with sequence 0, one OP_RETURN output of 0 sat, locktime 0.
    const toSign = new Transaction({ ...LENIENT, version: 0, lockTime: 0 });
    toSign.addInput({ txid: sha256x2(toSpend).reverse(), index: 0, sequence: 0, witnessUtxo: { script, amount: 0n } });
    toSign.addOutput({ script: Script.encode(['RETURN']), amount: 0n });
    if (out.type === 'wpkh' && witness.length === 2) {
      const [sig, publicKey] = witness as [Uint8Array, Uint8Array];
      if (!equalBytes(hash160(publicKey), out.hash) || sig[sig.length - 1] !== SIGHASH_ALL) return false;
      const digest = toSign.preimageWitnessV0(0, p2pkh(publicKey).script, SIGHASH_ALL, 0n);
      return secp256k1.verify(sig.subarray(0, -1), digest, publicKey, { prehash: false, format: 'der' });
    }
    if (out.type === 'tr' && witness.length === 1) {
      const sig = witness[0]!;
      const hashType = sig.length === 65 ? sig[64]! : SIGHASH_DEFAULT;
      if (sig.length !== 64 && !(sig.length === 65 && hashType === SIGHASH_ALL)) return false;
      const digest = toSign.preimageWitnessV1(0, [script], hashType, [0n]);
      return schnorr.verify(sig.subarray(0, 64), digest, out.pubkey);
    }
    return false;
  } catch {
    // Not an address of this network, not a witness, a point off the curve: not a valid signature.
    return false;
  }
}
