/**
 * Warnings about a valid document that is unsafe or useless as written: an allow rule that lets value move with
 * no asset list, no per-request cap or no budget in the document, authorizations with no validity bound, user
 * operations whose gas prefund nothing caps, EIP-7702 authorizations with no delegate allowlist, and allow rules
 * that no request can ever satisfy. They look at one document: a fleet policy may hold the ceilings (or the
 * allowlist) an agent policy leaves out, so a warning informs, it never refuses.
 */
import type { z } from 'zod';
import type { PolicyWarningCode } from '../codes.ts';
import { INTENT_KINDS, type Action, type IntentKind } from '../intent.ts';
import { SAFE_TX_PRIMARY_TYPE } from '../safe.ts';
import type { MatchOptions } from './fields.ts';
import { formatPath } from './path.ts';
import type { policySchema } from './schema.ts';

export interface PolicyWarning {
  code: PolicyWarningCode;
  /** The rule concerned (an allow rule, or the approvals rule for `unlimited_approvals_any_spender`). */
  rule: string;
  /** Where, written the way the document is (`rules[0].match.assets[1]`). */
  path: string;
  message: string;
}

/** The primary type of ERC-4337 v0.8 user operations sent as typed data: decoded as `evm.user_operation`, never granted by it. */
const USER_OPERATION_PRIMARY_TYPE = 'PackedUserOperation';

/**
 * Kinds an `assets` list cannot bound: intents that carry no amount (unknown typed data, messages, Nostr events,
 * an EIP-7702 authorization: the `delegations` rule guards what it hands over), a Safe DELEGATECALL (it may move
 * anything, but declares nothing: the exact `contracts` it needs are its bound), and the wholes of requests that
 * execute calls, which allow rules never grant (their calls are granted one by one).
 */
const NO_VALUE_KINDS: ReadonlySet<IntentKind> = new Set([
  'typed_data.unknown', 'message.personal', 'message.bip322', 'nostr.event', 'nostr.http_auth', 'nostr.nip44', 'nostr.nip04',
  'eip7702.authorization', 'contract.delegatecall', 'safe.transaction', 'erc4337.user_operation',
]);
const VALUE_KINDS: ReadonlySet<IntentKind> = new Set(INTENT_KINDS.filter((k) => !NO_VALUE_KINDS.has(k)));
/** Signed off-chain authorizations: valid until their deadline, whoever holds them. */
const AUTHORIZATION_KINDS: ReadonlySet<IntentKind> = new Set(INTENT_KINDS.filter((k) => k.startsWith('eip3009.') || k.startsWith('permit2.') || k === 'eip2612.permit' || k === 'dai.permit'));
/** EVM actions whose granted requests can move value: transactions, typed data (permits, a Safe's calls), a user operation's calls. */
const VALUE_ACTIONS: ReadonlySet<Action> = new Set(['evm.transaction', 'evm.typed_data', 'evm.user_operation']);

/** What a call decodes to, wherever it is made from (a transaction, a Safe, a smart account). */
const CALL_KINDS: readonly IntentKind[] = ['native.transfer', 'erc20.transfer', 'erc20.transfer_from', 'erc20.approve', 'erc20.increase_allowance', 'contract.call'];
/**
 * The kinds an allow rule is asked to grant under each EVM action (semantics §3, §11): a Safe transaction's calls
 * come as `evm.typed_data`, a user operation's calls as `evm.user_operation`; the wholes are never asked.
 */
const GRANTED_KINDS: Partial<Record<Action, ReadonlySet<IntentKind>>> = {
  'evm.transaction': new Set([...CALL_KINDS, 'contract.deploy']),
  'evm.typed_data': new Set([...AUTHORIZATION_KINDS, 'typed_data.unknown', ...CALL_KINDS, 'contract.delegatecall', 'safe.gas_refund']),
  'evm.message': new Set(['message.personal']),
  'evm.user_operation': new Set(CALL_KINDS),
  'evm.authorization': new Set(['eip7702.authorization']),
};
const EVM_ACTIONS = Object.keys(GRANTED_KINDS) as Action[];
const EVM_KINDS: ReadonlySet<IntentKind> = new Set(Object.values(GRANTED_KINDS).flatMap((kinds) => [...kinds!]));

