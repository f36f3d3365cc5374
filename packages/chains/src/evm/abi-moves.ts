// The ABIs policies register (`abis`): parse their human-readable fragments, check what their `moves`
// declare, and decode calls the adapter left as bare `contract.call` into named arguments and spends.
import { AirlockError, argumentAt, erc20Asset } from '@airlock/core';
import type { AbiDeclaration, Approval, DeclaredExecution, DeclaredSpend, Intent, PolicyIssue, Spend } from '@airlock/core';
import { parseAbiItem, toFunctionSelector, toFunctionSignature } from 'viem';
import type { AbiFunction, AbiParameter, Hex } from 'viem';
import { decodeAccountCall } from './account-call.ts';
import { decodeStrict, namedArgs } from './calldata.ts';

interface ParsedAbi {
  bySelector: ReadonlyMap<string, AbiFunction>;
  functions: readonly (AbiFunction | undefined)[];
}

/** Parsed fragments by their text: policies are immutable once stored, so a fragment parses once. */
const parsedFragments = new Map<string, AbiFunction | null>();

function parseFragment(fragment: string): AbiFunction | undefined {
  let fn = parsedFragments.get(fragment);
  if (fn === undefined) {
    try {
      const item = parseAbiItem(fragment);
      fn = item.type === 'function' ? item : null;
    } catch {
      fn = null;
    }
    if (parsedFragments.size > 10_000) parsedFragments.clear();
    parsedFragments.set(fragment, fn);
  }
  return fn ?? undefined;
}

function parseDeclaration(decl: AbiDeclaration): ParsedAbi {
  const functions = decl.functions.map(parseFragment);
  const bySelector = new Map<string, AbiFunction>();
  for (const fn of functions) if (fn) bySelector.set(toFunctionSelector(fn).toLowerCase(), fn);
  return { bySelector, functions };
}

const signatureOf = (fn: AbiFunction) => toFunctionSignature(fn).replace(/\s+/g, '');

/** The `moves` entry that names `fn`: by its name, or its signature `name(types)` (for overloads). */
function movesFor(decl: AbiDeclaration, fn: AbiFunction): { spends: readonly DeclaredSpend[]; executes?: DeclaredExecution } {
  const moves = decl.moves[signatureOf(fn)] ?? decl.moves[fn.name];
  return { spends: moves?.spends ?? [], ...(moves?.executes ? { executes: moves.executes } : {}) };
}

/** The ABI type at a dotted argument path, as `namedArgs` names arguments (`arg<i>` when unnamed). */
function typeAt(fn: AbiFunction, path: string): string | undefined {
  const [first, ...rest] = path.split('.');
  let param: AbiParameter | undefined = fn.inputs.find((p, i) => (p.name || `arg${i}`) === first);
  for (const key of rest) {
    if (!param) return undefined;
    const array = /^(.*)\[[0-9]*\]$/.exec(param.type);
    if (array) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) return undefined;
      param = { ...param, type: array[1] as string } as AbiParameter;
    } else if (param.type === 'tuple' && 'components' in param) {
      param = param.components.find((c) => c.name === key);
    } else return undefined;
  }
  return param?.type;
}

const isFixedAsset = (asset: string) => asset.includes(':');

