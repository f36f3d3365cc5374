import type { Intent } from '../intent.ts';
import type { IntentFacts } from './facts.ts';
import type { MatchOptions } from './fields.ts';
import { invalidPolicyAt, type PolicyPath } from './path.ts';
import { resolveAddressList, type AddressSets } from './sets.ts';
import { toAmount } from './amount.ts';
import { compileResourcePattern, type ResourcePattern } from './resource-pattern.ts';
import { compileOperatorPattern } from './operator-pattern.ts';

interface ArgCheck {
  name: string;
  /** `name` split at dots: tuple fields and array items. */
  path: readonly string[];
  eq?: { big?: bigint; str?: string; bool?: boolean; self?: true };
  /** `in` names `$self`: the signing agent's address is also accepted. */
  inSelf?: boolean;
  inStrings?: ReadonlySet<string>;
  inNumbers?: ReadonlySet<bigint>;
  lte?: bigint;
  gte?: bigint;
}

interface DomainCheck {
  chainId?: number;
  verifyingContract?: string;
  name?: string;
  version?: string;
}

const INTEGER = /^(0|[1-9][0-9]*)$/;

/** ALL (and taproot's DEFAULT, which means ALL): the signature commits to every input and output. */
export function isStandardSighash(name: string): boolean {
  return name === 'all' || name === 'default';
}

/**
 * A `match` block compiled once: every list becomes a Set, every pattern a RegExp, every amount a
 * bigint. It has two readings (semantics §2):
 * - `matches` ("covers", for allow): the intent lies within the listed values: every moved asset
 *   and every named chain is listed, the main counterparty is listed, the call satisfies `args`.
 * - `touches` ("touches", for deny and every rule that restricts where it applies): some part of the
 *   intent is listed: any moved asset, any party, any named chain. Adding spends, approvals, parties
 *   or a call to an intent can only make it touch more, so a deny cannot be escaped by adding to it.
 */
/**
 * A personal message of exactly 32 bytes: the length of a hash. Safe's `checkSignatures` takes an `eth_sign`
 * signature (v + 4) over EIP-191 of a safeTxHash, and some smart accounts (SimpleAccount v0.7, Solady) sign EIP-191
 * over the userOpHash: such a message is an owner's approval of whatever that hash stands for, decoded by no one.
 * Granted only by an allow rule with a fixed `prefix` of at least 16 bytes or `message.allow_hash_length: true` (a
 * `pattern` does not keep hashes out: the agent can vary a SafeTx field until the hash is text that matches).
 */
/** A fixed message prefix this long (128 bits) cannot be reached by grinding a hash. */
export const HASH_SAFE_PREFIX_BYTES = 16;

/**
 * The most characters of message text a `message.pattern` runs over (as Nostr content patterns, rules/nostr-event.ts).
 * The operator's pattern runs over the agent's text on the daemon's one event loop, and a pattern with super-linear
 * backtracking over a message as large as the request body (256 KiB by default; the EVM decoder caps no message
 * text) stalls every agent's signing. A rule whose pattern would run over more is refused `message_too_large`
 * (compile.ts) and its pattern does not run: never matched for an allow rule, touched for a rule that restricts.
 */
export const MAX_MESSAGE_PATTERN_INPUT = 16_384;

/**
 * Why a block's `message.pattern` cannot judge a message it would have to run over: the text is longer than
 * MAX_MESSAGE_PATTERN_INPUT (`oversize`), or the pattern was refused as able to backtrack super-linearly
 * (`unsafe`: a policy stored before patterns were checked, operator-pattern.ts). The pattern is not run.
 */
export type UnjudgedMessage = { reason: 'oversize'; length: number } | { reason: 'unsafe'; why: string };

export function isHashLengthMessage(intent: Intent): boolean {
  return intent.kind === 'message.personal' && intent.message !== undefined && intent.message.hex.length === 2 + 64;
}

