// What every tool shares: one Airlock HTTP client and one viem account for the configured session, the
// x402 and L402 fetches, a wallet per configured chain, and the approvals this server has seen requested.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPublicClient, createWalletClient, defineChain, http as rpcTransport, type Chain, type LocalAccount, type PublicClient, type WalletClient } from 'viem';
import { airlockAccount, createAirlockHttp, createL402Fetch, fetchWithAirlock, type AirlockHttp, type X402PaymentTerms, type X402SignedAuthorization } from '@airlock/sdk';
import type { McpConfig } from './config.ts';
import { ToolError } from './results.ts';
import { createOutboundFetch } from './outbound.ts';
import type { CallDeadline } from './tools/time-limit.ts';

export interface TrackedApproval {
  id: string;
  /** The tool whose request is waiting. */
  tool: string;
  requestedAt: string;
}

/** A Lightning payment an L402 fetch made (or finished) during one call: amounts in millisatoshis. */
export interface L402PaymentMade {
  paymentId: string;
  amountMsat: string;
  feeMsat: string;
  /** Airlock had paid this invoice already: no second payment was made. */
  replayed: boolean;
}

/** One pay_x402 call: its own check of what a payment would pay, and what Airlock signed for it meanwhile. */
export interface X402Call {
  /** Runs before Airlock is asked to sign (in this call only); throwing refuses, and nothing is signed. */
  beforeSign?(terms: X402PaymentTerms | undefined): void;
  /** Filled as Airlock signs: each entry can be settled by the server, whatever it answers afterwards. */
  signed: X402SignedAuthorization[];
}

export interface ToolContext {
  config: McpConfig;
  http: AirlockHttp;
  /** The agent as a viem account; its signatures go through Airlock's policy (GET /v1/session once). */
  account(): Promise<LocalAccount>;
  /**
   * The SDK's fetchWithAirlock for one pay_x402 call. What Airlock signs is filed in `call.signed` as it happens,
   * so a call that fails afterwards (the server hangs up) still knows it (found by review: only the server's
   * PAYMENT-RESPONSE was reported, and a server that took the payment and hung up left no trace of it).
   */
  payFetch(url: string, init: RequestInit, call: X402Call): Promise<Response>;
  /**
   * The SDK's createL402Fetch (one per process, so credentials are reused across calls). What Airlock paid for
   * this call is filed in `payments` as it happens: it stays known when the fetch then fails.
   */
  l402Fetch(url: string, init: RequestInit, payments: L402PaymentMade[]): Promise<Response>;
  /**
   * Runs `work` with its requests to Airlock bounded by `deadline`: one still unanswered when it passes is cut off
   * (`airlock_timeout`), and one that signs or pays is named in `deadline.undecided`, since Airlock may still sign
   * or pay it. The paying tools and send_transfer run under it.
   */
  withinDeadline<T>(deadline: CallDeadline, work: () => Promise<T>): Promise<T>;
  /** `text` with every L402 preimage this process has seen cut out (an API that echoes the Authorization header). */
  withoutL402Secrets(text: string): string;
  /** Clients for a chain with a configured RPC URL; a `no_rpc_for_chain` ToolError otherwise. */
  chain(chainId: number): { publicClient: PublicClient; wallet(account: LocalAccount): WalletClient };
  /** Approval ids seen in 202 answers, oldest first. Airlock has no agent-side list, so this server keeps one. */
  approvals: Map<string, TrackedApproval>;
}

