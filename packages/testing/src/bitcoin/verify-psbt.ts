/**
 * Checks a PSBT that Airlock signed with a second implementation (bitcoinjs-lib parses and hashes,
 * tiny-secp256k1 verifies), then finalizes it with bitcoinjs and broadcasts it to the chain double, which
 * verifies every input's witness once more. Nothing here trusts Airlock's `signedInputs`: the inputs signed
 * are read from the PSBT itself.
 *
 * With the PSBT as it was sent, it also checks that Airlock only ADDED signatures: the same version, the same
 * global map, the same outputs, and every input's fields kept (an input Airlock finalized keeps only its UTXO
 * fields and gains its final scriptSig/witness, as the BIP-174 finalizer does).
 */
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import type { Accepted, BitcoinTestChain } from './chain.ts';
import { decodePsbtMaps, IN, psbtVersion, toPsbtV0, typeOf, type KeyValue } from './psbt-maps.ts';

bitcoin.initEccLib(ecc);

const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class PsbtVerificationFailed extends Error {
  override readonly name = 'PsbtVerificationFailed';
}

export interface VerifiedSignature {
  input: number;
  scheme: 'ecdsa' | 'schnorr';
  /** Compressed key (ECDSA) or x-only output key (schnorr), hex. */
  publicKey: string;
  hashType: number;
  /** The signature as the PSBT holds it (DER + hash type, or 64/65 bytes), hex: what an idempotent replay must repeat. */
  signature: string;
}

export interface VerifiedPsbt {
  version: number;
  /** Inputs that gained a signature or a final witness compared with the PSBT sent (without it: inputs with any). */
  signedInputs: number[];
  /** Every signature found in the returned PSBT (partial and taproot key-path), each verified. */
  signatures: VerifiedSignature[];
  /** Finalized by bitcoinjs and extracted (absent with `finalize: false`). */
  transaction?: string;
  txid?: string;
  /** What the chain double said (absent with `broadcast: false`). */
  accepted?: Accepted;
}

export interface VerifyOptions {
  chain: BitcoinTestChain;
  /** The PSBT as sent to Airlock: enables the "only signatures were added" checks and `signedInputs`. */
  sent?: string;
  /** Finalize and extract with bitcoinjs (default true). Every input must then be signed. */
  finalize?: boolean;
  /** Broadcast the extracted transaction to the chain double (default true; needs `finalize`). */
  broadcast?: boolean;
}

function fail(message: string): never {
  throw new PsbtVerificationFailed(message);
}

export function verifyAirlockPsbt(returned: string, opts: VerifyOptions): VerifiedPsbt {
  const version = psbtVersion(returned);
  if (opts.sent !== undefined && psbtVersion(opts.sent) !== version) fail(`sent a version ${psbtVersion(opts.sent)} PSBT, got version ${version} back`);
  const signedInputs = opts.sent === undefined ? undefined : onlySignaturesAdded(opts.sent, returned);

  const psbt = bitcoin.Psbt.fromBase64(version === 2 ? toPsbtV0(returned) : returned, { network: opts.chain.bitcoinjsNetwork });
  const unsigned = bitcoin.Transaction.fromBuffer(psbt.data.getTransaction());
  // The coin each input spends: its witness UTXO, or the output of its full previous transaction (legacy inputs).
  const prevouts = psbt.data.inputs.map((input, i) => {
    if (input.witnessUtxo) return input.witnessUtxo;
    const out = input.nonWitnessUtxo && bitcoin.Transaction.fromBuffer(input.nonWitnessUtxo).outs[unsigned.ins[i]!.index];
    return out ? { script: out.script, value: out.value } : fail(`input ${i} names no previous output: cannot check the signatures`);
  });
  const scripts = prevouts.map((p) => p.script);
  const values = prevouts.map((p) => p.value);

  const signatures: VerifiedSignature[] = [];
  psbt.data.inputs.forEach((input, i) => {
    for (const { pubkey, signature } of input.partialSig ?? []) signatures.push(verifyEcdsa(unsigned, i, prevouts[i]!, pubkey, signature, input.sighashType));
    if (input.tapKeySig) signatures.push(verifySchnorr(unsigned, i, scripts, values, input.tapKeySig, input.sighashType));
  });

  const result: VerifiedPsbt = {
    version,
    signedInputs: signedInputs ?? psbt.data.inputs.flatMap((input, i) => (input.partialSig?.length || input.tapKeySig || input.finalScriptWitness ? [i] : [])),
    signatures,
  };
  if (opts.finalize === false) return result;
  psbt.data.inputs.forEach((input, i) => {
    if (input.finalScriptWitness || input.finalScriptSig) return;
    try {
      psbt.finalizeInput(i);
    } catch (e) {
      fail(`bitcoinjs cannot finalize input ${i}: ${(e as Error).message}`);
    }
  });
  // disableFeeCheck: fees are policy's business (the double checks fee >= 0); bitcoinjs's default cap would refuse attack PSBTs.
  const tx = psbt.extractTransaction(true);
  result.transaction = tx.toHex();
  result.txid = tx.getId();
  if (opts.broadcast !== false) result.accepted = opts.chain.broadcast(result.transaction);
  return result;
}

