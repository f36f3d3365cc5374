import type { AuthorizationUse, ChainReader, PinnedBlock } from '../ports/chain-reader.ts';
import type { PaymentRecord, SettledTransfer } from '../ports/payments.ts';
import type { ServiceDeps } from '../service/deps.ts';
import { AirlockError } from '../errors.ts';

export interface ReconcilerOptions {
  /** Wall-clock seconds past validBefore before a hold may be released (default 300). */
  marginSeconds?: number;
  /** How far the latest block's time may stray from the wall clock before the chain's answers decide nothing (default 120). */
  maxClockSkewSeconds?: number;
  /** How far the pinned block may lag the wall clock, once a payment is due, before a kept hold raises an alert (default 3600). */
  maxPinnedLagSeconds?: number;
  /**
   * How many reserved payments one round reads (default 500, 1 to 1000). Rounds page through all of them in
   * (validBefore, id) order, wrapping around, so every reserved payment is looked at within ceil(n / this) rounds.
   */
  batchSize?: number;
}

export const RECONCILER_DEFAULTS: Required<ReconcilerOptions> = { marginSeconds: 300, maxClockSkewSeconds: 120, maxPinnedLagSeconds: 3600, batchSize: 500 };

/** The largest batch a round reads (the stores' list limit). */
const MAX_BATCH = 1000;

/** A position in the (validBefore, id) order of reserved payments: a round reads the ones after it. */
export interface ReservedCursor {
  validBefore: number;
  id: string;
}

export interface ReconcileResult {
  checked: number;
  settled: number;
  expired: number;
  /** Converted at validBefore without chain evidence (no RPC for the network). */
  assumedSettled: number;
  /** Payments whose chain read failed this round (left reserved). */
  errors: number;
  /** Alert entries written this round (`alert.reconciler`, `alert.settlement_mismatch`). */
  alerts: number;
  /**
   * Holds kept this round because the chain's answers disagree (each `alert.reconciler`'s reasons), alerted or not:
   * a payment is alerted at most once per DISAGREEMENT_REPEAT_MS, whatever the reason.
   */
  disagreements: number;
}

/**
 * How long a payment that keeps disagreeing goes without another alert, for any reason. Once per payment and
 * round was tried: an RPC whose clock runs ahead, or finality lagging past an hour, then wrote one entry (and one
 * webhook delivery, queued ahead of the operator's next breaker alert) per held payment every 30 s, about 1.4
 * million a day at 500 holds (found by review).
 */
export const DISAGREEMENT_REPEAT_MS = 3_600_000;

/** The chain as one round sees it, read once per network: the latest block time and the pinned block. */
interface ChainView {
  latest: number;
  pinned: PinnedBlock;
}

type Verdict =
  | { kind: 'wait' }
  | { kind: 'assumed' }
  | { kind: 'settled'; use: AuthorizationUse | undefined }
  | { kind: 'expired'; view: ChainView }
  | { kind: 'disagree'; reason: DisagreementReason; figures: Record<string, unknown> }
  | { kind: 'error'; failure: string; due: boolean };

/** Why a hold was kept against what one chain answer alone would have done (the `reason` of `alert.reconciler`). */
export type DisagreementReason = 'chain_clock_skew' | 'chain_inconsistent' | 'pinned_block_lagging' | 'nonce_state_disagrees';

/**
 * Reconciles reserved x402 payments against the chain. A hold is released only when three things agree:
 *   1. the wall clock is at or past validBefore + margin (an RPC cannot move it);
 *   2. the pinned block (finalized or safe, read once per network and round) has a timestamp past
 *      validBefore, so EIP-3009 refuses the authorization in that block and every later one;
 *   3. `authorizationState` at that block number says the nonce is unused.
 * and the latest block's time is within `maxClockSkewSeconds` of the wall clock. A nonce used at the latest
 * block settles the payment, charged max(signed value, value of the Transfer that used it). Whenever the
 * answers disagree the hold is kept and an `alert.reconciler` entry records the figures, at most once per payment
 * and DISAGREEMENT_REPEAT_MS; read failures are counted and alerted once per network and round.
 *
 * A round reads at most `batchSize` reserved payments, starting after the last one the previous round of this
 * reconciler read and starting over from the soonest validBefore once the end is reached: payments that stay
 * reserved round after round (a network whose RPC is down, an asset without `authorizationState`) cannot keep
 * the ones behind them from ever being looked at.
 */
