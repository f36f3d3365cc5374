// x402 for agents whose keys live in Airlock: a ClientEvmSigner for the official @x402 client, and a fetch
// that pays through it. Airlock decides; this module never pays around a refusal and never retries one.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Hex, TypedDataDefinition } from 'viem';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { decodePaymentRequiredHeader } from '@x402/core/http';
import type { SpendControls } from '@x402/core/client';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { ExactEvmSchemeV1, NETWORKS } from '@x402/evm/v1';
import { x402ExactPermit2ProxyAddress, type ClientEvmSigner } from '@x402/evm';
import { AirlockApiError, createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';
import { checkTypedDataSignature } from './evm-verify.ts';

export interface AirlockX402Options extends AirlockHttpOptions {
  /**
   * When a payment needs human approval: wait up to this many ms (polling) for the decision, then pay.
   * Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
  /**
   * Called before each authorization is sent to Airlock, in the caller's async context, with what it would pay
   * (undefined when the typed data is not a transfer x402PaymentTerms reads). Throwing refuses it: nothing is
   * signed, and the paid call rejects with what was thrown.
   */
  beforeSign?: (terms: X402PaymentTerms | undefined) => void | Promise<void>;
  /**
   * Called as soon as Airlock has signed, in the caller's async context. The authorization can be settled from
   * then on, whatever the paid server answers afterwards or whether it answers at all.
   */
  onSigned?: (signed: X402SignedAuthorization) => void;
}

/** What a payment authorization pays, read from the typed data itself (what Airlock signs, not what a server says). */
export interface X402PaymentTerms {
  payTo: Hex;
  /** In base units of `asset`. */
  amount: string;
  /** The token contract. */
  asset: Hex;
  /** CAIP-2: `eip155:<chainId>`. */
  network: string;
  /** Unix seconds: it can be settled until then. */
  validBefore: string;
}

/** An authorization Airlock signed: its terms when the typed data is a transfer x402PaymentTerms reads. */
export interface X402SignedAuthorization {
  primaryType: string;
  nonce?: Hex;
  /** Airlock's payment record (EIP-3009 authorizations). */
  paymentId?: string;
  terms?: X402PaymentTerms;
}

/**
 * The terms of the transfers x402's EVM schemes sign: an EIP-3009 authorization (the token is the domain's
 * verifying contract) or a Permit2 witness transfer (token and amount permitted, payee in the witness).
 * Undefined for any other typed data.
 */
export function x402PaymentTerms(domain: Record<string, unknown>, primaryType: string, message: Record<string, unknown>): X402PaymentTerms | undefined {
  if (domain['chainId'] === undefined) return undefined;
  const network = `eip155:${String(domain['chainId'])}`;
  const m = message as { to?: Hex; value?: unknown; validBefore?: unknown; deadline?: unknown; permitted?: { token?: Hex; amount?: unknown }; witness?: { to?: Hex } };
  const asset = domain['verifyingContract'] as Hex | undefined;
  if ((primaryType === 'TransferWithAuthorization' || primaryType === 'ReceiveWithAuthorization') && asset && m.to && m.value !== undefined && m.validBefore !== undefined) {
    return { payTo: m.to, amount: String(m.value), asset, network, validBefore: String(m.validBefore) };
  }
  // The witness names the payee only for x402's own Permit2 proxy (it enforces Witness.to); with any other spender
  // the witness's `to` says nothing about who can take the tokens, so no terms are read (found by review).
  const spender = (message as { spender?: unknown }).spender;
  const viaX402Proxy = typeof spender === 'string' && spender.toLowerCase() === x402ExactPermit2ProxyAddress.toLowerCase();
  if (primaryType === 'PermitWitnessTransferFrom' && viaX402Proxy && m.permitted?.token && m.permitted.amount !== undefined && m.witness?.to && m.deadline !== undefined) {
    return { payTo: m.witness.to, amount: String(m.permitted.amount), asset: m.permitted.token, network, validBefore: String(m.deadline) };
  }
  return undefined;
}

/** What one paid call knows while the official client builds its payment. */
interface PaymentContext {
  /** The URL being paid for: Airlock's resource rules match it. */
  resource: string;
  /** Authorizations Airlock signed during this call (normally one). */
  signed: { nonce: Hex; paymentId?: string }[];
  /**
   * The signer's own failure (Airlock's refusal, a beforeSign refusal, Airlock unreachable), kept so the caller
   * gets it rather than the plain Error the x402 client wraps it into.
   */
  failure?: { error: unknown };
}

const paymentContext = new AsyncLocalStorage<PaymentContext>();

/**
 * Runs `fn` with `resource` as the x402 resource of every signature requested inside it, so Airlock applies
 * its resource rules (`match.resources`, per-origin budgets, loop guard) to the generic typed-data path too.
 * When Airlock refuses a signature inside `fn`, this throws Airlock's typed error (AirlockPolicyError with its
 * violations, or AirlockApprovalRequiredError), not the plain Error the x402 client wraps it into.
 * `fetchWithAirlock` does this for you; use it when you drive `x402Client` yourself.
 */
export function withX402Resource<T>(resource: string, fn: () => Promise<T>): Promise<T> {
  return runPaymentContext({ resource, signed: [] }, fn);
}

/** Runs `fn` in `ctx`; a failure after a refusal surfaces as the refusal itself. */
async function runPaymentContext<T>(ctx: PaymentContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await paymentContext.run(ctx, fn);
  } catch (e) {
    // The x402 transports (@x402/fetch, @x402/axios) rethrow signer errors as `new Error(message)`, losing
    // the type and the violations; the signer kept the original here.
    if (ctx.failure) throw ctx.failure.error;
    throw e;
  }
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
      const terms = x402PaymentTerms(domain, primaryType, message);
      let out: SignBody;
      try {
        await options.beforeSign?.(terms);
        out = await signWithRetry<SignBody>(http, '/v1/sign/typed-data', body, options.approvalWaitMs ?? 0);
        // The agent's own signature over exactly the payment asked for, before it is sent to anyone.
        await checkTypedDataSignature(me.agent.address, { domain, types, primaryType, message } as TypedDataDefinition, out.signature);
      } catch (e) {
        if (ctx) ctx.failure = { error: e };
        throw e;
      }
      const nonce = (message as { nonce?: Hex }).nonce;
      const paymentId = out.paymentId ? { paymentId: out.paymentId } : {};
      if (ctx && nonce) ctx.signed.push({ nonce, ...paymentId });
      options.onSigned?.({ primaryType, ...(typeof nonce === 'string' ? { nonce } : {}), ...paymentId, ...(terms ? { terms } : {}) });
      return out.signature;
    },
  };
}

