/**
 * An intent is what a signing request means, decoded before policy sees it.
 * Adapters produce intents; policy evaluates only intents, never raw payloads.
 * Addresses are lowercase 0x-hex. Amounts are bigint base units.
 */

export const ACTIONS = ['evm.transaction', 'evm.typed_data', 'evm.message', 'evm.user_operation', 'evm.authorization', 'nostr.event', 'nostr.http_auth', 'nostr.nip44', 'nostr.nip04', 'lightning.pay', 'bitcoin.psbt', 'bitcoin.message'] as const;
export type Action = (typeof ACTIONS)[number];

export const INTENT_KINDS = [
  'native.transfer', // plain value transfer (no calldata)
  'erc20.transfer',
  'erc20.transfer_from',
  'erc20.approve',
  'erc20.increase_allowance',
  'contract.call', // any other call: target + selector (+ args when an ABI is known)
  'contract.deploy',
  'eip3009.transfer_with_authorization',
  'eip3009.receive_with_authorization',
  'eip2612.permit',
  'dai.permit', // DAI's own permit (holder, spender, nonce, expiry, allowed): an unlimited allowance, or none
  'permit2.permit_single',
  'permit2.permit_batch',
  'permit2.permit_transfer_from',
  'permit2.permit_witness_transfer_from',
  'typed_data.unknown',
  'safe.transaction', // a Safe multisig transaction (EIP-712 SafeTx) co-signed by the agent: policy runs on each call (Intent.safe.calls) and on their sum
  'contract.delegatecall', // a Safe call with operation DELEGATECALL: the target's code runs as the Safe, so only an allow rule naming the kind and the exact contract grants it
  'safe.gas_refund', // what a SafeTx pays its submitter (gasPrice x gas in gasToken to refundReceiver): only an allow rule naming the kind grants it
  'erc4337.user_operation', // an ERC-4337 user operation: policy runs on each decoded inner call (Intent.userOperation.calls) and on their sum
  'eip7702.authorization', // an EIP-7702 authorization: the EOA's code becomes a delegate contract (Intent.delegation)
  'message.personal',
  'nostr.event', // a NIP-01 event other than NIP-98 HTTP auth
  'nostr.http_auth', // a NIP-98 HTTP auth event (kind 27235)
  'nostr.nip44', // NIP-44 encryption or decryption with a peer (no signature)
  'nostr.nip04', // NIP-04 (deprecated) encryption or decryption with a peer: only where a rule names the action
  'lightning.payment', // a BOLT 11 invoice paid through the Lightning backend
  'lightning.amountless_payment', // an invoice without an amount, paid for the amount the request names: only where an allow rule names this kind
  'bitcoin.transaction', // a PSBT: the agent's inputs signed, every output classified (change proven by derivation, the rest spends)
  'message.bip322', // a BIP-322 signed message (proof of address ownership): only where an allow rule names `message`
] as const;
export type IntentKind = (typeof INTENT_KINDS)[number];

/** Value that leaves the agent's control: a transfer, an authorization, or a network fee. */
export interface Spend {
  /** CAIP-19 asset id, e.g. `eip155:1/slip44:60` (native) or `eip155:8453/erc20:0x833…` (lowercase). */
  asset: string;
  amount: bigint;
  decimals?: number;
  /** Counterparty that receives it (lowercase address), when known. Fees have none. */
  to?: string;
  /** `value` native value, `transfer` token transfer, `authorization` signed off-chain transfer, `fee` max network fee. */
  kind: 'value' | 'transfer' | 'authorization' | 'fee';
}

/** Allowance granted to a spender: exposure, counted like spend by budgets unless unlimited. */
export interface Approval {
  asset: string;
  amount: bigint;
  spender: string;
  /** True from 2^128 base units (max uint256 and max uint160 included): unbounded in effect, more than any balance. */
  unlimited: boolean;
  /** Unix seconds after which the approval lapses, when the standard has one. */
  expiresAt?: number;
}

export interface ContractCall {
  /** Target contract (lowercase). */
  contract: string;
  /** 4-byte selector, lowercase 0x-hex. */
  selector: string;
  /** Function name and decoded arguments when an ABI is known; amounts are bigint. */
  functionName?: string;
  args?: Record<string, unknown>;
  /** The calldata (0x-hex) while no ABI decoded it: what a policy's registered ABIs decode (`ChainAdapter.enrich`). */
  data?: string;
}