type Document = z.output<typeof policySchema>;
type Rule = Document['rules'][number];

/** `contracts`, `selectors` and `args` only match calls. */
function namesCallFields(match: MatchOptions): boolean {
  return match.contracts !== undefined || match.selectors !== undefined || match.args !== undefined;
}

/** Whether a match can grant an intent of one of `kinds` (conservative: unknown means yes). */
function mayGrant(match: MatchOptions, kinds: ReadonlySet<IntentKind>, typedData: boolean): boolean {
  if (match.message !== undefined) return false;
  // Signed authorizations are typed data, never calls, and never a SafeTx or a PackedUserOperation.
  if (typedData && namesCallFields(match)) return false;
  if (typedData && match.primary_types?.every((t) => t === SAFE_TX_PRIMARY_TYPE || t === USER_OPERATION_PRIMARY_TYPE)) return false;
  if (match.actions && !match.actions.some((a) => VALUE_ACTIONS.has(a) && (!typedData || a === 'evm.typed_data'))) return false;
  return match.kinds === undefined || match.kinds.some((k) => kinds.has(k));
}

/**
 * Why an allow rule can never grant anything, or undefined when it may (conservative: a rule naming a
 * non-EVM action is not judged here). Follows grantsByName in rules/allow.ts and the kinds the eip155 adapter
 * decodes each action into.
 */
function whyNeverGrants(match: MatchOptions): string | undefined {
  const namesTypedData = match.primary_types !== undefined && match.domains !== undefined;
  const types = match.primary_types;
  if (types?.every((t) => t === USER_OPERATION_PRIMARY_TYPE)) {
    return `a user operation sent as ${USER_OPERATION_PRIMARY_TYPE} typed data is granted call by call under the action evm.user_operation, never by primary_types`;
  }
  if (types?.every((t) => t === SAFE_TX_PRIMARY_TYPE || t === USER_OPERATION_PRIMARY_TYPE) && !namesTypedData) {
    return 'the calls of a Safe transaction are granted only by a rule naming both primary_types: [SafeTx] and domains';
  }
  if (match.actions && !match.actions.every((a) => GRANTED_KINDS[a] !== undefined)) return undefined;
  let actions: readonly Action[] = match.actions ?? EVM_ACTIONS;
  // Only typed data has a primary type and a domain.
  if (types !== undefined || match.domains !== undefined) {
    actions = actions.filter((a) => a === 'evm.typed_data');
    if (actions.length === 0) return 'primary_types and domains match typed data only, and the rule leaves out the action evm.typed_data';
  }
  // Calls are made by transactions and by user operations; in typed data, only by a Safe transaction.
  if (namesCallFields(match)) {
    actions = actions.filter((a) => a === 'evm.transaction' || a === 'evm.user_operation' || (a === 'evm.typed_data' && namesTypedData));
    if (actions.length === 0) return 'contracts, selectors and args match calls: those of transactions, of user operations, and in typed data only those of a Safe transaction (named by primary_types: [SafeTx] and domains)';
  }
  if (match.kinds === undefined) return undefined;
  const reasons = match.kinds.map((kind) => whyKindNeverGranted(kind, match, actions, namesTypedData));
  return reasons.every((r) => r !== undefined) ? reasons[0] : undefined;
}

