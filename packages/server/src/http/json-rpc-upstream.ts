// The node behind the JSON-RPC signer endpoint: the per-network URL of AIRLOCK_EVM_RPC (config.ts), the
// same one the x402 reconciler reads. Reads are forwarded to it and signed transactions broadcast through it.
import { readCappedBytes } from '../read-capped.ts';
import { JsonRpcError, RPC_ERROR } from './json-rpc-errors.ts';

/** How long one upstream call may take before the client gets `upstream_unavailable`. */
const UPSTREAM_TIMEOUT_MS = 15_000;

/**
 * The most bytes of one node answer read (a wide `eth_getLogs`, or a node that answers without end), and of all
 * the answers relayed for one HTTP request (a batch of up to 100 calls). Answers were read whole and relayed: two
 * 48 MiB `eth_getLogs` answers grew the daemon by 774 MiB, and a batch of 100 would have ended it, for every agent
 * (found by review). Past a cap the call is answered `upstream_answer_too_large` and the read cancelled.
 */
export const UPSTREAM_MAX_ANSWER_BYTES = 8 * 1024 * 1024;
export const UPSTREAM_MAX_BATCH_ANSWER_BYTES = 16 * 1024 * 1024;

/** Bytes of node answers one HTTP request may still relay (UPSTREAM_MAX_BATCH_ANSWER_BYTES at its start). */
export interface AnswerBudget {
  remaining: number;
}

export interface UpstreamNode {
  /**
   * The node's `result`, or a JsonRpcError: the node's own error as it answered, `upstream_unavailable`, or
   * `upstream_answer_too_large` (past UPSTREAM_MAX_ANSWER_BYTES, or what `budget` has left).
   */
  call(method: string, params: unknown, budget?: AnswerBudget): Promise<unknown>;
}

/**
 * A JSON-RPC client for one network's node. Before its first use it checks that the node is on the chain
 * the endpoint's path names (a misconfigured URL would otherwise answer reads about another chain).
 *
 * The URL can carry a provider's API key, so it never appears in an error, a response or a log line:
 * failures say which network did not answer, nothing more.
 */
export function upstreamNode(network: string, url: string, chainId: number): UpstreamNode {
  let nextId = 1;
  const unavailable = (why: string) => new JsonRpcError(RPC_ERROR.unavailable, `The upstream node for ${network} ${why}.`, { code: 'upstream_unavailable', network });

  async function send(method: string, params: unknown, budget?: AnswerBudget): Promise<unknown> {
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
    const cap = Math.min(UPSTREAM_MAX_ANSWER_BYTES, budget?.remaining ?? UPSTREAM_MAX_ANSWER_BYTES);
    // A read that fails midway is an answer without JSON-RPC (parsed below as such).
    const bytes = await readCappedBytes(res.body, cap, res.headers.get('content-length')).catch(() => Buffer.alloc(0));
    if (bytes === undefined) {
      throw new JsonRpcError(RPC_ERROR.limitExceeded, `The upstream node's answer to ${method} is larger than ${cap} bytes${cap < UPSTREAM_MAX_ANSWER_BYTES ? ' (what this request may still relay)' : ''}: ask for less (a narrower block range), or send the calls in separate requests.`, { code: 'upstream_answer_too_large', network, limitBytes: cap });
    }
    if (budget) budget.remaining -= bytes.byteLength;
    let body: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } };
    try {
      body = JSON.parse(bytes.toString('utf8')) as typeof body;
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

  const checkChain = checkedOnce(async () => {
    if (!chainIdMatches(await send('eth_chainId', []), chainId)) {
      throw new JsonRpcError(RPC_ERROR.unavailable, `The upstream node configured for ${network} is on another chain.`, { code: 'upstream_chain_mismatch', network });
    }
  });

  return {
    async call(method, params, budget) {
      await checkChain();
      return send(method, params, budget);
    },
  };
}

/**
 * Whether a node's `eth_chainId` answer is `chainId`. Every reader of AIRLOCK_EVM_RPC asks it before its first
 * read (this endpoint, the x402 reconciler's chain reader, the lifecycle submitter): a URL of another chain's node
 * answers truthfully about the wrong chain (a nonce "unused" there releases a hold whose payment settled here).
 */
export function chainIdMatches(answered: unknown, chainId: number): boolean {
  return typeof answered === 'string' && /^0x[0-9a-f]{1,64}$/i.test(answered) && BigInt(answered) === BigInt(chainId);
}

/**
 * `check` run once: a success is kept for good, a failure (node down, wrong chain) is forgotten, so the next
 * call runs it again. Calls made while it runs share its answer.
 */
export function checkedOnce(check: () => Promise<void>): () => Promise<void> {
  let checked: Promise<void> | undefined;
  return () => {
    checked ??= check().catch((e: unknown) => {
      checked = undefined;
      throw e;
    });
    return checked;
  };
}
