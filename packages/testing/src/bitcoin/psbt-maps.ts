/**
 * PSBTs as raw key-value maps (BIP-174 serialisation), and conversion between version 0 (BIP-174) and version 2
 * (BIP-370), written here from the BIPs: bitcoinjs-lib reads and writes only version 0, and the other library
 * at hand (@scure/btc-signer) is the one Airlock itself uses, so a v2 PSBT built with it would not be an
 * independent check of Airlock's v2 parser. Tests also use the maps to write PSBTs that bitcoinjs refuses to
 * build (a lying witness UTXO, a field removed after the fact).
 *
 * Layout: magic `psbt` 0xff, a global map, one map per input, one per output; a map is a list of
 * <compact size key length><key><compact size value length><value> ended by 0x00. The first byte of a key is
 * its type (every type used here is below 0xfd, one byte).
 */
import * as bitcoin from 'bitcoinjs-lib';

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

export interface PsbtMaps {
  global: KeyValue[];
  inputs: KeyValue[][];
  outputs: KeyValue[][];
}

const MAGIC = [0x70, 0x73, 0x62, 0x74, 0xff];

/** BIP-174 global types. */
export const GLOBAL = { UNSIGNED_TX: 0x00, XPUB: 0x01, TX_VERSION: 0x02, FALLBACK_LOCKTIME: 0x03, INPUT_COUNT: 0x04, OUTPUT_COUNT: 0x05, TX_MODIFIABLE: 0x06, VERSION: 0xfb } as const;
/** BIP-174/370 input types used here. */
export const IN = {
  NON_WITNESS_UTXO: 0x00,
  WITNESS_UTXO: 0x01,
  PARTIAL_SIG: 0x02,
  SIGHASH_TYPE: 0x03,
  BIP32_DERIVATION: 0x06,
  FINAL_SCRIPTSIG: 0x07,
  FINAL_SCRIPTWITNESS: 0x08,
  PREVIOUS_TXID: 0x0e,
  OUTPUT_INDEX: 0x0f,
  SEQUENCE: 0x10,
  REQUIRED_TIME_LOCKTIME: 0x11,
  REQUIRED_HEIGHT_LOCKTIME: 0x12,
  TAP_KEY_SIG: 0x13,
  TAP_BIP32_DERIVATION: 0x16,
  TAP_INTERNAL_KEY: 0x17,
} as const;
export const OUT = { BIP32_DERIVATION: 0x02, AMOUNT: 0x03, SCRIPT: 0x04, TAP_INTERNAL_KEY: 0x05, TAP_BIP32_DERIVATION: 0x07 } as const;

class Reader {
  private pos = 0;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  get done() {
    return this.pos >= this.bytes.length;
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) throw new Error('PSBT ends early');
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  compactSize(): number {
    const first = this.take(1)[0]!;
    if (first < 0xfd) return first;
    const b = this.take(first === 0xfd ? 2 : first === 0xfe ? 4 : 8);
    const n = b.reduceRight((acc, byte) => acc * 256 + byte, 0);
    if (!Number.isSafeInteger(n)) throw new Error('compact size too large');
    return n;
  }
}

export function compactSize(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >> 8);
  if (n <= 0xffffffff) return Uint8Array.of(0xfe, ...u32le(n));
  throw new Error('compact size above 2^32 not written here');
}

export function u32le(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, true);
  return out;
}

const readU32le = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);

function readMap(r: Reader): KeyValue[] {
  const out: KeyValue[] = [];
  for (;;) {
    const keyLength = r.compactSize();
    if (keyLength === 0) return out;
    const key = r.take(keyLength);
    const value = r.take(r.compactSize());
    out.push({ key, value });
  }
}

export const typeOf = (kv: KeyValue) => kv.key[0]!;
export const find = (map: KeyValue[], type: number) => map.find((kv) => typeOf(kv) === type);
export const without = (map: KeyValue[], ...types: number[]) => map.filter((kv) => !types.includes(typeOf(kv)));

