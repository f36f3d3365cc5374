// What the viem account and the x402 signer check in Airlock's answers before the caller sees them: a signed
// transaction is the one asked for (same chain, nonce, recipient, value, data, gas and fees, access and
// authorization lists), signed by the agent; a typed-data, message, authorization or user-operation signature
// recovers to the agent over exactly what was asked. Airlock signs with the agent's own key (plain ECDSA), so
// an answer rewritten in transit (plain-http AIRLOCK_URL, a compromised proxy) fails here, never reaches viem.
import {
  isAddressEqual,
  parseTransaction,
  recoverAddress,
  recoverMessageAddress,
  recoverTransactionAddress,
  recoverTypedDataAddress,
  type Hex,
  type SignableMessage,
  type TypedDataDefinition,
} from 'viem';
import { recoverAuthorizationAddress } from 'viem/utils';
import { AirlockApiError } from './http.ts';

export function invalidResponse(message: string): AirlockApiError {
  return new AirlockApiError(200, 'invalid_response', message);
}

function isHex(value: unknown): value is Hex {
  return typeof value === 'string' && /^0x[0-9a-fA-F]*$/.test(value);
}

/** `recover()` recovers to `agent`; a malformed signature, or another signer, is a faulty answer. */
async function recoversTo(agent: Hex, signature: unknown, recover: (signature: Hex) => Promise<Hex>, what: string): Promise<Hex> {
  let signer: Hex | undefined;
  try {
    if (isHex(signature)) signer = await recover(signature);
  } catch {
    signer = undefined;
  }
  if (!signer || !isAddressEqual(signer, agent)) throw invalidResponse(`Airlock returned ${what} that is not the agent's (${agent}) over what was asked.`);
  return signature as Hex;
}

/** An EIP-712 signature by `agent` over exactly `typedData` (the typed data sent to Airlock). */
export function checkTypedDataSignature(agent: Hex, typedData: TypedDataDefinition, signature: unknown): Promise<Hex> {
  return recoversTo(agent, signature, (s) => recoverTypedDataAddress({ ...(typedData as object), signature: s } as Parameters<typeof recoverTypedDataAddress>[0]), 'a typed-data signature');
}

/** An EIP-191 personal-message signature by `agent` over `message`. */
export function checkMessageSignature(agent: Hex, message: SignableMessage, signature: unknown): Promise<Hex> {
  return recoversTo(agent, signature, (s) => recoverMessageAddress({ message, signature: s }), 'a message signature');
}

/** A signature by `agent` over the 32-byte `hash` itself (a userOpHash, signing 'raw'). */
export function checkHashSignature(agent: Hex, hash: Hex, signature: unknown): Promise<Hex> {
  return recoversTo(agent, signature, (s) => recoverAddress({ hash, signature: s }), 'a signature');
}

/** An EIP-7702 authorization signed by `agent` for exactly (address, chainId, nonce). */
export function checkAuthorizationSignature(agent: Hex, authorization: { address: Hex; chainId: number; nonce: number }, signature: unknown): Promise<Hex> {
  return recoversTo(agent, signature, (s) => recoverAuthorizationAddress({ authorization, signature: s }), 'an authorization signature');
}

const TYPE_NAMES: Record<string, string> = { legacy: 'legacy', '0x0': 'legacy', eip2930: 'eip2930', '0x1': 'eip2930', eip1559: 'eip1559', '0x2': 'eip1559', eip7702: 'eip7702', '0x4': 'eip7702' };

/** A quantity as Airlock reads one: bigint, safe integer, or a decimal or 0x string. */
function quantity(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && value !== '') return BigInt(value);
  throw new Error('not a quantity');
}

function lower(value: unknown): string {
  return typeof value === 'string' ? value.toLowerCase() : String(value);
}

type Entry = Record<string, unknown>;

function accessListKey(list: unknown): string {
  if (list == null) return '[]';
  return JSON.stringify((list as Entry[]).map((e) => [lower(e.address), ((e.storageKeys as unknown[]) ?? []).map((k) => quantity(k).toString(16))]));
}

function authorizationListKey(list: unknown): string {
  if (list == null) return '[]';
  return JSON.stringify(
    (list as Entry[]).map((a) => {
      const yParity = a.yParity !== undefined ? Number(a.yParity) : a.v !== undefined ? Number(quantity(a.v) - 27n) : undefined;
      return [lower(a.address ?? a.contractAddress), quantity(a.chainId).toString(), quantity(a.nonce).toString(), quantity(a.r).toString(16), quantity(a.s).toString(16), yParity];
    }),
  );
}

/**
 * The signed transaction Airlock returned is the one asked for, from the agent: it parses, its signature recovers
 * to `agent`, and every field Airlock signs is the one sent (`asked`: the JSON transaction sent to
 * /v1/sign/transaction, with Airlock's defaults for what it leaves out: value 0, data 0x, no recipient, no access
 * or authorization list). Airlock fills nothing in (it refuses a transaction without nonce, gas or fees).
 */
export async function checkSignedTransaction(agent: Hex, asked: Entry, chainId: number | undefined, signed: unknown): Promise<Hex> {
  const refuse = (what: string) => invalidResponse(`Airlock returned a transaction that is not the one requested from the agent (${agent}): ${what}.`);
  if (!isHex(signed)) throw refuse('no serialized transaction');
  let tx: ReturnType<typeof parseTransaction>;
  let sender: Hex;
  try {
    tx = parseTransaction(signed);
    sender = await recoverTransactionAddress({ serializedTransaction: signed as never });
  } catch {
    throw refuse('it does not parse or its signature does not recover');
  }
  if (!isAddressEqual(sender, agent)) throw refuse(`it is signed by ${sender}`);
  const parsed = tx as Entry;
  const mismatches: string[] = [];
  const same = (field: string, ok: () => boolean) => {
    try {
      if (!ok()) mismatches.push(field);
    } catch {
      mismatches.push(field);
    }
  };
  const askedChainId = asked.chainId ?? chainId;
  same('chainId', () => askedChainId !== undefined && parsed.chainId !== undefined && quantity(askedChainId) === quantity(parsed.chainId));
  if (asked.type !== undefined) same('type', () => TYPE_NAMES[String(asked.type)] === parsed.type);
  same('nonce', () => quantity(asked.nonce) === quantity(parsed.nonce ?? 0));
  same('to', () => (asked.to == null ? parsed.to == null : parsed.to != null && lower(asked.to) === lower(parsed.to)));
  same('value', () => quantity(asked.value ?? 0n) === quantity(parsed.value ?? 0n));
  same('data', () => lower(asked.data ?? asked.input ?? '0x') === lower(parsed.data ?? '0x'));
  const gas = asked.gas ?? asked.gasLimit;
  if (gas !== undefined) same('gas', () => quantity(gas) === quantity(parsed.gas));
  for (const fee of ['maxFeePerGas', 'maxPriorityFeePerGas', 'gasPrice']) {
    if (asked[fee] !== undefined) same(fee, () => parsed[fee] !== undefined && quantity(asked[fee]) === quantity(parsed[fee]));
  }
  same('accessList', () => accessListKey(asked.accessList) === accessListKey(parsed.accessList));
  same('authorizationList', () => authorizationListKey(asked.authorizationList) === authorizationListKey(parsed.authorizationList));
  if (mismatches.length > 0) throw refuse(`its ${mismatches.join(', ')} differ`);
  return signed;
}
