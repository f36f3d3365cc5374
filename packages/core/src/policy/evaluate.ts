import type { Approval, Intent, ModuleExecutionInfo, Spend, UserOperationInfo } from '../intent.ts';
import type { LedgerView, WindowQuery } from '../ports/ledger.ts';
import { windowKey } from '../ports/ledger.ts';
import type { ViolationCode } from '../codes.ts';
import { JUDGED_ALL_OF_ASSET, type Decision, type Layer, type Violation } from './decision.ts';
import { intentFacts, type IntentFacts } from './facts.ts';
import type { PolicyLayer } from './layers.ts';
import { scopeSeries, type CompiledAllowRule, type EvaluationInput, type RuleContext } from './rules/index.ts';
import { isHashLengthMessage, isStandardSighash } from './match.ts';
import { innerCalls, without } from './calls.ts';
import { approvalTotals } from './approval-totals.ts';

export type { EvaluationInput } from './rules/index.ts';

const LAYER_ORDER: Record<Layer, number> = { fleet: 0, agent: 1, session: 2 };

/** Semantics §1: fleet, then agent, then session, whatever order the caller passed. */
function inOrder(layers: readonly PolicyLayer[]): readonly PolicyLayer[] {
  for (let i = 1; i < layers.length; i++) {
    if (LAYER_ORDER[layers[i - 1]!.layer] > LAYER_ORDER[layers[i]!.layer]) {
      return [...layers].sort((a, b) => LAYER_ORDER[a.layer] - LAYER_ORDER[b.layer]);
    }
  }
  return layers;
}

