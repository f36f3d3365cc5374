// What the lifecycle path signs, as it is recorded in a `lifecycle.planned` audit entry and handed to a key
// process (docs/custody.md, "Separate key process"): JSON only, so the entry holds it byte for byte and the key
// process reads it back as it was planned. Both sides build and read it here:
//
//   transaction  { chainId, transaction: { type: 'legacy', to, value, data, nonce, gas, gasPrice } }, quantities
//                as 0x-hex strings (the EVM adapter's request shape), `to`/`data` lowercase
//   typed data   { typedData }: a revocation's EIP-712 message, exactly one of
//                  EIP-2612 Permit(owner = the signing key, spender, value 0, nonce, deadline)  (burns a permit nonce)
//                  DAI Permit(holder = the signing key, spender, nonce, expiry, allowed false)  (burns a DAI permit nonce)
//                  EIP-3009 CancelAuthorization(authorizer = the signing key, nonce)
//                { chainId, typedData }: only an EIP-3009 CancelAuthorization whose domain has no chainId (it
//                  cancels a chainless authorization, which verifies only under that same domain); `chainId` is
//                  the chain it is sent on, which the EVM adapter needs to decode it. Every other typed data
//                  names its chain in its domain.
//
// A payload of any other shape is not one the daemon builds, and the key process refuses it.
import { AirlockError } from '../errors.ts';
import type { LifecycleCall } from './lifecycle-calls.ts';
import type { LifecycleFees } from './lifecycle-fees.ts';

export interface LifecycleTransactionPayload {
  chainId: number;
  transaction: { type: 'legacy'; to: string; value: string; data: string; nonce: number; gas: string; gasPrice: string };
}

export interface LifecycleTypedDataPayload {
  /** Only when the domain has no chainId (a chainless CancelAuthorization): the chain its call is sent on. */
  chainId?: number;
  typedData: {
    domain: { name?: string; version?: string; chainId?: number; verifyingContract: string };
    types: Record<string, { name: string; type: string }[]>;
    primaryType: string;
    message: Record<string, string | boolean>;
  };
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

/** The legacy transaction the lifecycle path signs for `call` on `chain` (CAIP-2 `eip155:<id>`). */
export function lifecycleTransactionPayload(chain: string, call: LifecycleCall, fees: LifecycleFees): LifecycleTransactionPayload {
  if (!call.to) throw new AirlockError('lifecycle_kind_refused', 'A contract deployment is not a lifecycle transaction.');
  return {
    chainId: Number(chain.slice('eip155:'.length)),
    transaction: { type: 'legacy', to: call.to.toLowerCase(), value: hex(call.value), data: call.data.toLowerCase(), nonce: fees.nonce, gas: hex(fees.gas), gasPrice: hex(fees.gasPrice) },
  };
}

/**
 * The payload the lifecycle path signs for a revocation's typed data sent on `chain` (CAIP-2 `eip155:<id>`):
 * `{ typedData }` when its domain names the chain (and it must be that one), `{ chainId, typedData }` when the
 * domain has none. Whether such typed data may be signed at all is classifyLifecycleTypedData's to say.
 */
export function lifecycleTypedDataPayload(typedData: LifecycleTypedDataPayload['typedData'], chain: string): LifecycleTypedDataPayload {
  const chainId = /^eip155:[1-9][0-9]{0,15}$/.test(chain) ? Number(chain.slice('eip155:'.length)) : undefined;
  if (chainId === undefined) throw new AirlockError('unsupported_chain', `${chain}: expected eip155:<chainId>.`);
  const named = typedData.domain.chainId;
  if (named === undefined) return { chainId, typedData };
  if (named !== chainId) throw new AirlockError('chain_mismatch', `The typed data's domain names chain ${named}, not ${chain}.`);
  return { typedData };
}

const QUANTITY = /^0x(0|[1-9a-f][0-9a-f]{0,63})$/;
const ADDRESS = /^0x[0-9a-f]{40}$/;
const DATA = /^0x([0-9a-f]{2}){0,8192}$/;

function exactKeys(value: unknown, keys: readonly string[]): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => own.includes(k));
}

