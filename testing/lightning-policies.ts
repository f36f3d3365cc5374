// Policies the Lightning tests share (SDK, L402 end to end): pay one payee's node only, at most 100 sat a payment.
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';

export const REGTEST_BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);

/** Lightning to `payee`'s node only, at most 100 000 msat a payment (fee limit included), then `extra` rules. */
export function payeeOnlyPolicy(payee: string, extra: unknown[] = []) {
  return {
    version: 1,
    sets: { apis: [payee] },
    rules: [
      { type: 'allow', name: 'pay-apis', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-apis', allow: '$apis', match: { actions: ['lightning.pay'] } },
      { type: 'max_amount', name: 'per-payment', asset: REGTEST_BTC, max: '100000' },
      ...extra,
    ],
  };
}
