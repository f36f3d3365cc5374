/**
 * A Bitcoin chain for tests: a TEST DOUBLE. No Bitcoin node (bitcoind, regtest) can run on the CI machines, so
 * this keeps a UTXO set in memory, makes real funding transactions and accepts a transaction only after
 * checking it with an implementation that is not Airlock's: bitcoinjs-lib parses and hashes (txids, BIP-143 and
 * BIP-341 sighashes) and tiny-secp256k1 (a WASM build of libsecp256k1, Bitcoin Core's own curve library)
 * verifies the signatures.
 *
 * What `broadcast` checks, in order (each refusal names its `reason`):
 *  - the hex parses as one transaction and serialises back to the same bytes (`malformed`);
 *  - it has inputs and outputs (`empty`), no outpoint twice (`duplicate_input`), no coinbase input (`coinbase_spend`);
 *  - every input spends an output of the UTXO set (`unknown_utxo`, or `double_spend` when it was already spent,
 *    including by a transaction accepted earlier);
 *  - every output is 0..21e6 BTC and the outputs do not exceed the inputs: fee >= 0 (`value_out_of_range`,
 *    `outputs_exceed_inputs`);
 *  - every input is one of two templates and its witness is valid for it (`bad_signature`, `bad_witness`,
 *    `unsupported_script`):
 *    P2WPKH (OP_0 <20>): empty scriptSig, witness [signature, compressed key], hash160(key) = the program, a
 *    strict-DER low-S ECDSA signature (as Bitcoin Core's standardness rules require) over the BIP-143 sighash of
 *    the hash type it carries (ALL, NONE, SINGLE, optionally |ANYONECANPAY);
 *    P2TR key path (OP_1 <32>): empty scriptSig, witness [signature] (no annex), a BIP-340 signature of 64 bytes
 *    (SIGHASH_DEFAULT) or 65 (explicit type, not 0x00) over the BIP-341 sighash with every spent output's
 *    script and amount, against the output key; SIGHASH_SINGLE without an output at the input's index fails.
 * Then the spent outputs leave the set and the new ones join it (as if mined at once).
 *
 * What it does NOT check: any other script (P2PKH, P2SH, P2WSH, taproot script paths: refused as
 * `unsupported_script`, there is no script interpreter here), locktime and sequence semantics, weight and size
 * limits, dust, minimum relay fee, coinbase maturity, blocks and reorganisations, mempool replacement (RBF). A
 * transaction this double accepts has valid signatures and balanced amounts; it is not proof that Bitcoin
 * Core would relay it.
 */
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bitcoinjsNetwork, type NetworkName } from './wallet.ts';

bitcoin.initEccLib(ecc);

const { Transaction } = bitcoin;
const MAX_MONEY = 21_000_000n * 100_000_000n;
const VALID_HASH_TYPES = new Set([0x01, 0x02, 0x03, 0x81, 0x82, 0x83]);
const COINBASE_HASH = new Uint8Array(32);
/** secp256k1 order / 2: an ECDSA signature with s above it is high-S (BIP-62 rule 5). */
const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

export interface Utxo {
  /** Display-order txid. */
  txid: string;
  vout: number;
  valueSat: bigint;
  script: Uint8Array;
  /** The whole transaction that created it (a PSBT's non-witness UTXO). */
  transaction: bitcoin.Transaction;
}

export type BroadcastRefusal =
  | 'malformed'
  | 'empty'
  | 'duplicate_input'
  | 'coinbase_spend'
  | 'unknown_utxo'
  | 'double_spend'
  | 'value_out_of_range'
  | 'outputs_exceed_inputs'
  | 'unsupported_script'
  | 'bad_witness'
  | 'bad_signature';

export class BroadcastRejected extends Error {
  readonly reason: BroadcastRefusal;
  readonly input: number | undefined;
  constructor(reason: BroadcastRefusal, message: string, input?: number) {
    super(`${reason}${input === undefined ? '' : ` (input ${input})`}: ${message}`);
    this.name = 'BroadcastRejected';
    this.reason = reason;
    this.input = input;
  }
}

export interface Accepted {
  txid: string;
  feeSat: bigint;
}

