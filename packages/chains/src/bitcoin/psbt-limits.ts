// How big a PSBT Airlock decodes, checked on the raw bytes before any library parses them. Decoding is
// synchronous, and btc-signer re-checks every input each time it parses, copies or serialises a transaction:
// every public key is decompressed again, every taproot commitment (an internal key, each leaf script's control
// block) is tweaked again, every previous transaction is re-read output by output and hashed again. So the cost
// grows with what the entries hold, not only with how many inputs there are. Attack reviews measured, within the
// 256 KiB body limit and with the event loop blocked throughout: 10 s for 600 inputs, 4.5 s for 1,000 derivation
// entries on one input, 9.9 s for one previous transaction of 20,000 outputs, 10 s for 16 leaf scripts on each
// of 49 inputs of a stranger, 25 s for 64 unknown entries in each of 49 inputs and 100 outputs.
import { AirlockError } from '@airlock/core';

/**
 * Limits a PSBT must stay within (docs/bitcoin.md). Measured on a loaded 2-core machine, through HTTP
 * (bitcoin-decode-limits.http.test.ts): 50 taproot inputs take about 0.2 s to decode, judge and sign; a PSBT
 * holding every limit below at once, about 1 s. Larger consolidations are split into several transactions.
 */
export const PSBT_LIMITS = Object.freeze({
  inputs: 50,
  outputs: 100,
  /** Key-value entries in one map (a single-key input carries about ten). */
  entriesPerMap: 64,
  /**
   * Key-value entries in all maps together: serialising a PSBT costs btc-signer's encoder more than linearly in
   * its entries (2,000 unknown entries took 0.9 s, 9,500 took 15 to 25 s). A v2 PSBT of 50 single-key inputs and
   * 100 outputs with change carries about 750.
   */
  entries: 1_000,
  /** BIP-32 and taproot BIP-32 derivation entries in one input or output map (a 15-of-15 multisig has 15). */
  derivationsPerMap: 16,
  /**
   * Public keys the PSBT holds, in every map (derivations, partial signatures, internal keys, leaf scripts' control
   * blocks, MuSig2 and silent payment fields, global xpubs): each is decompressed on every parse and every
   * serialisation, about 1 ms per key per request. 50 taproot inputs of one key each with their internal keys,
   * and change, need about 100; 40 inputs of a 2-of-3 co-signer with both signatures, 200.
   */
  publicKeys: 200,
  /** PSBT_IN_TAP_LEAF_SCRIPT entries in one input, and in the whole PSBT: each is a taproot tweak to verify at parse. */
  leafScriptsPerInput: 8,
  leafScripts: 32,
  /** Leaves of all PSBT_OUT_TAP_TREE entries together (each is re-checked for its place in the tree on every pass). */
  tapTreeLeaves: 256,
  /**
   * Items of all final witnesses (PSBT_IN_FINAL_SCRIPTWITNESS) together, each read and written as its own object
   * on every pass (65,000 empty items on one input took 0.35 s). Policy allows a P2WSH spend 100 at most.
   */
  finalWitnessItems: 1_000,
  /** One PSBT_IN_NON_WITNESS_UTXO (a previous transaction), in bytes. */
  previousTxBytes: 100_000,
  /** All previous transactions of the PSBT together, each copy counted (one per input that carries it), in bytes. */
  previousTxBytesTotal: 150_000,
  /**
   * Inputs, outputs and witness items of all previous transactions together, each copy counted: btc-signer
   * rebuilds each copy input by input and output by output on every check (five times per request, about 0.2 ms
   * per output in all): one transaction of 2,500 outputs, or 50 inputs each from a transaction of 50 inputs,
   * outputs and witness items. (95,000 empty witness items in one previous transaction took 0.8 s.)
   */
  previousTxItems: 2_500,
});

/** Which limit a `psbt_too_large` refusal names (in `details.limit`). */
export type PsbtLimit = keyof typeof PSBT_LIMITS;