export class PaymentReconciler {
  private readonly deps: ServiceDeps;
  private readonly chain: ChainReader | undefined;
  private readonly options: Required<ReconcilerOptions>;
  /** Where the next round starts: after the last payment the previous round read (none: the soonest validBefore). */
  private cursor: ReservedCursor | undefined;
  /** Per payment alerted within DISAGREEMENT_REPEAT_MS: when (this instance's; a restart or another instance alerts again). */
  private readonly alerted = new Map<string, number>();

  constructor(deps: ServiceDeps, chain: ChainReader | undefined, options: ReconcilerOptions = {}) {
    this.deps = deps;
    this.chain = chain;
    this.options = { ...RECONCILER_DEFAULTS, ...options };
    const { batchSize, ...seconds } = this.options;
    for (const [name, v] of Object.entries(seconds)) {
      if (!Number.isSafeInteger(v) || v < 0) throw new AirlockError('invalid_request', `reconciler ${name} must be a non-negative whole number of seconds`);
    }
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new AirlockError('invalid_request', `reconciler batchSize must be a whole number from 1 to ${MAX_BATCH}`);
  }

  async run(limit = this.options.batchSize): Promise<ReconcileResult> {
    const batch = Math.max(1, Math.min(Math.floor(limit), MAX_BATCH));
    const after = this.cursor;
    let due = await this.deps.store.transaction((tx) => tx.reservedPayments(batch, after));
    // Past the end: start over from the soonest validBefore now rather than spend a round on nothing.
    if (due.length === 0 && after) due = await this.deps.store.transaction((tx) => tx.reservedPayments(batch));
    const last = due[due.length - 1];
    // A short page reached the end: the next round starts over.
    this.cursor = due.length < batch || !last ? undefined : { validBefore: last.validBefore, id: last.id };
    const result: ReconcileResult = { checked: 0, settled: 0, expired: 0, assumedSettled: 0, errors: 0, alerts: 0, disagreements: 0 };
    // A payment not seen disagreeing for the repeat interval (finished, or no longer read) is forgotten.
    const now = this.deps.clock.now();
    for (const [id, at] of this.alerted) if (now - at >= DISAGREEMENT_REPEAT_MS) this.alerted.delete(id);
    const views = new Map<string, Promise<ChainView>>();
    const failures = new Map<string, { payments: number; due: number; failure: string }>();
    for (const p of due) {
      result.checked += 1;
      const verdict = await this.judge(p, views);
      switch (verdict.kind) {
        case 'wait':
          break;
        case 'error': {
          result.errors += 1;
          const f = failures.get(p.network) ?? { payments: 0, due: 0, failure: verdict.failure };
          f.payments += 1;
          if (verdict.due) f.due += 1;
          failures.set(p.network, f);
          break;
        }
        case 'disagree': {
          result.disagreements += 1;
          // Whatever the reason: the RPC picks it, and one that flipped its pinned block across its latest each
          // round (or answered "wait" every other round) re-alerted every payment every round (found by review).
          if (this.alerted.has(p.id)) break;
          await this.alert('alert.reconciler', p, { reason: verdict.reason, ...verdict.figures });
          this.alerted.set(p.id, now);
          result.alerts += 1;
          break;
        }
        case 'expired':
          if (await this.finish(p, 'expired', { evidence: 'pinned_block_unused_after_valid_before', pinnedBlock: verdict.view.pinned.number.toString(), pinnedTag: verdict.view.pinned.tag, pinnedTimestamp: verdict.view.pinned.timestamp, latestTimestamp: verdict.view.latest })) result.expired += 1;
          break;
        case 'assumed':
          if (await this.finish(p, 'assumed', { evidence: 'assumed_no_rpc' })) {
            result.settled += 1;
            result.assumedSettled += 1;
          }
          break;
        case 'settled': {
          const outcome = await this.settle(p, verdict.use);
          if (outcome.done) result.settled += 1;
          result.alerts += outcome.alerts;
          break;
        }
      }
    }
    // A failing RPC is reported once per network and round, and only when it keeps a due hold: payments
    // that are not due yet lose nothing by waiting for the next round.
    for (const [network, f] of failures) {
      if (f.due === 0) continue;
      await this.deps.store.transaction((tx) => tx.appendAudit({ at: this.deps.clock.now(), type: 'alert.reconciler', actor: 'system', data: { reason: 'rpc_error', network, failure: f.failure, payments: f.payments, due: f.due } }));
      result.alerts += 1;
    }
    return result;
  }