function whyKindNeverGranted(kind: IntentKind, match: MatchOptions, actions: readonly Action[], namesTypedData: boolean): string | undefined {
  if (kind === 'safe.transaction' || kind === 'erc4337.user_operation') {
    return `${kind} is never granted as a whole: each call it executes is, like a transaction making that call (list the calls' kinds, e.g. erc20.transfer)`;
  }
  if (!actions.some((a) => GRANTED_KINDS[a]!.has(kind))) {
    // A Nostr, Lightning or Bitcoin kind in a rule that names no action is not judged here.
    if (match.actions === undefined && !EVM_KINDS.has(kind) && match.primary_types === undefined && match.domains === undefined) return undefined;
    return `no request under ${actions.join(', ')} is of kind ${kind}`;
  }
  switch (kind) {
    case 'contract.delegatecall':
      return match.contracts !== undefined && namesTypedData ? undefined : 'a DELEGATECALL is granted only by a rule naming kinds: [contract.delegatecall], the exact contracts, and the Safe (primary_types: [SafeTx] and domains)';
    case 'safe.gas_refund':
      return namesTypedData ? undefined : 'a Safe gas refund is granted only by a rule naming the Safe (primary_types: [SafeTx] and domains)';
    case 'contract.call':
      return match.contracts !== undefined ? undefined : 'contract calls are granted only by a rule naming contracts';
    case 'typed_data.unknown':
      return namesTypedData ? undefined : 'unknown typed data is granted only by a rule naming primary_types and domains';
    case 'message.personal':
      return match.message !== undefined ? undefined : 'personal messages are granted only by a rule naming message';
    default:
      return undefined;
  }
}

/** Whether a match can grant EIP-7702 authorizations (the action, or the kind without an action that excludes it). */
function mayGrantAuthorizations(match: MatchOptions): boolean {
  if (match.kinds) return match.kinds.includes('eip7702.authorization') && (match.actions?.includes('evm.authorization') ?? true);
  return match.actions?.includes('evm.authorization') ?? false;
}

/**
 * An EVM native coin named by its own SLIP-44 coin type (`eip155:137/slip44:966` for POL): every EVM chain's native
 * coin is charged as `eip155:<chain>/slip44:60` whatever the coin (core `nativeAsset`), so a cap, budget or list
 * naming it never sees a spend (found by review: 100 POL passed a 1 POL cap and budget, and validation said nothing).
 */
const EVM_NATIVE_NOT_60 = /^eip155:[-_a-zA-Z0-9]{1,32}\/slip44:(?!60$)/i;

