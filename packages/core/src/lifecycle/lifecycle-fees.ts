// The fee bounds of a lifecycle transaction that hold without reading the chain: the fleet's
// `lifecycle.max_gas_price` for its chain, and the share of a native transfer's value its fee may take. The
// planner (LifecycleService) applies them to the gas price the RPC quotes before it plans; a key process applies
// them again to the transaction it is asked to sign (BoundSigningGuard.signLifecycle), so a plan forged into the
// store by a compromised daemon, which skips the planner, cannot pay an old key's balance away as a fee (found by
// review: a 1-wei sweep to the agent's own key at gas x gasPrice = the whole balance was signed). The planner's
// third bound, the fee history (eth_feeHistory), needs the chain: a key process has none. And a key process has a
// bound of its own that no store write can change: AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE, a ceiling per chain on the
// worst-case fee of one transaction (assertLifecycleFeeCeiling), because the fleet policy it reads is one a
// compromised daemon can rewrite before it forges a plan.
import { AirlockError } from '../errors.ts';
import type { ClassifiedLifecycleCall } from './lifecycle-calls.ts';

/**
 * A native transfer whose worst-case fee (gas x gasPrice) would be more than this share (percent) of the value it
 * moves is refused, here and by the planner (lifecycle-service.ts takes its MAX_FEE_SHARE_PERCENT from this): a
 * key process with a lower one would refuse sweeps the planner made.
 */
export const LIFECYCLE_MAX_FEE_SHARE_PERCENT = 10n;

/** The fee fields of a lifecycle (legacy) transaction as signed. */
export interface LifecycleFees {
  nonce: number;
  gas: bigint;
  gasPrice: bigint;
}

/**
 * Throws `lifecycle_gas_price_too_high` when the transaction's gas price is above `maxGasPrice` (the fleet's
 * `lifecycle.max_gas_price` for its chain, when the policy sets one: the worst-case fee is then at most
 * gas x max_gas_price), and `lifecycle_fee_too_high` when a native transfer's worst-case fee is more than
 * LIFECYCLE_MAX_FEE_SHARE_PERCENT of the value it moves. Token transfers and revocations move no native value to
 * weigh the fee against: without `max_gas_price` their fee is bounded here by nothing.
 */
export function assertLifecycleFee(chain: string, classified: Pick<ClassifiedLifecycleCall, 'kind' | 'amount'>, fees: LifecycleFees, maxGasPrice: bigint | undefined): void {
  if (maxGasPrice !== undefined && fees.gasPrice > maxGasPrice) {
    throw new AirlockError('lifecycle_gas_price_too_high', `The transaction's gas price (${fees.gasPrice} wei) is above the fleet's lifecycle.max_gas_price on ${chain} (${maxGasPrice}).`, {
      details: { chain, gasPrice: fees.gasPrice.toString(), limit: maxGasPrice.toString(), bound: 'max_gas_price' },
    });
  }
  const fee = fees.gas * fees.gasPrice;
  if (classified.kind === 'native_transfer' && fee * 100n > classified.amount * LIFECYCLE_MAX_FEE_SHARE_PERCENT) {
    throw new AirlockError('lifecycle_fee_too_high', `The native transfer on ${chain} would pay up to ${fee} wei in fees to move ${classified.amount} wei: more than ${LIFECYCLE_MAX_FEE_SHARE_PERCENT}% of the value.`, {
      details: { chain, fee: fee.toString(), value: classified.amount.toString(), gasPrice: fees.gasPrice.toString(), maxFeePercent: Number(LIFECYCLE_MAX_FEE_SHARE_PERCENT) },
    });
  }
}

/**
 * The key process's own ceiling on one lifecycle transaction's worst-case fee (gas x gasPrice, wei), per CAIP-2
 * chain, from its environment (AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE); `*` is the ceiling of every chain not named.
 */
export type LifecycleFeeCeilings = ReadonlyMap<string, bigint>;

/** The ceiling that applies on `chain`: its own, else the `*` one, else none. */
export function lifecycleFeeCeiling(ceilings: LifecycleFeeCeilings, chain: string): bigint | undefined {
  return ceilings.get(chain) ?? ceilings.get('*');
}

/**
 * Throws `lifecycle_fee_too_high` (details.bound `key_process_max_fee`) when the transaction's worst-case fee is above
 * the key process's own ceiling for its chain. Unlike `max_gas_price` it bounds the gas as well as the price, and it
 * is read from the key process's environment, not from the store the daemon writes.
 */
export function assertLifecycleFeeCeiling(chain: string, fees: LifecycleFees, ceilings: LifecycleFeeCeilings): void {
  const ceiling = lifecycleFeeCeiling(ceilings, chain);
  const fee = fees.gas * fees.gasPrice;
  if (ceiling !== undefined && fee > ceiling) {
    throw new AirlockError('lifecycle_fee_too_high', `The transaction on ${chain} would pay up to ${fee} wei in fees (gas ${fees.gas} x gas price ${fees.gasPrice}): above the key process's own ceiling for the chain (AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE, ${ceiling} wei).`, {
      details: { chain, fee: fee.toString(), limit: ceiling.toString(), bound: 'key_process_max_fee' },
    });
  }
}
