// An Airlock harness paying through NWC: a loopback Nostr relay, the NWC wallet-service double over the simulated
// Lightning network, and the real NwcBackend connected to it (short timeouts, so the tests' ambiguous answers
// resolve quickly). Tests script payments on `network` and the wallet's behaviour on `wallet`.
import { LightningNetwork } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { TestWalletService, type TestWalletServiceOptions } from '../../../../testing/nwc-wallet-service/wallet-service.ts';
import { NwcBackend } from '../lightning/nwc-client.ts';
import { startHarness, type Harness, type StoreKind } from './harness.ts';

export interface NwcStack {
  h: Harness;
  relay: TestRelay;
  wallet: TestWalletService;
  network: LightningNetwork;
  backend: NwcBackend;
  close(): Promise<void>;
}

export interface NwcStackOptions {
  /** How the wallet-service double behaves (e.g. `omitFeesPaid`). */
  wallet?: Omit<TestWalletServiceOptions, 'relay' | 'lightning'>;
  /** How long the backend waits for a wallet's answer (2 s; longer where a test makes the wallet slow on purpose). */
  requestTimeoutMs?: number;
  /** A manual clock (`h.clock`): tests that move past the pay timeout and the not-found grace. */
  manualClock?: boolean;
}

export async function startNwcStack(store: StoreKind, options: NwcStackOptions = {}): Promise<NwcStack> {
  const relay = await startTestRelay();
  const network = new LightningNetwork();
  const wallet = await TestWalletService.start({ ...options.wallet, relay, lightning: network });
  const backend = await NwcBackend.connect({ connectionUri: wallet.uri, network: 'regtest', infoTimeoutMs: 3_000, requestTimeoutMs: options.requestTimeoutMs ?? 2_000, payGraceMs: 500 });
  const h = await startHarness({ store, ...(options.manualClock ? { manualClock: true } : {}), lightningBackend: backend, config: { lightning: { backend: 'nwc' as const, network: 'regtest' as const, payTimeoutSeconds: 1, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
  return {
    h, relay, wallet, network, backend,
    async close() {
      await h.close();
      await backend.close();
      wallet.close();
      await relay.close();
    },
  };
}