export function createToolContext(config: McpConfig): ToolContext {
  const deadlines = new AsyncLocalStorage<CallDeadline>();
  // Every SDK client reaches Airlock through this fetch, so a call's deadline bounds Airlock's answers too.
  const options = { url: config.url, token: config.token, fetch: airlockFetchWithin(deadlines) };
  let account: Promise<LocalAccount> | undefined;
  const chains = new Map<number, Chain>();
  const chainOf = (chainId: number): { chain: Chain; rpcUrl: string } => {
    const rpcUrl = config.rpc.get(chainId);
    if (!rpcUrl) {
      throw new ToolError('no_rpc_for_chain', `No RPC URL is configured for eip155:${chainId}, so nothing can be broadcast there.`, [
        `Configured chains: ${[...config.rpc.keys()].map((id) => `eip155:${id}`).join(', ') || 'none'}. The operator sets AIRLOCK_EVM_RPC="eip155:${chainId}=https://…" for \`airlock mcp\`.`,
      ]);
    }
    let chain = chains.get(chainId);
    if (!chain) {
      // Only the id matters to viem here: it signs with this chain id and asks the RPC for nonce, gas and fees.
      chain = defineChain({ id: chainId, name: `eip155:${chainId}`, nativeCurrency: { name: 'native', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
      chains.set(chainId, chain);
    }
    return { chain, rpcUrl };
  };
  const http = createAirlockHttp(options);
  // What the paying tools fetch goes through the outbound check (no private targets, never the daemon, no
  // redirects); Airlock itself is reached with the plain fetch above.
  const outbound = createOutboundFetch({ daemonUrl: config.url, allow: config.allowPrivateUrls ?? { kind: 'none' } });
  const l402 = observedL402Fetch(http, outbound);
  // One x402 fetch for the process (its client is built once); each call's own state comes in through
  // AsyncLocalStorage, since the signer's hooks are the SDK's and calls may run at once.
  const x402Calls = new AsyncLocalStorage<X402Call>();
  const payFetch = fetchWithAirlock(outbound, {
    ...options,
    beforeSign: (terms) => x402Calls.getStore()?.beforeSign?.(terms),
    onSigned: (signed) => x402Calls.getStore()?.signed.push(signed),
  });
  return {
    config,
    http,
    account() {
      // A failed first call (daemon down) must not stick: the next tool call tries again.
      account ??= airlockAccount(options).catch((e: unknown) => {
        account = undefined;
        throw e;
      });
      return account;
    },
    payFetch: (url, init, call) => x402Calls.run(call, () => payFetch(url, init)),
    withinDeadline: (deadline, work) => deadlines.run(deadline, work),
    l402Fetch: l402.fetch,
    withoutL402Secrets: l402.withoutSecrets,
    chain(chainId) {
      const { chain, rpcUrl } = chainOf(chainId);
      return {
        publicClient: createPublicClient({ chain, transport: rpcTransport(rpcUrl) }),
        wallet: (signer) => createWalletClient({ account: signer, chain, transport: rpcTransport(rpcUrl) }),
      };
    },
    approvals: new Map(),
  };
}

/**
 * The fetch that reaches Airlock. Within a call's deadline every request is cut off when it passes (found by review:
 * signing had no limit, and /v1/l402/pay holds its caller for up to the Lightning pay timeout + 5 s, 65 s by default,
 * so the answer came after the MCP client had given up, and send_transfer still broadcast a signature that arrived
 * late). The body is read here too: Airlock's answer is not known until it is. The SDK sends an Idempotency-Key
 * with exactly the requests that sign or pay; one of those cut off may still be signed or paid, and is recorded.
 */
function airlockFetchWithin(deadlines: AsyncLocalStorage<CallDeadline>): typeof globalThis.fetch {
  return async (input, init) => {
    const deadline = deadlines.getStore();
    if (!deadline) return fetch(input, init);
    // Past the deadline nothing more is asked: the answer could not reach the model any more.
    deadline.signal.throwIfAborted();
    const idempotencyKey = new Headers(init?.headers).get('idempotency-key');
    try {
      const response = await fetch(input, { ...init, signal: deadline.signal });
      const body = await response.arrayBuffer();
      return new Response(NULL_BODY_STATUSES.has(response.status) ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers });
    } catch (e) {
      if (!deadline.signal.aborted) throw e;
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (idempotencyKey !== null) deadline.undecided = { path, idempotencyKey };
      const limit = deadline.signal.reason instanceof Error ? `${deadline.signal.reason.message} ` : '';
      throw new ToolError('airlock_timeout', `${limit}Airlock had not answered ${path} by then.`);
    }
  };
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * createL402Fetch answers with the API's response only; what it paid is in Airlock's answers to it. So it gets
 * an Airlock client that reads those answers on their way past (the pay route, an approval's result, a payment
 * read back) and files each succeeded payment under the tool call it serves (AsyncLocalStorage: calls may run
 * at once, and a purchase belongs to the call whose request started it). Preimages are kept only to be cut out
 * of responses; a preimage is the credential's secret half.
 */
function observedL402Fetch(http: AirlockHttp, outbound: typeof globalThis.fetch): { fetch: ToolContext['l402Fetch']; withoutSecrets(text: string): string } {
  const call = new AsyncLocalStorage<{ payments: L402PaymentMade[] }>();
  const preimages = new Set<string>();
  const observing: AirlockHttp = {
    async request<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
      const answer = await http.request<T>(method, path, body, headers);
      // A credential bought by an earlier process (GET /v1/l402/token) ends in its preimage too.
      const held = path.startsWith('/v1/l402/token') ? /:([0-9a-f]{64})$/.exec(String((answer.body as { authorization?: unknown }).authorization))?.[1] : undefined;
      if (held) preimages.add(held);
      const paid = paymentIn(path, answer.body);
      if (paid) {
        preimages.add(paid.preimage);
        const { preimage: _secret, ...made } = paid;
        const payments = call.getStore()?.payments;
        if (payments && !payments.some((p) => p.paymentId === made.paymentId)) payments.push(made);
      }
      return answer;
    },
  };
  const l402Fetch = createL402Fetch(observing, { fetch: outbound });
  return {
    fetch: (url, init, payments) => call.run({ payments }, () => l402Fetch(url, init)),
    withoutSecrets(text) {
      let out = text;
      for (const preimage of preimages) out = out.split(preimage).join('[l402 preimage]');
      return out;
    },
  };
}

/** A succeeded payment in an Airlock answer to the L402 fetch, if there is one. */
function paymentIn(path: string, answer: unknown): (L402PaymentMade & { preimage: string }) | undefined {
  const body = answer as Record<string, unknown> | undefined;
  const payment = (path.startsWith('/v1/approvals/') ? body?.['result'] : path === '/v1/l402/pay' || path.startsWith('/v1/lightning/payments/') ? body : undefined) as Record<string, unknown> | undefined;
  if (payment?.['status'] !== 'succeeded' || typeof payment['paymentId'] !== 'string' || typeof payment['preimage'] !== 'string') return undefined;
  return { paymentId: payment['paymentId'], amountMsat: String(payment['amountMsat']), feeMsat: String(payment['feeMsat'] ?? '0'), replayed: payment['replayed'] === true, preimage: payment['preimage'] };
}