/** Every ledger window the rules will read for this input, deduplicated; prefetch these. */
export function requiredWindows(layers: readonly PolicyLayer[], input: EvaluationInput): WindowQuery[] {
  const all: WindowQuery[] = [];
  // The calls of a Safe transaction, a user operation or a module are evaluated one by one too (evaluateCalls), and
  // so is the call a module call of a user operation makes its account execute: their windows count.
  for (const intent of requestAndCalls(input.intent)) {
    const ctx = { input: { ...input, intent }, facts: intentFacts(intent), series: scopeSeries(input) };
    for (const { policy } of inOrder(layers)) for (const rule of policy.rules) rule.windows(ctx, all);
  }
  const seen = new Set<string>();
  return all.filter((q) => {
    const key = windowKey(q);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Semantics §4: kinds granted only by a rule that names them get their own default-deny code. */
function defaultDenyCode(intent: Intent, facts: IntentFacts): ViolationCode {
  if (facts.chainlessValueMoving) return 'chainless_domain';
  switch (intent.kind) {
    case 'typed_data.unknown':
      return 'unknown_typed_data';
    case 'message.personal':
      return isHashLengthMessage(intent) ? 'message_hash_length' : 'message_not_allowed';
    case 'message.bip322':
      return 'message_not_allowed';
    case 'bitcoin.transaction':
      return intent.bitcoin?.sighashes.every(isStandardSighash) === false ? 'sighash_not_allowed' : 'no_matching_allow_rule';
    case 'contract.call':
      return 'contract_call_not_allowed';
    case 'contract.deploy':
      return 'contract_deploy_not_allowed';
    case 'contract.delegatecall':
      return 'delegatecall_not_allowed';
    case 'safe.gas_refund':
      return 'safe_refund_not_allowed';
    case 'nostr.event':
    case 'nostr.http_auth':
      return 'nostr_kind_not_allowed';
    case 'nostr.nip44':
    case 'nostr.nip04':
      return 'nostr_peer_not_allowed';
    case 'lightning.amountless_payment':
      return 'amountless_invoice_not_allowed';
    default:
      return 'no_matching_allow_rule';
  }
}

const NAMING_HINT: Partial<Record<ViolationCode, string>> = {
  unknown_typed_data: '; unknown typed data is granted only by an allow rule naming primary_types and domains',
  message_not_allowed: '; personal messages are granted only by an allow rule naming message',
  message_hash_length: '; a 32-byte personal message is signed as a hash (Safe eth_sign, accounts that sign EIP-191 over the userOpHash): granted only by an allow rule with a message prefix of at least 16 bytes or message.allow_hash_length: true',
  contract_call_not_allowed: '; contract calls are granted only by an allow rule naming contracts',
  contract_deploy_not_allowed: '; deploys are granted only by an allow rule with kinds: [contract.deploy]',
  nostr_kind_not_allowed: '; Nostr events are granted only by an allow rule naming a nostr action or nostr_kinds',
  nostr_peer_not_allowed: '; NIP-44 and NIP-04 are granted only by an allow rule naming the nostr.nip44 or nostr.nip04 action',
  sighash_not_allowed: '; SINGLE, NONE and ANYONECANPAY are granted only by an allow rule listing them in bitcoin_sighash',
  amountless_invoice_not_allowed: '; an invoice without an amount is paid only where an allow rule names kinds: [lightning.amountless_payment]',
  chainless_domain: '; the EIP-712 domain has no chainId, so the signature is valid on every chain: granted only by an allow rule with allow_chainless_domains: true',
  delegatecall_not_allowed: '; a DELEGATECALL runs the target as the Safe: granted only by an allow rule naming kinds: [contract.delegatecall] and the exact contract in contracts',
  safe_refund_not_allowed: '; a Safe gas refund is granted only by an allow rule naming kinds: [safe.gas_refund]',
};

function defaultDeny(layer: Layer, intent: Intent, facts: IntentFacts, why: string): Violation {
  const code = defaultDenyCode(intent, facts);
  return { rule: `${layer}/default`, code, message: `${why} (default deny)${NAMING_HINT[code] ?? ''}` };
}

function firstArgumentMiss(rules: readonly CompiledAllowRule[], ctx: RuleContext): { rule: string; arg: string } | undefined {
  for (const r of rules) {
    const arg = r.failsOnlyOnArgument(ctx);
    if (arg !== undefined) return { rule: r.name, arg };
  }
  return undefined;
}

/**
 * Pure and deterministic: the same layers, input and ledger totals always give the same decision.
 * Every rule of every layer runs, so a denial lists every reason at once.
 */
export function evaluatePolicy(layers: readonly PolicyLayer[], input: EvaluationInput, ledger: LedgerView): Decision {
  const { safe, userOperation, module } = input.intent;
  if (safe) return evaluateCalls(layers, input, ledger, safe.calls, []);
  if (module) return evaluateCalls(layers, input, ledger, module.calls, [], moduleOwnPart(input.intent, module));
  if (userOperation) return evaluateCalls(layers, input, ledger, userOperation.calls, userOperationFindings(layers, input, userOperation));
  return evaluateIntent(layers, input, ledger, true);
}

/** A request and every intent evaluatePolicy evaluates for it: its calls, and theirs (a user operation's module call), and a module call's own part. */
function* requestAndCalls(intent: Intent): Generator<Intent> {
  yield intent;
  const own = intent.module ? moduleOwnPart(intent, intent.module) : undefined;
  if (own) yield own;
  for (const call of innerCalls(intent)) yield* requestAndCalls(call);
}

/**
 * What a module call moves itself, beyond what the call it makes its account execute moves: its native value
 * and the spends its declaration adds (`moves.<fn>.spends`), and any approval of its own; the network fee
 * stays with the whole. As a plain call of the module contract (no `module`), so it is granted like any other
 * call moving that value: only by an allow rule covering the module contract and those assets. Undefined when
 * it moves nothing (a zero-value module call needs no allow rule of its own: the call it executes is granted).
 */
function moduleOwnPart(intent: Intent, module: ModuleExecutionInfo): Intent | undefined {
  const executed = module.calls;
  const spends = without(intent.spends.filter((sp) => sp.kind !== 'fee'), executed.flatMap((c) => c.spends));
  const approvals = without(intent.approvals, executed.flatMap((c) => c.approvals));
  if (spends.length === 0 && approvals.length === 0) return undefined;
  const { module: _module, ...rest } = intent;
  return { ...rest, spends, approvals };
}

/**
 * What only a user operation can be refused for (semantics §11): calls no registered account ABI decodes, and a
 * paymaster where no `user_operations` rule with a paymaster list applies (a list that applies and leaves it out
 * says so itself). A list whose `match` leaves the operation out does not lift the default (found by review).
 */
function userOperationFindings(layers: readonly PolicyLayer[], input: EvaluationInput, op: UserOperationInfo): Violation[] {
  const out: Violation[] = [];
  if (op.calls.length === 0) {
    out.push({ rule: 'agent/default', code: 'user_operation_calls_unknown', message: `the callData of ${op.sender} is not execute/executeBatch of a known account implementation: its calls cannot be decoded (default deny)` });
  }
  if (op.paymaster !== undefined) {
    const ctx = { input, facts: intentFacts(input.intent), series: scopeSeries(input) };
    if (!inOrder(layers).some(({ policy }) => policy.rules.some((r) => r.governsPaymasters?.(ctx)))) {
      out.push({ rule: 'agent/default', code: 'paymaster_not_allowed', message: `paymaster ${op.paymaster} is listed by no user_operations rule that applies to this operation (default deny)` });
    }
  }
  return out;
}

/**
 * A request that executes several calls (a Safe transaction: its call, each call of a MultiSend batch, its gas
 * refund; an ERC-4337 user operation: what the account's execute/executeBatch runs; a module call: what the
 * module makes its account execute). Each call is evaluated as a
 * request of its own: it must be granted and pass every rule, exactly as a transaction making that call would
 * (evaluatePolicy on the call: a module call of a user operation is judged by the call the module makes its account
 * execute, granted on its own, the module call itself running every rule without granting, as at the top level;
 * what the module call moves itself, its value and declared spends, must be granted as a call of the module moving
 * it: `own`, moduleOwnPart).
 * The request as a whole runs every rule again without granting anything: its spends are the calls' spends added
 * up (plus a user operation's prefund), so budgets, per-request caps and destination lists see the batch as one
 * request. A batch is allowed only if every call is; a batch of no calls is refused. `findings`: refusals of the
 * request's own kind (user operations).
 */
function evaluateCalls(layers: readonly PolicyLayer[], input: EvaluationInput, ledger: LedgerView, calls: readonly Intent[], findings: readonly Violation[], own?: Intent): Decision {
  const whole = evaluateIntent(layers, input, ledger, false);
  const denials = whole.decision === 'deny' ? [...whole.violations] : [];
  const approvalsNeeded = whole.decision === 'require_approval' ? [...whole.violations] : [];
  const allowedBy = new Set<string>();
  // The whole's finding of a rule (a budget over the summed batch) already speaks for the same finding on a call.
  const seen = new Set([...denials, ...approvalsNeeded].map((v) => `${v.rule}\u0000${v.code}`));
  denials.push(...findings);
  if (calls.length === 0 && findings.length === 0) denials.push({ rule: 'agent/default', code: 'no_matching_allow_rule', message: 'the request executes no call (default deny)' });
  // A module call's own value (and declared spends) is granted like a call of the module moving it (moduleOwnPart).
  const parts = [
    ...(own ? [{ intent: own, label: `the module call itself (${own.kind}${own.to ? ` ${own.to}` : ''}, moving value of its own)` }] : []),
    ...calls.map((call, i) => ({ intent: call, label: `call ${i + 1} of ${calls.length} (${call.kind}${call.to ? ` ${call.to}` : ''})` })),
  ];
  for (const { intent: call, label } of parts) {
    // As a transaction making this call: a module call (a user operation's) is judged by the call it executes.
    const decision = evaluatePolicy(layers, { ...input, intent: call }, ledger);
    for (const rule of decision.allowedBy) allowedBy.add(rule);
    if (decision.decision === 'allow') continue;
    const into = decision.decision === 'deny' ? denials : approvalsNeeded;
    for (const v of decision.violations) {
      const key = `${v.rule}\u0000${v.code}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // Judged on one call, not the request: no quorum tier found here stands in for an operator tier (quorum.ts).
      into.push({ ...v, message: `${label}: ${v.message}`, [JUDGED_ALL_OF_ASSET]: undefined });
    }
  }
  const policyVersion = whole.policyVersion;
  if (denials.length > 0) return { decision: 'deny', violations: denials, allowedBy: [...allowedBy], policyVersion };
  if (approvalsNeeded.length > 0) return { decision: 'require_approval', violations: approvalsNeeded, allowedBy: [...allowedBy], policyVersion };
  return { decision: 'allow', violations: [], allowedBy: [...allowedBy], policyVersion };
}

/**
 * One intent through every rule of every layer. `grants`: whether allow rules decide (semantics §3); false for
 * a request that executes several calls as a whole, whose calls are what allow rules grant (evaluateCalls).
 */
function evaluateIntent(layers: readonly PolicyLayer[], input: EvaluationInput, ledger: LedgerView, grants: boolean): Decision {
  const ctx: RuleContext = { input, facts: intentFacts(input.intent), series: scopeSeries(input), ledger };
  const ordered = inOrder(layers);
  const denials: Violation[] = [];
  const approvalsNeeded: Violation[] = [];
  const allowedBy: string[] = [];
  let someLayerGrants = false;

  for (const { layer, policy } of ordered) {
    let granted = false;
    for (const rule of policy.rules) {
      const verdict = rule.evaluate(ctx);
      if (verdict === 'pass') continue;
      if (verdict === 'grant') {
        granted = true;
        allowedBy.push(`${layer}/${rule.name}`);
        continue;
      }
      for (const finding of verdict) {
        const violation: Violation = { rule: `${layer}/${rule.name}`, ...finding };
        (finding.code === 'approval_required' ? approvalsNeeded : denials).push(violation);
      }
    }
    // §3: a layer with allow rules must grant; a layer without any only restricts.
    if (grants && policy.allowRules.length > 0) {
      someLayerGrants = true;
      if (!granted) {
        // An allow rule that would grant but for its resource patterns names the real reason.
        const byResource = policy.allowRules.find((r) => r.missesOnlyByResource(ctx));
        if (byResource) {
          const resource = input.intent.payment?.resource;
          denials.push({
            rule: `${layer}/${byResource.name}`,
            code: 'resource_not_allowed',
            message: resource === undefined ? 'the payment names no resource; this rule only allows listed resources' : `${resource} matches none of the allowed resource patterns`,
          });
        } else {
          // Likewise an allow rule that would grant but for a decoded argument (a swap to someone else).
          const byArgument = firstArgumentMiss(policy.allowRules, ctx);
          if (byArgument) {
            denials.push({
              rule: `${layer}/${byArgument.rule}`,
              code: 'argument_constraint_failed',
              message: input.intent.call?.args === undefined
                ? `argument ${byArgument.arg} is not decoded: register the contract's ABI under abis`
                : `argument ${byArgument.arg} does not satisfy its constraint`,
            });
          } else denials.push(defaultDeny(layer, input.intent, ctx.facts, `no allow rule in the ${layer} policy matches`));
        }
      }
    }
  }
  // EIP-7702: an authorization hands the account to its delegate; no delegations rule applying to the request (its
  // match covers it) means no delegation: a rule scoped to another chain lists no delegate here (found by review).
  if (input.intent.delegation && !ordered.some(({ policy }) => policy.rules.some((r) => r.governsDelegations?.(ctx)))) {
    denials.push({ rule: 'agent/default', code: 'delegate_not_allowed', message: 'EIP-7702 delegations are signed only where a delegations rule whose match applies to the request lists the delegate (default deny)' });
  }
  // §9: an unlimited approval carries no amount a budget or cap could count, so it is signed only where an
  // approvals rule with `allow_unlimited: true` applies to it. Without this default, a policy that allowed
  // approval kinds but had no approvals rule signed unlimited approvals past every cap and budget (found by review).
  // Approval by approval: a rule allows one only where its match covers the request reduced to it. Judged where
  // requests are granted (`grants`): the calls of a batch are each evaluated so, and the whole carries only
  // their approvals, which a reduced whole (a Safe's own kind and counterparty) could not match.
  const unallowed = !grants || ctx.facts.unlimitedApprovals.size === 0 || denials.some((v) => v.code === 'unlimited_approval')
    ? []
    : input.intent.approvals.filter((a) => a.unlimited && !ordered.some(({ policy }) => policy.rules.some((r) => r.allowsUnlimitedApproval?.(ctx, a))));
  if (unallowed.length > 0) {
    const assets = [...new Set(unallowed.map((a) => a.asset.toLowerCase()))].join(', ');
    denials.push({ rule: 'agent/default', code: 'unlimited_approval', message: `unlimited approval of ${assets}: signed only where an approvals rule with allow_unlimited: true applies to it (default deny)` });
  }
  // The same default on the batch's totals: increaseAllowance calls each under the unlimited line add up on chain
  // (approvalTotals), so two of 2^127 are one unlimited approval (found by review). Judged on the whole (`!grants`),
  // which alone sees every call; a total is allowed only where, for each call that made it, an approvals rule with
  // `allow_unlimited: true` covers that call granting the whole total. A total that an unlimited approval made is
  // already judged with that call.
  if (!grants && !denials.some((v) => v.code === 'unlimited_approval')) {
    for (const t of approvalTotals(input.intent)) {
      if (!t.unlimited || t.approvals.length < 2 || t.approvals.some((a) => a.unlimited)) continue;
      const total: Approval = { asset: t.asset, spender: t.spender, amount: t.amount, unlimited: true };
      const covered = t.parts.every((part) => {
        const partCtx: RuleContext = { ...ctx, input: { ...input, intent: part }, facts: intentFacts(part) };
        return ordered.some(({ policy }) => policy.rules.some((r) => r.allowsUnlimitedApproval?.(partCtx, total)));
      });
      if (covered) continue;
      denials.push({
        rule: 'agent/default',
        code: 'unlimited_approval',
        message: `${t.approvals.length} calls in this request approving ${t.spender} for ${t.asset} add up to ${t.amount} base units${t.lowerBound ? ' on top of the allowance already on chain' : ''}, an unlimited approval: signed only where an approvals rule with allow_unlimited: true applies to it (default deny)`,
        asset: t.asset,
      });
    }
  }
  // §3: something must grant. With no allow rule anywhere, the agent policy is what is missing.
  if (grants && !someLayerGrants) denials.push(defaultDeny('agent', input.intent, ctx.facts, 'no policy layer has allow rules'));

  const policyVersion = ordered.map((l) => l.label).join(',');
  if (denials.length > 0) return { decision: 'deny', violations: denials, allowedBy, policyVersion };
  if (approvalsNeeded.length > 0) return { decision: 'require_approval', violations: approvalsNeeded, allowedBy, policyVersion };
  return { decision: 'allow', violations: [], allowedBy, policyVersion };
}
