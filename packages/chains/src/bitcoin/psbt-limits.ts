// How big a PSBT Airlock decodes, checked on the raw bytes before any library parses them. Decoding is
// synchronous and its cost grows with the inputs (btc-signer re-validates every public key each time it parses,
// copies or serialises a transaction; each taproot sighash hashes every input) and with the derivation entries
// (each is a point to validate and a path to match): an attack review measured 10 s of CPU for 600 inputs and
// 4.5 s for 1,000 derivation entries on one input, within the 256 KiB body limit, blocking every other request.
import { AirlockError } from '@airlock/core';

/**
 * Limits a PSBT must stay within (docs/bitcoin.md). Decoding costs about 8 ms per taproot input on the 2-core
 * machines CI runs on (btc-signer's commitment checks dominate), so 50 inputs keep one request near 0.4 s;
 * larger consolidations are split into several transactions.
 */
export const PSBT_LIMITS = Object.freeze({
  inputs: 50,
  outputs: 100,
  /** Key-value entries in one map (a single-key input carries about ten). */
  entriesPerMap: 64,
  /** BIP-32 and taproot BIP-32 derivation entries in one input or output map (a 15-of-15 multisig has 15). */
  derivationsPerMap: 16,
});

const MAGIC = [0x70, 0x73, 0x62, 0x74, 0xff];
const GLOBAL_UNSIGNED_TX = 0x00;
const GLOBAL_INPUT_COUNT = 0x04;
const GLOBAL_OUTPUT_COUNT = 0x05;
const INPUT_DERIVATIONS = new Set([0x06, 0x16]); // PSBT_IN_BIP32_DERIVATION, PSBT_IN_TAP_BIP32_DERIVATION
const OUTPUT_DERIVATIONS = new Set([0x02, 0x07]); // PSBT_OUT_BIP32_DERIVATION, PSBT_OUT_TAP_BIP32_DERIVATION

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
      if (entries.length > PSBT_LIMITS.entriesPerMap) throw tooLarge(`a map holds more than ${PSBT_LIMITS.entriesPerMap} entries`);
    }
  }
}

/** A truncated or inconsistent layout: left to the parser, which names it `psbt_malformed`. */
class Truncated extends Error {}

function tooLarge(what: string): AirlockError {
  return new AirlockError('psbt_too_large', `the PSBT is larger than Airlock decodes: ${what}`);
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
 * Throws `psbt_too_large` when the PSBT has more inputs, outputs, entries per map or derivation entries per map
 * than PSBT_LIMITS. Layout errors are not reported here: the parser that runs next reports them.
 */
export function assertPsbtWithinLimits(bytes: Uint8Array): void {
  const r = new Reader(bytes);
  try {
    if (!MAGIC.every((b) => r.byte() === b)) return;
    const global = r.map();
    const unsignedTx = global.find((e) => e.type === GLOBAL_UNSIGNED_TX);
    const readCount = (type: number) => {
      const entry = global.find((e) => e.type === type);
      return entry ? new Reader(entry.value).compactSize() : 0;
    };
    const counts = unsignedTx ? countsOfUnsignedTx(unsignedTx.value) : { inputs: readCount(GLOBAL_INPUT_COUNT), outputs: readCount(GLOBAL_OUTPUT_COUNT) };
    if (counts.inputs > PSBT_LIMITS.inputs) throw tooLarge(`${counts.inputs} inputs, at most ${PSBT_LIMITS.inputs}`);
    if (counts.outputs > PSBT_LIMITS.outputs) throw tooLarge(`${counts.outputs} outputs, at most ${PSBT_LIMITS.outputs}`);
    for (let i = 0; i < counts.inputs + counts.outputs && r.pos < bytes.length; i++) {
      const derivations = i < counts.inputs ? INPUT_DERIVATIONS : OUTPUT_DERIVATIONS;
      const n = r.map().filter((e) => derivations.has(e.type)).length;
      if (n > PSBT_LIMITS.derivationsPerMap) throw tooLarge(`${i < counts.inputs ? `input ${i}` : `output ${i - counts.inputs}`} carries ${n} derivation entries, at most ${PSBT_LIMITS.derivationsPerMap}`);
    }
  } catch (e) {
    if (e instanceof Truncated) return;
    throw e;
  }
}