/**
 * The chain, call and fees of a lifecycle transaction payload, or undefined when the payload is not exactly the
 * shape lifecycleTransactionPayload builds (so what is classified and fee-checked is what the EVM adapter decodes
 * and signs).
 */
export function lifecycleCallOf(payload: unknown): { chain: string; call: LifecycleCall; fees: LifecycleFees } | undefined {
  if (!exactKeys(payload, ['chainId', 'transaction'])) return undefined;
  const { chainId, transaction: tx } = payload;
  if (!Number.isSafeInteger(chainId) || (chainId as number) < 1) return undefined;
  if (!exactKeys(tx, ['type', 'to', 'value', 'data', 'nonce', 'gas', 'gasPrice'])) return undefined;
  if (tx.type !== 'legacy' || typeof tx.to !== 'string' || !ADDRESS.test(tx.to) || typeof tx.data !== 'string' || !DATA.test(tx.data)) return undefined;
  if (![tx.value, tx.gas, tx.gasPrice].every((q) => typeof q === 'string' && QUANTITY.test(q)) || !Number.isSafeInteger(tx.nonce) || (tx.nonce as number) < 0) return undefined;
  return { chain: `eip155:${chainId}`, call: { to: tx.to, value: BigInt(tx.value as string), data: tx.data }, fees: { nonce: tx.nonce as number, gas: BigInt(tx.gas as string), gasPrice: BigInt(tx.gasPrice as string) } };
}

const PERMIT_FIELDS = [['owner', 'address'], ['spender', 'address'], ['value', 'uint256'], ['nonce', 'uint256'], ['deadline', 'uint256']] as const;
const DAI_PERMIT_FIELDS = [['holder', 'address'], ['spender', 'address'], ['nonce', 'uint256'], ['expiry', 'uint256'], ['allowed', 'bool']] as const;
const CANCEL_FIELDS = [['authorizer', 'address'], ['nonce', 'bytes32']] as const;
const UINT = /^(0|[1-9]\d{0,77})$/;

function refuse(message: string): never {
  throw new AirlockError('lifecycle_kind_refused', message, { hints: ['The lifecycle path signs typed data only to revoke: a zero-value EIP-2612 permit, a DAI permit with allowed false or an EIP-3009 CancelAuthorization of the signing key.'] });
}

/**
 * Classifies a revocation's typed data signed with the key at `from` (lowercase), or throws
 * `lifecycle_kind_refused`: exactly a zero-value EIP-2612 Permit owned by that key, a DAI Permit of that key's
 * with allowed false, or an EIP-3009 CancelAuthorization by it, with no other type and no other field (what the
 * revocation planner builds). Its domain names its chain, except a CancelAuthorization's, which may leave it out
 * (the payload's `chainId` then says where it is sent).
 */
