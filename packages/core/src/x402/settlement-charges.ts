import type { LedgerWrite } from '../ports/ledger.ts';
import type { PaymentRecord, SettledTransfer } from '../ports/payments.ts';

const COUNT_ASSET = '*';

/**
 * What a settled payment charges on top of its converted holds, so the ledger never under-counts what
 * moved: when the transfer that used the nonce is larger than the held value (another authorization with
 * the same nonce settled), every amount hold is charged the difference; when it went to another recipient,
 * that recipient's destination series are charged too. Both stores apply this inside `finishPayment`.
 */
export function settlementCharges(holds: readonly LedgerWrite[], payment: Pick<PaymentRecord, 'value' | 'to'>, settled: SettledTransfer): LedgerWrite[] {
  const extra: LedgerWrite[] = [];
  const difference = settled.value - payment.value;
  const charged = settled.value > payment.value ? settled.value : payment.value;
  const heldDestination = `|to:${payment.to.toLowerCase()}`;
  const settledTo = settled.to.toLowerCase();
  const otherRecipient = settledTo !== payment.to.toLowerCase();
  for (const h of holds) {
    const amountHold = h.asset !== COUNT_ASSET;
    if (difference > 0n && amountHold) extra.push({ series: h.series, asset: h.asset, amount: difference, count: 0 });
    if (otherRecipient && h.series.endsWith(heldDestination)) {
      const series = `${h.series.slice(0, -heldDestination.length)}|to:${settledTo}`;
      extra.push({ series, asset: h.asset, amount: amountHold ? charged : 0n, count: h.count });
    }
  }
  return extra;
}
