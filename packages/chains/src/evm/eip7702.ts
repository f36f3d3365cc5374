// EIP-7702: an authorization (chain_id, address, nonce), signed by an EOA, makes the EOA run the code of
// `address` (the delegate) until replaced. Signed alone (evm.authorization, for a relayer or a bundler to
// carry), or carried in the authorization list of a type-4 transaction. Either way policy sees every
// delegate (rule `delegations`): a delegation to an attacker's contract hands over the whole account.
import { AirlockError } from '@airlock/core';
import type { DecodedRequest, DelegationEntry, Intent, SignerContext } from '@airlock/core';
import { hexToBytes, pad, toHex } from 'viem';
import type { Hex, SignedAuthorization } from 'viem';
import { hashAuthorization } from 'viem/utils';
import {
  caip2, readAddress, readChainId, readQuantity, readRecord, rejectUnknownKeys,
} from './fields.ts';
import { nobleRecoverPublicKey, recoverSignerAddress, type RecoverPublicKey } from './signature.ts';

const MAX_UINT64 = (1n << 64n) - 1n;

/** An authorization tuple as EIP-7702 defines it; chainId 0 means every chain. */
export interface Authorization {
  address: `0x${string}`;
  chainId: number;
  nonce: bigint;
}

/** Reads `{address (or contractAddress), chainId, nonce}`; `extra` names the signature fields a list entry also has. */
export function readAuthorization(value: unknown, path: string, extra: readonly string[] = []): Authorization & Record<string, unknown> {
  const raw = readRecord(value, path);
  rejectUnknownKeys(raw, ['address', 'contractAddress', 'chainId', 'nonce', ...extra], path);
  if (raw.address !== undefined && raw.contractAddress !== undefined && readAddress(raw.address, `${path}.address`) !== readAddress(raw.contractAddress, `${path}.contractAddress`)) {
    throw new AirlockError('invalid_request', `${path}.address and ${path}.contractAddress differ`);
  }
  const address = readAddress(raw.address ?? raw.contractAddress, `${path}.address`);
  if (raw.chainId === undefined) throw new AirlockError('invalid_request', `${path}.chainId is required (0 for every chain)`);
  // readChainId refuses 0; EIP-7702 gives 0 a meaning (any chain), which policy then decides on.
  const chainId = raw.chainId === 0 || raw.chainId === '0' || raw.chainId === '0x0' ? 0 : readChainId(raw.chainId, `${path}.chainId`);
  if (raw.nonce === undefined) throw new AirlockError('invalid_request', `${path}.nonce is required`);
  const nonce = readQuantity(raw.nonce, `${path}.nonce`, MAX_UINT64);
  // The nonce is the authority's account nonce: no account reaches 2^53 transactions. viem hashes and
  // serializes authorizations with a JS number, which would round a larger nonce (a signature over another
  // nonce) or fail after decoding (an internal error, no audit entry); refused here with the field's path.
  if (nonce > BigInt(Number.MAX_SAFE_INTEGER)) throw new AirlockError('invalid_amount', `${path}.nonce is larger than 2^53-1 (an account nonce never is)`);
  return { ...raw, address, chainId, nonce };
}

/** keccak256(0x05 || rlp([chain_id, address, nonce])): what the authority signs (EIP-7702). */
export function authorizationDigest(auth: Authorization): Uint8Array {
  return hexToBytes(hashAuthorization({ address: auth.address, chainId: auth.chainId, nonce: Number(auth.nonce) }));
}

export function decodeAuthorizationRequest(payload: unknown, signer: SignerContext): DecodedRequest {
  const request = readRecord(payload, 'payload');
  rejectUnknownKeys(request, ['chainId', 'authorization'], 'payload');
  const auth = readAuthorization(request.authorization, 'authorization');
  const requestChain = request.chainId === undefined ? undefined : readChainId(request.chainId, 'chainId');
  if (auth.chainId !== 0 && requestChain !== undefined && requestChain !== auth.chainId) throw new AirlockError('chain_mismatch', 'authorization.chainId differs from chainId');
  // An any-chain authorization still needs a chain for chain rules and the ledger: the one the agent means.
  const chainId = auth.chainId !== 0 ? auth.chainId : requestChain;
  if (chainId === undefined) throw new AirlockError('invalid_request', 'chainId is required for an authorization with chain id 0');
  const chain = caip2(chainId);
  const from = signer.address.toLowerCase();
  const entry: DelegationEntry = { delegate: auth.address, chainId: auth.chainId, nonce: auth.nonce, authority: from };
  const intent: Intent = {
    action: 'evm.authorization',
    chain,
    kind: 'eip7702.authorization',
    from,
    spends: [],
    approvals: [],
    delegation: { authorizations: [entry] },
    summary: `delegate the account ${from} to ${auth.address} (EIP-7702, ${auth.chainId === 0 ? 'EVERY chain' : chain}, nonce ${auth.nonce})`,
  };
  return { intent, digest: authorizationDigest(auth) };
}

/**
 * A type-4 transaction's authorization list: each entry already signed by its authority (the agent, or another
 * account the agent relays for). The authority is recovered so the audit entry says whose account is delegated;
 * an entry whose signature recovers to nothing is refused (a node would skip it, but what it means is unknown).
 */
export function readAuthorizationList(value: unknown, recover: RecoverPublicKey = nobleRecoverPublicKey): { list: SignedAuthorization[]; entries: DelegationEntry[] } {
  if (!Array.isArray(value) || value.length === 0) throw new AirlockError('invalid_request', 'transaction.authorizationList must be a non-empty array');
  const list: SignedAuthorization[] = [];
  const entries: DelegationEntry[] = [];
  value.forEach((item, i) => {
    const path = `transaction.authorizationList[${i}]`;
    const auth = readAuthorization(item, path, ['r', 's', 'yParity', 'v']);
    // RLP drops leading zero bytes: r and s are read as integers and written back as 32-byte words.
    const r = pad(toHex(readQuantity(auth.r, `${path}.r`)), { size: 32 });
    const s = pad(toHex(readQuantity(auth.s, `${path}.s`)), { size: 32 });
    const yParity = auth.yParity ?? (auth.v === undefined ? undefined : Number(readQuantity(auth.v, `${path}.v`)) - 27);
    if (yParity !== 0 && yParity !== 1 && yParity !== '0x0' && yParity !== '0x1') throw new AirlockError('invalid_request', `${path}.yParity must be 0 or 1`);
    const parity = yParity === 1 || yParity === '0x1' ? 1 : 0;
    list.push({ address: auth.address, chainId: auth.chainId, nonce: Number(auth.nonce), r, s, yParity: parity });
    entries.push({ delegate: auth.address, chainId: auth.chainId, nonce: auth.nonce, authority: recoverAuthority(auth, r, s, parity, recover, path) });
  });
  return { list, entries };
}

function recoverAuthority(auth: Authorization, r: Hex, s: Hex, parity: number, recover: RecoverPublicKey, path: string): string {
  try {
    return recoverSignerAddress(authorizationDigest(auth), hexToBytes(`0x${r.slice(2)}${s.slice(2)}`), parity, recover);
  } catch (cause) {
    throw new AirlockError('undecodable_payload', `${path}: the signature recovers to no authority`, { cause });
  }
}
