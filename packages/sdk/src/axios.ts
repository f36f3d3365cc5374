// x402 over axios for agents whose keys live in Airlock: the official `@x402/axios` interceptor with Airlock
// as the signer. A subpath (`@airlock/sdk/axios`) so that only agents using axios need axios and @x402/axios.
import type { AxiosInstance, AxiosRequestConfig, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { wrapAxiosWithPayment } from '@x402/axios';
import { decodePaymentRequiredHeader } from '@x402/core/http';
import { AirlockApiError } from './http.ts';
import { airlockPayments, checkX402Challenge, refuseUnknownAnswerer, type AirlockPaymentOptions } from './x402.ts';

/** Methods whose calls go through the payment context: every request method of an axios instance. */
const REQUEST_METHODS = new Set(['request', 'get', 'delete', 'head', 'options', 'post', 'put', 'patch', 'postForm', 'putForm', 'patchForm']);

/**
 * `axios` that pays x402 resources through Airlock, the counterpart of `fetchWithAirlock`: the instance gets
 * the official `@x402/axios` interceptor, and the returned instance runs every request in its own payment
 * context, so Airlock sees the URL being paid for (its resource rules), a refusal throws AirlockPolicyError
 * with its violations (not the interceptor's plain Error), and a settlement is reported back to Airlock.
 * Use the returned instance; the one passed in pays too but without those three. A request whose URL is not
 * absolute http(s) (relative with no baseURL) is refused with AirlockApiError `invalid_request`, unsent.
 *
 * As with fetchWithAirlock, only the requested URL's own 402 is paid: one met after a redirect is refused with
 * AirlockApiError `x402_payment_redirected`, one naming a resource on another host `x402_resource_mismatch`
 * (the final URL is what the Node http and browser xhr adapters report), and a request that carries a payment
 * is sent with `maxRedirects: 0`. The fetch adapter reports no final URL, so on this instance it follows no
 * redirect at all (`fetchOptions.redirect: 'manual'`: a 3xx comes back to the caller, as an error by axios's
 * default `validateStatus`); a 402 from an adapter that reports no final URL and may have followed a redirect
 * (a custom one) is refused `x402_payment_redirected`. URLs are compared and reported without credentials
 * (`auth` shows up as user:pass@ in the Node adapter's final URL).
 */
export async function axiosWithAirlock(instance: AxiosInstance, options: AirlockPaymentOptions): Promise<AxiosInstance> {
  const payments = airlockPayments(options);
  guardRedirects(instance);
  // @x402/axios is built against its own copy of @x402/core (~2.11); the client it receives is used through
  // its public methods only (createPaymentPayload, the hooks), which both versions share.
  wrapAxiosWithPayment(instance, (await payments.client()) as unknown as Parameters<typeof wrapAxiosWithPayment>[1]);
  // The resource is read before anything is sent: a call whose URL Airlock cannot judge is refused unsent.
  const paid = async <R>(config: AxiosRequestConfig, call: () => Promise<R>) =>
    payments.paidCall(paidResourceOf(instance, config), call, (response) => paymentResponseOf(response as AxiosResponse));
  // A Proxy, because axios runs its interceptors in the caller's async context: the context has to be entered
  // around the call itself, and an axios instance is both a function and an object of methods.
  return new Proxy(instance, {
    apply(target, thisArg, args: unknown[]) {
      return paid(requestConfigOf(args), () => Reflect.apply(target, thisArg, args) as Promise<unknown>);
    },
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || !REQUEST_METHODS.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const config = property === 'request' ? requestConfigOf(args) : { ...(args[property.startsWith('post') || property.startsWith('put') || property.startsWith('patch') ? 2 : 1] as object), url: args[0] as string };
        return paid(config, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      };
    },
  });
}

/**
 * The config of `instance(…)` and `instance.request(…)`, both of which take `(config)` or `(url, config)`: getUri
 * ignores a string, so without this the URL paid was not the one Airlock judged (found by review: the instance's
 * baseURL was reported, bypassing resource rules, per-origin budgets and the loop guard).
 */
function requestConfigOf(args: unknown[]): AxiosRequestConfig {
  return (typeof args[0] === 'string' ? { ...(args[1] as object), url: args[0] } : args[0]) as AxiosRequestConfig;
}

/**
 * The URL Airlock is told it pays for: the request's full URL, which must be absolute http(s). A relative one
 * (no baseURL) is resolved by the adapter against something Airlock never sees (a browser page's location), so
 * it is refused before anything is sent or signed.
 */
function paidResourceOf(instance: AxiosInstance, config: AxiosRequestConfig): string {
  const uri = instance.getUri(config);
  const url = URL.canParse(uri) ? new URL(uri) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    // The URL is not echoed: it may carry credentials or a token in its query.
    throw new AirlockApiError(400, 'invalid_request', 'An axiosWithAirlock request needs an absolute http(s) URL (a full URL, or a baseURL on the instance): Airlock judges a payment by the URL it pays for. Nothing was sent or paid.');
  }
  return uri;
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
    // The fetch adapter does not tell which URL answered: it follows no redirect, so the one that answers is the
    // requested one (found by review: a 402 met after a redirect was paid as the requested URL's).
    config.fetchOptions = { ...(config.fetchOptions ?? {}), redirect: 'manual' };
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
    const final = finalUrlOf(response, error.config);
    try {
      if (!final) refuseUnknownAnswerer(requested);
      checkX402Challenge(requested, final.url ?? requested, final.redirected, paymentRequiredOf(response));
    } catch (refusal) {
      return Promise.reject(refusal);
    }
    return Promise.reject(error);
  });
}

/**
 * The URL that answered, as the adapter reports it: follow-redirects' responseUrl (Node http adapter), responseURL
 * (xhr). `{}` (the requested URL) when the adapter cannot have followed a redirect: the fetch adapter with
 * `redirect: 'manual'` or `'error'`, the Node http adapter with `maxRedirects: 0` (no follow-redirects). Undefined
 * when it is not known: the caller refuses to pay.
 */
function finalUrlOf(response: AxiosResponse, config: InternalAxiosRequestConfig): { url?: string; redirected: boolean } | undefined {
  const request = response.request as { res?: { responseUrl?: unknown; redirects?: unknown[] }; responseURL?: unknown } | undefined;
  const url = typeof request?.res?.responseUrl === 'string' ? request.res.responseUrl : typeof request?.responseURL === 'string' && request.responseURL ? request.responseURL : undefined;
  if (url) return { url, redirected: (request?.res?.redirects?.length ?? 0) > 0 };
  const fetchRequest = typeof Request === 'function' && request instanceof Request;
  const redirect = (config.fetchOptions as { redirect?: unknown } | undefined)?.redirect;
  if (fetchRequest && (redirect === 'manual' || redirect === 'error')) return { redirected: false };
  if (!fetchRequest && request?.res !== undefined && config.maxRedirects === 0) return { redirected: false };
  return undefined;
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
