/**
 * Circuit breakers (docs/policy.md, "Detectors and circuit breakers"): what a detector that tripped left
 * behind. A tripped breaker binds its agents until an operator resets it: `freeze` froze them (the agent
 * status), `require_approval` holds each of their requests for a human. The signing transaction of every
 * agent whose policy declares detectors reads the breakers that bind it (`StoreTx.trippedBreakersFor`).
 */
export type BreakerAction = 'require_approval' | 'freeze';
export type BreakerScope = 'agent' | 'group' | 'fleet';
export type BreakerState = 'tripped' | 'reset';

/** A detector's figures, as decimal strings (amounts in base units of `asset`). */
export interface DetectorFigures {
  observed: string;
  threshold: string;
  /** What the detector expected from history (absent where no baseline applies: a refusal run). */
  baseline?: string;
  window?: string;
  asset?: string;
  destination?: string;
}

export interface BreakerRecord {
  id: string; // `brk_` + 16 hex
  /** `detector/<layer>/<name>`: the detector that tripped it. */
  detector: string;
  /** The detector type (`request_burst`, ...). */
  type: string;
  action: BreakerAction;
  scope: BreakerScope;
  /** scope `group`: the label and the value the group shares. */
  group?: { label: string; value: string };
  /** The agent whose request tripped it. */
  agentId: string;
  policyVersion: string;
  figures: DetectorFigures;
  message: string;
  /** The agents it binds (for `freeze`: the agents it froze; agents frozen already are not among them). */
  agents: string[];
  state: BreakerState;
  trippedAt: number;
  /** The `breaker.tripped` audit entry. */
  trippedSeq: number;
  resetAt?: number;
  resetBy?: string;
  resetSeq?: number;
}

/** Which agents a new breaker binds: explicit ones, the active agents sharing a label value, or every active agent. */
export type BreakerTargets =
  | { agents: readonly string[] }
  | { group: { label: string; value: string } }
  | { fleet: true };

export type NewBreaker = Omit<BreakerRecord, 'agents' | 'state' | 'resetAt' | 'resetBy' | 'resetSeq'>;

/**
 * An agent a freeze breaker's reset left frozen, and why: the operator froze it themselves (`POST
 * /v1/agents/{id}/freeze`, or revoke-all, also while the breaker held it; only an explicit unfreeze ends that), or
 * other tripped freeze breakers still hold it (their ids), or both.
 */
export interface BreakerResetKeptFrozen {
  agentId: string;
  operatorFreeze: boolean;
  breakers: string[];
}

/** What a reset changed: the agents it unfroze, and the breaker's frozen agents it left frozen (by agent id). */
export interface BreakerResetResult {
  breaker: BreakerRecord;
  unfrozen: string[];
  keptFrozen: BreakerResetKeptFrozen[];
}

/** A destination's recorded payers (destination_wave): the agents first paying it since a time, and whether it was paid before any was recorded. */
export interface DestinationPayers {
  agents: string[];
  /**
   * The fleet was charged for the destination (a ledger entry on `fleet|to:<destination>`) before its earliest
   * recorded payer, or at all where no payer is recorded: it was paid before a destination_wave detector recorded
   * who pays it. Judged by time, never by counting: a charge that records no payer of its own (a replay, a granted
   * approval, a batch's further calls) follows the screening that recorded one, so it cannot make this true.
   */
  paidBeforeRecorded: boolean;
  /**
   * The fleet was charged for the destination (a ledger entry on `fleet|to:<destination>`) before the window's start:
   * a payee it already knew. The ledger only: a request held for approval is no payment, whatever its age (found by
   * review: read as a count over all time against one over the window, a held request older than the window made
   * its payee look known once held counts aged out of windows, and a wave to it went unseen).
   */
  paidBeforeWindow: boolean;
}
