import { nonceManager as viemNonceManager, toAccount } from 'viem/accounts';
import type { AuthorizationRequest, Hex, LocalAccount, NonceManager, SignableMessage, SignedAuthorization, TransactionSerializable, TypedDataDefinition } from 'viem';
import { getUserOperationHash } from 'viem/account-abstraction';
import { createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';
import { checkAuthorizationSignature, checkHashSignature, checkMessageSignature, checkSignedTransaction, checkTypedDataSignature } from './evm-verify.ts';

export interface AirlockAccountOptions extends AirlockHttpOptions {
  /** Chain id sent with personal messages (messages carry none of their own) and with EIP-7702 authorizations for chain id 0 (every chain). Default 1. */
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
  intent?: { userOperation?: { hash?: string } };
}

/** A user operation a smart account is about to have its owner sign (see airlockSmartAccount). */
export interface ExpectedUserOperation {
  chainId: number;
  entryPoint: { address: Hex; version: '0.6' | '0.7' | '0.8' };
  /** viem's UserOperation, sender included. */
  userOperation: Record<string, unknown>;
}

/** The Airlock account: a viem LocalAccount that also knows which user operations its smart accounts are signing. */
export type AirlockAccount = LocalAccount<'airlock'> & {
  /**
   * Announces the user operation whose userOpHash a smart account will next ask this owner to sign (with `sign`
   * or `signMessage({ message: { raw } })`). Airlock never signs a bare hash: the whole operation is sent, Airlock
   * recomputes its hash and policy sees its calls. Returns the hash; airlockSmartAccount calls this for you.
   */
  expectUserOperation(expected: ExpectedUserOperation): Hex;
  forgetUserOperation(hash: Hex): void;
};

/** EIP-712 user operations (EntryPoint v0.8): viem puts the unhashed `signature` in the message; the type has no such field. */
function withoutUserOperationSignature(typedData: TypedDataDefinition): TypedDataDefinition {
  const { domain, primaryType, message } = typedData as TypedDataDefinition & { message: Record<string, unknown> };
  if (primaryType !== 'PackedUserOperation' || domain?.name !== 'ERC4337' || !('signature' in message)) return typedData;
  const { signature: _notHashed, ...rest } = message;
  return { ...typedData, message: rest } as TypedDataDefinition;
}

/**
 * A viem `Account` whose keys live in Airlock: `signTransaction`, `signTypedData` and `signMessage`
 * go through Airlock's policy, so `walletClient.sendTransaction` etc. work unchanged.
 * Policy refusals throw AirlockPolicyError carrying the violations.
 */
export async function airlockAccount(options: AirlockAccountOptions): Promise<AirlockAccount> {
  const http = createAirlockHttp(options);
  const { body: me } = await http.request<{ agent: { address: Hex } }>('GET', '/v1/session');
  const sign = (path: string, payload: unknown) => signWithRetry<SignBody>(http, path, payload, options.approvalWaitMs ?? 0);
  const nonceManager = options.nonceManager === true ? viemNonceManager : options.nonceManager || undefined;
  const expected = new Map<string, ExpectedUserOperation>();
  /** Sends the announced operation behind `hash`; the signature is released only for the hash Airlock recomputed. */
  const signUserOperation = async (hash: Hex, operation: ExpectedUserOperation, signing: 'raw' | 'eip191') => {
    const out = await sign('/v1/sign/user-operation', {
      chainId: operation.chainId,
      entryPoint: operation.entryPoint.address,
      entryPointVersion: operation.entryPoint.version,
      userOperation: operation.userOperation,
      signing,
    });
    if (out.intent?.userOperation?.hash?.toLowerCase() !== hash.toLowerCase()) throw new Error('Airlock computed another userOpHash than the smart account: refusing to use the signature');
    // The owner's own signature (the smart account wraps it afterwards): over the hash itself, or a personal message over it.
    return signing === 'raw' ? checkHashSignature(me.agent.address, hash, out.signature) : checkMessageSignature(me.agent.address, { raw: hash }, out.signature);
  };
  const account = toAccount({
    address: me.agent.address,
    ...(nonceManager ? { nonceManager } : {}),
    async sign({ hash }: { hash: Hex }) {
      const operation = expected.get(hash.toLowerCase());
      if (!operation) throw new Error('Airlock never signs a bare hash: wrap the smart account with airlockSmartAccount(account, owner) so the user operation itself is sent');
      return signUserOperation(hash, operation, 'raw');
    },
    async signAuthorization(authorization: AuthorizationRequest) {
      const { chainId, nonce } = authorization;
      const address = 'address' in authorization && authorization.address ? authorization.address : (authorization as { contractAddress: Hex }).contractAddress;
      // Chain id 0 is valid on every chain: Airlock still wants the chain the agent means (and refuses it unless a rule allows any chain).
      const out = await sign('/v1/sign/authorization', { ...(chainId === 0 ? { chainId: options.messageChainId ?? 1 } : {}), authorization: { address, chainId, nonce } });
      await checkAuthorizationSignature(me.agent.address, { address, chainId, nonce }, out.signature);
      const r = out.signature.slice(0, 66) as Hex;
      const s = `0x${out.signature.slice(66, 130)}` as Hex;
      const v = BigInt(`0x${out.signature.slice(130, 132)}`);
      return { address, chainId, nonce, r, s, v, yParity: Number(v - 27n) } satisfies SignedAuthorization;
    },
    async signMessage({ message }: { message: SignableMessage }) {
      // Accounts verifying EIP-191 over the userOpHash (SimpleAccount v0.7, Solady) ask for it as a raw message.
      if (typeof message !== 'string' && typeof message.raw === 'string' && expected.has(message.raw.toLowerCase())) {
        return signUserOperation(message.raw, expected.get(message.raw.toLowerCase())!, 'eip191');
      }
      const m = typeof message === 'string' ? message : { raw: typeof message.raw === 'string' ? message.raw : `0x${Buffer.from(message.raw).toString('hex')}` };
      return checkMessageSignature(me.agent.address, message, (await sign('/v1/sign/message', { chainId: options.messageChainId ?? 1, message: m })).signature);
    },
    async signTransaction(transaction: TransactionSerializable) {
      // viem's sendTransaction hands the account its whole prepared request, including its own plumbing
      // (`account`, `chain`, `nonceManager`); those are not transaction fields and Airlock refuses unknown fields.
      const { chainId, account: _account, chain: _chain, nonceManager: _nonceManager, ...rest } = transaction as TransactionSerializable & { account?: unknown; chain?: unknown; nonceManager?: unknown };
      const asked = { ...rest, ...(chainId !== undefined ? { chainId } : {}) };
      const out = await sign('/v1/sign/transaction', { chainId, transaction: asked });
      return checkSignedTransaction(me.agent.address, asked, chainId, out.signedTransaction);
    },
    async signTypedData(typedData) {
      const { domain, types, primaryType, message } = withoutUserOperationSignature(typedData as TypedDataDefinition);
      const asked = { domain: domain ?? {}, types, primaryType, message };
      return checkTypedDataSignature(me.agent.address, asked as TypedDataDefinition, (await sign('/v1/sign/typed-data', { typedData: asked })).signature);
    },
  });
  return {
    ...account,
    source: 'airlock',
    expectUserOperation(operation: ExpectedUserOperation): Hex {
      const hash = getUserOperationHash({
        chainId: operation.chainId,
        entryPointAddress: operation.entryPoint.address,
        entryPointVersion: operation.entryPoint.version,
        userOperation: operation.userOperation as never,
      });
      expected.set(hash.toLowerCase(), operation);
      return hash;
    },
    forgetUserOperation(hash: Hex) {
      expected.delete(hash.toLowerCase());
    },
  } as AirlockAccount;
}
