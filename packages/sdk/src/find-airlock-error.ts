import { AirlockApiError } from './http.ts';

/** How deep the `cause` chain is followed; a loop (a cause pointing back up) stops here too. */
const MAX_DEPTH = 32;

/**
 * Airlock's typed error anywhere in an error's `cause` chain, or undefined. Clients wrap what an account or a
 * signer throws: viem's `sendTransaction` one level deep (TransactionExecutionError), `writeContract` two
 * (ContractFunctionExecutionError -> TransactionExecutionError), ethers and x402 differently again; this
 * finds the refusal whatever the depth. Pass a subclass to narrow: `findAirlockError(e, AirlockPolicyError)`.
 */
export function findAirlockError<T extends AirlockApiError = AirlockApiError>(error: unknown, type?: abstract new (...args: never[]) => T): T | undefined {
  const wanted = (type ?? AirlockApiError) as abstract new (...args: never[]) => T;
  let current: unknown = error;
  for (let depth = 0; depth < MAX_DEPTH && current !== null && typeof current === 'object'; depth++) {
    if (current instanceof wanted) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