/** Policy validation: every fragment parses, every `moves` entry names one function and real arguments of the right type. */
export function checkAbiDeclarations(abis: readonly AbiDeclaration[]): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const claimed = new Map<string, string>();
  for (const decl of abis) {
    const at = (rest: string) => `abis.${decl.name}.${rest}`;
    const { functions } = parseDeclaration(decl);
    const seen = new Set<string>();
    functions.forEach((fn, i) => {
      if (!fn) return issues.push({ path: at(`functions[${i}]`), message: 'not a human-readable function fragment viem can parse (e.g. "function swap(address token, uint256 amount)")' });
      const selector = toFunctionSelector(fn).toLowerCase();
      if (seen.has(selector)) issues.push({ path: at(`functions[${i}]`), message: `${fn.name} is listed twice` });
      seen.add(selector);
      for (const contract of decl.contracts) {
        const key = `${contract}:${selector}`;
        const other = claimed.get(key);
        if (other !== undefined && other !== decl.name) issues.push({ path: at(`functions[${i}]`), message: `${fn.name} on ${contract} is also declared by abis.${other}` });
        claimed.set(key, decl.name);
      }
      return undefined;
    });
    const parsed = functions.filter((f): f is AbiFunction => f !== undefined);
    for (const [key, moves] of Object.entries(decl.moves)) {
      const named = key.includes('(') ? parsed.filter((f) => signatureOf(f) === key.replace(/\s+/g, '')) : parsed.filter((f) => f.name === key);
      if (named.length === 0) {
        issues.push({ path: at(`moves.${key}`), message: `no function ${key} among functions` });
        continue;
      }
      if (named.length > 1) {
        issues.push({ path: at(`moves.${key}`), message: `${key} is overloaded: name it by its signature, e.g. ${signatureOf(named[0]!)}` });
        continue;
      }
      const fn = named[0]!;
      if (moves.executes) {
        const e = moves.executes;
        const expect = (field: keyof DeclaredExecution, ok: (type: string) => boolean, what: string) => {
          const path = e[field];
          if (path === undefined) return;
          const type = typeAt(fn, path);
          if (type === undefined) issues.push({ path: at(`moves.${key}.executes.${field}`), message: `${fn.name} has no argument ${path}` });
          else if (!ok(type)) issues.push({ path: at(`moves.${key}.executes.${field}`), message: `${path} is ${type}; expected ${what}` });
        };
        expect('to', (t) => t === 'address', 'an address (the target)');
        expect('value', (t) => /^uint[0-9]*$/.test(t), 'an unsigned integer');
        expect('data', (t) => t === 'bytes', 'bytes (the calldata)');
        expect('operation', (t) => /^uint[0-9]*$/.test(t), 'an unsigned integer (0 CALL, 1 DELEGATECALL)');
      }
      (moves.spends ?? []).forEach((spend, j) => {
        const where = (field: string) => at(`moves.${key}.spends[${j}].${field}`);
        const expect = (field: 'asset' | 'amount' | 'to', path: string, ok: (type: string) => boolean, what: string) => {
          const type = typeAt(fn, path);
          if (type === undefined) issues.push({ path: where(field), message: `${fn.name} has no argument ${path}` });
          else if (!ok(type)) issues.push({ path: where(field), message: `${path} is ${type}; expected ${what}` });
        };
        if (!isFixedAsset(spend.asset)) expect('asset', spend.asset, (t) => t === 'address', 'an address (the token)');
        expect('amount', spend.amount, (t) => /^uint[0-9]*$/.test(t), 'an unsigned integer');
        if (spend.to !== undefined) expect('to', spend.to, (t) => t === 'address', 'an address');
      });
    }
  }
  return issues;
}

function undecodable(decl: AbiDeclaration, message: string, cause?: unknown): AirlockError {
  return new AirlockError('undecodable_payload', `${message} (${decl.name})`, { ...(cause !== undefined ? { cause } : {}), details: { abi: decl.name } });
}

/**
 * A bare `contract.call` whose contract and selector a declaration names: decoded strictly (canonical
 * encoding only) into named arguments, plus the spends its `moves` declare, or the call it makes its account
 * execute (`Intent.module`; `executes` false: refused, for a call that is itself executed). Anything else is
 * returned as is.
 */
export function enrichCall(intent: Intent, abis: readonly AbiDeclaration[], executes = true): Intent {
  const call = intent.call;
  if (intent.kind !== 'contract.call' || !call || call.args !== undefined || call.data === undefined) return intent;
  const selector = call.selector.toLowerCase();
  for (const decl of abis) {
    if (!decl.contracts.has(call.contract)) continue;
    const fn = parseDeclaration(decl).bySelector.get(selector);
    if (!fn) continue;
    let args: Record<string, unknown>;
    try {
      args = namedArgs(fn, decodeStrict(fn, call.data as Hex, 'transaction.data'));
    } catch (cause) {
      throw undecodable(decl, `transaction.data does not decode as ${fn.name}`, cause);
    }
    const moves = movesFor(decl, fn);
    // One level only, so what is granted is what runs: the inner module is called directly instead.
    if (moves.executes && !executes) throw undecodable(decl, `the call a module executes is itself ${fn.name} of a declared module: call that module directly`);
    const added = moves.spends.map((d) => declaredSpend(intent, decl, d, args));
    const executed = moves.executes ? executedCall(intent, decl, moves.executes, args, abis) : undefined;
    if (executed) added.push(...executed.spends);
    const spends = [...intent.spends.filter((s) => s.kind !== 'fee'), ...added, ...intent.spends.filter((s) => s.kind === 'fee')];
    const moved = added.map((s) => `${s.amount} of ${s.asset} to ${s.to}`).join(', ');
    const onTarget = `on ${call.contract}`;
    const rest = intent.summary.slice(intent.summary.indexOf(onTarget) + onTarget.length);
    return {
      ...intent,
      spends,
      ...(executed ? { approvals: [...intent.approvals, ...executed.approvals], module: { contract: call.contract, functionName: fn.name, abi: decl.name, calls: [executed] } } : {}),
      call: { ...call, functionName: fn.name, args },
      summary: executed
        ? `call ${fn.name} ${onTarget}, which makes its account ${executed.summary}${rest}`
        : `call ${fn.name} ${onTarget}${moved ? ` spending ${moved}` : ''}${rest}`,
    };
  }
  return intent;
}

