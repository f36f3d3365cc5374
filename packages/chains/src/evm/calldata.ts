// Turns a call (target + calldata) into what it means: an ERC-20 transfer/approval, or a contract call
// with arguments when an ABI is registered. Known selectors decode strictly or fail closed.
import { AirlockError, erc20Asset } from '@airlock/core';
import type { Approval, ContractCall, IntentKind, Spend } from '@airlock/core';
import { decodeAbiParameters, encodeAbiParameters, parseAbi, toFunctionSelector } from 'viem';
import type { AbiFunction, AbiParameter, Hex } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { isUnlimitedAllowance } from './fields.ts';

export const ERC20_ABI = parseAbi([
  'function transfer(address to, uint256 value) returns (bool)',
  'function transferFrom(address from, address to, uint256 value) returns (bool)',
  'function approve(address spender, uint256 value) returns (bool)',
  'function increaseAllowance(address spender, uint256 addedValue) returns (bool)',
]);

const ERC20_KINDS: Record<string, IntentKind> = {
  transfer: 'erc20.transfer',
  transferFrom: 'erc20.transfer_from',
  approve: 'erc20.approve',
  increaseAllowance: 'erc20.increase_allowance',
};

/** Selector -> function and kind, hashed once here rather than on every request (0xa9059cbb is transfer, …). */
const ERC20_SELECTORS = new Map(ERC20_ABI.map((fn) => [toFunctionSelector(fn), { fn, kind: ERC20_KINDS[fn.name]! }]));

export interface DecodedCall {
  kind: IntentKind;
  /** Recipient, spender or call target. */
  to: string;
  spends: Spend[];
  approvals: Approval[];
  call: ContractCall;
}

/** `data` is lowercase hex with at least one byte; `contract` lowercase. */
export function decodeCall(chain: string, contract: string, data: Hex, abis: AbiRegistry | undefined, path: string): DecodedCall {
  if (data.length < 10) throw new AirlockError('undecodable_payload', `${path} is shorter than a 4-byte selector`);
  const selector = data.slice(0, 10);
  const erc20 = ERC20_SELECTORS.get(selector as Hex);
  if (erc20) return decodeErc20(chain, contract, data, selector, erc20.fn, erc20.kind, path);

  const fn = abis?.lookup(contract, selector);
  // The calldata stays on the intent: a policy's registered ABIs may decode it later (enrichCall).
  if (!fn) return { kind: 'contract.call', to: contract, spends: [], approvals: [], call: { contract, selector, data } };
  const args = decodeStrict(fn, data, path);
  return {
    kind: 'contract.call',
    to: contract,
    spends: [],
    approvals: [],
    call: { contract, selector, functionName: fn.name, args: namedArgs(fn, args) },
  };
}

function decodeErc20(chain: string, token: string, data: Hex, selector: string, fn: AbiFunction, kind: IntentKind, path: string): DecodedCall {
  const named = decodeStaticWords(fn, data, path);
  const call: ContractCall = { contract: token, selector, functionName: fn.name, args: named };
  const asset = erc20Asset(chain, token);
  switch (kind) {
    case 'erc20.transfer':
    case 'erc20.transfer_from': {
      const to = named.to as string;
      const amount = named.value as bigint;
      return { kind, to, spends: [{ asset, amount, to, kind: 'transfer' }], approvals: [], call };
    }
    default: {
      const spender = named.spender as string;
      const amount = (kind === 'erc20.approve' ? named.value : named.addedValue) as bigint;
      return { kind, to: spender, spends: [], approvals: [{ asset, amount, spender, unlimited: isUnlimitedAllowance(amount) }], call };
    }
  }
}

/**
 * Decodes the arguments of `fn`, the function the caller found by the calldata's selector, and re-encodes them:
 * the calldata must be exactly the canonical ABI encoding. This rejects trailing bytes, dirty high bits in
 * address words (viem's decoder ignores them) and odd offsets that a contract may read differently. Only the
 * arguments are decoded: viem's decodeFunctionData/encodeFunctionData would hash function signatures (keccak)
 * on every call to find a selector the caller already matched.
 */
export function decodeStrict(fn: AbiFunction, data: Hex, path: string): readonly unknown[] {
  try {
    const encoded = `0x${data.slice(10)}` as Hex;
    const args = decodeAbiParameters(fn.inputs, encoded);
    if (encodeAbiParameters(fn.inputs, args as readonly unknown[]).toLowerCase() !== encoded) throw new Error('calldata is not the canonical ABI encoding');
    return args;
  } catch (cause) {
    throw undecodable(path, cause);
  }
}

// The canonical encoding of arguments that are all `address` or `uint256` is one 32-byte word each and
// nothing else; an address word's 12 high bytes are zero. Every ERC-20 function here has only such
// arguments, so they are read straight from the hex: the same answer as decodeStrict + namedArgs (checked
// against them in calldata.test.ts), without viem's decoder, its EIP-55 checksum of every address (a keccak
// each) and the re-encoding, which together were about 2% of a signature's CPU.
const HEX_WORDS = /^0x[0-9a-f]{8}(?:[0-9a-f]{64})*$/;
const ADDRESS_PAD = '0'.repeat(24);

/** `fn`'s arguments (each `address` or `uint256`) by name, addresses lowercase; undecodable_payload unless `data` is exactly their canonical encoding. */
export function decodeStaticWords(fn: AbiFunction, data: Hex, path: string): Record<string, unknown> {
  if (data.length !== 10 + 64 * fn.inputs.length || !HEX_WORDS.test(data)) throw undecodable(path);
  const named: Record<string, unknown> = {};
  fn.inputs.forEach((param, i) => {
    const word = data.slice(10 + 64 * i, 74 + 64 * i);
    let value: unknown;
    if (param.type === 'uint256') value = BigInt(`0x${word}`);
    else if (param.type === 'address' && word.startsWith(ADDRESS_PAD)) value = `0x${word.slice(24)}`;
    else if (param.type === 'address') throw undecodable(path);
    else throw new Error(`decodeStaticWords: ${param.type} is not a one-word static type`);
    named[param.name || `arg${i}`] = value;
  });
  return named;
}

const undecodable = (path: string, cause?: unknown) =>
  new AirlockError('undecodable_payload', `${path} does not decode against the ABI for its selector`, cause === undefined ? undefined : { cause });

export function namedArgs(fn: AbiFunction, args: readonly unknown[]): Record<string, unknown> {
  const named: Record<string, unknown> = {};
  fn.inputs.forEach((param, i) => {
    named[param.name || `arg${i}`] = normaliseAbiValue(param, args[i]);
  });
  return named;
}

/** Lowercases addresses anywhere inside a decoded value, guided by its ABI type (never by how a string looks). */
function normaliseAbiValue(param: AbiParameter, value: unknown): unknown {
  const array = /^(.*)\[[0-9]*\]$/.exec(param.type);
  if (array && Array.isArray(value)) {
    const inner = { ...param, type: array[1] as string } as AbiParameter;
    return value.map((v) => normaliseAbiValue(inner, v));
  }
  if (param.type === 'address' && typeof value === 'string') return value.toLowerCase();
  if (param.type === 'tuple' && 'components' in param && value !== null && typeof value === 'object') {
    const components = param.components;
    if (Array.isArray(value)) return value.map((v, i) => normaliseAbiValue(components[i] as AbiParameter, v));
    const out: Record<string, unknown> = {};
    for (const c of components) out[c.name ?? ''] = normaliseAbiValue(c, (value as Record<string, unknown>)[c.name ?? '']);
    return out;
  }
  return value;
}
