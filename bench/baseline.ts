// (1) Baseline: what an agent does without Airlock, a hot key in its own process.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { privateKeyToAccount } from 'viem/accounts';
import { NativeKeyBackend, nativeEcdsaSign } from '../packages/keys/src/index.ts';
import { opsPerSecond } from './lib/stats.ts';

const KEY = `0x${'11'.repeat(32)}` as const;
const account = privateKeyToAccount(KEY);
const privateKey = Uint8Array.from(Buffer.from('11'.repeat(32), 'hex'));
const tx = { chainId: 8453, type: 'eip1559' as const, to: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913' as const, value: 0n, data: `0xa9059cbb${'11'.repeat(20).padStart(64, '0')}${(1n).toString(16).padStart(64, '0')}` as const, gas: 60000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 6n };

export interface BaselineRound {
  /** viem privateKeyToAccount().signTransaction, ops/s: the reference every ratio is taken against. */
  viem: number;
  /** noble secp256k1.sign over a fixed 32-byte digest, ops/s. */
  noble: number;
  /** libsecp256k1 ecdsaSign (for reference; undefined when the addon does not load). */
  native?: number;
}

/** One round of each baseline; `scale` 1 is ~1 s of work on this machine. */
export async function baselineRound(scale = 1): Promise<BaselineRound> {
  const digest = new Uint8Array(32).fill(7);
  const viem = await opsPerSecond(Math.round(600 * scale), 1, (i) => account.signTransaction({ ...tx, nonce: i }));
  const noble = await opsPerSecond(Math.round(1500 * scale), 1, () => secp256k1.sign(digest, privateKey, { prehash: false }));
  const round: BaselineRound = { viem, noble };
  if (NativeKeyBackend.available()) round.native = await opsPerSecond(Math.round(10_000 * scale), 1, () => nativeEcdsaSign(digest, privateKey));
  return round;
}
