// POST /v1/rpc/{chainId}: an Ethereum JSON-RPC endpoint that behaves like a node with one unlocked account,
// the session's agent, so that ethers' JsonRpcSigner, viem's JSON-RPC account, `cast --unlocked` and
// web3.py work against Airlock unchanged (docs/json-rpc.md).
//
// Every signature goes through SigningService.sign, the call POST /v1/sign/{transaction,typed-data,message}
// makes: policy, budget, audit and idempotency apply exactly as there. Everything that signs nothing is
// forwarded to the network's node from AIRLOCK_EVM_RPC.
//
// Not in the REST route table (routes.ts): one POST whose body picks the method has no OpenAPI shape worth
// the name. app.ts registers it beside the table.
import type { Context, Handler } from 'hono';
import { getAddress } from 'viem';
import { AirlockError, forbiddenAccessEntry, isAirlockError, parseUntrustedJson, type AgentAuth } from '@airlock/core';
import { accessPrincipal, admitFurtherRequest, authenticate, type AuthEdge, type Principal } from './auth.ts';
import { clientAddress } from './client-address.ts';
import type { AirlockHolder } from './holder.ts';
import { JsonRpcError, RPC_ERROR, rpcErrorFromAirlock, rpcErrorFromOutcome } from './json-rpc-errors.ts';
import { invalidParams, notTheAgent, transactionPayload } from './json-rpc-transaction.ts';
import { UPSTREAM_MAX_BATCH_ANSWER_BYTES, upstreamNode, type AnswerBudget, type UpstreamNode } from './json-rpc-upstream.ts';
import { readBodyBytes } from './request-body.ts';
import { idempotencyKeyOf } from './request-context.ts';
import { noteDecision } from './request-log.ts';

export const JSON_RPC_PATH = '/v1/rpc/:chainId';
const ROUTE = `POST ${JSON_RPC_PATH}`;
/** Calls in one batch; ethers batches up to 100 by default. */
export const MAX_BATCH = 100;

/**
 * Methods forwarded to the node: the standard reads, filters and `eth_sendRawTransaction` (bytes someone already
 * signed). An agent's credential must not reach anything else the node serves: node administration and debug
 * namespaces (`admin_`, `debug_`, `miner_`, `txpool_`), a dev node's state changes (`anvil_`, `hardhat_`, `evm_`),
 * or the node's own accounts (`personal_sendTransaction`, `wallet_sendTransaction`, `eth_sendTransaction`
 * without Airlock), so forwarding is an allowlist, not a denylist.
 */
const FORWARDED = new Set([
  'eth_blockNumber', 'eth_getBalance', 'eth_getTransactionCount', 'eth_getCode', 'eth_getStorageAt', 'eth_getProof',
  'eth_call', 'eth_estimateGas', 'eth_createAccessList', 'eth_gasPrice', 'eth_maxPriorityFeePerGas', 'eth_feeHistory', 'eth_blobBaseFee',
  'eth_getBlockByNumber', 'eth_getBlockByHash', 'eth_getBlockReceipts', 'eth_getBlockTransactionCountByNumber', 'eth_getBlockTransactionCountByHash',
  'eth_getTransactionByHash', 'eth_getTransactionByBlockNumberAndIndex', 'eth_getTransactionByBlockHashAndIndex', 'eth_getTransactionReceipt',
  'eth_getUncleCountByBlockNumber', 'eth_getUncleCountByBlockHash', 'eth_getLogs', 'eth_syncing', 'eth_protocolVersion',
  'eth_newFilter', 'eth_newBlockFilter', 'eth_newPendingTransactionFilter', 'eth_getFilterChanges', 'eth_getFilterLogs', 'eth_uninstallFilter',
  'eth_sendRawTransaction', 'net_version', 'net_listening', 'web3_clientVersion',
]);

/**
 * Why a method is refused, if it is. `eth_sign` signs a bare 32-byte hash no policy can read (it may be a
 * transaction); the older typed-data versions are formats Airlock does not decode; anything else not answered
 * here nor forwarded (FORWARDED) is not available through an agent's credential.
 */
