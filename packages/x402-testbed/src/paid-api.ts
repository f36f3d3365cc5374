// A paid HTTP API on loopback. v2: the official `@x402/express` paymentMiddleware with an x402ResourceServer
// that talks to our facilitator over HTTP. v1: @x402/express speaks only v2, so the v1 variant implements the
// v1 wire format by hand (402 JSON body with `accepts`, `X-PAYMENT` in, `X-PAYMENT-RESPONSE` out) and still
// verifies and settles through the same official facilitator.
import { createServer } from 'node:http';
import express from 'express';
import type { Address } from 'viem';
import { HTTPFacilitatorClient, type RoutesConfig } from '@x402/core/server';
import type { PaymentPayload, PaymentRequirements } from '@x402/core/types';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import { ExactEvmScheme } from '@x402/evm/exact/server';
import { base64Json, fromBase64Json } from './json.ts';
import { listenOnLoopback } from './listen.ts';

export interface PaidRoute {
  /** Price in token base units (6 decimals: 10_000n = 0.01 USDC). */
  price: bigint;
  payTo: Address;
  description?: string;
  /** Seconds the client's authorization stays valid. Default 60. */
  maxTimeoutSeconds?: number;
}

export interface PaidApiOptions {
  facilitatorUrl: string;
  /** v2: a CAIP-2 id (eip155:31337); v1: a network name (base-sepolia). */
  network: string;
  /** The EIP-3009 token contract. */
  asset: Address;
  /** Paths (GET) and their prices, e.g. { '/data/quote': {...} }. */
  routes: Record<string, PaidRoute>;
  /** The token's EIP-712 domain. Default USD Coin / 2. */
  tokenDomain?: { name: string; version: string };
}

export interface PaidApi {
  url: string;
  /** How many requests were served after a successful settlement, per path. */
  served: Map<string, number>;
  close(): Promise<void>;
}

const USDC_DOMAIN = { name: 'USD Coin', version: '2' };

/** The resource's JSON: which path, and a counter so tests see a fresh answer per paid call. */
function resourceBody(path: string, n: number) {
  return { resource: path, sequence: n, data: { symbol: 'AIR', price: (100 + n).toFixed(2) } };
}

export async function startPaidApi(options: PaidApiOptions): Promise<PaidApi> {
  const domain = options.tokenDomain ?? USDC_DOMAIN;
  // Prices as {amount, asset, extra}: money strings ("$0.01") only resolve on networks with a known default asset.
  const routes: RoutesConfig = Object.fromEntries(
    Object.entries(options.routes).map(([path, r]) => [
      `GET ${path}`,
      {
        accepts: { scheme: 'exact', network: options.network as `${string}:${string}`, payTo: r.payTo, maxTimeoutSeconds: r.maxTimeoutSeconds ?? 60, price: { amount: r.price.toString(), asset: options.asset, extra: { ...domain } } },
        description: r.description ?? `Paid resource ${path}`,
        mimeType: 'application/json',
      },
    ]),
  );
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: options.facilitatorUrl })).register(options.network as `${string}:${string}`, new ExactEvmScheme());
  // Syncing with the facilitator now (not lazily) fails fast if it does not list the network.
  await resourceServer.initialize();
  const app = express();
  app.use(paymentMiddleware(routes, resourceServer, undefined, undefined, false));
  const served = new Map<string, number>();
  for (const path of Object.keys(options.routes)) {
    app.get(path, (_req, res) => {
      const n = (served.get(path) ?? 0) + 1;
      served.set(path, n);
      res.json(resourceBody(path, n));
    });
  }
  const { url, close } = await listenOnLoopback(createServer(app));
  return { url, served, close };
}

/** The same API in x402 v1 (named networks only, e.g. base-sepolia on an anvil with chain id 84532). */
export async function startPaidApiV1(options: PaidApiOptions): Promise<PaidApi> {
  const domain = options.tokenDomain ?? USDC_DOMAIN;
  const facilitator = new HTTPFacilitatorClient({ url: options.facilitatorUrl });
  const served = new Map<string, number>();
  const app = express();
  let base = '';
  for (const [path, r] of Object.entries(options.routes)) {
    const requirement = {
      scheme: 'exact',
      network: options.network,
      maxAmountRequired: r.price.toString(),
      resource: '',
      description: r.description ?? `Paid resource ${path}`,
      mimeType: 'application/json',
      payTo: r.payTo,
      maxTimeoutSeconds: r.maxTimeoutSeconds ?? 60,
      asset: options.asset,
      extra: { ...domain },
    };
    app.get(path, async (req, res) => {
      const accepted = { ...requirement, resource: `${base}${path}` };
      const refuse = (error: string) => res.status(402).json({ x402Version: 1, error, accepts: [accepted] });
      const header = req.header('x-payment');
      if (!header) return refuse('X-PAYMENT header is required');
      let payload: PaymentPayload;
      try {
        payload = fromBase64Json<PaymentPayload>(header);
      } catch {
        return refuse('invalid X-PAYMENT header');
      }
      // The facilitator's v1 types carry maxAmountRequired; PaymentRequirements is the v2 name for the same object.
      const requirements = accepted as unknown as PaymentRequirements;
      try {
        const verified = await facilitator.verify(payload, requirements);
        if (!verified.isValid) return refuse(verified.invalidReason ?? 'invalid payment');
        const settled = await facilitator.settle(payload, requirements);
        if (!settled.success) return refuse(settled.errorReason ?? 'settlement failed');
        const n = (served.get(path) ?? 0) + 1;
        served.set(path, n);
        res.setHeader('X-PAYMENT-RESPONSE', base64Json(settled));
        res.setHeader('Access-Control-Expose-Headers', 'X-PAYMENT-RESPONSE');
        return res.json(resourceBody(path, n));
      } catch (e) {
        const reason = (e as { invalidReason?: string; errorReason?: string }).invalidReason ?? (e as { errorReason?: string }).errorReason ?? 'facilitator error';
        return refuse(reason);
      }
    });
  }
  const running = await listenOnLoopback(createServer(app));
  base = running.url;
  return { url: running.url, served, close: running.close };
}
