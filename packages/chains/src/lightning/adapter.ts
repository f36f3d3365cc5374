// The lightning ChainAdapter: a BOLT 11 invoice (plus the amount for an amountless one and the routing fee
// limit) into an intent policy can judge. Nothing is signed: Lightning payments go through the backend after
// policy, budgets and audit (LightningService), and the "digest" recorded for the request is the payment hash.
import { AirlockError, BITCOIN_CHAINS, bitcoinAsset, type Action, type ChainAdapter, type DecodedRequest, type Intent, type LightningNetwork, type SignResult, type SignerContext } from '@airlock/core';
import { hexToBytes } from '@noble/hashes/utils.js';
import { decodeBolt11, type DecodedInvoice, type RouteHintHop } from './bolt11.ts';

/** What `lightning.pay` decodes. The service builds it: the network and the time come from Airlock, not the agent. */
export interface LightningPayPayload {
  invoice: string;
  /** Only for an amountless invoice (decimal msat). */
  amountMsat?: bigint;
  /** The routing fee limit (msat). */
  maxFeeMsat: bigint;
  /** The backend's network: an invoice for another is refused. */
  network: LightningNetwork;
  /** Milliseconds since the epoch: an expired invoice is refused. */
  now: number;
}

const MAX_MSAT = 21_000_000n * 100_000_000_000n;

export function createLightningAdapter(): ChainAdapter {
  return {
    namespace: 'lightning',
    actions: ['lightning.pay'],
    // No key signs a Lightning payment here (the backend's node does): these exist for the port's shape only.
    derivationPath: () => {
      throw new AirlockError('unsupported_action', 'Lightning payments are not signed with an agent key');
    },
    addressFromPublicKey: () => {
      throw new AirlockError('unsupported_action', 'Lightning payments are not signed with an agent key');
    },
    signerIsAgentAddress: true,

    decode(action: Action, payload: unknown, signer: SignerContext): DecodedRequest {
      if (action !== 'lightning.pay') throw new AirlockError('unsupported_action', 'the lightning adapter only decodes lightning.pay');
      const request = payload as LightningPayPayload;
      const invoice = decodeBolt11(request.invoice, { now: request.now, network: request.network });
      const amountMsat = amountToPay(invoice, request.amountMsat);
      if (request.maxFeeMsat < 0n || request.maxFeeMsat > MAX_MSAT) throw new AirlockError('invalid_amount', 'maxFeeMsat must be between 0 and 21 million bitcoin');
      return { intent: paymentIntent(invoice, amountMsat, request.maxFeeMsat, signer.address), digest: hexToBytes(invoice.paymentHash) };
    },

    finalize(): SignResult {
      throw new AirlockError('signature_check_failed', 'Lightning payments are not signed');
    },
  };
}

/** The invoice's amount, or for an amountless invoice the amount the request names (and nothing else). */
function amountToPay(invoice: DecodedInvoice, requested: bigint | undefined): bigint {
  if (invoice.amountMsat !== undefined) {
    if (requested !== undefined && requested !== invoice.amountMsat) {
      throw new AirlockError('invoice_amount_mismatch', `the invoice asks for ${invoice.amountMsat} msat; the request names ${requested} msat`);
    }
    return invoice.amountMsat;
  }
  if (requested === undefined) throw new AirlockError('invoice_amount_mismatch', 'the invoice names no amount: the request must name amountMsat');
  if (requested <= 0n || requested > MAX_MSAT) throw new AirlockError('invalid_amount', 'amountMsat must be at least 1 msat and at most 21 million bitcoin');
  return requested;
}

function paymentIntent(invoice: DecodedInvoice, amountMsat: bigint, maxFeeMsat: bigint, from: string): Intent {
  const chain = BITCOIN_CHAINS[invoice.network];
  const asset = bitcoinAsset(chain);
  const expiresAt = Math.floor(invoice.expiresAt / 1000);
  const intent: Intent = {
    action: 'lightning.pay',
    chain,
    kind: invoice.amountMsat === undefined ? 'lightning.amountless_payment' : 'lightning.payment',
    from,
    to: invoice.payee,
    // The routing fee limit is spent in the worst case: budgets count it until the backend reports the real fee.
    spends: [
      { asset, amount: amountMsat, decimals: 11, to: invoice.payee, kind: 'transfer' },
      { asset, amount: maxFeeMsat, decimals: 11, kind: 'fee' },
    ],
    approvals: [],
    payment: { protocol: 'lightning', payTo: invoice.payee, network: chain, nonce: invoice.paymentHash, validBefore: expiresAt },
    lightning: {
      network: invoice.network,
      paymentHash: invoice.paymentHash,
      payee: invoice.payee,
      amountMsat,
      amountless: invoice.amountMsat === undefined,
      maxFeeMsat,
      createdAt: Math.floor(invoice.createdAt / 1000),
      expiresAt,
      ...(invoice.description !== undefined ? { description: invoice.description.slice(0, 640) } : {}),
      ...(invoice.descriptionHash !== undefined ? { descriptionHash: invoice.descriptionHash } : {}),
      routeHints: invoice.routeHints.length,
      ...(invoice.routeHints.length > 0 ? { routeHintFeeMsat: costliestRouteHintFee(invoice.routeHints, amountMsat) } : {}),
    },
    summary: `pay ${amountMsat} msat to ${invoice.payee.slice(0, 10)}… over Lightning (${invoice.network}), routing fee at most ${maxFeeMsat} msat`,
  };
  return intent;
}

/**
 * The most any route hint (`r` field) of the invoice costs to pay `amountMsat` through: each hop charges
 * fee_base_msat + floor(amount x fee_proportional_millionths / 1,000,000) (BOLT 7 fee formula), summed along the
 * hint's path, charged on the amount alone (a hop before the last also charges on the fees after it: a lower bound
 * per path). The payee chooses these figures (u32 each: up to 4,294,967,295 msat base per hop), and a wallet that
 * holds no fee limit (NWC) may route through any of them: the costliest, not the cheapest, is what it may pay (a
 * review of the first form found a free decoy hint through a channel that does not exist beside a costly real one:
 * the wallet tries the decoy, fails, and routes through the other).
 */
export function costliestRouteHintFee(hints: RouteHintHop[][], amountMsat: bigint): bigint {
  const costs = hints.map((path) => path.reduce((sum, hop) => sum + BigInt(hop.feeBaseMsat) + (amountMsat * BigInt(hop.feeProportionalMillionths)) / 1_000_000n, 0n));
  return costs.reduce((most, cost) => (cost > most ? cost : most));
}
