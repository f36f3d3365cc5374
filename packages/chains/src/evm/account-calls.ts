// The account functions a user operation's callData may call, registered by ABI: `execute` and `executeBatch`
// of the account implementations viem ships (Coinbase Smart Wallet, eth-infinitism's Simple7702Account and
// SimpleAccount, Solady's ERC4337), plus SimpleAccount v0.7's array form of executeBatch. Any other callData
// (an unknown account, a module call, a call the account makes to itself by another name) decodes to no
// calls, which policy refuses by default.
import { AirlockError } from '@airlock/core';
import { parseAbi, toFunctionSelector } from 'viem';
import type { AbiFunction, Hex } from 'viem';
import { decodeStrict } from './calldata.ts';

/** One call an account executes: target, native value and calldata (lowercase). */
export interface AccountCall {
  to: `0x${string}`;
  value: bigint;
  data: Hex;
}

export interface DecodedAccountCalls {
  accountCall: 'execute' | 'executeBatch' | 'unknown';
  calls: AccountCall[];
}

const ACCOUNT_ABI = parseAbi([
  // Coinbase Smart Wallet, Simple7702Account / SimpleAccount (v0.8 BaseAccount), Solady ERC4337.
  'function execute(address target, uint256 value, bytes data)',
  // Coinbase Smart Wallet `Call[]`, BaseAccount v0.8 `Call[]`, Solady `Call[]`: (target, value, data).
  'function executeBatch((address target, uint256 value, bytes data)[] calls)',
  // SimpleAccount of EntryPoint v0.7: parallel arrays (an empty value array means no value).
  'function executeBatch(address[] dest, uint256[] value, bytes[] func)',
]);

const BY_SELECTOR = new Map<string, AbiFunction>(ACCOUNT_ABI.map((fn) => [toFunctionSelector(fn), fn]));

/** Decodes callData into the calls the account runs; `unknown` (no calls) when no registered ABI matches. */
export function decodeAccountCalls(callData: Hex, path: string): DecodedAccountCalls {
  const fn = callData.length >= 10 ? BY_SELECTOR.get(callData.slice(0, 10) as Hex) : undefined;
  if (!fn) return { accountCall: 'unknown', calls: [] };
  const args = decodeStrict(fn, callData, path);
  if (fn.name === 'execute') {
    return { accountCall: 'execute', calls: [call(args[0], args[1], args[2])] };
  }
  if (fn.inputs.length === 1) {
    const items = args[0] as readonly { target: string; value: bigint; data: Hex }[];
    return { accountCall: 'executeBatch', calls: items.map((c) => call(c.target, c.value, c.data)) };
  }
  const [dest, value, func] = args as [readonly string[], readonly bigint[], readonly Hex[]];
  // SimpleAccount v0.7 reverts unless the arrays agree (value may be empty): refuse what it would refuse.
  if (dest.length !== func.length || (value.length !== 0 && value.length !== dest.length)) {
    throw new AirlockError('undecodable_payload', `${path}: executeBatch arrays differ in length`);
  }
  return { accountCall: 'executeBatch', calls: dest.map((to, i) => call(to, value.length === 0 ? 0n : value[i]!, func[i]!)) };
}

function call(to: unknown, value: unknown, data: unknown): AccountCall {
  return { to: (to as string).toLowerCase() as `0x${string}`, value: value as bigint, data: (data as string).toLowerCase() as Hex };
}
