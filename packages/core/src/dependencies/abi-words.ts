// The few ABI encodings the dependency map and the revocation planner need, by hand: core has no ABI library,
// and every function here takes static arguments (one dynamic array of static tuples for Permit2 `lockdown`).
// Each word is 32 bytes, big-endian; addresses are left-padded. Checked against viem in abi-words.test.ts.
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** The 4-byte selector of a canonical function signature, e.g. `approve(address,uint256)`. */
export function selectorOf(signature: string): string {
  return `0x${bytesToHex(keccak_256(utf8ToBytes(signature))).slice(0, 8)}`;
}

const UINT256_MAX = (1n << 256n) - 1n;

export function uintWord(value: bigint | number): string {
  const v = BigInt(value);
  if (v < 0n || v > UINT256_MAX) throw new RangeError('value out of uint256 range');
  return v.toString(16).padStart(64, '0');
}

export function addressWord(address: string): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new RangeError('not a 20-byte address');
  return address.slice(2).toLowerCase().padStart(64, '0');
}

export function bytes32Word(hex: string): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new RangeError('not a bytes32');
  return hex.slice(2).toLowerCase();
}

/** `selector` + words: a call whose arguments are all static. */
export function encodeCall(selector: string, words: readonly string[]): string {
  return `${selector}${words.join('')}`;
}

/** Reads the static argument word `i` of calldata as a bigint (the caller checked the length). */
export function wordAt(data: string, i: number): bigint {
  return BigInt(`0x${data.slice(10 + i * 64, 10 + (i + 1) * 64)}`);
}

/** Reads argument word `i` as an address, or undefined when its high 12 bytes are not zero (not an address). */
export function addressAt(data: string, i: number): string | undefined {
  const word = data.slice(10 + i * 64, 10 + (i + 1) * 64);
  if (!/^0{24}[0-9a-f]{40}$/.test(word)) return undefined;
  return `0x${word.slice(24)}`;
}

export const SELECTORS = {
  erc20Approve: selectorOf('approve(address,uint256)'),
  erc20Allowance: selectorOf('allowance(address,address)'),
  eip2612Nonces: selectorOf('nonces(address)'),
  eip2612Permit: selectorOf('permit(address,address,uint256,uint256,uint8,bytes32,bytes32)'),
  daiPermit: selectorOf('permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)'),
  eip3009CancelAuthorization: selectorOf('cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)'),
  permit2Approve: selectorOf('approve(address,address,uint160,uint48)'),
  permit2Allowance: selectorOf('allowance(address,address,address)'),
  permit2Lockdown: selectorOf('lockdown((address,address)[])'),
  permit2InvalidateNonces: selectorOf('invalidateNonces(address,address,uint48)'),
  permit2InvalidateUnorderedNonces: selectorOf('invalidateUnorderedNonces(uint256,uint256)'),
  permit2NonceBitmap: selectorOf('nonceBitmap(address,uint256)'),
} as const;
