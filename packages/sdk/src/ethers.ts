// An ethers v6 `Signer` whose key lives in Airlock: `sendTransaction`, contract calls, `signMessage` and
// `signTypedData` work unchanged and every signature goes through Airlock's policy. A subpath
// (`@airlock/sdk/ethers`) so that viem-only agents do not need ethers; ethers is an optional peer dependency.
import { AbstractSigner, Transaction, TypedDataEncoder, getAddress, hexlify, resolveAddress, verifyMessage, verifyTypedData, type Provider, type TransactionLike, type TransactionRequest, type TypedDataDomain, type TypedDataField } from 'ethers';
import { AirlockApiError, createAirlockHttp, type AirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';

export interface AirlockEthersSignerOptions extends AirlockHttpOptions {
  /** Chain id sent with personal messages (messages carry none of their own). Default: the provider's, else 1. */
  messageChainId?: number;
  /** Wait up to this many ms for a human approval (polling). Default 0: throw AirlockApprovalRequiredError. */
  approvalWaitMs?: number;
}

interface SignedTransactionAnswer extends SignAnswer {
  signedTransaction: string;
}

/**
 * An ethers v6 Signer backed by Airlock. Build it with `airlockEthersSigner` (the address comes from
 * Airlock). Refusals throw AirlockPolicyError with the violations; `findAirlockError` finds them when
 * ethers wraps them.
 */
export class AirlockEthersSigner extends AbstractSigner {
  readonly address: string;
  readonly #http: AirlockHttp;
  readonly #options: AirlockEthersSignerOptions;

  constructor(address: string, options: AirlockEthersSignerOptions, provider?: Provider | null, http?: AirlockHttp) {
    super(provider);
    this.address = getAddress(address);
    this.#options = options;
    this.#http = http ?? createAirlockHttp(options);
  }

  override async getAddress(): Promise<string> {
    return this.address;
  }

  override connect(provider: Provider | null): AirlockEthersSigner {
    return new AirlockEthersSigner(this.address, this.#options, provider, this.#http);
  }

  /** Signs a populated transaction (ethers' `sendTransaction` populates nonce, gas, fees and chain id first). */
  override async signTransaction(request: TransactionRequest | Transaction): Promise<string> {
    const tx = request instanceof Transaction ? Transaction.from(request) : await this.#unsignedTransaction(request);
    const answer = await this.#sign<SignedTransactionAnswer>('/v1/sign/transaction', { chainId: Number(tx.chainId), serializedTransaction: tx.unsignedSerialized });
    // Check the answer signs what we asked, from this signer, before handing it to the network.
    const signed = Transaction.from(answer.signedTransaction);
    if (signed.from !== this.address || signed.unsignedHash !== tx.unsignedHash) {
      throw new AirlockApiError(200, 'invalid_response', 'Airlock returned a transaction that is not the one requested from this signer.');
    }
    return answer.signedTransaction;
  }

  /** As ethers' Wallet does: `from` must be this signer, `to` may be an ENS name the provider resolves. */
  async #unsignedTransaction(request: TransactionRequest): Promise<Transaction> {
    const { from, to, ...fields } = request;
    if (from != null && (await resolveAddress(from, this.provider)) !== this.address) throw new AirlockApiError(400, 'invalid_request', 'transaction.from is not this signer.');
    return Transaction.from({ ...fields, to: to == null ? null : await resolveAddress(to, this.provider) } as TransactionLike<string>);
  }

  override async signMessage(message: string | Uint8Array): Promise<string> {
    const payload = typeof message === 'string' ? message : { raw: hexlify(message) };
    const { signature } = await this.#sign('/v1/sign/message', { chainId: await this.#messageChainId(), message: payload });
    return this.#checkSignedBy(() => verifyMessage(message, signature), signature, 'a message signature');
  }

  override async signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    // ethers leaves EIP712Domain out of `types` and derives the primary type; Airlock takes EIP-712 JSON.
    const { EIP712Domain: _domainType, ...messageTypes } = types;
    const primaryType = TypedDataEncoder.getPrimaryType(messageTypes);
    const jsonDomain = { ...domain, ...(domain.chainId != null ? { chainId: Number(domain.chainId) } : {}) };
    const typedData = { domain: jsonDomain, types: messageTypes, primaryType, message: TypedDataEncoder.from(messageTypes).visit(value, (_type, v) => (typeof v === 'bigint' || typeof v === 'number' ? BigInt(v).toString() : v)) };
    const { signature } = await this.#sign('/v1/sign/typed-data', { typedData });
    return this.#checkSignedBy(() => verifyTypedData(domain, messageTypes, value, signature), signature, 'a typed-data signature');
  }

  /** Airlock's signature must recover to this signer over what was asked. */
  #checkSignedBy(recover: () => string, signature: string, what: string): string {
    let signer: string | undefined;
    try {
      signer = typeof signature === 'string' ? recover() : undefined;
    } catch {
      signer = undefined;
    }
    if (signer !== this.address) throw new AirlockApiError(200, 'invalid_response', `Airlock returned ${what} that is not this signer's over what was asked.`);
    return signature;
  }

  async #messageChainId(): Promise<number> {
    if (this.#options.messageChainId !== undefined) return this.#options.messageChainId;
    const network = await this.provider?.getNetwork();
    return network ? Number(network.chainId) : 1;
  }

  #sign<T extends SignAnswer>(path: string, payload: unknown): Promise<T> {
    return signWithRetry<T>(this.#http, path, payload, this.#options.approvalWaitMs ?? 0);
  }
}

/** An ethers Signer for the agent of this session token (GET /v1/session gives the address). */
export async function airlockEthersSigner(options: AirlockEthersSignerOptions, provider?: Provider | null): Promise<AirlockEthersSigner> {
  const http = createAirlockHttp(options);
  const { body } = await http.request<{ agent: { address: string } }>('GET', '/v1/session');
  return new AirlockEthersSigner(body.agent.address, options, provider, http);
}