function verifyEcdsa(tx: bitcoin.Transaction, i: number, prevout: { script: Uint8Array; value: bigint }, pubkey: Uint8Array, encoded: Uint8Array, sighashType: number | undefined): VerifiedSignature {
  const script = prevout.script;
  if (!(script.length === 22 && script[0] === 0x00 && script[1] === 0x14)) fail(`input ${i}: an ECDSA partial signature on a script that is not P2WPKH (${hex(script)})`);
  if (hex(bitcoin.crypto.hash160(pubkey)) !== hex(script.subarray(2))) fail(`input ${i}: the partial signature's key ${hex(pubkey)} is not the key the input pays to`);
  const { signature, hashType } = bitcoin.script.signature.decode(encoded);
  if (sighashType !== undefined && sighashType !== hashType) fail(`input ${i}: signed with hash type ${hashType}, the PSBT asks for ${sighashType}`);
  if (BigInt(`0x${hex(signature.subarray(32))}`) > HALF_ORDER) fail(`input ${i}: high-S ECDSA signature`);
  const scriptCode = bitcoin.payments.p2pkh({ hash: script.subarray(2) }).output!;
  const digest = tx.hashForWitnessV0(i, scriptCode, prevout.value, hashType);
  if (!ecc.verify(digest, pubkey, signature, true)) fail(`input ${i}: ECDSA signature does not verify (BIP-143 sighash, tiny-secp256k1)`);
  return { input: i, scheme: 'ecdsa', publicKey: hex(pubkey), hashType, signature: hex(encoded) };
}

function verifySchnorr(tx: bitcoin.Transaction, i: number, scripts: Uint8Array[], values: bigint[], sig: Uint8Array, sighashType: number | undefined): VerifiedSignature {
  const script = scripts[i]!;
  if (!(script.length === 34 && script[0] === 0x51 && script[1] === 0x20)) fail(`input ${i}: a taproot key-path signature on a script that is not P2TR (${hex(script)})`);
  if (sig.length !== 64 && sig.length !== 65) fail(`input ${i}: a ${sig.length}-byte taproot signature`);
  if (sig.length === 65 && sig[64] === 0) fail(`input ${i}: an explicit SIGHASH_DEFAULT byte (BIP-341 forbids it)`);
  const hashType = sig.length === 65 ? sig[64]! : 0;
  if (sighashType !== undefined && sighashType !== hashType) fail(`input ${i}: signed with hash type ${hashType}, the PSBT asks for ${sighashType}`);
  const digest = tx.hashForWitnessV1(i, scripts, values, hashType);
  const outputKey = script.subarray(2);
  if (!ecc.verifySchnorr(digest, outputKey, sig.subarray(0, 64))) fail(`input ${i}: BIP-340 signature does not verify against the output key (BIP-341 sighash, tiny-secp256k1)`);
  return { input: i, scheme: 'schnorr', publicKey: hex(outputKey), hashType, signature: hex(sig) };
}

const keyOf = (kv: KeyValue) => hex(kv.key);
const asMap = (map: KeyValue[]) => new Map(map.map((kv) => [keyOf(kv), hex(kv.value)]));
const SIGNATURE_TYPES: number[] = [IN.PARTIAL_SIG, IN.TAP_KEY_SIG];
const FINAL_TYPES: number[] = [IN.FINAL_SCRIPTSIG, IN.FINAL_SCRIPTWITNESS];
/** What the BIP-174 finalizer keeps of a finalized input (the UTXOs), plus BIP-370's outpoint fields. */
const KEPT_WHEN_FINAL: number[] = [IN.NON_WITNESS_UTXO, IN.WITNESS_UTXO, IN.PREVIOUS_TXID, IN.OUTPUT_INDEX, IN.SEQUENCE, IN.REQUIRED_TIME_LOCKTIME, IN.REQUIRED_HEIGHT_LOCKTIME];

/** Compares the raw maps; returns the inputs that gained a signature or a final witness. */
function onlySignaturesAdded(sent: string, returned: string): number[] {
  const a = decodePsbtMaps(sent);
  const b = decodePsbtMaps(returned);
  const same = (x: KeyValue[], y: KeyValue[]) => {
    const mx = asMap(x);
    const my = asMap(y);
    return mx.size === my.size && [...mx].every(([k, v]) => my.get(k) === v);
  };
  if (!same(a.global, b.global)) fail('the global map changed (unsigned transaction, xpubs or version)');
  if (a.inputs.length !== b.inputs.length || a.outputs.length !== b.outputs.length) fail('the number of inputs or outputs changed');
  a.outputs.forEach((m, i) => same(m, b.outputs[i]!) || fail(`output ${i} changed`));
  const signed: number[] = [];
  a.inputs.forEach((before, i) => {
    const mb = asMap(before);
    const after = b.inputs[i]!;
    const ma = asMap(after);
    const finalizedNow = !before.some((kv) => FINAL_TYPES.includes(typeOf(kv))) && after.some((kv) => FINAL_TYPES.includes(typeOf(kv)));
    for (const kv of before) {
      const kept = ma.get(keyOf(kv));
      if (kept === undefined) {
        // A finalizer drops everything but the UTXOs and unknown fields.
        if (finalizedNow && !KEPT_WHEN_FINAL.includes(typeOf(kv))) continue;
        fail(`input ${i}: field 0x${keyOf(kv)} was removed`);
      }
      if (kept !== mb.get(keyOf(kv))) fail(`input ${i}: field 0x${keyOf(kv)} was changed`);
    }
    const added = after.filter((kv) => !mb.has(keyOf(kv)));
    const unexpected = added.find((kv) => !SIGNATURE_TYPES.includes(typeOf(kv)) && !(finalizedNow && FINAL_TYPES.includes(typeOf(kv))));
    if (unexpected) fail(`input ${i}: field 0x${keyOf(unexpected)} was added (only signatures may be)`);
    if (added.length > 0) signed.push(i);
  });
  return signed;
}
