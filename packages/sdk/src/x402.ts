// x402 for agents whose keys live in Airlock: a ClientEvmSigner for the official @x402 client, and a fetch
// that pays through it. Airlock decides; this module never pays around a refusal and never retries one.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Hex } from 'viem';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import type { SpendControls } from '@x402/core/client';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { ExactEvmSchemeV1, NETWORKS } from '@x402/evm/v1';
import type { ClientEvmSigner } from '@x402/evm';
import { AirlockApiError, createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';

export interface AirlockX402Options extends AirlockHttpOptions {
  /**
   * When a payment needs human approval: wait up to this many ms (polling) for the decision, then pay.
   * Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
}

/** What one paid call knows while the official client builds its payment. */
interface PaymentContext {
  /** The URL being paid for: Airlock's resource rules match it. */
  resource: string;
  /** Authorizations Airlock signed during this call (normally one). */
  signed: { nonce: Hex; paymentId?: string }[];
  /** Airlock's refusal, kept so the caller gets the typed error the x402 client would wrap into a plain Error. */
  refusal?: AirlockApiError;
}

const paymentContext = new AsyncLocalStorage<PaymentContext>();

/**
 * Runs `fn` with `resource` as the x402 resource of every signature requested inside it, so Airlock applies
 * its resource rules (`match.resources`, per-origin budgets, loop guard) to the generic typed-data path too.
 * `fetchWithAirlock` does this for you; use it when you drive `x402Client` yourself.
 */
export function withX402Resource<T>(resource: string, fn: () => Promise<T>): Promise<T> {
  return paymentContext.run({ resource, signed: [] }, fn);
}

interface SignBody extends SignAnswer {
  paymentId?: string;
}

/**
 * A `ClientEvmSigner` for `@x402/evm` whose key stays in Airlock:
 * `new x402Client().register('eip155:*', new ExactEvmScheme(await airlockX402Signer({url, token})))`.
 * Async because the address comes from Airlock (GET /v1/session). Every `signTypedData` goes through
 * POST /v1/sign/typed-data with the current resource (see withX402Resource); a refusal throws
 * AirlockPolicyError with the violations, an approval wait AirlockApprovalRequiredError.
 */
export async function airlockX402Signer(options: AirlockX402Options): Promise<ClientEvmSigner> {
  const http = createAirlockHttp(options);
  const { body: me } = await http.request<{ agent: { address: Hex } }>('GET', '/v1/session');
  return {
    address: me.agent.address,
    async signTypedData({ domain, types, primaryType, message }) {
      const ctx = paymentContext.getStore();
      const body = { typedData: { domain, types, primaryType, message }, ...(ctx ? { x402: { resource: ctx.resource } } : {}) };
      try {
        const out = await signWithRetry<SignBody>(http, '/v1/sign/typed-data', body, options.approvalWaitMs ?? 0);
        const nonce = (message as { nonce?: Hex }).nonce;
        if (ctx && nonce) ctx.signed.push({ nonce, ...(out.paymentId ? { paymentId: out.paymentId } : {}) });
        return out.signature;
      } catch (e) {
        if (ctx && e instanceof AirlockApiError) ctx.refusal = e;
        throw e;
      }
    },
  };
}

export interface FetchWithAirlockOptions extends AirlockX402Options {
  /**
   * The official client's own spend controls. Default `false`: Airlock's policy is the control (the agent's
   * process is not a security boundary), and the client's defaults refuse any token it does not know,
   * including a local test token. Pass SpendControls to add a client-side cap on top.
   */
  spendControls?: SpendControls | false;
  /** Called when reporting a settlement back to Airlock fails (the reconciler still finds it on chain). */
  onReportError?: (error: unknown) => void;
}

export type AirlockPaidFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * `fetch` that pays x402 resources through Airlock, built on the official `@x402/fetch`: exact/EVM for every
 * `eip155:*` network (v2) and every named network (v1). After a paid response it reports the server's
 * PAYMENT-RESPONSE to Airlock (POST /v1/x402/settlement). When Airlock refuses it throws AirlockPolicyError
 * (or AirlockApprovalRequiredError) and sends nothing.
 */
export function fetchWithAirlock(fetchImpl: typeof globalThis.fetch, options: FetchWithAirlockOptions): AirlockPaidFetch {
  const http = createAirlockHttp(options);
  let paying: Promise<AirlockPaidFetch> | undefined;
  const init = async (): Promise<AirlockPaidFetch> => {
    const signer = await airlockX402Signer(options);
    const client = new x402Client().register('eip155:*', new ExactEvmScheme(signer));
    for (const network of NETWORKS) client.registerV1(network as `${string}:${string}`, new ExactEvmSchemeV1(signer));
    client.setSpendControls(options.spendControls ?? false);
    return wrapFetchWithPayment(fetchImpl, client);
  };

  return async (input, requestInit) => {
    paying ??= init();
    const pay = await paying;
    const ctx: PaymentContext = { resource: requestUrl(input), signed: [] };
    let response: Response;
    try {
      response = await paymentContext.run(ctx, () => pay(input, requestInit));
    } catch (e) {
      // The x402 client wraps signer errors into a plain Error; hand back Airlock's typed one.
      if (ctx.refusal) throw ctx.refusal;
      throw e;
    }
    const paymentResponse = response.headers.get('payment-response') ?? response.headers.get('x-payment-response');
    const signed = ctx.signed.at(-1);
    if (paymentResponse && signed) {
      await http
        .request('POST', '/v1/x402/settlement', { ...(signed.paymentId ? { paymentId: signed.paymentId } : {}), nonce: signed.nonce, paymentResponse })
        .catch((e: unknown) => options.onReportError?.(e));
    }
    return response;
  };
}

function requestUrl(input: string | URL | Request): string {
  if (input instanceof URL) return input.href;
  if (typeof input === 'string') return new URL(input).href;
  return input.url;
}
