import { AirlockError } from '@airlock/core';
import { toFunctionSelector } from 'viem';
import type { Abi, AbiFunction } from 'viem';
import { readAddress } from './fields.ts';

/**
 * ABIs the operator registered, so calls to known contracts decode into named arguments.
 * A contract-specific ABI wins over the wildcard `'*'` for the same selector.
 */
export class AbiRegistry {
  readonly #byContract = new Map<string, Map<string, AbiFunction>>();

  register(contract: string, abi: Abi): this {
    const key = contract === '*' ? '*' : readAddress(contract, 'contract');
    if (!Array.isArray(abi)) throw new AirlockError('invalid_request', 'abi must be an array');
    const functions = this.#byContract.get(key) ?? new Map<string, AbiFunction>();
    for (const item of abi) {
      if (item.type !== 'function') continue;
      functions.set(toFunctionSelector(item).toLowerCase(), item);
    }
    this.#byContract.set(key, functions);
    return this;
  }

  /** The function for a selector on a contract (lowercase address), if any ABI knows it. */
  lookup(contract: string, selector: string): AbiFunction | undefined {
    const sel = selector.toLowerCase();
    return this.#byContract.get(contract.toLowerCase())?.get(sel) ?? this.#byContract.get('*')?.get(sel);
  }
}