/**
 * Registers Airlock's signer on an x402 client for exact/EVM: every `eip155:*` network (v2) and every named
 * network (v1). Use it to add Airlock to a client you configure yourself (hooks, policies, other schemes).
 */
export function registerAirlockSchemes(client: x402Client, signer: ClientEvmSigner): x402Client {
  client.register('eip155:*', new ExactEvmScheme(signer));
  for (const network of NETWORKS) client.registerV1(network as `${string}:${string}`, new ExactEvmSchemeV1(signer));
  return client;
}

export interface AirlockPaymentOptions extends AirlockX402Options {
  /**
   * An x402 client of your own, with Airlock's signer registered on it (`registerAirlockSchemes`), for its
   * hooks, requirement selector or policies. Default: a new client with Airlock's schemes and no other.
   */
  client?: x402Client;
  /**
   * The official client's own spend controls. Default `false` on the client built here: Airlock's policy is
   * the control (the agent's process is not a security boundary), and the client's defaults refuse any token
   * it does not know, including a local test token. A client you pass keeps its own unless you set this.
   * Pass SpendControls to add a client-side cap on top.
   */
  spendControls?: SpendControls | false;
  /** Called when reporting a settlement back to Airlock fails (the reconciler still finds it on chain). */
  onReportError?: (error: unknown) => void;
}

/**
 * What the fetch and axios transports share: the x402 client (built once, lazily: the signer asks Airlock
 * for the address) and one paid call, run in its payment context, with its settlement reported afterwards.
 */
export interface AirlockPayments {
  client(): Promise<x402Client>;
  /** Runs `call` for `resource`; reports the server's PAYMENT-RESPONSE (read by `paymentResponseOf`) to Airlock. */
  paidCall<R>(resource: string, call: () => Promise<R>, paymentResponseOf: (result: R) => string | null | undefined): Promise<R>;
}

