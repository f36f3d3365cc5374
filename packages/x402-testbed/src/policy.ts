// The x402 policy the tests and the demo give their agents: one place, so every test reads the same rules.
import type { Address } from 'viem';

export interface X402PolicyOptions {
  /** CAIP-2 id of the chain, e.g. eip155:31337. */
  chain: string;
  /** CAIP-19 id of the token. */
  asset: string;
  /** payTo allowlist. */
  payees: Address[];
  /** URL patterns the agent may pay for (omit: any resource). */
  resources?: string[];
  /** Max price per request, base units. */
  perCall: bigint;
  /** Rolling 24h budget of the agent, base units. */
  daily: bigint;
  /** Rolling 1h budget per resource origin, base units. */
  perOriginHourly?: bigint;
  /** Payments above this wait for a human. */
  approvalAbove?: bigint;
  /** Max payments to the same resource per minute. */
  loopGuard?: number;
  /** Longest authorization validity accepted. Default 600 s. */
  maxValiditySeconds?: number;
}

export function x402Policy(o: X402PolicyOptions) {
  return {
    version: 1,
    sets: { apis: o.payees },
    rules: [
      {
        name: 'pay-known-apis',
        type: 'allow',
        match: { actions: ['evm.typed_data'], chains: [o.chain], kinds: ['eip3009.transfer_with_authorization'], assets: [o.asset], to: '$apis', ...(o.resources ? { resources: o.resources } : {}) },
      },
      { name: 'payees', type: 'destinations', allow: '$apis' },
      { name: 'max-price', type: 'max_amount', asset: o.asset, max: o.perCall.toString() },
      { name: 'daily-budget', type: 'budget', asset: o.asset, max: o.daily.toString(), window: '24h', scope: 'agent' },
      ...(o.perOriginHourly !== undefined ? [{ name: 'per-origin-hourly', type: 'budget', asset: o.asset, max: o.perOriginHourly.toString(), window: '1h', scope: 'agent', per_origin: true }] : []),
      ...(o.loopGuard !== undefined ? [{ name: 'loop-guard', type: 'loop_guard', max: o.loopGuard, window: '1m' }] : []),
      { name: 'short-auth', type: 'validity_window', max_seconds: o.maxValiditySeconds ?? 600 },
      ...(o.approvalAbove !== undefined ? [{ name: 'big-needs-human', type: 'approval_tier', asset: o.asset, above: o.approvalAbove.toString() }] : []),
    ],
  };
}
