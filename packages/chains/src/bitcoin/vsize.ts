// The virtual size of a PSBT's transaction once signed, estimated before it is (the fee rate policy sees).
// BIP-141: weight = 4 x (size without witness data) + witness data (with the 2-byte marker and flag);
// vsize = ceil(weight / 4). A cap on the fee rate holds only if the size it divides by is never larger than the
// real one, so each input counts:
// - the agent's own, as we will sign it: P2WPKH witness 1 + (1+72) + (1+33) bytes (a DER signature is at most
//   72 bytes with its sighash byte, and the key backend does not grind for a low R: half of its signatures are
//   72 bytes, the others 71 or, rarely, less); P2TR key path 1 + (1+64), +1 when the sighash is not DEFAULT.
//   The agent chooses neither its nonce nor its signature's length: at most 1 weight unit (1/4 vB) per P2WPKH
//   input above the signed size, each time;
// - another signer's input by the script it spends, never by what it claims about itself. That script is the
//   one the chain holds the transaction to: decode proves it by the full previous transaction, or the agent's
//   taproot signatures commit to it (psbt-decode.ts); a redeem or witness script is used only as btc-signer
//   checked it against that script's hash at parse. Then by its type: P2PKH and P2SH-P2WPKH with a compressed
//   key, m-of-n multisig in P2SH or P2WSH, P2TR whose internal key proves there is no script tree (key path
//   only), or its final scriptSig and witness when those are smaller. Never larger: the agent's signatures do
//   not commit to other inputs' scriptSigs and witnesses, so a co-signer could pad them while Airlock judges the
//   PSBT (a large size, a low fee rate) and broadcast small ones (an attack review paid 168 sat/vB past a
//   10 sat/vB cap that way, and another sized a P2WPKH coin as the 15-of-15 multisig its witness UTXO claimed).
//   Its ECDSA signatures count at the shortest a signer can make, not the usual 72 bytes: the signer picks its
//   nonce, and k = 1/2 gives an r with 11 leading zero bytes (x(G/2) is public), a 59-byte strict-DER, low-S
//   signature, 60 bytes with its sighash byte (an attack review paid 10.4 sat/vB past a 10 sat/vB cap with 20
//   such P2WPKH inputs counted at 72; 8 % per P2PKH input, 11 % per P2SH 15-of-15).
//   A spend that cannot be known (P2SH or P2WSH without its script, a taproot output that may hide a script
//   tree, a script of no known type) counts what it must at least reveal: nothing for most, the script for a
//   known P2SH or P2WSH script, so 41 vB with an empty witness at the least. Other signers' inputs are thus
//   counted at their smallest possible size: the fee rate policy sees is at least the real one for them.
// Which inputs and outputs count at all is psbt-intent.ts's: under ANYONECANPAY, or SIGHASH_NONE or SINGLE, the
// signatures allow smaller transactions than the PSBT's (highestFeeRate below).
import type { TransactionInput } from '@scure/btc-signer/psbt.js';
import { OutScript, RawWitness } from '@scure/btc-signer';

/** The agent's own ECDSA signature, pushed: at most 72 bytes with its sighash byte (see above). */
const OWN_ECDSA_PUSH = 1 + 72;
/** Another signer's: the shortest it can make, 60 bytes with its sighash byte (r = x(G/2), see above). */
const ECDSA_PUSH = 1 + 60;
const KEY_PUSH = 1 + 33;
const OWN_P2WPKH_WITNESS = 1 + OWN_ECDSA_PUSH + KEY_PUSH;
const P2WPKH_WITNESS = 1 + ECDSA_PUSH + KEY_PUSH;
const P2TR_KEY_PATH_WITNESS = 1 + 1 + 64;

export interface InputSize {
  scriptSig: number;
  /** Serialised witness stack (with its item count); 0 for an input without one. */
  witness: number;
}

export function compactSizeLength(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9;
}

const pushLength = (n: number) => (n < 0x4c ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5) + n;
const witnessItem = (n: number) => compactSizeLength(n) + n;

/** An input the agent signs. */
export function ownInputSize(type: 'p2wpkh' | 'p2tr', sighash: number): InputSize {
  return { scriptSig: 0, witness: type === 'p2wpkh' ? OWN_P2WPKH_WITNESS : P2TR_KEY_PATH_WITNESS + (sighash === 0 ? 0 : 1) };
}

/** Another signer's input: the estimate for its type, or its final fields when smaller (see the top of this file). */
export function otherInputSize(input: TransactionInput, prevoutScript: Uint8Array): InputSize {
  const template = templateSize(input, prevoutScript);
  if (!input.finalScriptSig?.length && !input.finalScriptWitness?.length) return template;
  const final = { scriptSig: input.finalScriptSig?.length ?? 0, witness: input.finalScriptWitness?.length ? RawWitness.encode(input.finalScriptWitness).length : 0 };
  return weightOf(final) < weightOf(template) ? final : template;
}

/** Weight units an input's scriptSig and witness add (the scriptSig counts four times). */
function weightOf(size: InputSize): number {
  return 4 * (compactSizeLength(size.scriptSig) + size.scriptSig) + size.witness;
}