/** Every string in `value` that names an EVM native coin no request is charged as, with its path under `path`. */
function unchargedNativeAssets(value: unknown, path: (string | number)[]): { asset: string; path: (string | number)[] }[] {
  if (typeof value === 'string') return EVM_NATIVE_NOT_60.test(value) ? [{ asset: value, path }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => unchargedNativeAssets(v, [...path, i]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => unchargedNativeAssets(v, [...path, k]));
  return [];
}

/** `doc` must be a valid document (compile it first). */
export function policyWarnings(doc: Document): PolicyWarning[] {
  const rules: readonly Rule[] = doc.rules;
  const capped = new Set(rules.flatMap((r) => (r.type === 'max_amount' ? [r.asset.toLowerCase()] : [])));
  const budgeted = new Set(rules.flatMap((r) => (r.type === 'budget' ? [r.asset.toLowerCase()] : [])));
  const validityBounded = rules.some((r) => r.type === 'validity_window');
  const prefundBounded = rules.some((r) => (r.type === 'user_operations' && r.max_prefund !== undefined) || (r.type === 'fee_cap' && r.max_total_fee !== undefined));
  const delegatesListed = rules.some((r) => r.type === 'delegations');
  const warnings: PolicyWarning[] = [];

  rules.forEach((rule, i) => {
    for (const { asset, path } of unchargedNativeAssets(rule, ['rules', i])) {
      const chain = asset.slice(0, asset.indexOf('/'));
      warnings.push({
        code: 'asset_never_charged',
        rule: rule.name,
        path: formatPath(path),
        message: `no request is charged as ${asset}: the native coin of every EVM chain is charged as ${chain}/slip44:60, whatever the coin; write that`,
      });
    }
    // Unlimited approvals are refused unless an approvals rule allows them; one that does with no spender list
    // lets any spender an allow rule reaches take the whole balance (no budget can count an unlimited amount).
    if (rule.type === 'approvals' && rule.allow_unlimited && rule.spenders === undefined) {
      warnings.push({
        code: 'unlimited_approvals_any_spender',
        rule: rule.name,
        path: formatPath(['rules', i, 'allow_unlimited']),
        message: `approvals rule ${rule.name} allows unlimited approvals to any spender: list the spenders it may approve under spenders`,
      });
    }
    if (rule.type !== 'allow') return;
    const { match } = rule;
    const at = (...path: (string | number)[]) => formatPath(['rules', i, 'match', ...path]);
    const never = whyNeverGrants(match);
    if (never !== undefined) {
      // What it would let through does not matter: it lets nothing through.
      warnings.push({ code: 'allow_never_grants', rule: rule.name, path: at(), message: `allow rule ${rule.name} can never grant a request: ${never}` });
      return;
    }
    if (mayGrant(match, VALUE_KINDS, false)) {
      if (match.assets === undefined) {
        warnings.push({
          code: 'allow_without_assets',
          rule: rule.name,
          path: at(),
          // With chainless domains the request's chainId is only a label the agent picks, and so is the chain of
          // the asset it is charged as: budgets and caps keyed on one chain see none of it (found by review).
          message: rule.allow_chainless_domains
            ? `allow rule ${rule.name} lets value move in any asset, and with allow_chainless_domains the request's chainId is a label the agent picks (the signature is valid on every chain): list the assets it may move under match.assets, or budgets and caps keyed on one chain can be passed by labelling another`
            : `allow rule ${rule.name} lets value move in any asset: list the assets it may move under match.assets`,
        });
      } else {
        match.assets.forEach((asset, j) => {
          const a = asset.toLowerCase();
          if (!capped.has(a)) warnings.push({ code: 'value_without_cap', rule: rule.name, path: at('assets', j), message: `no max_amount rule caps ${a} per request` });
          if (!budgeted.has(a)) warnings.push({ code: 'value_without_budget', rule: rule.name, path: at('assets', j), message: `no budget rule bounds ${a} over time` });
        });
      }
    }
    if (!validityBounded && mayGrant(match, AUTHORIZATION_KINDS, true)) {
      warnings.push({
        code: 'validity_unbounded',
        rule: rule.name,
        path: at(),
        message: `allow rule ${rule.name} grants signed authorizations and no validity_window rule bounds their validity`,
      });
    }
    // Only a rule that names the action: sessions must list it, so a rule written for transactions is not read as one for user operations.
    if (!prefundBounded && match.actions?.includes('evm.user_operation')) {
      warnings.push({
        code: 'prefund_unbounded',
        rule: rule.name,
        path: at('actions'),
        message: `allow rule ${rule.name} grants user operations and neither a user_operations rule with max_prefund nor a fee_cap with max_total_fee caps what an operation may commit to gas`,
      });
    }
    // Every kind, the destructive and credential-bearing ones included: deletion (5) and request to vanish (62),
    // relay lists (10002, 10050: where followers read and DMs arrive), a nutzap mint (10019), relay AUTH (22242),
    // Blossom auth (24242), NWC requests (23194) (found by review: granted with no word from validation).
    if (match.actions?.includes('nostr.event') && match.nostr_kinds === undefined) {
      warnings.push({
        code: 'nostr_any_kind',
        rule: rule.name,
        path: at('actions'),
        message: `allow rule ${rule.name} grants Nostr events of every kind (deletions, relay lists, relay and Blossom auth, wallet requests): list the kinds it may sign under match.nostr_kinds`,
      });
    }
    if (!delegatesListed && mayGrantAuthorizations(match)) {
      warnings.push({
        code: 'delegation_without_allowlist',
        rule: rule.name,
        path: at(),
        message: `allow rule ${rule.name} grants EIP-7702 authorizations and no delegations rule in this document lists a delegate: each is refused (delegate_not_allowed) unless another layer lists it`,
      });
    }
  });
  return warnings;
}
