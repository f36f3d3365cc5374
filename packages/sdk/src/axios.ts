// x402 over axios for agents whose keys live in Airlock: the official `@x402/axios` interceptor with Airlock
// as the signer. A subpath (`@airlock/sdk/axios`) so that only agents using axios need axios and @x402/axios.
import type { AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { wrapAxiosWithPayment } from '@x402/axios';
import { decodePaymentRequiredHeader } from '@x402/core/http';
import { airlockPayments, checkX402Challenge, type AirlockPaymentOptions } from './x402.ts';

/** Methods whose calls go through the payment context: every request method of an axios instance. */
const REQUEST_METHODS = new Set(['request', 'get', 'delete', 'head', 'options', 'post', 'put', 'patch', 'postForm', 'putForm', 'patchForm']);

/**
 * `axios` that pays x402 resources through Airlock, the counterpart of `fetchWithAirlock`: the instance gets
 * the official `@x402/axios` interceptor, and the returned instance runs every request in its own payment
 * context, so Airlock sees the URL being paid for (its resource rules), a refusal throws AirlockPolicyError
 * with its violations (not the interceptor's plain Error), and a settlement is reported back to Airlock.
 * Use the returned instance; the one passed in pays too but without those three.
 *
 * As with fetchWithAirlock, only the requested URL's own 402 is paid: one met after a redirect is refused with
 * AirlockApiError `x402_payment_redirected`, one naming a resource on another origin `x402_resource_mismatch`
 * (the final URL is what the Node http and browser xhr adapters report), and a request that carries a payment
 * is sent with `maxRedirects: 0`.
 */
export async function axiosWithAirlock(instance: AxiosInstance, options: AirlockPaymentOptions): Promise<AxiosInstance> {
  const payments = airlockPayments(options);
  guardRedirects(instance);
  // @x402/axios is built against its own copy of @x402/core (~2.11); the client it receives is used through
  // its public methods only (createPaymentPayload, the hooks), which both versions share.
  wrapAxiosWithPayment(instance, (await payments.client()) as unknown as Parameters<typeof wrapAxiosWithPayment>[1]);
  const paid = <R>(resource: string, call: () => Promise<R>) =>
    payments.paidCall(resource, call, (response) => paymentResponseOf(response as AxiosResponse));
  // A Proxy, because axios runs its interceptors in the caller's async context: the context has to be entered
  // around the call itself, and an axios instance is both a function and an object of methods.
  return new Proxy(instance, {
    apply(target, thisArg, args: unknown[]) {
      const config = (typeof args[0] === 'string' ? { ...(args[1] as object), url: args[0] } : args[0]) as Parameters<AxiosInstance['getUri']>[0];
      return paid(target.getUri(config), () => Reflect.apply(target, thisArg, args) as Promise<unknown>);
    },
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || !REQUEST_METHODS.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const config = property === 'request' ? (args[0] as object) : { ...(args[property.startsWith('post') || property.startsWith('put') || property.startsWith('patch') ? 2 : 1] as object), url: args[0] as string };
        return paid(target.getUri(config), () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      };
    },
  });
}

function paymentResponseOf(response: AxiosResponse | undefined): string | undefined {
  const value = response?.headers?.['payment-response'] ?? response?.headers?.['x-payment-response'];
  return typeof value === 'string' ? value : undefined;
}

/** Request headers that carry a signed x402 payment (v2, v1). */
const PAYMENT_HEADERS = ['payment-signature', 'x-payment'];

/**
 * Installed before the x402 interceptor, so its rejection handler runs first: a 402 that is not the requested
 * URL's own is turned into Airlock's refusal (the x402 interceptor passes on an error without a response), and
 * a request carrying a payment follows no redirect.
 */
function guardRedirects(instance: AxiosInstance): void {
  instance.interceptors.request.use((config: InternalAxiosRequestConfig) => {
    if (PAYMENT_HEADERS.some((h) => config.headers?.has?.(h))) config.maxRedirects = 0;
    return config;
  });
  instance.interceptors.response.use(undefined, (error: { response?: AxiosResponse; config?: InternalAxiosRequestConfig }) => {
    const response = error?.response;
    if (response?.status !== 402 || !error.config) return Promise.reject(error);
    let requested: string;
    try {
      requested = new URL(instance.getUri(error.config)).href;
    } catch {
      return Promise.reject(error); // not an absolute URL: nothing to compare with
    }
    const final = finalUrlOf(response);
    try {
      checkX402Challenge(requested, final.url ?? requested, final.redirected, paymentRequiredOf(response));
    } catch (refusal) {
      return Promise.reject(refusal);
    }
    return Promise.reject(error);
  });
}

/** The URL that answered, as the adapter reports it: follow-redirects' responseUrl (Node), responseURL (xhr). */
function finalUrlOf(response: AxiosResponse): { url?: string; redirected: boolean } {
  const request = response.request as { res?: { responseUrl?: unknown; redirects?: unknown[] }; responseURL?: unknown } | undefined;
  const url = typeof request?.res?.responseUrl === 'string' ? request.res.responseUrl : typeof request?.responseURL === 'string' && request.responseURL ? request.responseURL : undefined;
  return { ...(url ? { url } : {}), redirected: (request?.res?.redirects?.length ?? 0) > 0 };
}

function paymentRequiredOf(response: AxiosResponse): unknown {
  const header = response.headers?.['payment-required'];
  if (typeof header === 'string') {
    try {
      return decodePaymentRequiredHeader(header);
    } catch {
      return undefined;
    }
  }
  const body = response.data as { x402Version?: unknown } | undefined;
  return body && typeof body === 'object' && body.x402Version === 1 ? body : undefined;
}