  private async judge(p: PaymentRecord, views: Map<string, Promise<ChainView>>): Promise<Verdict> {
    const { marginSeconds, maxClockSkewSeconds, maxPinnedLagSeconds } = this.options;
    const wall = Math.floor(this.deps.clock.now() / 1000);
    const dueByWallClock = wall >= p.validBefore + marginSeconds;
    const chain = this.chain;
    if (!chain?.supports(p.network)) return wall > p.validBefore ? { kind: 'assumed' } : { kind: 'wait' };
    try {
      let view = views.get(p.network);
      if (!view) {
        view = readView(chain, p.network);
        views.set(p.network, view);
      }
      const { latest, pinned } = await view;
      if (await chain.authorizationState(p.network, p.asset, p.from, p.nonce)) {
        return { kind: 'settled', use: await chain.findAuthorizationUse(p.network, p.asset, p.from, p.nonce) };
      }
      const chainSaysPast = latest >= p.validBefore || pinned.timestamp > p.validBefore;
      // Nothing to decide yet: neither the wall clock nor the chain says the authorization is over.
      if (!dueByWallClock && !chainSaysPast) return { kind: 'wait' };
      const figures = { paymentId: p.id, network: p.network, validBefore: p.validBefore, wallClock: wall, latestTimestamp: latest, pinnedTag: pinned.tag, pinnedBlock: pinned.number.toString(), pinnedTimestamp: pinned.timestamp, marginSeconds };
      // A pinned block newer than the latest one: the RPC contradicts itself.
      if (pinned.timestamp > latest) return { kind: 'disagree', reason: 'chain_inconsistent', figures };
      // A chain far ahead of (or behind) the wall clock is lying or lagging: its answers decide nothing.
      if (Math.abs(latest - wall) > maxClockSkewSeconds) return { kind: 'disagree', reason: 'chain_clock_skew', figures: { ...figures, maxClockSkewSeconds } };
      if (!dueByWallClock) return { kind: 'wait' };
      if (pinned.timestamp <= p.validBefore) {
        // Finality lags the head by design (minutes on Ethereum); only a long lag is worth an alert.
        return wall - pinned.timestamp > maxPinnedLagSeconds ? { kind: 'disagree', reason: 'pinned_block_lagging', figures: { ...figures, maxPinnedLagSeconds } } : { kind: 'wait' };
      }
      // Unused at the latest block but used at an older, final one: a used nonce never becomes unused.
      if (await chain.authorizationState(p.network, p.asset, p.from, p.nonce, pinned.number)) return { kind: 'disagree', reason: 'nonce_state_disagrees', figures };
      return { kind: 'expired', view: { latest, pinned } };
    } catch (e) {
      return { kind: 'error', failure: failureKind(e), due: dueByWallClock };
    }
  }

