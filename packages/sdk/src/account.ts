import { nonceManager as viemNonceManager, toAccount } from 'viem/accounts';
import type { Hex, LocalAccount, NonceManager, SignableMessage, TransactionSerializable, TypedDataDefinition } from 'viem';
import { createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';

export interface AirlockAccountOptions extends AirlockHttpOptions {
  /** Chain id sent with personal messages (messages carry none of their own). Default 1. */
  messageChainId?: number;
  /**
   * When a request needs human approval: wait up to this many ms for the decision (polling), then
   * return the signature. Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
  /**
   * Lets viem hand out nonces itself, so parallel `sendTransaction`s from this account do not all take the
   * chain's pending count (and all but one fail with "nonce too low"). `true` uses viem's `nonceManager`
   * (one counter per address and chain, kept in this process); pass your own `NonceManager` to share or
   * reset one. Default: none, viem asks the chain each time.
   */
  nonceManager?: NonceManager | boolean;
}

interface SignBody extends SignAnswer {
  signedTransaction?: Hex;
}

/**
 * A viem `Account` whose keys live in Airlock: `signTransaction`, `signTypedData` and `signMessage`
 * go through Airlock's policy, so `walletClient.sendTransaction` etc. work unchanged.
 * Policy refusals throw AirlockPolicyError carrying the violations.
 */
export async function airlockAccount(options: AirlockAccountOptions): Promise<LocalAccount<'airlock'>> {
  const http = createAirlockHttp(options);
  const { body: me } = await http.request<{ agent: { address: Hex } }>('GET', '/v1/session');
  const sign = (path: string, payload: unknown) => signWithRetry<SignBody>(http, path, payload, options.approvalWaitMs ?? 0);
  const nonceManager = options.nonceManager === true ? viemNonceManager : options.nonceManager || undefined;
  const account = toAccount({
    address: me.agent.address,
    ...(nonceManager ? { nonceManager } : {}),
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
