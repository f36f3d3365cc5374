// A Taproot PSBT for threshold-cluster tests, built with bitcoinjs-lib (an independent implementation, not ours).
import { randomBytes } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';

bitcoin.initEccLib(ecc);

/** A mainnet PSBT spending 1,000,000 sat locked to the group key: `sendSat` to a stranger, the rest (less 1,000 fee) back. */
export function mainnetPsbtToGroupKey(groupKey: string, sendSat: bigint): string {
  const network = bitcoin.networks.bitcoin;
  const groupScript = Buffer.concat([Buffer.from([0x51, 0x20]), Buffer.from(groupKey, 'hex')]);
  const psbt = new bitcoin.Psbt({ network });
  psbt.setVersion(2);
  psbt.addInput({ hash: randomBytes(32), index: 0, witnessUtxo: { script: groupScript, value: 1_000_000n } });
  psbt.addOutput({ address: bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 0x66), network }).address!, value: sendSat });
  psbt.addOutput({ script: groupScript, value: 1_000_000n - sendSat - 1_000n });
  return psbt.toBase64();
}