const outpointKey = (txid: string, vout: number) => `${txid}:${vout}`;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class BitcoinTestChain {
  readonly network: NetworkName;
  readonly bitcoinjsNetwork: bitcoin.Network;
  private readonly utxos = new Map<string, Utxo>();
  private readonly spent = new Map<string, string>();
  private readonly transactions = new Map<string, bitcoin.Transaction>();
  private funded = 0;

  constructor(network: NetworkName = 'regtest') {
    this.network = network;
    this.bitcoinjsNetwork = bitcoinjsNetwork(network);
  }

  /**
   * A coinbase-shaped funding transaction paying `outputs` (script or address), added to the UTXO set. It
   * carries a witness (the 32-byte witness reserved value of a segwit coinbase), so its txid differs from its
   * wtxid and a PSBT's full previous transaction must be hashed without the witness, as on the real chain.
   */
  fund(outputs: ReadonlyArray<{ to: string | Uint8Array; valueSat: bigint }>): Utxo[] {
    const tx = new Transaction();
    tx.version = 2;
    // BIP-34 style: a unique scriptSig per funding transaction gives a unique txid.
    const height = ++this.funded;
    tx.addInput(COINBASE_HASH, 0xffffffff, 0xffffffff, bitcoin.script.compile([bitcoin.script.number.encode(height), new TextEncoder().encode('airlock-test')]));
    tx.setWitness(0, [new Uint8Array(32)]);
    for (const o of outputs) tx.addOutput(typeof o.to === 'string' ? bitcoin.address.toOutputScript(o.to, this.bitcoinjsNetwork) : o.to, o.valueSat);
    const txid = tx.getId();
    this.transactions.set(txid, tx);
    return tx.outs.map((out, vout) => {
      const utxo: Utxo = { txid, vout, valueSat: out.value, script: out.script, transaction: tx };
      this.utxos.set(outpointKey(txid, vout), utxo);
      return utxo;
    });
  }

  /** One funding output. */
  fundOne(to: string | Uint8Array, valueSat: bigint): Utxo {
    return this.fund([{ to, valueSat }])[0]!;
  }

  utxo(txid: string, vout: number): Utxo | undefined {
    return this.utxos.get(outpointKey(txid, vout));
  }

  /** Unspent outputs paying `to` (script or address). */
  unspentTo(to: string | Uint8Array): Utxo[] {
    const script = hex(typeof to === 'string' ? bitcoin.address.toOutputScript(to, this.bitcoinjsNetwork) : to);
    return [...this.utxos.values()].filter((u) => hex(u.script) === script);
  }

  transaction(txid: string): bitcoin.Transaction | undefined {
    return this.transactions.get(txid);
  }

  /** Checks everything the header lists; on success the transaction is "mined". Throws BroadcastRejected. */
  broadcast(txHex: string): Accepted {
    let tx: bitcoin.Transaction;
    try {
      tx = Transaction.fromHex(txHex);
    } catch (e) {
      throw new BroadcastRejected('malformed', (e as Error).message);
    }
    if (tx.toHex() !== txHex.toLowerCase()) throw new BroadcastRejected('malformed', 'does not serialise back to the same bytes');
    if (tx.ins.length === 0 || tx.outs.length === 0) throw new BroadcastRejected('empty', 'a transaction needs inputs and outputs');

    const spends: Utxo[] = [];
    const seen = new Set<string>();
    tx.ins.forEach((input, i) => {
      if (bitcoin.Transaction.isCoinbaseHash(input.hash)) throw new BroadcastRejected('coinbase_spend', 'a coinbase input outside a block', i);
      const txid = hex(Uint8Array.from(input.hash).reverse());
      const key = outpointKey(txid, input.index);
      if (seen.has(key)) throw new BroadcastRejected('duplicate_input', `${key} spent twice in one transaction`, i);
      seen.add(key);
      const utxo = this.utxos.get(key);
      if (!utxo) {
        const by = this.spent.get(key);
        throw by ? new BroadcastRejected('double_spend', `${key} was already spent by ${by}`, i) : new BroadcastRejected('unknown_utxo', `${key} is not an output of this chain`, i);
      }
      spends.push(utxo);
    });

    let totalOut = 0n;
    for (const out of tx.outs) {
      if (out.value < 0n || out.value > MAX_MONEY) throw new BroadcastRejected('value_out_of_range', `an output of ${out.value} sat`);
      totalOut += out.value;
    }
    const totalIn = spends.reduce((s, u) => s + u.valueSat, 0n);
    if (totalOut > MAX_MONEY) throw new BroadcastRejected('value_out_of_range', `outputs total ${totalOut} sat`);
    if (totalOut > totalIn) throw new BroadcastRejected('outputs_exceed_inputs', `outputs ${totalOut} sat > inputs ${totalIn} sat`);

    const scripts = spends.map((u) => u.script);
    const values = spends.map((u) => u.valueSat);
    spends.forEach((utxo, i) => verifyInput(tx, i, utxo, scripts, values));

    const txid = tx.getId();
    spends.forEach((u) => {
      const key = outpointKey(u.txid, u.vout);
      this.utxos.delete(key);
      this.spent.set(key, txid);
    });
    this.transactions.set(txid, tx);
    tx.outs.forEach((out, vout) => this.utxos.set(outpointKey(txid, vout), { txid, vout, valueSat: out.value, script: out.script, transaction: tx }));
    return { txid, feeSat: totalIn - totalOut };
  }
}

