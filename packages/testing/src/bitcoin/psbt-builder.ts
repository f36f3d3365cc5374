/**
 * PSBTs built the way a wallet (Sparrow, Bitcoin Core's walletcreatefundedpsbt) builds them, with bitcoinjs-lib
 * and not with Airlock's code: inputs carry their previous output (witness UTXO; for P2WPKH also the whole
 * previous transaction, as BIP-174 asks of segwit v0 signers since the fee attack of 2020, and for P2TR when
 * asked: Bitcoin Core keeps it beside segwit v0 inputs and under ANYONECANPAY) and the
 * derivation of their key; change outputs carry the derivation of the change key, which is how a signer
 * proves change is its own. P2WPKH: PSBT_IN/OUT_BIP32_DERIVATION. P2TR (BIP-371): TAP_BIP32_DERIVATION (the
 * x-only internal key, no leaf hashes) and TAP_INTERNAL_KEY.
 *
 * Each helper returns plain bitcoinjs input/output data so that an attack test can change one field before
 * the PSBT is assembled.
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinTestChain, Utxo } from './chain.ts';
import { toPsbtV2 } from './psbt-maps.ts';
import { signerOf, xOnly, type TestWallet, type WalletKey } from './wallet.ts';

/** bitcoinjs's input and output data (not exported by name from the package root). */
export type PsbtInputExtended = Parameters<bitcoin.Psbt['addInput']>[0];
export type PsbtOutputExtended = Parameters<bitcoin.Psbt['addOutput']>[0];

export interface InputOptions {
  /** nSequence; default 0xfffffffd (replaceable, as Bitcoin Core's wallet writes). */
  sequence?: number;
  /** PSBT_IN_SIGHASH_TYPE. */
  sighashType?: number;
  /** Leave out the full previous transaction (P2WPKH). */
  withoutPreviousTransaction?: boolean;
  /**
   * Include the full previous transaction of a P2TR input too. Bitcoin Core keeps it for every input unless all
   * are taproot and none is ANYONECANPAY; a signer needs it whenever one of its signatures does not commit to
   * every input's amount (a segwit v0 input, or ANYONECANPAY).
   */
  withPreviousTransaction?: boolean;
  /** Leave out the derivation fields (an input the signer cannot recognise as its own). */
  withoutDerivation?: boolean;
}

/** The derivation fields of a key: what a signer matches against its master fingerprint and account. */
export function derivationOf(key: WalletKey): Pick<PsbtInputExtended, 'bip32Derivation' | 'tapBip32Derivation' | 'tapInternalKey'> {
  if (key.type === 'p2wpkh') return { bip32Derivation: [{ masterFingerprint: key.masterFingerprint, pubkey: key.publicKey, path: key.path }] };
  const internal = xOnly(key.publicKey);
  return { tapBip32Derivation: [{ masterFingerprint: key.masterFingerprint, pubkey: internal, path: key.path, leafHashes: [] }], tapInternalKey: internal };
}

/** An input spending `utxo`, which `key` owns. */
export function walletInput(utxo: Utxo, key: WalletKey, opts: InputOptions = {}): PsbtInputExtended {
  return {
    hash: utxo.txid,
    index: utxo.vout,
    sequence: opts.sequence ?? 0xfffffffd,
    witnessUtxo: { script: utxo.script, value: utxo.valueSat },
    ...((key.type === 'p2wpkh' && !opts.withoutPreviousTransaction) || opts.withPreviousTransaction ? { nonWitnessUtxo: utxo.transaction.toBuffer() } : {}),
    ...(opts.withoutDerivation ? {} : derivationOf(key)),
    ...(opts.sighashType === undefined ? {} : { sighashType: opts.sighashType }),
  };
}

/** Funds `key` on the chain and returns the input spending it. */
export function fundedInput(chain: BitcoinTestChain, key: WalletKey, valueSat: bigint, opts: InputOptions = {}): PsbtInputExtended {
  return walletInput(chain.fundOne(key.script, valueSat), key, opts);
}