const MAGIC = [0x70, 0x73, 0x62, 0x74, 0xff];
const GLOBAL_UNSIGNED_TX = 0x00;
const GLOBAL_INPUT_COUNT = 0x04;
const GLOBAL_OUTPUT_COUNT = 0x05;
const IN_NON_WITNESS_UTXO = 0x00;
const IN_TAP_LEAF_SCRIPT = 0x15;
const OUT_TAP_TREE = 0x06;
const IN_FINAL_SCRIPTWITNESS = 0x08;
const INPUT_DERIVATIONS = new Set([0x06, 0x16]); // PSBT_IN_BIP32_DERIVATION, PSBT_IN_TAP_BIP32_DERIVATION
const OUTPUT_DERIVATIONS = new Set([0x02, 0x07]); // PSBT_OUT_BIP32_DERIVATION, PSBT_OUT_TAP_BIP32_DERIVATION

/**
 * How many public keys btc-signer decodes in one entry, by map and key type (BIP-174, 370, 371, 373, 375 and the
 * silent-payment fields it knows). A MuSig2 participant list holds one key per 33 bytes of its value.
 */
function publicKeysOf(map: 'global' | 'input' | 'output', entry: Entry): number {
  const perKey33 = (bytes: number) => Math.floor(bytes / 33);
  if (map === 'global') return entry.type === 0x01 || entry.type === 0x08 ? 1 : entry.type === 0x07 ? 2 : 0;
  if (map === 'output') {
    if (entry.type === 0x02 || entry.type === 0x05 || entry.type === 0x07) return 1;
    if (entry.type === 0x08) return 1 + perKey33(entry.value.length);
    if (entry.type === 0x09) return 2;
    return 0;
  }
  switch (entry.type) {
    case 0x02: // partial signature
    case 0x06: // BIP-32 derivation
    case 0x14: // taproot script signature
    case 0x15: // taproot leaf script (the control block's internal key)
    case 0x16: // taproot BIP-32 derivation
    case 0x17: // taproot internal key
    case 0x19: // pay-to-contract tweak
    case 0x1e: // silent payment DLEQ
    case 0x1f: // silent payment spend derivation
      return 1;
    case 0x1a: // MuSig2 participants: the aggregate key, then the list
      return 1 + perKey33(entry.value.length);
    case 0x1b: // MuSig2 public nonce: participant and aggregate keys
    case 0x1c: // MuSig2 partial signature
    case 0x1d: // silent payment ECDH share: key and value
      return 2;
    default:
      return 0;
  }
}

interface Entry {
  type: number;
  value: Uint8Array;
}

class Reader {
  pos = 0;
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  compactSize(): number {
    const first = this.byte();
    if (first < 0xfd) return first;
    const width = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
    let n = 0;
    for (let i = 0; i < width; i++) n += this.byte() * 2 ** (8 * i);
    return n;
  }

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Truncated();
    return this.bytes[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) throw new Truncated();
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** One key-value map, up to its 0x00 separator. */
  map(): Entry[] {
    const entries: Entry[] = [];
    for (;;) {
      const keyLength = this.compactSize();
      if (keyLength === 0) return entries;
      const key = this.take(keyLength);
      entries.push({ type: key[0]!, value: this.take(this.compactSize()) });
      if (entries.length > PSBT_LIMITS.entriesPerMap) throw tooLarge('entriesPerMap', entries.length, `a map holds more than ${PSBT_LIMITS.entriesPerMap} entries`);
    }
  }
}

/** A truncated or inconsistent layout: left to the parser, which names it `psbt_malformed`. */
class Truncated extends Error {}

function tooLarge(limit: PsbtLimit, found: number, what: string): AirlockError {
  return new AirlockError('psbt_too_large', `the PSBT is larger than Airlock decodes: ${what}`, { details: { limit, max: PSBT_LIMITS[limit], found } });
}

/** Input and output counts of a v0 PSBT's unsigned transaction (no witness marker: BIP-174 forbids one). */
function countsOfUnsignedTx(tx: Uint8Array): { inputs: number; outputs: number } {
  const r = new Reader(tx);
  r.take(4); // version
  const inputs = r.compactSize();
  if (inputs > PSBT_LIMITS.inputs) return { inputs, outputs: 0 };
  for (let i = 0; i < inputs; i++) {
    r.take(36); // outpoint
    r.take(r.compactSize()); // scriptSig (empty in a valid PSBT)
    r.take(4); // sequence
  }
  return { inputs, outputs: r.compactSize() };
}

