// A ChainReader test double that follows the port: a nonce in `used` was used on chain, moving what it maps to
// (default: 1000 units to ALICE, a transfer that matches the test policies); block times follow `now` (point it
// at the test clock), and the pinned block is the current one. For a chain that lies, see reconciler.http.test.ts.
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE } from './harness.ts';

export interface FakeChain extends ChainReader {
  used: Map<string, { to: string; value: bigint }>;
  /** Marks a nonce used, moving `value` (default 1000) to `to` (default ALICE). */
  use(nonce: string, value?: bigint, to?: string): void;
  /** authorizationState reads so far. */
  reads: number;
  now: () => number;
}

export function fakeChain(network = BASE): FakeChain {
  const chain: FakeChain = {
    used: new Map(),
    reads: 0,
    now: () => Date.now(),
    use(nonce, value = 1000n, to = ALICE) {
      chain.used.set(nonce.toLowerCase(), { to, value });
    },
    supports: (n: string) => n === network,
    async latestBlockTimestamp() {
      return Math.floor(chain.now() / 1000);
    },
    async pinnedBlock() {
      return { tag: 'finalized', number: 1n, timestamp: Math.floor(chain.now() / 1000) };
    },
    async authorizationState(_network: string, _token: string, _from: string, nonce: string) {
      chain.reads += 1;
      return chain.used.has(nonce.toLowerCase());
    },
    async findAuthorizationUse(_network: string, _token: string, _from: string, nonce: string) {
      const transfer = chain.used.get(nonce.toLowerCase());
      return transfer ? { transactionHash: `0x${'ee'.repeat(32)}`, blockNumber: 1n, transfer } : undefined;
    },
  };
  return chain;
}