export function airlockPayments(options: AirlockPaymentOptions): AirlockPayments {
  const http = createAirlockHttp(options);
  let ready: Promise<x402Client> | undefined;
  const build = async (): Promise<x402Client> => {
    const client = options.client ?? registerAirlockSchemes(new x402Client(), await airlockX402Signer(options));
    if (options.spendControls !== undefined || !options.client) client.setSpendControls(options.spendControls ?? false);
    return client;
  };
  return {
    // A failed build (Airlock down) must not stick: the next call tries again.
    client: () =>
      (ready ??= build().catch((e: unknown) => {
        ready = undefined;
        throw e;
      })),
    async paidCall(resource, call, paymentResponseOf) {
      // Credentials in the URL (http://user:pass@host/) are not part of the resource and never leave this process.
      const ctx: PaymentContext = { resource: withoutCredentials(resource), signed: [] };
      const result = await runPaymentContext(ctx, call);
      const paymentResponse = paymentResponseOf(result);
      const signed = ctx.signed.at(-1);
      if (paymentResponse && signed) {
        await http
          .request('POST', '/v1/x402/settlement', { ...(signed.paymentId ? { paymentId: signed.paymentId } : {}), nonce: signed.nonce, paymentResponse })
          .catch((e: unknown) => options.onReportError?.(e));
      }
      return result;
    },
  };
}

export type AirlockPaidFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Request headers that carry a signed x402 payment (v2, v1). */
const PAYMENT_HEADERS = ['payment-signature', 'x-payment'];

/** `url` without its fragment (a Response's url never has one) and without credentials, normalized. */
function comparable(url: string): string {
  const u = new URL(url);
  u.hash = '';
  u.username = '';
  u.password = '';
  return u.href;
}

/**
 * `url` without the user name and password it may carry (`http://user:pass@host/`: axios's `auth` puts them in
 * the final URL its Node adapter reports): what the SDK reports, in messages, error details or to Airlock.
 */
export function withoutCredentials(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1'); // not absolute, or not a URL: cut what looks like userinfo
  }
  if (!u.username && !u.password) return url;
  u.username = '';
  u.password = '';
  return u.href;
}

/** The default port of http and https: a resource's scheme may differ from the request's behind a TLS proxy. */
const WEB_DEFAULT_PORTS = new Set(['', '80', '443']);

/**
 * Whether `named` is on the host `requested` was sent to: the same host name and port, an http/https difference
 * ignored (a server behind a TLS-terminating proxy sees http and names its resource `http://…` while the agent
 * asked `https://…`; @x402/express builds it from `req.protocol`), the schemes' default ports counted as none.
 * Any other scheme must match the requested origin exactly.
 */
function sameHost(named: URL, requested: URL): boolean {
  const web = (u: URL) => u.protocol === 'http:' || u.protocol === 'https:';
  if (!web(named) || !web(requested)) return named.origin === requested.origin;
  const port = (u: URL) => (WEB_DEFAULT_PORTS.has(u.port) ? '' : u.port);
  return named.hostname === requested.hostname && port(named) === port(requested);
}

/**
 * Refuses a 402 that is not the requested URL's own: Airlock judges a payment by the resource the agent names
 * (resource rules, per-origin budgets, per-resource rate limits, loop guard), so a 402 met after a redirect
 * (another URL, another payee, another price) or one whose PaymentRequired names a resource on another host
 * (host name and port; an http/https difference is allowed, as behind a TLS-terminating proxy) is not paid. URLs
 * are compared and reported without credentials. Throws AirlockApiError `x402_payment_redirected` or `x402_resource_mismatch`; nothing has been
 * asked of Airlock then. `answeredBy` is the URL that answered (the transport's final URL after redirects).
 */
export function checkX402Challenge(requested: string, answeredBy: string, redirected: boolean, paymentRequired: unknown): void {
  // Reported without credentials: axios's `auth` shows up as user:pass@ in the final URL of its Node adapter.
  const asked = withoutCredentials(requested);
  if (redirected || comparable(answeredBy) !== comparable(requested)) {
    const answered = withoutCredentials(answeredBy);
    throw new AirlockApiError(
      402,
      'x402_payment_redirected',
      `${asked} was redirected to ${answered}, which asks for payment. Airlock would judge that payment as one for ${asked}, so it was not paid; request ${answered} itself to pay it under its own rules.`,
      { details: { requested: asked, answeredBy: answered } },
    );
  }
  const target = new URL(requested);
  for (const named of resourcesNamedBy(paymentRequired)) {
    let ok = false;
    try {
      ok = sameHost(new URL(named, requested), target);
    } catch {
      ok = false;
    }
    if (!ok) {
      const resource = withoutCredentials(named);
      throw new AirlockApiError(402, 'x402_resource_mismatch', `${asked} asks for payment for ${resource}, a resource on another host; it was not paid.`, { details: { requested: asked, resource } });
    }
  }
}

