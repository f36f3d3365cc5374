// The node behind the JSON-RPC signer endpoint: the per-network URL of AIRLOCK_EVM_RPC (config.ts), the
// same one the x402 reconciler reads. Reads are forwarded to it and signed transactions broadcast through it.
import { JsonRpcError, RPC_ERROR } from './json-rpc-errors.ts';

/** How long one upstream call may take before the client gets `upstream_unavailable`. */
const UPSTREAM_TIMEOUT_MS = 15_000;

export interface UpstreamNode {
  /** The node's `result`, or a JsonRpcError: the node's own error as it answered, or `upstream_unavailable`. */
  call(method: string, params: unknown): Promise<unknown>;
}

/**
 * A JSON-RPC client for one network's node. Before its first use it checks that the node is on the chain
 * the endpoint's path names (a misconfigured URL would otherwise answer reads about another chain).
 *
 * The URL can carry a provider's API key, so it never appears in an error, a response or a log line:
 * failures say which network did not answer, nothing more.
 */
export function upstreamNode(network: string, url: string, chainId: number): UpstreamNode {
  let chainChecked: Promise<void> | undefined;
  let nextId = 1;
  const unavailable = (why: string) => new JsonRpcError(RPC_ERROR.unavailable, `The upstream node for ${network} ${why}.`, { code: 'upstream_unavailable', network });

  async function send(method: string, params: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: params ?? [] }),
        signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
      });
    } catch {
      // The cause (undici) can name the URL: dropped on purpose.
      throw unavailable('did not answer');
    }
    let body: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw unavailable(`answered HTTP ${res.status} without JSON-RPC`);
    }
    if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
      const { code, message, data } = body.error;
      throw new JsonRpcError(typeof code === 'number' ? code : RPC_ERROR.internal, typeof message === 'string' ? message : 'upstream error', data);
    }
    if (!body || typeof body !== 'object' || !('result' in body)) throw unavailable(`answered HTTP ${res.status} without a JSON-RPC result`);
    return body.result;
  }

  async function checkChain(): Promise<void> {
    const answered = await send('eth_chainId', []);
    if (typeof answered !== 'string' || !/^0x[0-9a-f]+$/i.test(answered) || BigInt(answered) !== BigInt(chainId)) {
      throw new JsonRpcError(RPC_ERROR.unavailable, `The upstream node configured for ${network} is on another chain.`, { code: 'upstream_chain_mismatch', network });
    }
  }

  return {
    async call(method, params) {
      // Checked once; a failed check (node down, wrong chain) is tried again on the next call.
      chainChecked ??= checkChain().catch((e: unknown) => {
        chainChecked = undefined;
        throw e;
      });
      await chainChecked;
      return send(method, params);
    },
  };
}