function refusal(method: string): string | undefined {
  if (method === 'eth_sign') return 'eth_sign signs a raw hash that no policy can read; use personal_sign or eth_signTypedData_v4.';
  if (/^eth_signTypedData(_v1|_v3)?$/.test(method)) return `${method} is not supported; use eth_signTypedData_v4.`;
  if (ANSWERED.has(method) || FORWARDED.has(method)) return undefined;
  return `${method} is not available through Airlock (it answers the signing methods and forwards standard reads and eth_sendRawTransaction).`;
}

/** Methods Airlock answers itself (dispatch). */
const ANSWERED = new Set(['eth_accounts', 'eth_requestAccounts', 'eth_chainId', 'eth_signTransaction', 'eth_sendTransaction', 'personal_sign', 'eth_signTypedData_v4']);

interface RpcCall {
  id: string | number | null;
  /** A notification (no `id`): executed, not answered (JSON-RPC 2.0 section 4.1). */
  notification: boolean;
  method: string;
  params: unknown;
}

type RpcResponse = { jsonrpc: '2.0'; id: string | number | null } & ({ result: unknown } | { error: ReturnType<JsonRpcError['toJson']> });

export interface JsonRpcEndpointOptions {
  holder: AirlockHolder;
  edge: AuthEdge;
  bodyLimitBytes: number;
  logInternalError: (err: AirlockError) => void;
}