/**
 * Refuses a 402 when the transport cannot tell which URL answered and may have followed a redirect (an axios
 * adapter that reports no final URL): failing closed, as checkX402Challenge would for a redirect.
 */
export function refuseUnknownAnswerer(requested: string): never {
  const asked = withoutCredentials(requested);
  throw new AirlockApiError(
    402,
    'x402_payment_redirected',
    `${asked} answered with a request for payment, but the HTTP client did not report which URL answered after any redirect, so it was not paid. Send the request without following redirects (axios: maxRedirects: 0) or with an adapter that reports its final URL (http, xhr, fetch).`,
    { details: { requested: asked } },
  );
}

/** The resource URLs a PaymentRequired names: v2 `resource.url`, v1 each requirement's `resource`. */
function resourcesNamedBy(paymentRequired: unknown): string[] {
  if (paymentRequired === null || typeof paymentRequired !== 'object') return [];
  const p = paymentRequired as { resource?: { url?: unknown }; accepts?: unknown };
  const out: string[] = [];
  if (typeof p.resource?.url === 'string') out.push(p.resource.url);
  if (Array.isArray(p.accepts)) for (const a of p.accepts as { resource?: unknown }[]) if (typeof a?.resource === 'string') out.push(a.resource);
  return out;
}

/** The PaymentRequired of a 402 as the x402 client reads it (v2 header, else a v1 body); undefined when it has none. */
async function paymentRequiredOf(response: Response): Promise<unknown> {
  const header = response.headers.get('payment-required');
  if (header) {
    try {
      return decodePaymentRequiredHeader(header);
    } catch {
      return undefined; // the x402 client refuses it itself
    }
  }
  try {
    const body = (await response.clone().json()) as { x402Version?: unknown };
    return body?.x402Version === 1 ? body : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The fetch the x402 client sends through: a 402 that is not the requested URL's own is refused
 * (checkX402Challenge) before anything is signed, and a request that carries a payment is not redirected (its
 * 3xx comes back as it is), so a signed payment reaches only the URL Airlock judged it for.
 */
function guardedPaymentFetch(fetchImpl: typeof globalThis.fetch): typeof globalThis.fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const paying = PAYMENT_HEADERS.some((h) => request.headers.has(h));
    const response = await fetchImpl(paying ? new Request(request, { redirect: 'manual' }) : request);
    if (response.status !== 402) return response;
    try {
      checkX402Challenge(request.url, response.url || request.url, response.redirected, await paymentRequiredOf(response));
    } catch (e) {
      await response.body?.cancel().catch(() => {});
      throw e;
    }
    return response;
  };
}

/**
 * `fetch` that pays x402 resources through Airlock, built on the official `@x402/fetch`: exact/EVM for every
 * `eip155:*` network (v2) and every named network (v1), or the client you pass. After a paid response it
 * reports the server's PAYMENT-RESPONSE to Airlock (POST /v1/x402/settlement). When Airlock refuses it throws
 * AirlockPolicyError (or AirlockApprovalRequiredError) and sends nothing.
 *
 * Airlock is told the requested URL as the resource, so only that URL's own 402 is paid: a 402 met after a
 * redirect throws AirlockApiError `x402_payment_redirected`, and one whose PaymentRequired names a resource on
 * another host `x402_resource_mismatch` (details: requested, answeredBy / resource); Airlock is not asked and
 * nothing is paid. The request that carries the payment is sent with `redirect: 'manual'`: a 3xx answer to it
 * is returned as it is, so the payment header never follows a redirect to another server.
 */
export function fetchWithAirlock(fetchImpl: typeof globalThis.fetch, options: AirlockPaymentOptions): AirlockPaidFetch {
  const payments = airlockPayments(options);
  let paying: Promise<AirlockPaidFetch> | undefined;
  return async (input, requestInit) => {
    // Cleared on failure as the client is: a call while Airlock was down must not fail every later one.
    paying ??= payments.client().then(
      (client) => wrapFetchWithPayment(guardedPaymentFetch(fetchImpl), client),
      (e: unknown) => {
        paying = undefined;
        throw e;
      },
    );
    const pay = await paying;
    return payments.paidCall(
      requestUrl(input),
      () => pay(input, requestInit),
      (response) => response.headers.get('payment-response') ?? response.headers.get('x-payment-response'),
    );
  };
}

function requestUrl(input: string | URL | Request): string {
  if (input instanceof URL) return input.href;
  if (typeof input === 'string') return new URL(input).href;
  return input.url;
}