/**
 * Inputs, outputs and witness items of a previous transaction (BIP-144 serialisation, with or without
 * witnesses), read only as far as `budget`: past it the count is over the limit anyway.
 */
function itemsOfPreviousTx(tx: Uint8Array, budget: number): number {
  const r = new Reader(tx);
  r.take(4); // version
  const segwit = r.bytes[r.pos] === 0x00 && r.bytes[r.pos + 1] === 0x01;
  if (segwit) r.take(2); // BIP-144 marker and flag
  const inputs = r.compactSize();
  if (inputs > budget) return inputs;
  for (let k = 0; k < inputs; k++) {
    r.take(36);
    r.take(r.compactSize());
    r.take(4);
  }
  const outputs = r.compactSize();
  let items = inputs + outputs;
  if (!segwit || items > budget) return items;
  for (let k = 0; k < outputs; k++) {
    r.take(8);
    r.take(r.compactSize());
  }
  for (let k = 0; k < inputs && items <= budget; k++) {
    const stack = r.compactSize();
    items += stack;
    for (let j = 0; j < stack && items <= budget; j++) r.take(r.compactSize());
  }
  return items;
}

/** Leaves in a PSBT_OUT_TAP_TREE value (BIP-371: depth, leaf version, script, repeated), read only as far as `budget`. */
function leavesOfTapTree(tree: Uint8Array, budget: number): number {
  const r = new Reader(tree);
  let leaves = 0;
  while (r.pos < tree.length && leaves <= budget) {
    r.take(2); // depth, leaf version
    r.take(r.compactSize());
    leaves++;
  }
  return leaves;
}

/** What the maps hold together, checked as each map is read. */
class Totals {
  entries = 0;
  publicKeys = 0;
  leafScripts = 0;
  tapTreeLeaves = 0;
  finalWitnessItems = 0;
  previousTxBytes = 0;
  previousTxItems = 0;

  addEntries(n: number): void {
    this.entries += n;
    if (this.entries > PSBT_LIMITS.entries) throw tooLarge('entries', this.entries, `more than ${PSBT_LIMITS.entries} entries in its maps`);
  }

  addPublicKeys(n: number): void {
    this.publicKeys += n;
    if (this.publicKeys > PSBT_LIMITS.publicKeys) throw tooLarge('publicKeys', this.publicKeys, `more than ${PSBT_LIMITS.publicKeys} public keys in its maps`);
  }

  addOutput(entries: readonly Entry[]): void {
    for (const tree of entries.filter((e) => e.type === OUT_TAP_TREE)) {
      try {
        this.tapTreeLeaves += leavesOfTapTree(tree.value, PSBT_LIMITS.tapTreeLeaves - this.tapTreeLeaves);
      } catch (e) {
        if (!(e instanceof Truncated)) throw e; // a tree that does not parse: the parser refuses it
      }
      if (this.tapTreeLeaves > PSBT_LIMITS.tapTreeLeaves) throw tooLarge('tapTreeLeaves', this.tapTreeLeaves, `its output taproot trees hold more than ${PSBT_LIMITS.tapTreeLeaves} leaves`);
    }
  }