export interface FeeFields {
  gasLimit?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  gasPrice?: bigint;
  /** Worst-case fee: gasLimit x (maxFeePerGas or gasPrice). */
  maxTotalFee?: bigint;
}

export interface TypedDataInfo {
  primaryType: string;
  domain: {
    name?: string;
    version?: string;
    chainId?: number;
    verifyingContract?: string;
    salt?: string;
  };
}

export interface Intent {
  action: Action;
  /** CAIP-2 chain id, e.g. `eip155:8453`. Messages have the chain of the request. */
  chain: string;
  kind: IntentKind;
  /** The agent's own address (who signs). */
  from: string;
  /** Main counterparty: recipient, spender or call target, the created contract of a deploy (lowercase); absent for messages. */
  to?: string;
  spends: Spend[];
  approvals: Approval[];
  call?: ContractCall;
  fees?: FeeFields;
  typedData?: TypedDataInfo;
  /** Validity of an off-chain authorization (unix seconds). */
  validity?: { validAfter?: number; validBefore?: number };
  /** Personal message text (utf8) or hex when not valid utf8. */
  message?: { text?: string; hex: string };
  /** Set for off-chain payment authorizations (EIP-3009; x402's Permit2 transfer): what the payment rules look at. */
  payment?: PaymentInfo;
  /**
   * The single-use on-chain nonces this signature consumes (off-chain authorizations: EIP-3009, EIP-2612,
   * Permit2; a Safe's SafeTx nonce; an ERC-4337 account's user-operation nonce). Of two signatures over one key, at most one can ever be used, so Airlock releases a second
   * only when it is byte-identical (a replay, never charged again) and refuses any other (`nonce_reused`).
   * Each key names chain, contract, signer and nonce: see `nonceKey`.
   */
  nonceKeys?: string[];
  /** Nostr requests (`nostr.*` actions): what the event or the NIP-44 operation says. */
  nostr?: NostrInfo;
  /** Lightning payments (`lightning.pay`): what the invoice says and what the payment may cost. */
  lightning?: LightningInfo;
  /** Bitcoin requests (`bitcoin.*` actions): the decoded PSBT (or the BIP-322 message's address). */
  bitcoin?: BitcoinInfo;
  /** Safe multisig transactions (`SafeTx` typed data): the Safe, its nonce and the calls it executes. */
  safe?: SafeTransactionInfo;
  /** ERC-4337 user operations: the account, the calls it executes (each an intent of its own) and what gas may cost. */
  userOperation?: UserOperationInfo;
  /** A call into an account module that executes calls from its account, as a policy's `abis` declares (`executes`). */
  module?: ModuleExecutionInfo;
  /** EIP-7702 authorizations (signed alone or carried by a type-4 transaction): which delegate each installs, on which chain. */
  delegation?: DelegationInfo;
  /** One line for humans, e.g. "transfer 5 USDC to 0xabc… on eip155:8453". */
  summary: string;
}

/**
 * The agent's call into a module (a Safe module such as Zodiac Roles) that makes the account it is attached to
 * execute a call, as a policy's `abis` entry declares it (`moves.<function>.executes`). `calls` is that call,
 * decoded like a transaction making it (`from` = the module); the outer intent's spends are its spends, so
 * policy runs on the call and on the whole, as for a Safe transaction.
 */
export interface ModuleExecutionInfo {
  /** The module the agent calls (lowercase). */
  contract: string;
  /** The function called, and the `abis` declaration that says it executes a call. */
  functionName: string;
  abi: string;
  calls: Intent[];
}

/**
 * A Safe transaction as policy sees it. `calls` are what the Safe executes once enough owners signed: the
 * outer call itself, or each call of a MultiSend batch, plus the gas refund when the SafeTx pays one. Each is
 * an intent of its own (`from` = the Safe, `typedData` = the SafeTx domain), decoded like a transaction;
 * the outer intent's spends are their sum, so the co-signature is charged once for everything it moves.
 */
export interface SafeTransactionInfo {
  /** The Safe (the EIP-712 verifying contract), lowercase. */
  address: string;
  nonce: bigint;
  /** CALL, or DELEGATECALL (to a canonical MultiSend for a batch, otherwise to `calls[0]`'s target). */
  operation: 'call' | 'delegatecall';
  /** The canonical MultiSend / MultiSendCallOnly the SafeTx delegatecalls, when it is a batch. */
  multiSend?: string;
  calls: Intent[];
}

