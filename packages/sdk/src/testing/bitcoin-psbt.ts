// Test helper: PSBTs for an agent's own Bitcoin account, built as a wallet would (@scure/btc-signer): input keys
// derived from the account xpub Airlock publishes, derivation fields naming the vault fingerprint, funded by a
// made-up previous transaction (full, for segwit v0 inputs), change on the account's change chain.
import { randomBytes } from 'node:crypto';
import { HDKey } from '@scure/bip32';
import { bip32Path, p2tr, p2wpkh, RawTx, Transaction } from '@scure/btc-signer';
import { sha256x2 } from '@scure/btc-signer/utils.js';
import type { BitcoinAccount, BitcoinAddressType } from '../bitcoin.ts';

export const REGTEST = { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };
const TPUB = { public: 0x043587cf, private: 0x04358394 };

/** A key of the account at change/index, its full path and the script and address it pays to. */
export function accountKey(account: BitcoinAccount, type: BitcoinAddressType, change: 0 | 1, index: number) {
  const keys = account.accounts[type];
  const publicKey = HDKey.fromExtendedKey(keys.xpub, TPUB).deriveChild(change).deriveChild(index).publicKey!;
  const payment = type === 'p2wpkh' ? p2wpkh(publicKey, REGTEST) : p2tr(publicKey.subarray(1), undefined, REGTEST);
  return { publicKey, path: `${keys.path}/${change}/${index}`, script: payment.script, address: payment.address! };
}

/** A key nobody in the test derives from Airlock: someone else's coins or someone else's address. */
export function strangerKey(type: BitcoinAddressType = 'p2wpkh') {
  const publicKey = HDKey.fromMasterSeed(randomBytes(32)).deriveChild(0).publicKey!;
  const payment = type === 'p2wpkh' ? p2wpkh(publicKey, REGTEST) : p2tr(publicKey.subarray(1), undefined, REGTEST);
  return { publicKey, script: payment.script, address: payment.address! };
}

/** A previous transaction paying `amountSat` to `script` at output `vout` (earlier outputs pay elsewhere). */
export function fundingTransaction(script: Uint8Array, amountSat: bigint, vout = 0) {
  const outputs = [...Array.from({ length: vout }, () => ({ script: strangerKey().script, amount: 1_000n })), { script, amount: amountSat }];
  // Spends a made-up coin with a made-up scriptSig: only its id and outputs matter to the PSBT.
  const raw = RawTx.encode({ version: 2, segwitFlag: false, inputs: [{ txid: randomBytes(32), index: 0, finalScriptSig: new Uint8Array([0x51]), sequence: 0xffffffff }], outputs, witnesses: [], lockTime: 0 });
  return { raw, txid: Buffer.from(sha256x2(raw)).reverse().toString('hex'), vout };
}

export interface OwnInput {
  type: BitcoinAddressType;
  change?: 0 | 1;
  index?: number;
  amountSat: bigint;
  /** BIP-174 sighash type the input asks for (btc-signer's SigHash numbers). */
  sighashType?: number;
  /** Leave out the full previous transaction (P2WPKH needs it: Airlock refuses without). */
  withoutPreviousTransaction?: boolean;
}

export type PsbtOutput = { address: string; amountSat: bigint } | { change: { type: BitcoinAddressType; index: number }; amountSat: bigint };

/**
 * A PSBT (v0 unless `version: 2`) spending the agent's own coins (and, with `foreign`, one input someone else
 * signs: witness UTXO only, no derivation) to the outputs given.
 */
export function buildPsbt(account: BitcoinAccount, spec: { inputs: OwnInput[]; outputs: PsbtOutput[]; foreign?: { amountSat: bigint }; version?: 0 | 2 }): string {
  const fingerprint = Number.parseInt(account.fingerprint, 16);
  const tx = new Transaction({ PSBTVersion: spec.version ?? 0 });
  for (const input of spec.inputs) {
    const key = accountKey(account, input.type, input.change ?? 0, input.index ?? 0);
    const funding = fundingTransaction(key.script, input.amountSat, 1);
    const der = { fingerprint, path: bip32Path(key.path) };
    tx.addInput({
      txid: funding.txid,
      index: funding.vout,
      witnessUtxo: { script: key.script, amount: input.amountSat },
      ...(input.type === 'p2wpkh' && !input.withoutPreviousTransaction ? { nonWitnessUtxo: funding.raw } : {}),
      ...(input.type === 'p2wpkh' ? { bip32Derivation: [[key.publicKey, der]] } : { tapInternalKey: key.publicKey.subarray(1), tapBip32Derivation: [[key.publicKey.subarray(1), { hashes: [], der }]] }),
      ...(input.sighashType !== undefined ? { sighashType: input.sighashType } : {}),
    });
  }
  if (spec.foreign) {
    const other = strangerKey();
    const funding = fundingTransaction(other.script, spec.foreign.amountSat);
    tx.addInput({ txid: funding.txid, index: funding.vout, witnessUtxo: { script: other.script, amount: spec.foreign.amountSat } });
  }
  for (const output of spec.outputs) {
    if ('address' in output) {
      tx.addOutputAddress(output.address, output.amountSat, REGTEST);
      continue;
    }
    const key = accountKey(account, output.change.type, 1, output.change.index);
    const der = { fingerprint, path: bip32Path(key.path) };
    tx.addOutput({
      script: key.script,
      amount: output.amountSat,
      ...(output.change.type === 'p2wpkh' ? { bip32Derivation: [[key.publicKey, der]] } : { tapInternalKey: key.publicKey.subarray(1), tapBip32Derivation: [[key.publicKey.subarray(1), { hashes: [], der }]] }),
    });
  }
  return Buffer.from(tx.toPSBT()).toString('base64');
}
