/**
 * The lifecycle path: transactions signed with an agent's key (at any key index it has had) through an
 * operator-only path, to sweep funds to the fleet treasury or the agent's current address and to revoke what
 * the key granted (core/service/lifecycle-service.ts). Each is a job: planned -> signed -> submitted -> mined |
 * failed. What will be signed is committed (`planned`, its `lifecycle.planned` entry) before it is signed, and the
 * signed bytes are committed (`signed`) before they are broadcast, so a crash re-broadcasts the same transaction
 * and never builds a second one.
 */

/** `planned`: committed, not signed yet (no bytes); then as the chain sees it. `planned`, `signed` and `submitted` are open. */
export type LifecycleJobState = 'planned' | 'signed' | 'submitted' | 'mined' | 'failed';
export const OPEN_LIFECYCLE_STATES: readonly LifecycleJobState[] = ['planned', 'signed', 'submitted'];
/** What the lifecycle path let through (lifecycle-calls.ts): nothing else is ever signed on it. */
export type LifecycleKind = 'native_transfer' | 'erc20_transfer' | 'revocation';
/** `sweep`: built by Airlock from balances; `call`: a call handed in (revocations). */
export type LifecycleJobOrigin = 'sweep' | 'call';

export interface LifecycleJob {
  id: string; // `lcj_` + 16 hex
  agentId: string;
  keyIndex: number;
  /** CAIP-2, e.g. `eip155:8453`. */
  chain: string;
  /** The address of the key that signed (lowercase). */
  from: string;
  nonce: number;
  origin: LifecycleJobOrigin;
  kind: LifecycleKind;
  /** Why: `retire`, `manual`, `orphan`, `hot_balance_cap`, `rotation`, `revoke_all`, … */
  purpose: string;
  /** The asset moved (CAIP-19) and how much; a revocation moves nothing (amount 0, no asset). */
  asset?: string;
  amount: bigint;
  /** Where the value goes (a transfer's recipient); absent for a revocation. */
  recipient?: string;
  /** The transaction's `to`. */
  to: string;
  /** The most the transaction can cost in fees (gas limit x gas price), native base units. */
  maxFee: bigint;
  /** The signed transaction (0x-hex): what is (re-)broadcast, byte for byte. Absent while `planned`. */
  rawTransaction?: string;
  transactionHash?: string;
  summary: string;
  state: LifecycleJobState;
  /**
   * The audit entry that created the job and carries its ledger charge: `lifecycle.planned` (what will be signed),
   * or `lifecycle.signed` for jobs created before jobs were planned first.
   */
  auditSeq: number;
  /** The `lifecycle.signed` audit entry, once the bytes are recorded. */
  signedAuditSeq?: number;
  /** How many times the bytes were handed to the RPC. */
  broadcasts: number;
  createdAt: number;
  updatedAt: number;
  submittedAt?: number;
  finishedAt?: number;
  blockNumber?: bigint;
  gasUsed?: bigint;
  /** Why it failed (a reverted receipt, or a broadcast the node refused for good). */
  failure?: string;
  /** `lifecycle.mined` / `lifecycle.failed`. */
  finishAuditSeq?: number;
}

export interface LifecycleJobFilter {
  agentId?: string;
  state?: LifecycleJobState;
  /** Only open jobs (planned, signed or submitted). */
  open?: boolean;
  limit?: number;
}

export interface LifecycleFinish {
  state: 'mined' | 'failed';
  blockNumber?: bigint;
  gasUsed?: bigint;
  failure?: string;
}

/** Reads and bookkeeping outside a signing transaction. */
export interface LifecycleStore {
  getLifecycleJob(id: string): Promise<LifecycleJob | undefined>;
  /** Newest first. */
  listLifecycleJobs(filter: LifecycleJobFilter): Promise<LifecycleJob[]>;
  /** Counts a broadcast; a `signed` job becomes `submitted`. A planned or finished job is left as it is. */
  recordLifecycleBroadcast(id: string, now: number): Promise<LifecycleJob | undefined>;
}