/**
 * An ERC-4337 user operation as policy sees it. The operation's hash is recomputed from these fields (never
 * taken from the request); `calls` are what the account's `execute`/`executeBatch` runs, each decoded like a
 * transaction from the account (`from` = sender). The outer intent's spends are the sum of the calls' spends
 * plus the prefund (when no paymaster pays), so a batch is charged once for everything it moves.
 */
export interface UserOperationInfo {
  entryPoint: string;
  entryPointVersion: '0.6' | '0.7' | '0.8';
  /** The smart account (lowercase). */
  sender: string;
  nonce: bigint;
  /** The EntryPoint's userOpHash (0x-hex), recomputed by Airlock. */
  hash: string;
  /** What the agent's key signs: the hash itself (`raw`), EIP-191 over it (`eip191`), or EIP-712 (`typed_data`, v0.8). */
  signing: 'raw' | 'eip191' | 'typed_data';
  /** The account function the callData calls (`execute`, `executeBatch`), or `unknown` when no registered account ABI decodes it. */
  accountCall: 'execute' | 'executeBatch' | 'unknown';
  /** The decoded calls (empty when `accountCall` is unknown: refused by default). */
  calls: Intent[];
  /** The paymaster that pays for gas (lowercase), when one is named: an external party policy must list. */
  paymaster?: string;
  /** The factory deploying the account (initCode), when one is named; `0x7702` marks an EIP-7702 account. */
  factory?: string;
  /** The most gas the operation can buy: call + verification + pre-verification (+ paymaster) gas limits. */
  totalGas: bigint;
  /** totalGas x maxFeePerGas: what the account (or its paymaster) can lose to gas. */
  prefund: bigint;
}

/** One EIP-7702 authorization: the delegate whose code the authority's account will run. */
export interface DelegationEntry {
  /** The delegate contract (lowercase); the zero address clears a delegation. */
  delegate: string;
  /** The authorization's chain id; 0 means valid on every chain. */
  chainId: number;
  nonce: bigint;
  /** Who signed it (lowercase): the agent for a standalone authorization; recovered for a type-4 transaction's list. */
  authority?: string;
}

export interface DelegationInfo {
  authorizations: DelegationEntry[];
}

/** The CAIP-2-shaped chain id every Nostr intent names (Nostr has no chains; one id keeps `chains` rules meaningful). */
export const NOSTR_CHAIN = 'nostr:mainnet';

/**
 * A Nostr request as policy sees it. Pubkeys are x-only lowercase hex. The event content itself is kept
 * off the JSON view (`content` is not enumerable): rules read it, audit entries carry its size and the
 * event id, which commits to it.
 */
export interface NostrInfo {
  /** The NIP-01 event kind (27235 for NIP-98); absent for NIP-44 operations. */
  eventKind?: number;
  /** The event id (sha256 of the NIP-01 serialisation, hex): what is signed. */
  eventId?: string;
  createdAt?: number;
  /** UTF-8 bytes of the content (the plaintext for NIP-44 encryption, the payload for decryption). */
  contentBytes: number;
  /**
   * Tag values that matter to policy: `p` pubkeys (a value naming none as `not-a-pubkey`), `e` event ids, `t`
   * hashtags, relay URLs (`r`, `relay`). Only `p` and `count` are in the JSON view: `e`, `t` and `relays` are free
   * text and, like the content, not enumerable (an audit entry must not keep what a content filter refused).
   */
  tags?: { p: string[]; readonly e: string[]; readonly t: string[]; readonly relays: string[]; count: number };
  /** UTF-8 bytes of every tag, names and values, summed: what a client may render or a relay publish besides the content. */
  tagBytes?: number;
  /** NIP-98: the URL (`u` tag) and method the auth event is for. */
  http?: { url: string; method: string };
  /** NIP-44: the peer and the direction. */
  nip44?: { peer: string; op: 'encrypt' | 'decrypt' };
  /** NIP-04: the peer and the direction. */
  nip04?: { peer: string; op: 'encrypt' | 'decrypt' };
  /** The content as sent (not enumerable: not in audit entries or responses). */
  readonly content?: string;
  /** Every element of every tag as sent, names included (not enumerable, as `content`): what content patterns also judge. */
  readonly tagText?: readonly string[];
}

