import { randomUUID } from 'node:crypto';
import { toAccount } from 'viem/accounts';
import type { Hex, LocalAccount, SignableMessage, TransactionSerializable, TypedDataDefinition } from 'viem';
import { AirlockApprovalRequiredError, createAirlockHttp, type AirlockHttp, type AirlockHttpOptions, type Violation } from './http.ts';

export interface AirlockAccountOptions extends AirlockHttpOptions {
  /** Chain id sent with personal messages (messages carry none of their own). Default 1. */
  messageChainId?: number;
  /**
   * When a request needs human approval: wait up to this many ms for the decision (polling), then
   * return the signature. Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
}

interface SignBody {
  signature: Hex;
  signedTransaction?: Hex;
  approvalId?: string;
  expiresAt?: string;
  violations?: Violation[];
}

/**
 * A viem `Account` whose keys live in Airlock: `signTransaction`, `signTypedData` and `signMessage`
 * go through Airlock's policy, so `walletClient.sendTransaction` etc. work unchanged.
 * Policy refusals throw AirlockPolicyError carrying the violations.
 */
export async function airlockAccount(options: AirlockAccountOptions): Promise<LocalAccount<'airlock'>> {
  const http = createAirlockHttp(options);
  const { body: me } = await http.request<{ agent: { address: Hex } }>('GET', '/v1/session');
  const sign = (path: string, payload: unknown) => signWithRetry(http, path, payload, options.approvalWaitMs ?? 0);
  const account = toAccount({
    address: me.agent.address,
    async signMessage({ message }: { message: SignableMessage }) {
      const m = typeof message === 'string' ? message : { raw: typeof message.raw === 'string' ? message.raw : `0x${Buffer.from(message.raw).toString('hex')}` };
      return (await sign('/v1/sign/message', { chainId: options.messageChainId ?? 1, message: m })).signature;
    },
    async signTransaction(transaction: TransactionSerializable) {
      // viem's sendTransaction hands the account its whole prepared request, including its own plumbing
      // (`account`, `chain`, `nonceManager`); those are not transaction fields and Airlock refuses unknown fields.
      const { chainId, account: _account, chain: _chain, nonceManager: _nonceManager, ...rest } = transaction as TransactionSerializable & { account?: unknown; chain?: unknown; nonceManager?: unknown };
      const out = await sign('/v1/sign/transaction', { chainId, transaction: { ...rest, ...(chainId !== undefined ? { chainId } : {}) } });
      return out.signedTransaction as Hex;
    },
    async signTypedData(typedData) {
      const { domain, types, primaryType, message } = typedData as TypedDataDefinition;
      return (await sign('/v1/sign/typed-data', { typedData: { domain: domain ?? {}, types, primaryType, message } })).signature;
    },
  });
  return { ...account, source: 'airlock' } as LocalAccount<'airlock'>;
}

/** One idempotency key per logical request, reused on network retries, so a retry is never a second spend. */
async function signWithRetry(http: AirlockHttp, path: string, payload: unknown, approvalWaitMs: number): Promise<SignBody> {
  const key = randomUUID();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const res = await http.request<SignBody>('POST', path, payload, { 'idempotency-key': key });
      if (res.status === 202) return waitForApproval(http, res.body, approvalWaitMs);
      return res.body;
    } catch (e) {
      // Only transport failures are retried; every answer from Airlock (including refusals) is final.
      if (!(e instanceof TypeError)) throw e;
      lastError = e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
  throw lastError;
}

async function waitForApproval(http: AirlockHttp, pending: SignBody, waitMs: number): Promise<SignBody> {
  const id = pending.approvalId!;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const { body } = await http.request<{ state: string; result?: SignBody }>('GET', `/v1/approvals/${id}`);
    if (body.state === 'approved' && body.result) return body.result;
    if (body.state !== 'pending' && body.state !== 'approved') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new AirlockApprovalRequiredError(id, pending.expiresAt ?? '', pending.violations ?? []);
}
