// x402 payment terms for tests of POST /v1/x402/pay, encoded with the official @x402/core package.
import { encodePaymentRequiredHeader } from '@x402/core/http';
import { ALICE, BASE, USDC } from './harness.ts';

/** An `exact` USDC requirement on Base paying ALICE 1000 units, with `over` replacing any field. */
export const usdcRequirement = (over: Record<string, unknown> = {}) => ({ scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' }, ...over });

/** The PAYMENT-REQUIRED header (x402 v2) a paid resource at `url` answers with, offering `accepts`. */
export const paymentRequiredHeader = (url: string, accepts: Record<string, unknown>[]) => encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