/**
 * A Lightning payment as policy sees it. Amounts are millisatoshis; node ids are 33-byte compressed keys as
 * lowercase hex. The spends carry the same figures (the amount to the payee, the routing fee limit as a fee).
 */
export interface LightningInfo {
  network: 'bitcoin' | 'testnet' | 'signet' | 'regtest';
  paymentHash: string;
  /** The payee node id (verified against the invoice signature). */
  payee: string;
  amountMsat: bigint;
  /** The invoice named no amount: `amountMsat` is what the request asked to pay. */
  amountless: boolean;
  /** The most the route may cost (the fee limit handed to the backend). */
  maxFeeMsat: bigint;
  /** Unix seconds. */
  createdAt: number;
  expiresAt: number;
  description?: string;
  descriptionHash?: string;
  /** Route hints the invoice carries (paths), for operators reading the intent. */
  routeHints: number;
  /**
   * The most a route through one of the invoice's route hints costs (the costliest hint path, msat); absent without
   * hints. On a backend that holds no fee limit (NWC) a payment with a hint above `maxFeeMsat` is refused
   * (`lightning_route_hint_fee_too_high`).
   */
  routeHintFeeMsat?: bigint;
}

/** CAIP-2 ids of the Bitcoin networks (BIP-122: the genesis block hash, first 32 hex digits). */
export const BITCOIN_CHAINS = {
  bitcoin: 'bip122:000000000019d6689c085ae165831e93',
  testnet: 'bip122:000000000933ea01ad0ee984209779ba',
  signet: 'bip122:00000008819873e925422c1ff0f99f7c',
  regtest: 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328',
  testnet4: 'bip122:00000000da84f2bafbbc53dee25a72ae',
} as const;

/** The Bitcoin networks Airlock signs for. `testnet` is testnet3; testnet4, signet and testnet3 share the `tb` address prefix. */
export type BitcoinNetwork = keyof typeof BITCOIN_CHAINS;
export const BITCOIN_NETWORKS = Object.keys(BITCOIN_CHAINS) as BitcoinNetwork[];

/** The sighash types a PSBT input may ask for, by name (BIP-341 `default` is taproot-only). */
export const SIGHASH_NAMES = ['default', 'all', 'none', 'single', 'all_anyonecanpay', 'none_anyonecanpay', 'single_anyonecanpay'] as const;
export type SighashName = (typeof SIGHASH_NAMES)[number];

/** One input of a PSBT as policy sees it. Amounts are satoshis (the spends carry msat). */
export interface BitcoinInput {
  index: number;
  /** The previous output spent: txid (display order, hex) and output index. */
  txid: string;
  vout: number;
  amountSat: bigint;
  /** The address of the previous output's script, when it has one. */
  address?: string;
  /** `p2wpkh`, `p2tr`, or the script type of an input that is not the agent's (`p2pkh`, `p2sh`, `p2wsh`, `unknown`). */
  scriptType: string;
  /** True when the derivation fields name one of the agent's own keys and deriving it reproduces the input's script: only these are signed. */
  ours: boolean;
  /** The agent's key path for an input that is ours, e.g. m/84'/1'/3'/0/7. */
  path?: string;
  /** The sighash the signature of this input commits with (inputs that are ours). */
  sighash?: SighashName;
  sequence: number;
}

/** One output of a PSBT. */
export interface BitcoinOutput {
  index: number;
  amountSat: bigint;
  /** The address of the output script; absent for scripts without one (OP_RETURN, bare scripts). */
  address?: string;
  /** The output script, hex. */
  script: string;
  /** True only when the script was derived from the agent's own change path (m/.../1/i) and matched. */
  change: boolean;
  /** The change path, when `change`. */
  path?: string;
}

/** A Bitcoin request as policy sees it. */
export interface BitcoinInfo {
  network: BitcoinNetwork;
  /** `bitcoin.psbt`: 0 (BIP-174) or 2 (BIP-370). */
  psbtVersion?: 0 | 2;
  /** The unsigned transaction id (display order). */
  txid?: string;
  inputs: BitcoinInput[];
  outputs: BitcoinOutput[];
  /** Inputs minus outputs. */
  feeSat: bigint;
  /** Virtual size of the signed transaction (estimated from the input types before it is signed). */
  vsize: number;
  /** feeSat / vsize, sat/vB, rounded up to three decimals. */
  feeRate: number;
  locktime: number;
  /** Some input signals replace-by-fee (sequence < 0xfffffffe). */
  rbf: boolean;
  /** The sighash types the agent's signatures commit with, deduplicated. */
  sighashes: SighashName[];
  /** `bitcoin.message`: the address that signs (BIP-322). */
  messageAddress?: string;
}