export class CompiledMatch {
  readonly empty: boolean;
  /** Which fields an allow rule must name to grant the kinds that are only granted by name (semantics §4). */
  readonly namesTypedData: boolean;
  readonly namesMessage: boolean;
  /**
   * A 32-byte personal message may be granted: `message.allow_hash_length`, or a fixed `prefix` of at least 16 bytes
   * (a hash cannot be ground to start with 128 fixed bits). Otherwise never (`message_hash_length`).
   */
  readonly allowsHashLength: boolean;
  readonly namesContracts: boolean;
  readonly namesDeploy: boolean;
  /** A Safe DELEGATECALL is granted only by a rule naming `kinds: [contract.delegatecall]` and the exact `contracts`. */
  readonly namesDelegatecall: boolean;
  /** A Safe gas refund is granted only by a rule naming `kinds: [safe.gas_refund]`. */
  readonly namesGasRefund: boolean;
  /** Amountless Lightning invoices are granted only by a rule naming `kinds: [lightning.amountless_payment]`. */
  readonly namesAmountless: boolean;
  /** Nostr requests are granted only by a rule that names a `nostr.*` action or `nostr_kinds`. */
  readonly namesNostr: boolean;
  private readonly nostrKinds?: ReadonlySet<number>;
  /** Sighash types beyond ALL/DEFAULT this block lists (`bitcoin_sighash`). */
  private readonly sighashes?: ReadonlySet<string>;

  private readonly actions?: ReadonlySet<string>;
  private readonly chains?: ReadonlySet<string>;
  private readonly kinds?: ReadonlySet<string>;
  private readonly to?: ReadonlySet<string>;
  private readonly assets?: ReadonlySet<string>;
  private readonly contracts?: ReadonlySet<string>;
  private readonly selectors?: ReadonlySet<string>;
  private readonly args?: readonly ArgCheck[];
  private readonly primaryTypes?: ReadonlySet<string>;
  private readonly domains?: readonly DomainCheck[];
  private readonly messagePrefix?: string;
  private readonly messagePattern?: RegExp;
  /** Why the block's `message.pattern` is never run (operator-pattern.ts); it then judges no message. */
  private readonly messagePatternUnsafe?: string;
  private readonly resources?: readonly ResourcePattern[];
  /** True when the block names `resources`: such a rule only matches payments for a matching resource. */
  readonly namesResources: boolean;
  /** True when the block names `args`. */
  readonly namesArgs: boolean;

  constructor(options: MatchOptions, sets: AddressSets, path: PolicyPath) {
    if (options.actions) this.actions = new Set(options.actions);
    if (options.chains) this.chains = new Set(options.chains);
    if (options.kinds) this.kinds = new Set(options.kinds);
    if (options.to !== undefined) this.to = resolveAddressList(options.to, sets, [...path, 'to']);
    if (options.assets) this.assets = new Set(options.assets.map((a) => a.toLowerCase()));
    if (options.contracts !== undefined) this.contracts = resolveAddressList(options.contracts, sets, [...path, 'contracts']);
    if (options.selectors) this.selectors = new Set(options.selectors.map((s) => s.toLowerCase()));
    if (options.args) this.args = Object.entries(options.args).map(([name, c]) => compileArg(name, c, sets, [...path, 'args', name]));
    if (options.primary_types) this.primaryTypes = new Set(options.primary_types);
    if (options.nostr_kinds) this.nostrKinds = new Set(options.nostr_kinds);
    if (options.bitcoin_sighash) this.sighashes = new Set(options.bitcoin_sighash);
    if (options.domains) {
      this.domains = options.domains.map((d) => ({
        ...(d.chain_id !== undefined && { chainId: d.chain_id }),
        ...(d.verifying_contract !== undefined && { verifyingContract: d.verifying_contract.toLowerCase() }),
        ...(d.name !== undefined && { name: d.name }),
        ...(d.version !== undefined && { version: d.version }),
      }));
    }
    if (options.message?.prefix !== undefined) this.messagePrefix = options.message.prefix;
    if (options.message?.pattern !== undefined) {
      let compiled;
      try {
        compiled = compileOperatorPattern(options.message.pattern);
      } catch {
        throw invalidPolicyAt([...path, 'message', 'pattern'], 'not a valid regular expression');
      }
      if (compiled.regex) this.messagePattern = compiled.regex;
      else this.messagePatternUnsafe = compiled.unsafe;
    }
    if (options.resources) this.resources = options.resources.map((r, i) => compileResourcePattern(r, [...path, 'resources', i]));
    this.namesResources = this.resources !== undefined;
    this.namesArgs = this.args !== undefined;
    this.empty = Object.values(options).every((v) => v === undefined);
    this.namesTypedData = this.primaryTypes !== undefined && this.domains !== undefined;
    this.namesMessage = options.message !== undefined;
    this.allowsHashLength = options.message?.allow_hash_length === true || (options.message?.prefix !== undefined && Buffer.byteLength(options.message.prefix, 'utf8') >= HASH_SAFE_PREFIX_BYTES);
    this.namesContracts = this.contracts !== undefined;
    this.namesDeploy = this.kinds?.has('contract.deploy') ?? false;
    this.namesDelegatecall = (this.kinds?.has('contract.delegatecall') ?? false) && this.contracts !== undefined;
    this.namesGasRefund = this.kinds?.has('safe.gas_refund') ?? false;
    this.namesAmountless = this.kinds?.has('lightning.amountless_payment') ?? false;
    this.namesNostr = this.nostrKinds !== undefined || (options.actions?.some((a) => a.startsWith('nostr.')) ?? false);
  }