export function decodePsbtMaps(psbt: string | Uint8Array): PsbtMaps {
  const bytes = typeof psbt === 'string' ? Buffer.from(psbt, 'base64') : psbt;
  const r = new Reader(bytes);
  const magic = r.take(MAGIC.length);
  if (!MAGIC.every((b, i) => magic[i] === b)) throw new Error('not a PSBT (magic)');
  const global = readMap(r);
  let inputCount: number;
  let outputCount: number;
  const unsigned = find(global, GLOBAL.UNSIGNED_TX);
  if (unsigned) {
    const tx = bitcoin.Transaction.fromBuffer(unsigned.value);
    inputCount = tx.ins.length;
    outputCount = tx.outs.length;
  } else {
    const ins = find(global, GLOBAL.INPUT_COUNT);
    const outs = find(global, GLOBAL.OUTPUT_COUNT);
    if (!ins || !outs) throw new Error('a PSBT without an unsigned transaction needs PSBT_GLOBAL_INPUT_COUNT and OUTPUT_COUNT (BIP-370)');
    inputCount = new Reader(ins.value).compactSize();
    outputCount = new Reader(outs.value).compactSize();
  }
  const inputs = Array.from({ length: inputCount }, () => readMap(r));
  const outputs = Array.from({ length: outputCount }, () => readMap(r));
  if (!r.done) throw new Error('bytes after the last output map');
  return { global, inputs, outputs };
}

function writeMap(parts: Uint8Array[], map: KeyValue[]): void {
  for (const { key, value } of map) parts.push(compactSize(key.length), key, compactSize(value.length), value);
  parts.push(Uint8Array.of(0));
}

export function encodePsbtMaps(maps: PsbtMaps): string {
  const parts: Uint8Array[] = [Uint8Array.from(MAGIC)];
  writeMap(parts, maps.global);
  maps.inputs.forEach((m) => writeMap(parts, m));
  maps.outputs.forEach((m) => writeMap(parts, m));
  return Buffer.concat(parts).toString('base64');
}

/** PSBT_GLOBAL_VERSION, 0 when absent (BIP-174). */
export function psbtVersion(psbt: string | PsbtMaps): number {
  const maps = typeof psbt === 'string' ? decodePsbtMaps(psbt) : psbt;
  const v = find(maps.global, GLOBAL.VERSION);
  return v ? readU32le(v.value) : 0;
}

const kv = (type: number, value: Uint8Array): KeyValue => ({ key: Uint8Array.of(type), value });

/**
 * v0 -> v2 (BIP-370): the unsigned transaction is replaced by its parts: PSBT_GLOBAL_TX_VERSION,
 * FALLBACK_LOCKTIME, INPUT_COUNT, OUTPUT_COUNT and VERSION = 2; each input gains PREVIOUS_TXID (the txid in
 * the byte order of the transaction's own serialisation), OUTPUT_INDEX and SEQUENCE; each output AMOUNT
 * (int64 LE) and SCRIPT. No PSBT_GLOBAL_TX_MODIFIABLE: nothing may be added. Every other field stays as it is.
 */
export function toPsbtV2(v0: string): string {
  const maps = decodePsbtMaps(v0);
  if (psbtVersion(maps) !== 0) throw new Error('not a version 0 PSBT');
  const tx = bitcoin.Transaction.fromBuffer(find(maps.global, GLOBAL.UNSIGNED_TX)!.value);
  const amount = (value: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, value, true);
    return b;
  };
  return encodePsbtMaps({
    global: [
      kv(GLOBAL.TX_VERSION, u32le(tx.version)),
      kv(GLOBAL.FALLBACK_LOCKTIME, u32le(tx.locktime)),
      kv(GLOBAL.INPUT_COUNT, compactSize(tx.ins.length)),
      kv(GLOBAL.OUTPUT_COUNT, compactSize(tx.outs.length)),
      ...without(maps.global, GLOBAL.UNSIGNED_TX, GLOBAL.VERSION),
      kv(GLOBAL.VERSION, u32le(2)),
    ],
    inputs: tx.ins.map((input, i) => [kv(IN.PREVIOUS_TXID, Uint8Array.from(input.hash)), kv(IN.OUTPUT_INDEX, u32le(input.index)), kv(IN.SEQUENCE, u32le(input.sequence)), ...maps.inputs[i]!]),
    outputs: tx.outs.map((output, i) => [kv(OUT.AMOUNT, amount(output.value)), kv(OUT.SCRIPT, Uint8Array.from(output.script)), ...maps.outputs[i]!]),
  });
}