/**
 * The bitcoin asset of a network (CAIP-19, SLIP-44 coin type 0), counted in MILLISATOSHIS everywhere in
 * Airlock: Lightning amounts are msat, and on-chain amounts are charged as sat x 1000, so that one budget
 * on this asset covers both.
 */
export function bitcoinAsset(chain: string): string {
  return `${chain}/slip44:0`;
}

/**
 * An x402-capable payment. `resource`/`origin` are known only when the request says which paid
 * resource it is for (POST /v1/x402/pay, or `x402.resource` on the generic typed-data path).
 */
export interface PaymentInfo {
  /** `x402` (EIP-3009 / Permit2), `l402` (a Lightning invoice paid for an L402 resource), `lightning` (a plain invoice). */
  protocol: 'x402' | 'l402' | 'lightning';
  /** The paid resource URL without its query string and fragment. */
  resource?: string;
  /** `scheme://host[:port]` of the resource. */
  origin?: string;
  /** Who receives the payment (lowercase). */
  payTo: string;
  /** CAIP-2 network. */
  network: string;
  /** Authorization nonce: bytes32 hex (EIP-3009) or a decimal uint256 (Permit2). */
  nonce: string;
  /** Unix seconds after which the authorization cannot be used. */
  validBefore: number;
}

export function nativeAsset(chain: string): string {
  // SLIP-44 coin type 60 is ETH; EVM chains with other native coins still use 60 in CAIP-19 practice.
  return `${chain}/slip44:60`;
}

export function erc20Asset(chain: string, token: string): string {
  return `${chain}/erc20:${token.toLowerCase()}`;
}

/**
 * The uniqueness key of a single-use authorization nonce: `<standard>|<chain>|<contract>|<owner>|<nonce>`,
 * plus the standard's extra scope (Permit2 allowance nonces are per token and spender; a user operation's nonce is
 * per account, the owner being its signer). Lowercase.
 */
export function nonceKey(standard: 'eip3009' | 'eip2612' | 'permit2-transfer' | 'permit2-allowance' | 'safe' | 'user-operation', chain: string, contract: string, owner: string, nonce: bigint | string, scope: readonly string[] = []): string {
  return [standard, chain, contract, owner, ...scope, nonce.toString()].map((p) => p.toLowerCase()).join('|');
}

/**
 * JSON view of an intent (bigints as decimal strings) for audit entries and responses: exactly what
 * `JSON.parse(JSON.stringify(intent))` would give with bigints as strings, built in one walk (the round trip
 * cost about 8 µs per call, twice per signature). Intents are plain data: no toJSON, no cycles.
 */
export function intentToJson(intent: Intent): unknown {
  return jsonValue(intent);
}

function jsonValue(v: unknown): unknown {
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : null;
    case 'string':
      // Text decoded from bytes (a raw personal message, an invoice's description, an ABI string) may hold U+0000,
      // which PostgreSQL holds neither in text nor in jsonb while SQLite does: a held request's intent then failed
      // `store migrate`, or answered a store error on PostgreSQL only (found by review). Shown as U+FFFD; what is
      // signed is the bytes as sent, bound by the digest.
      return v.includes('\u0000') ? v.replaceAll('\u0000', '\uFFFD') : v;
    case 'boolean':
      return v;
    case 'object': {
      if (v === null) return null;
      if (Array.isArray(v)) return v.map((x) => jsonValue(x) ?? null);
      const entries: [string, unknown][] = [];
      for (const key of Object.keys(v)) {
        const value = jsonValue((v as Record<string, unknown>)[key]);
        if (value !== undefined) entries.push([key, value]);
      }
      // fromEntries defines own properties, so a `__proto__` key (typed data is the agent's) stays data.
      return Object.fromEntries(entries);
    }
    default:
      return undefined; // undefined, functions, symbols: left out of objects, null in arrays
  }
}