  /** Settles with what the chain says moved; the ledger is charged max(held, moved) and any mismatch is alerted. */
  private async settle(p: PaymentRecord, use: AuthorizationUse | undefined): Promise<{ done: boolean; alerts: number }> {
    const transfer = use?.transfer;
    const settled: SettledTransfer | undefined = transfer && { value: transfer.value, to: transfer.to.toLowerCase() };
    const mismatch = settled !== undefined && (settled.value !== p.value || settled.to !== p.to.toLowerCase());
    const charged = settled && settled.value > p.value ? settled.value : p.value;
    const evidence = settled ? 'chain' : 'chain_used_transfer_not_found';
    let alerts = 0;
    const done = await this.finish(p, 'settled', {
      evidence,
      ...(use ? { transaction: use.transactionHash, block: use.blockNumber.toString() } : {}),
      ...(settled ? { settledValue: settled.value.toString(), settledTo: settled.to, chargedValue: charged.toString() } : {}),
    }, use?.transactionHash, settled, async (append) => {
      if (mismatch) {
        await append('alert.settlement_mismatch', { paymentId: p.id, network: p.network, asset: p.asset, nonce: p.nonce, heldValue: p.value.toString(), heldTo: p.to, settledValue: settled.value.toString(), settledTo: settled.to, chargedValue: charged.toString(), transaction: use!.transactionHash });
        alerts += 1;
      } else if (!settled) {
        // The nonce is spent but the reader found no transfer (cancelled, or outside its log range): the
        // held amount is charged, which over-counts if nothing moved.
        await append('alert.reconciler', { reason: 'settlement_not_found', paymentId: p.id, network: p.network, nonce: p.nonce, heldValue: p.value.toString() });
        alerts += 1;
      }
    });
    return { done, alerts: done ? alerts : 0 };
  }

  /** Finishes one payment in one transaction with its audit entry (and any alert); false when another round got there first. */
  private async finish(
    p: PaymentRecord,
    outcome: 'settled' | 'expired' | 'assumed',
    data: Record<string, unknown>,
    chainTx?: string,
    settled?: SettledTransfer,
    alongside?: (append: (type: string, data: Record<string, unknown>) => Promise<void>) => Promise<void>,
  ): Promise<boolean> {
    const now = this.deps.clock.now();
    // `conflict`: another round (another instance's, or an overlapping tick of this one's) finished the payment
    // between the unlocked read below and finishPayment's locked re-check, and this transaction rolled back whole.
    // That is "another round got there first", not a failed round: thrown on, it ended this round and left the
    // rest of its batch unchecked, and the round's rpc_error alerts unwritten (found by review, two instances on one
    // PostgreSQL).
    return this.deps.store.transaction(async (tx) => {
      const fresh = await tx.getPayment(p.id);
      if (!fresh || fresh.state !== 'reserved') return false;
      const entry = await tx.appendAudit({
        at: now, type: outcome === 'expired' ? 'x402.expired' : 'x402.settled', actor: 'system', agentId: p.agentId, sessionId: p.sessionId,
        data: { paymentId: p.id, network: p.network, asset: p.asset, value: p.value.toString(), nonce: p.nonce, validBefore: p.validBefore, ...data, ...(fresh.reportedTx ? { reportedTx: fresh.reportedTx } : {}) },
      });
      // Only the chain names the settlement transaction. The agent's report is unverified (any well-formed hash)
      // and stays apart as `reportedTx` (and in this entry's data): a nonce used with no event found has none.
      const settlementTx = outcome === 'settled' ? chainTx : outcome === 'assumed' ? 'assumed' : undefined;
      await tx.finishPayment(p.id, outcome === 'expired' ? 'expired' : 'settled', now, entry.seq, settlementTx, settled);
      await alongside?.(async (type, alertData) => {
        await tx.appendAudit({ at: now, type, actor: 'system', agentId: p.agentId, sessionId: p.sessionId, data: alertData });
      });
      return true;
    }).catch((e: unknown) => {
      if (e instanceof AirlockError && e.code === 'conflict') return false;
      throw e;
    });
  }

  private async alert(type: string, p: PaymentRecord, data: Record<string, unknown>): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.store.transaction((tx) => tx.appendAudit({ at: now, type, actor: 'system', agentId: p.agentId, sessionId: p.sessionId, data }));
  }
}

async function readView(chain: ChainReader, network: string): Promise<ChainView> {
  // Pinned first: a block read later can only be newer, so `pinned <= latest` holds for an honest RPC.
  const pinned = await chain.pinnedBlock(network);
  const latest = await chain.latestBlockTimestamp(network);
  return { latest, pinned };
}

/** The error's class name only: RPC errors carry the URL, which may hold an API key. */
function failureKind(e: unknown): string {
  return e instanceof Error ? e.name.slice(0, 64) : 'unknown';
}