  /**
   * A PSBT signing with SINGLE, NONE or ANYONECANPAY is granted only by a rule whose `bitcoin_sighash` lists
   * every such type it uses (semantics §4): these let others change the transaction after the agent signed.
   */
  grantsSighashes(intent: Intent): boolean {
    return intent.bitcoin?.sighashes.every((h) => isStandardSighash(h) || (this.sighashes?.has(h) ?? false)) ?? true;
  }

  /**
   * Covers (allow): every given field holds for the whole intent. `ignoreResources`: whether
   * everything but the resource matches (to name `resource_not_allowed`); `ignoreArgs`: whether
   * everything but the arguments matches (to name `argument_constraint_failed`); `ignoreUnjudged`: whether
   * everything but a message pattern that cannot judge the message matches (to name why, unjudgedMessage).
   */
  matches(intent: Intent, facts: IntentFacts, ignoreResources = false, ignoreArgs = false, ignoreUnjudged = false): boolean {
    if (this.resources && !ignoreResources) {
      // Fail closed: a request that names no resource never matches a rule that names resources.
      const resource = intent.payment?.resource;
      if (resource === undefined || !this.resources.some((p) => p.test(resource))) return false;
    }
    // Fail closed: a message the pattern cannot judge (too large, or an unsafe pattern) is matched by no allow rule
    // (and refused, compile.ts).
    const single = this.matchesSingleValued(intent);
    if (single === false || (single !== true && !ignoreUnjudged)) return false;
    // Every chain the intent names must be listed. A chain-id-0 authorization names only a label: valid on every
    // chain, no list covers it (found by review: a fleet granting only testnet requests granted one labelled so).
    // Chainless typed data is granted only by an allow rule that opts in (allow_chainless_domains) or names it.
    if (this.chains && (facts.anyChainAuthorization || !facts.chains.every((c) => this.chains!.has(c)))) return false;
    if (this.to) {
      // Every party the request pays or lets spend (IntentFacts.listedByTo), none when it has no main counterparty.
      if (facts.listedByTo.length === 0 || !facts.listedByTo.every((p) => this.to!.has(p))) return false;
    }
    if (this.sighashes && !(intent.bitcoin?.sighashes.every((h) => isStandardSighash(h) || this.sighashes!.has(h)) ?? false)) return false;
    if (this.assets) {
      // Everything the intent moves must be listed, and it must move something.
      if (facts.movedAssets.length === 0) return false;
      for (const a of facts.movedAssets) if (!this.assets.has(a)) return false;
    }
    if (this.args && !ignoreArgs && this.failingArg(intent) !== undefined) return false;
    if (this.domains) {
      const domain = intent.typedData?.domain;
      if (!domain || !this.domains.some((d) => domainMatches(d, domain, false))) return false;
    }
    return true;
  }

