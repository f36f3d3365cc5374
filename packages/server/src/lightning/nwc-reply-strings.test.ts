// An NWC wallet's reply is read even when a string in it holds U+0000 or a lone surrogate: NIP-47's lookup_invoice
// result carries the invoice's description, which the payee wrote. Refusing such a reply as malformed read it as no
// answer, so a payment the wallet had made (after an uncertain pay answer) stayed in flight for good: the hold never
// charged or released, no preimage for the agent (found by review). Through a real relay and the NIP-47 test wallet,
// which here answers lookups with the invoice's description as real wallets do.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LightningNetwork } from '../../../../testing/lightning-network.ts';
import { startTestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { TestWalletService } from '../../../../testing/nwc-wallet-service/wallet-service.ts';
import { NwcBackend } from './nwc-client.ts';

// A wallet as real ones answer lookup_invoice: with the invoice's description (the test double sends '').
let description: string = 'coffee from the payee';
const proto = TestWalletService.prototype as any;
const handler = proto.handler;
proto.handler = function (this: unknown, methods: unknown) {
  const h = handler.call(this, methods);
  return {
    ...h,
    lookupInvoice: async (request: unknown) => {
      const reply = await h.lookupInvoice(request);
      return reply.result ? { ...reply, result: { ...reply.result, description } } : reply;
    },
  };
};

const closers: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

for (const [what, text] of [['plain', 'coffee from the payee'], ['holding U+0000', 'coffee\u0000from the payee'], ['holding a lone surrogate', 'coffee \ud800 from the payee']] as const) test(`NWC: a settled payment whose lookup_invoice reply carries the invoice description ${what} reads as succeeded`, async () => {
  description = text;
  const relay = await startTestRelay();
  const lightning = new LightningNetwork();
  const wallet = await TestWalletService.start({ relay, lightning, sendTimeoutMs: 200 });
  closers.push(async () => (wallet.close(), await relay.close()));
  const backend = await NwcBackend.connect({ connectionUri: wallet.uri, network: 'regtest', infoTimeoutMs: 3_000, requestTimeoutMs: 5_000, payGraceMs: 1_000 });
  closers.push(() => backend.close());
  const issued = lightning.payee().invoice({ amountMsat: 10_000n, description: text });
  lightning.script(issued.paymentHash, { kind: 'hang' });
  // The wallet gives up waiting (PAYMENT_FAILED "timed out") while the HTLC is out: confirmed by a lookup.
  assert.deepEqual(await backend.pay({ invoice: issued.invoice, paymentHash: issued.paymentHash, maxFeeMsat: 50_000n, timeoutSeconds: 10 }), { status: 'in_flight' });
  lightning.release(issued.paymentHash, { succeed: true, feeMsat: 1_234n });
  const deadline = Date.now() + 5_000;
  while (wallet.payments.get(issued.paymentHash)?.state !== 'settled' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(wallet.payments.get(issued.paymentHash)?.state, 'settled', 'the wallet paid it');
  let answer: unknown;
  try {
    answer = await backend.lookup(issued.paymentHash);
  } catch (e) {
    answer = { threw: (e as Error).message };
  }
  assert.deepEqual(answer, { status: 'succeeded', preimage: issued.preimage, feeMsat: 1_234n, amountMsat: 10_000n }, 'the money moved: the wallet\'s record of it is read');
});