/**
 * BIP-370 "Determining Lock Time": without any PSBT_IN_REQUIRED_*_LOCKTIME, the fallback (or 0); otherwise the
 * kind (height or time) every input that names one supports, height when both are, and the largest value of it.
 */
export function lockTimeOf(maps: PsbtMaps): number {
  const fallback = find(maps.global, GLOBAL.FALLBACK_LOCKTIME);
  const named = maps.inputs.filter((m) => find(m, IN.REQUIRED_TIME_LOCKTIME) || find(m, IN.REQUIRED_HEIGHT_LOCKTIME));
  if (named.length === 0) return fallback ? readU32le(fallback.value) : 0;
  const allHeight = named.every((m) => find(m, IN.REQUIRED_HEIGHT_LOCKTIME));
  const allTime = named.every((m) => find(m, IN.REQUIRED_TIME_LOCKTIME));
  if (!allHeight && !allTime) throw new Error('BIP-370: the inputs require incompatible lock times (height and time)');
  const type = allHeight ? IN.REQUIRED_HEIGHT_LOCKTIME : IN.REQUIRED_TIME_LOCKTIME;
  return Math.max(...named.map((m) => readU32le(find(m, type)!.value)));
}

/** v2 -> v0: rebuilds the unsigned transaction from the v2 fields (lock time as BIP-370 determines it) and drops them. */
export function toPsbtV0(v2: string): string {
  const maps = decodePsbtMaps(v2);
  if (psbtVersion(maps) !== 2) throw new Error('not a version 2 PSBT');
  const need = (map: KeyValue[], type: number, what: string) => {
    const found = find(map, type);
    if (!found) throw new Error(`BIP-370 requires ${what}`);
    return found.value;
  };
  const tx = new bitcoin.Transaction();
  tx.version = readU32le(need(maps.global, GLOBAL.TX_VERSION, 'PSBT_GLOBAL_TX_VERSION'));
  tx.locktime = lockTimeOf(maps);
  maps.inputs.forEach((m, i) => {
    const sequence = find(m, IN.SEQUENCE);
    tx.addInput(need(m, IN.PREVIOUS_TXID, `PSBT_IN_PREVIOUS_TXID on input ${i}`), readU32le(need(m, IN.OUTPUT_INDEX, `PSBT_IN_OUTPUT_INDEX on input ${i}`)), sequence ? readU32le(sequence.value) : 0xffffffff);
  });
  maps.outputs.forEach((m, i) => {
    const amount = need(m, OUT.AMOUNT, `PSBT_OUT_AMOUNT on output ${i}`);
    tx.addOutput(need(m, OUT.SCRIPT, `PSBT_OUT_SCRIPT on output ${i}`), new DataView(amount.buffer, amount.byteOffset, 8).getBigInt64(0, true));
  });
  return encodePsbtMaps({
    global: [kv(GLOBAL.UNSIGNED_TX, tx.toBuffer()), ...without(maps.global, GLOBAL.TX_VERSION, GLOBAL.FALLBACK_LOCKTIME, GLOBAL.INPUT_COUNT, GLOBAL.OUTPUT_COUNT, GLOBAL.TX_MODIFIABLE, GLOBAL.VERSION)],
    inputs: maps.inputs.map((m) => without(m, IN.PREVIOUS_TXID, IN.OUTPUT_INDEX, IN.SEQUENCE, IN.REQUIRED_TIME_LOCKTIME, IN.REQUIRED_HEIGHT_LOCKTIME)),
    outputs: maps.outputs.map((m) => without(m, OUT.AMOUNT, OUT.SCRIPT)),
  });
}
