// The official x402 facilitator (x402Facilitator + registerExactEvmScheme from @x402/evm) against the local
// chain, served on loopback with the three endpoints HTTPFacilitatorClient calls: /verify, /settle, /supported.
import { createServer } from 'node:http';
import { createPublicClient, createWalletClient, http, type Address, type Hex } from 'viem';
import { x402Facilitator } from '@x402/core/facilitator';
import type { PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse } from '@x402/core/types';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { registerExactEvmScheme } from '@x402/evm/exact/facilitator';
import { readJsonBody, sendJson } from './json.ts';
import { listenOnLoopback } from './listen.ts';
import { ANVIL_KEYS, localAccount, localChain } from './token.ts';

export interface FacilitatorEvent {
  kind: 'verify' | 'settle';
  network: string;
  nonce?: Hex;
  result: VerifyResponse | SettleResponse;
}

export interface RunningFacilitator {
  url: string;
  /** The account that submits settlements (pays gas). */
  address: Address;
  /** Every verify and settle answer, in order: tests read why a payment was refused. */
  events: FacilitatorEvent[];
  close(): Promise<void>;
}

export interface StartFacilitatorOptions {
  rpcUrl: string;
  chainId: number;
  /** CAIP-2 networks served with the v2 scheme. The v1 scheme is registered for every named network it knows. */
  networks: string[];
  privateKey?: Hex;
}

export async function startFacilitator(options: StartFacilitatorOptions): Promise<RunningFacilitator> {
  const account = localAccount(options.privateKey ?? ANVIL_KEYS.facilitator);
  const chain = localChain(options.rpcUrl, options.chainId);
  const wallet = createWalletClient({ account, chain, transport: http(options.rpcUrl) });
  const reader = createPublicClient({ chain, transport: http(options.rpcUrl) });
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (args) => reader.readContract(args as Parameters<typeof reader.readContract>[0]),
    verifyTypedData: (args) => reader.verifyTypedData(args as Parameters<typeof reader.verifyTypedData>[0]),
    writeContract: (args) => wallet.writeContract(args as Parameters<typeof wallet.writeContract>[0]),
    sendTransaction: (args) => wallet.sendTransaction(args),
    waitForTransactionReceipt: (args) => reader.waitForTransactionReceipt(args),
    getCode: (args) => reader.getCode(args),
  });
  const facilitator = registerExactEvmScheme(new x402Facilitator(), { signer, networks: options.networks as `${string}:${string}`[] });
  const events: FacilitatorEvent[] = [];

  const server = createServer(async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/supported') return sendJson(res, 200, facilitator.getSupported());
      if (req.method !== 'POST' || (req.url !== '/verify' && req.url !== '/settle')) return sendJson(res, 404, { error: 'not found' });
      const body = (await readJsonBody(req)) as { paymentPayload: PaymentPayload; paymentRequirements: PaymentRequirements };
      const kind = req.url === '/verify' ? 'verify' : 'settle';
      const result = kind === 'verify' ? await facilitator.verify(body.paymentPayload, body.paymentRequirements) : await facilitator.settle(body.paymentPayload, body.paymentRequirements);
      const nonce = (body.paymentPayload.payload as { authorization?: { nonce?: Hex } }).authorization?.nonce;
      events.push({ kind, network: body.paymentRequirements.network, ...(nonce ? { nonce } : {}), result });
      sendJson(res, 200, result);
    } catch (e) {
      // The facilitator reports refusals as results; a throw is a bad request (unknown scheme, malformed payload).
      const reason = e instanceof Error ? e.message : String(e);
      sendJson(res, 400, req.url === '/settle' ? { success: false, errorReason: 'invalid_request', errorMessage: reason, transaction: '', network: '' } : { isValid: false, invalidReason: 'invalid_request', invalidMessage: reason });
    }
  });
  const { url, close } = await listenOnLoopback(server);
  return { url, address: account.address, events, close };
}