/**
 * The calls of a request that executes several (a user operation's, a Safe transaction's), each enriched as a
 * transaction making it would be (enrichCall), and the whole's spends and approvals built again from them: the
 * calls' spends, then the whole's own fees (a user operation's prefund), and the calls' approvals. Undefined when
 * no declaration applies to any call (the request is left as it is). A call that does not decode against its
 * declaration throws, so the whole request is refused (abi_decode_failed).
 */
export function enrichBatchCalls(intent: Intent, calls: readonly Intent[], abis: readonly AbiDeclaration[]): { calls: Intent[]; spends: Spend[]; approvals: Approval[] } | undefined {
  const enriched = calls.map((c) => enrichCall(c, abis));
  if (enriched.every((c, i) => c === calls[i])) return undefined;
  const fees = intent.spends.filter((s) => s.kind === 'fee');
  return { calls: enriched, spends: [...enriched.flatMap((c) => c.spends), ...fees], approvals: enriched.flatMap((c) => c.approvals) };
}

/**
 * The call a module makes its account execute (`moves.<fn>.executes`), decoded like a transaction making it:
 * built-in ERC-20 functions, then the policy's own `abis` (but not a second module call: see enrichCall).
 * DELEGATECALL becomes `contract.delegatecall`, granted only by name.
 */
function executedCall(intent: Intent, decl: AbiDeclaration, e: DeclaredExecution, args: Record<string, unknown>, abis: readonly AbiDeclaration[]): Intent {
  const read = (path: string) => argumentAt(args, path.split('.'));
  const to = read(e.to);
  const data = read(e.data);
  const value = e.value === undefined ? 0n : asAmount(read(e.value));
  const op = e.operation === undefined ? 0n : asAmount(read(e.operation));
  if (typeof to !== 'string' || typeof data !== 'string' || value === undefined || op === undefined) {
    throw undecodable(decl, 'the executed call\'s arguments do not decode');
  }
  if (op !== 0n && op !== 1n) throw undecodable(decl, `${e.operation} must be 0 (CALL) or 1 (DELEGATECALL)`);
  if (op === 1n && value !== 0n) throw undecodable(decl, `${e.value} must be 0 with DELEGATECALL (a delegatecall sends no value)`);
  const ctx = { action: intent.action, chain: intent.chain, from: intent.call!.contract, accountLabel: 'the module\'s account', abis: undefined };
  let inner: Intent;
  try {
    inner = decodeAccountCall(ctx, op === 1n ? 'delegatecall' : 'call', to.toLowerCase(), value, data.toLowerCase() as Hex, `the call ${e.data} carries`);
  } catch (cause) {
    throw undecodable(decl, cause instanceof AirlockError ? cause.message : 'the executed call does not decode', cause);
  }
  return enrichCall(inner, abis, false);
}

/**
 * A decoded unsigned integer argument as an amount. viem decodes uint8..uint48 as JS numbers and wider ones as
 * bigints; validation accepts every uintN, so both are read here (found by review: a uint48 amount was refused
 * abi_decode_failed on every call of the function declaring it). Undefined for anything else.
 */
function asAmount(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return undefined;
}

function declaredSpend(intent: Intent, decl: AbiDeclaration, d: DeclaredSpend, args: Record<string, unknown>): Spend {
  const read = (path: string) => argumentAt(args, path.split('.'));
  let asset: string;
  if (isFixedAsset(d.asset)) asset = d.asset.toLowerCase();
  else {
    const token = read(d.asset);
    if (typeof token !== 'string') throw undecodable(decl, `argument ${d.asset} is not an address`);
    asset = erc20Asset(intent.chain, token);
  }
  const amount = asAmount(read(d.amount));
  if (amount === undefined) throw undecodable(decl, `argument ${d.amount} is not an amount`);
  const to = d.to === undefined ? intent.call!.contract : read(d.to);
  if (typeof to !== 'string') throw undecodable(decl, `argument ${d.to} is not an address`);
  return { asset, amount, to: to.toLowerCase(), kind: 'transfer' };
}
