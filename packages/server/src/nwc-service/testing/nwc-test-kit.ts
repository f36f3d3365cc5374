// What the NIP-47 relay tests share: the daemon's Lightning settings, a policy paying one shop, and a poll.
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';

export const REGTEST_BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);

/** The LND backend double on regtest: a 2 s pay timeout, so tests of in-flight payments stay short. */
export const NWC_TEST_LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

/** Lightning to `payee` only, 100 000 msat a day; `extra` rules after those. */
export function shopPolicy(payee: string, extra: unknown[] = []) {
  return {
    version: 1,
    sets: { shops: [payee] },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'budget', name: 'daily', asset: REGTEST_BTC, max: '100000', window: '24h' },
      ...extra,
    ],
  };
}

/** `read()` once it is truthy, polled every 20 ms; what it last gave after `ms`. */
export async function until<T>(read: () => T, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}