export function jsonRpcEndpoint(options: JsonRpcEndpointOptions): Handler {
  const { holder, edge, bodyLimitBytes, logInternalError } = options;
  // Store-backed authentication on every request (not the signing cache): most calls here are reads
  // forwarded upstream, and they must stop the moment an agent is frozen on any instance.
  const auth = authenticate(edge, 'agent', ROUTE);
  const upstreams = new Map<string, UpstreamNode>();
  const sends = new SerialQueues();

  const upstreamFor = (chainId: number): UpstreamNode | undefined => {
    const network = `eip155:${chainId}`;
    const url = holder.get().config.evmRpc[network];
    if (!url) return undefined;
    // Per network, not per URL: each network checks its own chain id (two networks configured with one URL, a
    // proxy or a slip, made the second skip the check and answer, fill and broadcast on the first's chain: review).
    const key = `${network}|${url}`;
    let node = upstreams.get(key);
    if (!node) upstreams.set(key, (node = upstreamNode(network, url, chainId)));
    return node;
  };

  return async (c) => {
    // Failures before any call is read (credential, body, path) keep their HTTP status, with a JSON-RPC body.
    try {
      await auth(c, async () => {});
    } catch (e) {
      return transportError(c, e);
    }
    let chainId: number;
    let body: unknown;
    try {
      chainId = chainIdOf(c.req.param('chainId'));
      await requireScopeReaches(c.get('principal') as Principal & { kind: 'agent' }, chainId);
      const text = (await readBodyBytes(c, bodyLimitBytes)).toString('utf8');
      body = parseUntrustedJson(text, { subject: 'The JSON-RPC request' });
    } catch (e) {
      return transportError(c, e);
    }

    const principal = c.get('principal') as Principal & { kind: 'agent' };
    // One budget of relayed node answers for the whole request (a batch relays at most that much).
    const session = { auth: principal.auth, chainId, upstream: upstreamFor(chainId), c, answers: { remaining: UPSTREAM_MAX_BATCH_ANSWER_BYTES } };
    if (!Array.isArray(body)) {
      const response = await answer(body, session);
      return response ? c.json(response) : c.body(null, 204);
    }
    if (body.length === 0) return c.json(errorResponse(null, new JsonRpcError(RPC_ERROR.invalidRequest, 'An empty batch is not a request.', { code: 'invalid_request' })));
    if (body.length > MAX_BATCH) return c.json(errorResponse(null, new JsonRpcError(RPC_ERROR.invalidRequest, `A batch holds at most ${MAX_BATCH} calls.`, { code: 'invalid_request' })));
    // In order, one after another: a batch may send transactions whose nonces are filled from the node.
    // Each call counts against the per-session rate as the same call sent alone would: the first is the HTTP
    // request authentication admitted, every further one takes its own token (with its ancestors'), and one over
    // the rate is answered `session_rate_limited` while the others are answered as usual. A batch took one token
    // for up to 100 signatures, 100 times the rate (found by review).
    const source = clientAddress(c);
    const responses: RpcResponse[] = [];
    for (const [index, item] of body.entries()) {
      const admit = index === 0 ? undefined : () => admitFurtherRequest(edge, principal.auth, source);
      const response = await answer(item, session, admit);
      if (response) responses.push(response);
    }
    return responses.length ? c.json(responses) : c.body(null, 204);
  };

  /**
   * The session's scope reaches this endpoint and chain: it names an EVM action, and the path's chain when it lists
   * chains. Every call here, reads and eth_sendRawTransaction included, goes out through the operator's node for that
   * network (and its API key): a Nostr-only or Lightning-only session, or one limited to eip155:8453, read and
   * broadcast through the node of any configured network (found by review). Refused 403 `forbidden` (4100) and
   * recorded, as a credential probing an admin route is.
   */
  async function requireScopeReaches(principal: Principal & { kind: 'agent' }, chainId: number): Promise<void> {
    const { scope } = principal.auth.session;
    const evm = scope.actions.some((action) => action.startsWith('evm.'));
    const listed = scope.chains.length === 0 || scope.chains.some((chain) => /^eip155:\d+$/.test(chain) && Number(chain.slice(7)) === chainId);
    if (evm && listed) return;
    await holder.get().audit.append(forbiddenAccessEntry(edge.now(), accessPrincipal(principal), ROUTE));
    throw evm
      ? new AirlockError('forbidden', `This session is limited to chains ${scope.chains.join(', ')}; eip155:${chainId} is not one of them.`, { hints: [`Use /v1/rpc/{chainId} with a chain of the session, or a session issued for eip155:${chainId}.`] })
      : new AirlockError('forbidden', 'This session has no EVM action (evm.*) in its scope, so the JSON-RPC endpoint is out of its reach.', { hints: ['Issue a session with evm.transaction, evm.typed_data or evm.message for this endpoint.'] });
  }

  /** One call; `admit` (the rate limit of a batch's further calls) runs once it is read, before anything is done. */
  async function answer(item: unknown, session: CallContext, admit?: () => Promise<void>): Promise<RpcResponse | undefined> {
    let call: RpcCall;
    try {
      call = readCall(item);
    } catch (e) {
      return errorResponse(idOf(item), toRpcError(e));
    }
    try {
      await admit?.();
      const result = await dispatch(call, session);
      return call.notification ? undefined : { jsonrpc: '2.0', id: call.id, result };
    } catch (e) {
      return call.notification ? undefined : errorResponse(call.id, toRpcError(e));
    }
  }

  function toRpcError(e: unknown): JsonRpcError {
    if (e instanceof JsonRpcError) return e;
    const error = isAirlockError(e) ? e : new AirlockError('internal', 'Internal error.', { cause: e });
    if (error.code === 'internal' || error.code === 'store_unavailable') logInternalError(error);
    return rpcErrorFromAirlock(error);
  }

  function transportError(c: Context, e: unknown): Response {
    return jsonRpcTransportError(c, e, logInternalError);
  }

  async function dispatch(call: RpcCall, ctx: CallContext): Promise<unknown> {
    const { auth, chainId, upstream } = ctx;
    const agentAddress = auth.agent.address;
    const refused = refusal(call.method);
    if (refused) throw new JsonRpcError(RPC_ERROR.methodNotFound, refused, { code: 'method_refused' });
    switch (call.method) {
      case 'eth_accounts':
      case 'eth_requestAccounts':
        return [getAddress(agentAddress)];
      case 'eth_chainId':
        return `0x${chainId.toString(16)}`;
      case 'eth_signTransaction': {
        const [tx] = positional(call, 1);
        await requireAgentFrom(ctx, tx);
        const signed = await sign(ctx, 'evm.transaction', await transactionPayload(tx, agentAddress, chainId, upstream));
        return signed.signedTransaction;
      }
      case 'eth_sendTransaction': {
        const [tx] = positional(call, 1);
        await requireAgentFrom(ctx, tx);
        const node = requireUpstream(upstream, chainId, call.method);
        // One send per agent and chain at a time on this instance, as a node does for an unlocked account: the
        // next one reads its nonce from the pending pool only after the previous transaction is in it.
        return sends.run(`${agentAddress}:${chainId}`, async () => {
          const signed = await sign(ctx, 'evm.transaction', await transactionPayload(tx, agentAddress, chainId, node));
          return broadcast(node, signed.signedTransaction!, signed.transactionHash!, signed.auditSeq);
        });
      }
      case 'personal_sign': {
        const [data, address] = positional(call, 2);
        await requireAgentAddress(ctx, address, 'params[1] (the address)', 'evm.message', call.params);
        if (typeof data !== 'string') throw invalidParams('params[0] must be the message, 0x-hex bytes');
        // geth and MetaMask take hex bytes; text that is not hex is signed as its UTF-8 bytes, as MetaMask does.
        const message = /^0x([0-9a-f]{2})*$/i.test(data) ? { raw: data } : data;
        return (await sign(ctx, 'evm.message', { chainId, message })).signature;
      }
      case 'eth_signTypedData_v4': {
        const [address, typedData] = positional(call, 2);
        await requireAgentAddress(ctx, address, 'params[0] (the address)', 'evm.typed_data', call.params);
        // Clients send the typed data as a JSON string (MetaMask's form) or as an object.
        const parsed = typeof typedData === 'string' ? typedDataParam(typedData) : typedData;
        // The endpoint's chain: a domain naming another chain is refused (chain_mismatch), as MetaMask does.
        return (await sign(ctx, 'evm.typed_data', { chainId, typedData: parsed })).signature;
      }
      default:
        return requireUpstream(upstream, chainId, call.method).call(call.method, call.params ?? [], ctx.answers);
    }
  }

  /**
   * An address parameter must be the session's agent. One of the agent's earlier keys is refused `key_rotated`
   * (audited, as the REST routes do), any other address `not_agent_address`.
   */
  async function requireAgentAddress(ctx: CallContext, address: unknown, field: string, action: string, payload: unknown): Promise<void> {
    if (typeof address === 'string' && address.toLowerCase() === ctx.auth.agent.address.toLowerCase()) return;
    if (typeof address === 'string' && /^0x[0-9a-fA-F]{40}$/.test(address)) await holder.get().signing.refuseEarlierKey(ctx.auth, address, { action, payload });
    throw notTheAgent(field);
  }

  /** A transaction's `from`, when given, is the session's agent (requireAgentAddress). */
  async function requireAgentFrom(ctx: CallContext, tx: unknown): Promise<void> {
    const from = typeof tx === 'object' && tx !== null && !Array.isArray(tx) ? (tx as Record<string, unknown>).from : undefined;
    if (from !== undefined) await requireAgentAddress(ctx, from, 'from', 'evm.transaction', tx);
  }

  /** SigningService.sign, exactly as the REST signing routes call it; a refusal or a hold becomes a JSON-RPC error. */
  async function sign(ctx: CallContext, action: string, payload: unknown): Promise<{ signature: string; signedTransaction?: string; transactionHash?: string; auditSeq: number }> {
    const idempotencyKey = idempotencyKeyOf(ctx.c);
    const outcome = await holder.get().signing.sign(ctx.auth, action, payload, idempotencyKey);
    noteDecision(ctx.c, outcome.body);
    const refused = rpcErrorFromOutcome(outcome);
    if (refused) throw refused;
    return outcome.body as { signature: string; signedTransaction?: string; transactionHash?: string; auditSeq: number };
  }
}