function isP2wpkh(script: Uint8Array): boolean {
  return script.length === 22 && script[0] === 0x00 && script[1] === 0x14;
}

function isP2tr(script: Uint8Array): boolean {
  return script.length === 34 && script[0] === 0x51 && script[1] === 0x20;
}

function verifyInput(tx: bitcoin.Transaction, i: number, utxo: Utxo, scripts: Uint8Array[], values: bigint[]): void {
  const input = tx.ins[i]!;
  const witness = input.witness;
  if (isP2wpkh(utxo.script)) {
    if (input.script.length !== 0) throw new BroadcastRejected('bad_witness', 'a native segwit input has an empty scriptSig', i);
    if (witness.length !== 2) throw new BroadcastRejected('bad_witness', `P2WPKH witness has ${witness.length} items, not 2`, i);
    const [encoded, publicKey] = witness as [Uint8Array, Uint8Array];
    if (publicKey.length !== 33 || !ecc.isPoint(publicKey)) throw new BroadcastRejected('bad_witness', 'the witness key is not a compressed public key', i);
    if (hex(bitcoin.crypto.hash160(publicKey)) !== hex(utxo.script.subarray(2))) throw new BroadcastRejected('bad_witness', 'hash160 of the witness key is not the program', i);
    let decoded: { signature: Uint8Array; hashType: number };
    try {
      // Strict DER (BIP-66) and a valid hash type byte, as bitcoinjs decodes a script signature.
      decoded = bitcoin.script.signature.decode(encoded);
    } catch (e) {
      throw new BroadcastRejected('bad_signature', `not a strict DER signature: ${(e as Error).message}`, i);
    }
    if (!VALID_HASH_TYPES.has(decoded.hashType)) throw new BroadcastRejected('bad_signature', `hash type 0x${decoded.hashType.toString(16)}`, i);
    if (BigInt(`0x${hex(decoded.signature.subarray(32))}`) > HALF_ORDER) throw new BroadcastRejected('bad_signature', 'high-S signature (non-standard)', i);
    // BIP-143: the script code of P2WPKH is the P2PKH script of the key hash.
    const scriptCode = bitcoin.payments.p2pkh({ hash: utxo.script.subarray(2) }).output!;
    const sighash = tx.hashForWitnessV0(i, scriptCode, utxo.valueSat, decoded.hashType);
    if (!ecc.verify(sighash, publicKey, decoded.signature, true)) throw new BroadcastRejected('bad_signature', 'ECDSA signature does not verify (BIP-143)', i);
    return;
  }
  if (isP2tr(utxo.script)) {
    if (input.script.length !== 0) throw new BroadcastRejected('bad_witness', 'a native segwit input has an empty scriptSig', i);
    const last = witness[witness.length - 1];
    if (witness.length >= 2 && last && last[0] === 0x50) throw new BroadcastRejected('unsupported_script', 'an annex (not handled by this double)', i);
    if (witness.length !== 1) throw new BroadcastRejected('unsupported_script', `a ${witness.length}-item taproot witness is a script path spend (not handled by this double)`, i);
    const sig = witness[0]!;
    if (sig.length !== 64 && sig.length !== 65) throw new BroadcastRejected('bad_signature', `a BIP-340 signature is 64 or 65 bytes, not ${sig.length}`, i);
    const hashType = sig.length === 65 ? sig[64]! : 0x00;
    // BIP-341: an explicit 0x00 byte is invalid (64 bytes mean DEFAULT), and only the six defined types exist.
    if (sig.length === 65 && !VALID_HASH_TYPES.has(hashType)) throw new BroadcastRejected('bad_signature', `hash type 0x${hashType.toString(16)}`, i);
    if ((hashType & 0x03) === 0x03 && i >= tx.outs.length) throw new BroadcastRejected('bad_signature', 'SIGHASH_SINGLE without an output at the input index (BIP-341)', i);
    const sighash = tx.hashForWitnessV1(i, scripts, values, hashType);
    if (!ecc.verifySchnorr(sighash, utxo.script.subarray(2), sig.subarray(0, 64))) throw new BroadcastRejected('bad_signature', 'BIP-340 signature does not verify against the output key (BIP-341)', i);
    return;
  }
  throw new BroadcastRejected('unsupported_script', `the double only verifies P2WPKH and P2TR key path, not ${hex(utxo.script)}`, i);
}