export function classifyLifecycleTypedData(payload: unknown, from: string): string {
  const chainless = exactKeys(payload, ['chainId', 'typedData']);
  if (!chainless && !exactKeys(payload, ['typedData'])) refuse('A lifecycle signature is over { typedData } only (or { chainId, typedData } for a cancellation under a domain without chainId).');
  const typed = payload.typedData;
  if (!exactKeys(typed, ['domain', 'types', 'primaryType', 'message'])) refuse('The typed data has other fields than domain, types, primaryType and message.');
  const { domain, types, primaryType, message } = typed;
  const domainKeys = domain !== null && typeof domain === 'object' ? Object.keys(domain) : [];
  const d = domain as Record<string, unknown>;
  const chainNamed = chainless ? !domainKeys.includes('chainId') && Number.isSafeInteger(payload.chainId) && (payload.chainId as number) >= 1 : Number.isSafeInteger(d.chainId);
  if (!domainKeys.every((k) => ['name', 'version', 'chainId', 'verifyingContract'].includes(k)) || !chainNamed || typeof d.verifyingContract !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(d.verifyingContract)) {
    refuse('The typed data names no token contract and chain.');
  }
  if (primaryType !== 'Permit' && primaryType !== 'CancelAuthorization') refuse('Only a Permit or a CancelAuthorization is signed on the lifecycle path.');
  // A signature over a domain without chainId is valid on every chain. Only a cancellation may be signed so: the
  // token checks a CancelAuthorization under the domain its chainless authorization used, so one with a chainId
  // would not cancel it (found by review: revoke-all left such an authorization live). Anything else a chainless
  // signature could carry (a permit, say) would be replayable on every chain: it still needs a chainId.
  if (chainless && primaryType !== 'CancelAuthorization') refuse('Only a CancelAuthorization is signed under a domain without chainId on the lifecycle path.');
  if (!exactKeys(types, [primaryType])) refuse(`The typed data declares other types than ${primaryType}.`);
  const declared = types[primaryType];
  const isType = (fields: readonly (readonly [string, string])[]) => Array.isArray(declared) && declared.length === fields.length && fields.every(([name, type], i) => exactKeys(declared[i], ['name', 'type']) && declared[i].name === name && declared[i].type === type);
  if (primaryType === 'Permit' && isType(DAI_PERMIT_FIELDS)) return classifyDaiBurn(message, from, d.verifyingContract as string);
  const fields: readonly (readonly [string, string])[] = primaryType === 'Permit' ? PERMIT_FIELDS : CANCEL_FIELDS;
  if (!isType(fields)) refuse(`The ${primaryType} type is not the standard one.`);
  if (!exactKeys(message, fields.map(([name]) => name)) || !Object.values(message).every((v) => typeof v === 'string')) refuse(`The ${primaryType} message has other fields than the standard ones.`);
  const m = message as Record<string, string>;
  if (primaryType === 'Permit') {
    if (m.owner!.toLowerCase() !== from) refuse('A permit on the lifecycle path is the signing key\'s own.');
    if (!ADDRESS.test(m.spender!.toLowerCase()) || m.value !== '0' || !UINT.test(m.nonce!) || !UINT.test(m.deadline!)) refuse('A permit on the lifecycle path grants nothing: value 0.');
    return `EIP-2612 zero-value permit (nonce ${m.nonce}) of ${m.spender!.toLowerCase()} on ${(d.verifyingContract as string).toLowerCase()}`;
  }
  if (m.authorizer!.toLowerCase() !== from) refuse('A cancellation on the lifecycle path is the signing key\'s own.');
  if (!/^0x[0-9a-fA-F]{64}$/.test(m.nonce!)) refuse('A CancelAuthorization nonce is 32 bytes.');
  return `EIP-3009 CancelAuthorization ${m.nonce!.toLowerCase()} on ${(d.verifyingContract as string).toLowerCase()}${chainless ? ' (domain without chainId)' : ''}`;
}

/** DAI's Permit(holder, spender, nonce, expiry, allowed): only the signing key's own, only allowed = false (the boolean). */
function classifyDaiBurn(message: unknown, from: string, token: string): string {
  if (!exactKeys(message, DAI_PERMIT_FIELDS.map(([name]) => name))) refuse('The DAI Permit message has other fields than the standard ones.');
  const { holder, spender, nonce, expiry, allowed } = message;
  if (typeof holder !== 'string' || holder.toLowerCase() !== from) refuse('A permit on the lifecycle path is the signing key\'s own.');
  if (allowed !== false) refuse('A DAI permit on the lifecycle path grants nothing: allowed false.');
  if (typeof spender !== 'string' || !ADDRESS.test(spender.toLowerCase()) || typeof nonce !== 'string' || !UINT.test(nonce) || typeof expiry !== 'string' || !UINT.test(expiry)) {
    refuse('The DAI Permit message is not a burn of one nonce.');
  }
  return `DAI permit allowed = false (nonce ${nonce}) of ${spender.toLowerCase()} on ${token.toLowerCase()}`;
}