/** The signed bytes of a planned job, as `lifecycle.signed` recorded them. */
export interface LifecycleSignature {
  rawTransaction: string;
  transactionHash: string;
  /** The `lifecycle.signed` audit entry. */
  signedAuditSeq: number;
}

/** Inside `Store.transaction`: a job commits with its audit entry and ledger charge, or not at all. */
export interface LifecycleStoreTx {
  /**
   * Records a job (planned, without bytes). An open sweep (planned, signed or submitted) of the same agent, key
   * index, chain and asset fails the call with `lifecycle_sweep_open`.
   */
  insertLifecycleJob(job: LifecycleJob): Promise<void>;
  getLifecycleJob(id: string): Promise<LifecycleJob | undefined>;
  /** The agent's open jobs (planned, signed or submitted; all key indexes), oldest first. */
  openLifecycleJobs(agentId: string): Promise<LifecycleJob[]>;
  /**
   * planned -> signed with its bytes; undefined (nothing written) when the job is no longer planned: another
   * instance recorded its signature first, or it failed. The first signature recorded is the only one broadcast.
   */
  recordLifecycleSignature(id: string, signature: LifecycleSignature, now: number): Promise<LifecycleJob | undefined>;
  /** planned | signed | submitted -> mined | failed (a planned job only fails); anything else fails with `conflict`. */
  finishLifecycleJob(id: string, finish: LifecycleFinish, now: number, auditSeq: number): Promise<LifecycleJob>;
}

/** A transaction as the chain sees it after mining. */
export interface LifecycleReceipt {
  status: 'success' | 'reverted';
  blockNumber: bigint;
  gasUsed: bigint;
}

/** An increase of an agent's balance seen on chain (an ERC-20 Transfer log to it). */
export interface IncomingTransfer {
  asset: string;
  to: string;
  value: bigint;
  blockNumber: bigint;
}

/**
 * Chain access for the lifecycle path (an I/O port; the server implements it over viem's public client for
 * AIRLOCK_EVM_RPC). It holds no keys: it reads, and broadcasts bytes the core signed and committed.
 */
export interface EvmSubmitter {
  /** Whether an RPC is configured for this CAIP-2 chain. */
  supports(chain: string): boolean;
  /** The configured chains. */
  chains(): string[];
  /** eth_getTransactionCount(address, 'pending'). */
  pendingNonce(chain: string, address: string): Promise<number>;
  /** eth_gasPrice. */
  gasPrice(chain: string): Promise<bigint>;
  /**
   * eth_feeHistory over the last blocks: the highest base fee and the highest median priority fee seen. Undefined
   * when the chain (or the node) has no fee history (pre-London chains); the lifecycle path then bounds the gas
   * price by the fleet's `lifecycle.max_gas_price` only.
   */
  recentFees?(chain: string): Promise<{ maxBaseFee: bigint; maxPriorityFee: bigint } | undefined>;
  estimateGas(chain: string, call: { from: string; to: string; data: string; value: bigint }): Promise<bigint>;
  nativeBalance(chain: string, address: string): Promise<bigint>;
  tokenBalance(chain: string, token: string, address: string): Promise<bigint>;
  /** eth_sendRawTransaction. A node that already has the transaction (or mined it) is success, not an error. */
  sendRawTransaction(chain: string, raw: string): Promise<void>;
  /** Undefined while the transaction is not mined. */
  receipt(chain: string, transactionHash: string): Promise<LifecycleReceipt | undefined>;
  blockNumber(chain: string): Promise<bigint>;
  /** ERC-20 Transfer logs of `tokens` to any of `addresses` in [fromBlock, toBlock]. */
  incomingTransfers(chain: string, tokens: readonly string[], addresses: readonly string[], fromBlock: bigint, toBlock: bigint): Promise<IncomingTransfer[]>;
}