  /**
   * Touches (deny, and where a restricting rule applies): every given field is hit by some part of
   * the intent. Where the intent cannot tell (a payment naming no resource, a call whose arguments
   * were not decoded, a value-moving signature over a domain without chainId), it counts as touching:
   * fail closed.
   */
  touches(intent: Intent, facts: IntentFacts): boolean {
    if (this.resources) {
      const payment = intent.payment;
      if (payment === undefined) return false;
      const resource = payment.resource;
      if (resource !== undefined && !this.resources.some((p) => p.test(resource))) return false;
    }
    // Fail closed: a message the pattern cannot judge (too large, or an unsafe pattern) counts as touched (and is
    // refused, compile.ts).
    if (this.matchesSingleValued(intent) === false) return false;
    // A signature over a chainless domain (or a chain-id-0 authorization) is valid on every chain, listed ones included.
    if (this.chains && !facts.everyChain && !facts.chains.some((c) => this.chains!.has(c))) return false;
    // A payment to whoever submits the transaction (a Safe refund to tx.origin) may go to a listed address.
    if (this.to && !facts.unknownRecipient && !facts.parties.some((p) => this.to!.has(p))) return false;
    if (this.assets && !facts.movedAssets.some((a) => this.assets!.has(a))) return false;
    if (this.sighashes && !(intent.bitcoin?.sighashes.some((h) => this.sighashes!.has(h)) ?? false)) return false;
    if (this.args) {
      const call = intent.call;
      if (!call) return false;
      const self = intent.from.toLowerCase();
      if (call.args) for (const check of this.args) if (!argMatches(check, argumentAt(call.args, check.path), self)) return false;
    }
    if (this.domains) {
      const domain = intent.typedData?.domain;
      if (!domain || !this.domains.some((d) => domainMatches(d, domain, facts.chainlessValueMoving))) return false;
    }
    return true;
  }

  /**
   * Why this block's `message.pattern` cannot judge the intent's message, when the pattern would have to run: every
   * other field of the block holds in the rule's reading (`covers` for an allow rule, `touches` for the others), so
   * a rule scoped elsewhere (another chain, other recipients) is not refused for a message it never judges.
   * Undefined otherwise. The pattern is never run here.
   */
  unjudgedMessage(intent: Intent, facts: IntentFacts, reading: 'covers' | 'touches'): UnjudgedMessage | undefined {
    const length = intent.message?.text?.length;
    if (length === undefined) return undefined;
    let unjudged: UnjudgedMessage;
    if (this.messagePatternUnsafe !== undefined) unjudged = { reason: 'unsafe', why: this.messagePatternUnsafe };
    else if (this.messagePattern !== undefined && length > MAX_MESSAGE_PATTERN_INPUT) unjudged = { reason: 'oversize', length };
    else return undefined;
    const applies = reading === 'covers' ? this.matches(intent, facts, false, false, true) : this.touches(intent, facts);
    return applies ? unjudged : undefined;
  }

  /**
   * Fields an intent has at most one value for: both readings agree on them. `unjudged`: all hold up to the
   * message pattern, which is not run (a text longer than MAX_MESSAGE_PATTERN_INPUT, or an unsafe pattern).
   */
  private matchesSingleValued(intent: Intent): boolean | 'unjudged' {
    if (this.actions && !this.actions.has(intent.action)) return false;
    if (this.kinds && !this.kinds.has(intent.kind)) return false;
    if (this.nostrKinds && (intent.nostr?.eventKind === undefined || !this.nostrKinds.has(intent.nostr.eventKind))) return false;
    if (this.contracts && (intent.call === undefined || !this.contracts.has(intent.call.contract.toLowerCase()))) return false;
    if (this.selectors && (intent.call === undefined || !this.selectors.has(intent.call.selector.toLowerCase()))) return false;
    if (this.primaryTypes && (intent.typedData === undefined || !this.primaryTypes.has(intent.typedData.primaryType))) return false;
    if (this.messagePrefix !== undefined || this.messagePattern !== undefined || this.messagePatternUnsafe !== undefined) {
      const text = intent.message?.text;
      if (text === undefined) return false;
      if (this.messagePrefix !== undefined && !text.startsWith(this.messagePrefix)) return false;
      if (this.messagePatternUnsafe !== undefined) return 'unjudged';
      if (this.messagePattern !== undefined) {
        if (text.length > MAX_MESSAGE_PATTERN_INPUT) return 'unjudged';
        if (!this.messagePattern.test(text)) return false;
      }
    }
    return true;
  }

  /** The first argument constraint the intent fails (its name), or undefined when all hold or none are given. */
  failingArg(intent: Intent): string | undefined {
    if (!this.args) return undefined;
    const args = intent.call?.args;
    const self = intent.from.toLowerCase();
    for (const check of this.args) if (!args || !argMatches(check, argumentAt(args, check.path), self)) return check.name;
    return undefined;
  }
}

/** `$self` in an argument constraint: the address of the agent that signs (`intent.from`). */
const SELF = '$self';