function templateSize(input: TransactionInput, prevoutScript: Uint8Array): InputSize {
  const outer = decode(prevoutScript);
  switch (outer?.type) {
    case 'wpkh':
      return { scriptSig: 0, witness: P2WPKH_WITNESS };
    case 'tr':
      // btc-signer checked at parse that an internal key without a merkle root or leaves makes the output key
      // (BIP-86): no script tree, so a key-path signature is the only spend. Otherwise a leaf may be smaller.
      return input.tapInternalKey && !input.tapMerkleRoot && !input.tapLeafScript?.length ? { scriptSig: 0, witness: P2TR_KEY_PATH_WITNESS } : UNKNOWN_SPEND;
    case 'pkh':
      return { scriptSig: ECDSA_PUSH + KEY_PUSH, witness: 0 };
    case 'pk':
      return { scriptSig: ECDSA_PUSH, witness: 0 };
    case 'ms':
      return { scriptSig: 1 + outer.m * ECDSA_PUSH, witness: 0 };
    case 'wsh':
      return { scriptSig: 0, witness: witnessScriptSize(input.witnessScript) };
    case 'sh': {
      const redeem = input.redeemScript;
      if (!redeem) return UNKNOWN_SPEND;
      const inner = decode(redeem);
      if (inner?.type === 'wpkh') return { scriptSig: pushLength(redeem.length), witness: P2WPKH_WITNESS };
      if (inner?.type === 'wsh') return { scriptSig: pushLength(redeem.length), witness: witnessScriptSize(input.witnessScript) };
      // Multisig needs its m signatures (and CHECKMULTISIG's extra item); any other script, only itself pushed.
      const signatures = inner?.type === 'ms' ? 1 + inner.m * ECDSA_PUSH : 0;
      return { scriptSig: signatures + pushLength(redeem.length), witness: 0 };
    }
    default:
      return UNKNOWN_SPEND;
  }
}

/** A spend whose size cannot be known: the smallest input there is (41 vB: outpoint, empty scriptSig, sequence). */
const UNKNOWN_SPEND: InputSize = Object.freeze({ scriptSig: 0, witness: 0 });

/** P2WSH: the witness script and what satisfies it (m signatures after CHECKMULTISIG's empty item); unknown: nothing. */
function witnessScriptSize(script: Uint8Array | undefined): number {
  if (!script) return 0;
  const inner = decode(script);
  if (inner?.type === 'ms') return compactSizeLength(inner.m + 2) + 1 + inner.m * ECDSA_PUSH + witnessItem(script.length);
  return compactSizeLength(1) + witnessItem(script.length);
}

function decode(script: Uint8Array) {
  try {
    return OutScript.decode(script);
  } catch {
    return undefined;
  }
}

/** vsize of a transaction with these inputs and output scripts. */
export function virtualSize(inputs: readonly InputSize[], outputScripts: readonly Uint8Array[]): number {
  let base = 4 + compactSizeLength(inputs.length) + compactSizeLength(outputScripts.length) + 4;
  for (const i of inputs) base += 36 + compactSizeLength(i.scriptSig) + i.scriptSig + 4;
  for (const s of outputScripts) base += 8 + compactSizeLength(s.length) + s.length;
  const segwit = inputs.some((i) => i.witness > 0);
  // With the marker and flag, every input has a witness field: an empty one is a single zero count byte.
  const witness = segwit ? 2 + inputs.reduce((sum, i) => sum + (i.witness > 0 ? i.witness : 1), 0) : 0;
  return Math.ceil((base * 4 + witness) / 4);
}

/** An input the transaction may leave out, with the amount it brings to the fee. */
export interface SizedInput {
  size: InputSize;
  amount: bigint;
}

/** The transaction a fee rate is judged on: its fee (sat) and vsize. */
export interface RateBasis {
  feeSat: bigint;
  vsize: number;
}

/** Whether a pays a higher fee rate than b. */
export function higherRate(a: RateBasis, b: RateBasis): boolean {
  return a.feeSat * BigInt(b.vsize) > b.feeSat * BigInt(a.vsize);
}

/**
 * The highest fee rate among transactions made of at least one of `optional` inputs and these outputs, each paying
 * its inputs' amounts minus `outputsSat`; undefined when none pays a positive fee. Over every subset of the
 * inputs, the highest ratio (amounts - outputs) / size takes the inputs in order of amount per weight unit, the
 * densest first, up to where the next would lower it (the classic fractional-programming argument): each prefix
 * of that order is tried (at most 50 inputs, psbt-limits.ts), its vsize computed exactly.
 */
export function highestFeeRate(optional: readonly SizedInput[], outputScripts: readonly Uint8Array[], outputsSat: bigint): RateBasis | undefined {
  const weight = (i: SizedInput) => BigInt(4 * (40 + compactSizeLength(i.size.scriptSig) + i.size.scriptSig) + i.size.witness);
  const densest = [...optional].sort((a, b) => {
    const lhs = b.amount * weight(a);
    const rhs = a.amount * weight(b);
    return lhs > rhs ? 1 : lhs < rhs ? -1 : 0;
  });
  let best: RateBasis | undefined;
  let amounts = 0n;
  for (let k = 1; k <= densest.length; k++) {
    amounts += densest[k - 1]!.amount;
    const feeSat = amounts - outputsSat;
    if (feeSat <= 0n) continue;
    const candidate = { feeSat, vsize: virtualSize(densest.slice(0, k).map((i) => i.size), outputScripts) };
    if (!best || higherRate(candidate, best)) best = candidate;
  }
  return best;
}