/** Runs tasks with the same key one after another (tasks with different keys run concurrently). */
class SerialQueues {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

interface CallContext {
  auth: AgentAuth;
  chainId: number;
  upstream: UpstreamNode | undefined;
  c: Context;
  /** Node answers this HTTP request may still relay. */
  answers: AnswerBudget;
}

/**
 * eth_sendRawTransaction of what was signed. The signature is charged and audited whether or not the node
 * takes it (over-count, never under-count, as with any released signature). A node that refuses it because
 * it already has it (a retry with the same Idempotency-Key replays the same bytes) still gets the hash back.
 */
async function broadcast(node: UpstreamNode, signedTransaction: string, transactionHash: string, auditSeq: number): Promise<unknown> {
  try {
    return await node.call('eth_sendRawTransaction', [signedTransaction]);
  } catch (e) {
    const known = await node.call('eth_getTransactionByHash', [transactionHash]).catch(() => null);
    if (known) return transactionHash;
    if (!(e instanceof JsonRpcError)) throw e;
    // The node's code and message (clients match on them: "nonce too low", "insufficient funds"), plus what was signed.
    throw new JsonRpcError(e.code, e.message, { code: 'broadcast_failed', upstream: e.data, transactionHash, auditSeq });
  }
}

function requireUpstream(upstream: UpstreamNode | undefined, chainId: number, method: string): UpstreamNode {
  if (upstream) return upstream;
  throw new JsonRpcError(RPC_ERROR.unavailable, `${method} needs a node for eip155:${chainId}, and none is configured (AIRLOCK_EVM_RPC).`, { code: 'upstream_not_configured', network: `eip155:${chainId}` });
}

/** The path's chain: a positive decimal integer (`/v1/rpc/8453`). */
function chainIdOf(param: string | undefined): number {
  if (!param || !/^[1-9][0-9]{0,15}$/.test(param) || !Number.isSafeInteger(Number(param))) {
    throw new AirlockError('not_found', 'No such endpoint: the path is /v1/rpc/{chainId}, a decimal chain id such as 8453.');
  }
  return Number(param);
}

/** A JSON-RPC 2.0 request object (section 4), or an invalid-request error. */
function readCall(item: unknown): RpcCall {
  const bad = (why: string) => new JsonRpcError(RPC_ERROR.invalidRequest, `Not a JSON-RPC 2.0 request: ${why}.`, { code: 'invalid_request' });
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad('expected an object');
  const call = item as Record<string, unknown>;
  if (call.jsonrpc !== '2.0') throw bad('"jsonrpc" must be "2.0"');
  if (typeof call.method !== 'string' || call.method === '') throw bad('"method" must be a non-empty string');
  const id = call.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id))) throw bad('"id" must be a string, a number or null');
  if (call.params !== undefined && (typeof call.params !== 'object' || call.params === null)) throw bad('"params" must be an array or an object');
  return { id: id === undefined ? null : (id as string | number | null), notification: !('id' in call), method: call.method, params: call.params };
}