/** The value at a dotted argument path (`params.recipient`, `path.0`); undefined when absent. */
export function argumentAt(args: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = args;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    if (Array.isArray(value)) {
      if (!INTEGER.test(key)) return undefined;
      value = value[Number(key)];
    } else {
      if (!Object.hasOwn(value, key)) return undefined;
      value = (value as Record<string, unknown>)[key];
    }
  }
  return value;
}

function compileArg(name: string, c: NonNullable<MatchOptions['args']>[string], sets: AddressSets, path: PolicyPath): ArgCheck {
  const check: ArgCheck = { name, path: name.split('.') };
  if (c.eq !== undefined) {
    const eq = c.eq;
    if (eq === SELF) check.eq = { self: true };
    else if (typeof eq === 'boolean') check.eq = { bool: eq };
    else if (typeof eq === 'number') {
      if (!Number.isSafeInteger(eq)) throw invalidPolicyAt([...path, 'eq'], 'numbers must be integers below 2^53; write larger values as strings');
      check.eq = { big: BigInt(eq) };
    } else check.eq = INTEGER.test(eq) ? { big: BigInt(eq), str: eq } : { str: eq.toLowerCase() };
  }
  if (c.in !== undefined) {
    if (c.in === SELF) {
      check.inSelf = true;
      check.inStrings = new Set();
    } else if (typeof c.in === 'string') check.inStrings = resolveAddressList(c.in, sets, [...path, 'in']);
    else {
      const strings = new Set<string>();
      const numbers = new Set<bigint>();
      c.in.forEach((v, i) => {
        if (typeof v === 'number') {
          if (!Number.isSafeInteger(v)) throw invalidPolicyAt([...path, 'in', i], 'numbers must be integers below 2^53');
          numbers.add(BigInt(v));
        } else if (v === SELF) check.inSelf = true;
        else if (v.startsWith('$')) for (const a of resolveAddressList(v, sets, [...path, 'in', i])) strings.add(a);
        else if (INTEGER.test(v)) numbers.add(BigInt(v));
        else strings.add(v.toLowerCase());
      });
      check.inStrings = strings;
      check.inNumbers = numbers;
    }
  }
  if (c.lte !== undefined) check.lte = toAmount(c.lte);
  if (c.gte !== undefined) check.gte = toAmount(c.gte);
  return check;
}

/** Missing or mistyped arguments never match (fail closed). `self`: the signing agent's address. */
function argMatches(check: ArgCheck, actual: unknown, self: string): boolean {
  let big: bigint | undefined;
  let str: string | undefined;
  if (typeof actual === 'bigint') big = actual;
  else if (typeof actual === 'number') {
    if (!Number.isSafeInteger(actual)) return false;
    big = BigInt(actual);
  } else if (typeof actual === 'string') {
    str = actual.toLowerCase();
    if (INTEGER.test(actual)) big = BigInt(actual);
  } else if (typeof actual !== 'boolean') return false;

  if (check.eq) {
    const { eq } = check;
    if (eq.self) {
      if (str !== self) return false;
    } else if (eq.bool !== undefined) {
      if (actual !== eq.bool) return false;
    } else if (eq.big !== undefined) {
      if (big !== eq.big) return false;
    } else if (str !== eq.str) return false;
  }
  if (check.inStrings || check.inNumbers) {
    const hit = (big !== undefined && check.inNumbers?.has(big)) || (str !== undefined && (check.inStrings?.has(str) || (check.inSelf && str === self)));
    if (!hit) return false;
  }
  if (check.lte !== undefined && (big === undefined || big > check.lte)) return false;
  if (check.gte !== undefined && (big === undefined || big < check.gte)) return false;
  return true;
}

/** `onEveryChain`: a chainless value-moving signature, read as touching: it is valid on the listed chain too. */
function domainMatches(d: DomainCheck, domain: NonNullable<Intent['typedData']>['domain'], onEveryChain: boolean): boolean {
  if (d.chainId !== undefined && domain.chainId !== d.chainId && !onEveryChain) return false;
  if (d.verifyingContract !== undefined && domain.verifyingContract?.toLowerCase() !== d.verifyingContract) return false;
  if (d.name !== undefined && domain.name !== d.name) return false;
  if (d.version !== undefined && domain.version !== d.version) return false;
  return true;
}