/** An output to one of a wallet's keys, with its derivation (change, when the key is on the change chain). */
export function walletOutput(key: WalletKey, valueSat: bigint): PsbtOutputExtended {
  const base = { script: key.script, value: valueSat };
  if (key.type === 'p2wpkh') return { ...base, bip32Derivation: [{ masterFingerprint: key.masterFingerprint, pubkey: key.publicKey, path: key.path }] };
  const internal = xOnly(key.publicKey);
  return { ...base, tapInternalKey: internal, tapBip32Derivation: [{ masterFingerprint: key.masterFingerprint, pubkey: internal, path: key.path, leafHashes: [] }] };
}

/** A plain output: an address or a script, no derivation (what a payee gets). */
export function payTo(chain: BitcoinTestChain, to: string | Uint8Array, valueSat: bigint): PsbtOutputExtended {
  return { script: typeof to === 'string' ? bitcoin.address.toOutputScript(to, chain.bitcoinjsNetwork) : to, value: valueSat };
}

/** A version 0 PSBT of a version 2 transaction. */
export function buildPsbt(chain: BitcoinTestChain, inputs: PsbtInputExtended[], outputs: PsbtOutputExtended[], opts: { locktime?: number } = {}): bitcoin.Psbt {
  const psbt = new bitcoin.Psbt({ network: chain.bitcoinjsNetwork });
  psbt.setVersion(2);
  if (opts.locktime !== undefined) psbt.setLocktime(opts.locktime);
  psbt.addInputs(inputs);
  psbt.addOutputs(outputs);
  return psbt;
}

/** The same PSBT as BIP-370 version 2, base64 (see psbt-maps.ts). */
export function asPsbtV2(psbt: bitcoin.Psbt | string): string {
  return toPsbtV2(typeof psbt === 'string' ? psbt : psbt.toBase64());
}

/**
 * Signs, with bitcoinjs, every input whose derivation names `wallet`'s master fingerprint (what a co-signer
 * does with its own inputs). `finalize`: also finalize those inputs. Returns the inputs signed.
 */
export function signOwnInputs(psbt: bitcoin.Psbt, wallet: TestWallet, opts: { finalize?: boolean; sighashTypes?: number[] } = {}): number[] {
  const signed: number[] = [];
  psbt.data.inputs.forEach((input, i) => {
    const key = ownKeyOf(wallet, input);
    if (!key) return;
    const signer = signerOf(key);
    // bitcoinjs only signs the types it is told to allow: by default, the one the input asks for.
    const types = opts.sighashTypes ?? (input.sighashType === undefined ? undefined : [input.sighashType]);
    if (key.type === 'p2wpkh') psbt.signInput(i, signer, types);
    else psbt.signTaprootInput(i, signer, undefined, types);
    if (opts.finalize) psbt.finalizeInput(i);
    signed.push(i);
  });
  return signed;
}

function ownKeyOf(wallet: TestWallet, input: bitcoin.Psbt['data']['inputs'][number]): WalletKey | undefined {
  const derivation = input.bip32Derivation?.[0] ?? input.tapBip32Derivation?.[0];
  if (!derivation || Buffer.from(derivation.masterFingerprint).readUInt32BE(0) !== wallet.fingerprint) return undefined;
  const [change, index] = derivation.path.split('/').slice(-2).map(Number) as [number, number];
  const key = wallet.key(input.tapBip32Derivation ? 'p2tr' : 'p2wpkh', change as 0 | 1, index);
  return key.privateKey ? key : undefined;
}

/**
 * A 0-sat P2SH 15-of-15 output of `owner`'s, in a previous transaction never broadcast: the largest input there is
 * for a co-signer to pad a PSBT with (its size lowers the fee rate shown; under ANYONECANPAY it can be dropped).
 */
export function paddingInput(owner: TestWallet): PsbtInputExtended {
  const ms15 = bitcoin.payments.p2ms({ m: 15, pubkeys: Array.from({ length: 15 }, (_, i) => Buffer.from(owner.receive('p2wpkh', i).publicKey)) });
  const p2sh = bitcoin.payments.p2sh({ redeem: ms15 });
  const fake = new bitcoin.Transaction();
  fake.version = 2;
  fake.addInput(Buffer.alloc(32, 7), 0, 0xffffffff);
  fake.addOutput(p2sh.output!, 0n);
  return { hash: fake.getId(), index: 0, sequence: 0xfffffffd, nonWitnessUtxo: fake.toBuffer(), redeemScript: ms15.output! };
}