  addInput(entries: readonly Entry[], i: number): void {
    const leaves = entries.filter((e) => e.type === IN_TAP_LEAF_SCRIPT).length;
    if (leaves > PSBT_LIMITS.leafScriptsPerInput) throw tooLarge('leafScriptsPerInput', leaves, `input ${i} carries ${leaves} taproot leaf scripts, at most ${PSBT_LIMITS.leafScriptsPerInput}`);
    this.leafScripts += leaves;
    if (this.leafScripts > PSBT_LIMITS.leafScripts) throw tooLarge('leafScripts', this.leafScripts, `more than ${PSBT_LIMITS.leafScripts} taproot leaf scripts in all`);
    for (const witness of entries.filter((e) => e.type === IN_FINAL_SCRIPTWITNESS)) {
      try {
        this.finalWitnessItems += new Reader(witness.value).compactSize();
      } catch (e) {
        if (!(e instanceof Truncated)) throw e; // an empty value: the parser refuses it
      }
      if (this.finalWitnessItems > PSBT_LIMITS.finalWitnessItems) throw tooLarge('finalWitnessItems', this.finalWitnessItems, `its final witnesses hold more than ${PSBT_LIMITS.finalWitnessItems} items (input ${i} included)`);
    }
    for (const previous of entries.filter((e) => e.type === IN_NON_WITNESS_UTXO)) {
      const bytes = previous.value.length;
      if (bytes > PSBT_LIMITS.previousTxBytes) throw tooLarge('previousTxBytes', bytes, `input ${i}: its previous transaction is ${bytes} bytes, at most ${PSBT_LIMITS.previousTxBytes}`);
      this.previousTxBytes += bytes;
      if (this.previousTxBytes > PSBT_LIMITS.previousTxBytesTotal) {
        throw tooLarge('previousTxBytesTotal', this.previousTxBytes, `its previous transactions add up to more than ${PSBT_LIMITS.previousTxBytesTotal} bytes`);
      }
      let items: number;
      try {
        items = itemsOfPreviousTx(previous.value, PSBT_LIMITS.previousTxItems - this.previousTxItems);
      } catch (e) {
        // A previous transaction that does not parse: the parser refuses the PSBT; the other maps are still counted.
        if (e instanceof Truncated) continue;
        throw e;
      }
      this.previousTxItems += items;
      if (this.previousTxItems > PSBT_LIMITS.previousTxItems) {
        throw tooLarge('previousTxItems', this.previousTxItems, `its previous transactions have more than ${PSBT_LIMITS.previousTxItems} inputs, outputs and witness items together (input ${i} included)`);
      }
    }
  }
}

/**
 * Throws `psbt_too_large` (with `details.limit` naming the limit, its `max` and what was `found`) when the PSBT
 * exceeds one of PSBT_LIMITS. Layout errors are not reported here: the parser that runs next reports them.
 */
export function assertPsbtWithinLimits(bytes: Uint8Array): void {
  const r = new Reader(bytes);
  try {
    if (!MAGIC.every((b) => r.byte() === b)) return;
    const global = r.map();
    const totals = new Totals();
    totals.addEntries(global.length);
    totals.addPublicKeys(global.reduce((n, e) => n + publicKeysOf('global', e), 0));
    const unsignedTx = global.find((e) => e.type === GLOBAL_UNSIGNED_TX);
    const readCount = (type: number) => {
      const entry = global.find((e) => e.type === type);
      return entry ? new Reader(entry.value).compactSize() : 0;
    };
    const counts = unsignedTx ? countsOfUnsignedTx(unsignedTx.value) : { inputs: readCount(GLOBAL_INPUT_COUNT), outputs: readCount(GLOBAL_OUTPUT_COUNT) };
    if (counts.inputs > PSBT_LIMITS.inputs) throw tooLarge('inputs', counts.inputs, `${counts.inputs} inputs, at most ${PSBT_LIMITS.inputs}`);
    if (counts.outputs > PSBT_LIMITS.outputs) throw tooLarge('outputs', counts.outputs, `${counts.outputs} outputs, at most ${PSBT_LIMITS.outputs}`);
    for (let i = 0; i < counts.inputs + counts.outputs && r.pos < bytes.length; i++) {
      const isInput = i < counts.inputs;
      const entries = r.map();
      totals.addEntries(entries.length);
      const derivations = isInput ? INPUT_DERIVATIONS : OUTPUT_DERIVATIONS;
      const n = entries.filter((e) => derivations.has(e.type)).length;
      const where = isInput ? `input ${i}` : `output ${i - counts.inputs}`;
      if (n > PSBT_LIMITS.derivationsPerMap) throw tooLarge('derivationsPerMap', n, `${where} carries ${n} derivation entries, at most ${PSBT_LIMITS.derivationsPerMap}`);
      totals.addPublicKeys(entries.reduce((sum, e) => sum + publicKeysOf(isInput ? 'input' : 'output', e), 0));
      if (isInput) totals.addInput(entries, i);
      else totals.addOutput(entries);
    }
  } catch (e) {
    if (e instanceof Truncated) return;
    throw e;
  }
}