/** The id to answer an invalid request with: its own when it has a usable one, else null (section 5). */
function idOf(item: unknown): string | number | null {
  const id = typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}

/**
 * Typed data sent as a JSON string (MetaMask's form). Text that is not JSON, or hostile JSON, is a bad param
 * (-32602, Airlock's code in `data.code`), not -32700: the request itself was JSON (found by review).
 */
function typedDataParam(text: string): unknown {
  try {
    return parseUntrustedJson(text, { subject: 'params[1] (the typed data)' });
  } catch (e) {
    if (!isAirlockError(e)) throw e;
    throw new JsonRpcError(RPC_ERROR.invalidParams, e.message, { code: e.code });
  }
}

function positional(call: RpcCall, count: number): unknown[] {
  const params = call.params ?? [];
  if (!Array.isArray(params)) throw invalidParams(`${call.method} takes positional params (an array)`);
  if (params.length < count) throw invalidParams(`${call.method} takes ${count} param${count === 1 ? '' : 's'}`);
  return params;
}

/**
 * A failure before any call is read (credential, body, path, and the app's own guards: the Host and Origin checks,
 * a daemon shutting down), with its HTTP status and a JSON-RPC body, so a JSON-RPC client reads it as one (found by
 * review: the guards' refusals came back in the REST API's shape, which clients report as a malformed answer).
 */
export function jsonRpcTransportError(c: Context, e: unknown, logInternalError: (e: AirlockError) => void): Response {
  const error = isAirlockError(e) ? e : new AirlockError('internal', 'Internal error.', { cause: e });
  if (error.code === 'internal' || error.code === 'store_unavailable') logInternalError(error);
  const retryAfter = error.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') c.header('Retry-After', String(retryAfter));
  return c.json(errorResponse(null, rpcErrorFromAirlock(error)), error.status as 400);
}

function errorResponse(id: string | number | null, error: JsonRpcError): RpcResponse {
  return { jsonrpc: '2.0', id, error: error.toJson() };
}
