/**
 * Zod building blocks shared by the document schema and every rule's options.
 * They describe the document as written (input); conversion to bigint, Set and RegExp happens
 * when a rule is built, so the same schemas also produce the published JSON Schema.
 */
import { z } from 'zod';
import { ACTIONS, BITCOIN_CHAINS, INTENT_KINDS, NOSTR_CHAIN, SIGHASH_NAMES } from '../intent.ts';
import { isBitcoinAddress } from './party.ts';
import { MAX_UINT256 } from './amount.ts';
import { isDuration } from './duration.ts';

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const AMOUNT_MESSAGE = 'expected an integer amount: a decimal string of base units (or a non-negative integer below 2^53)';

export const amountField = z
  .union(
    [
      z
        .string()
        .regex(DECIMAL, AMOUNT_MESSAGE)
        // Zod runs every check even after the regex failed: only convert what is a decimal.
        .refine((s) => !DECIMAL.test(s) || (s.length < 80 && BigInt(s) <= MAX_UINT256), 'amount exceeds 2^256-1'),
      z.number({ error: AMOUNT_MESSAGE }).int(AMOUNT_MESSAGE).min(0, 'amount must not be negative'),
    ],
    { error: AMOUNT_MESSAGE },
  )
  .describe('Amount in base units: a decimal string (preferred), or a non-negative integer below 2^53.');

export const durationField = z
  .string({ error: 'expected a duration such as 90s, 15m, 24h or 7d' })
  .refine(isDuration, 'expected a duration: a positive integer followed by s, m, h or d (e.g. 90s, 15m, 24h, 7d)')
  .describe('Rolling window: a positive integer followed by s, m, h or d.');

/** A percentage 0..100 with at most four decimals (compared exactly as parts per million: `percentToPpm`). */
export const percentField = z
  .number({ error: 'expected a percentage (0 to 100)' })
  .min(0, 'a percentage is at least 0')
  .max(100, 'a percentage is at most 100')
  .refine((p) => Math.abs(p * 10_000 - Math.round(p * 10_000)) < 1e-6, 'at most four decimal places');

/** A `percentField` value as integer parts per million, so that comparisons stay exact in bigint. */
export function percentToPpm(percent: number): bigint {
  return BigInt(Math.round(percent * 10_000));
}

export const ruleNameField = z
  .string({ error: 'expected a rule name' })
  .regex(/^[a-z0-9_-]{1,64}$/, 'a rule name is 1-64 characters of a-z, 0-9, _ and -');

export const setNamePattern = /^[A-Za-z0-9_-]{1,64}$/;
export const addressPattern = /^0x[0-9a-fA-F]{40}$/;

export const addressField = z.string({ error: 'expected a 0x address' }).regex(addressPattern, 'expected a 0x address (20 bytes, hex)');

/** A Lightning node id: a compressed secp256k1 public key (33 bytes), hex. */
export const nodeIdPattern = /^0[23][0-9a-fA-F]{64}$/;

const PARTY_MESSAGE = 'expected a 0x address (20 bytes, hex), a Lightning node id (33 bytes, hex, starting 02 or 03) or a Bitcoin address (bech32/bech32m or base58, checksum checked)';

/** A 0x address, a Lightning node id, or a Bitcoin address with a valid checksum. */
function isParty(s: string): boolean {
  return /^(0x[0-9a-fA-F]{40}|0[23][0-9a-fA-F]{64})$/.test(s) || isBitcoinAddress(s);
}

/** What a set or a destination list holds: a 0x address, a Lightning node id (payee allowlists) or a Bitcoin address. */
export const partyField = z.string({ error: PARTY_MESSAGE }).refine(isParty, PARTY_MESSAGE);

const setRefField = z
  .string({ error: 'expected a $set reference or a list' })
  .regex(/^\$[A-Za-z0-9_-]{1,64}$/, 'expected a $set reference (e.g. $partners) or a list of addresses');

/** `$partners`, or a list mixing addresses and `$set` names. Resolved to a lowercase Set at compile time. */
export const addressListField = z
  .union([
    setRefField,
    z.array(
      z
        .string({ error: 'expected a 0x address, a Lightning node id, a Bitcoin address or a $set reference' })
        .refine((s) => /^\$[A-Za-z0-9_-]{1,64}$/.test(s) || isParty(s), `${PARTY_MESSAGE}, or a $set reference`),
    ),
  ])
  .describe('Addresses (0x addresses, Lightning node ids, Bitcoin addresses): a `$set` reference, or a list of addresses and `$set` references.');

/*
 * Chain and asset ids are compared as strings with the ids the chain adapters write into intents, so an id no adapter
 * writes (`eip155:base`, `eip155:08453`, `…/erc20:USDC`, a truncated address) is never matched nor charged: a deny,
 * tier, cap or budget naming it would silently do nothing. Only the adapters' forms are accepted: EVM `caip2` (the
 * decimal chain id, a safe integer) with `nativeAsset` (`slip44:60`, whatever the coin) and `erc20Asset` (compiled
 * lowercase, so a checksummed address is fine); Bitcoin and Lightning a network of BITCOIN_CHAINS with `bitcoinAsset`
 * (`slip44:0`); Nostr NOSTR_CHAIN, which moves no asset.
 */
const EVM_CHAIN = 'eip155:[1-9][0-9]{0,15}';
const BITCOIN_CHAIN = `(?:${Object.values(BITCOIN_CHAINS).join('|')})`;
const chainIdPattern = new RegExp(`^(?:${EVM_CHAIN}|${BITCOIN_CHAIN}|${NOSTR_CHAIN})$`);
const assetIdPattern = new RegExp(`^(?:${EVM_CHAIN}/(?:slip44:60|erc20:0x[0-9a-fA-F]{40})|${BITCOIN_CHAIN}/slip44:0)$`);

const BITCOIN_NETWORK_IDS = Object.entries(BITCOIN_CHAINS).map(([network, chain]) => `${chain} (${network})`).join(', ');
const EVM_CHAIN_FORM = 'eip155:<chain id>, the decimal EIP-155 chain id without leading zeros (e.g. eip155:8453)';

/** A chain id of an EVM chain above 2^53-1: its form is right, but no request can name it (`readChainId`). */
const isUnsafeEvmChainId = (id: string) => id.startsWith('eip155:') && !Number.isSafeInteger(Number(id.slice(7).split('/')[0]));

/** What a chain id should have been, by its namespace (the input itself is not echoed). */
function chainIdMessage(input: unknown): string {
  const id = String(input);
  if (id.startsWith('eip155:')) return `expected ${EVM_CHAIN_FORM}, as requests name the chain`;
  if (id.startsWith('bip122:')) return `expected a Bitcoin network as requests name it: ${BITCOIN_NETWORK_IDS}`;
  return `expected a chain id as requests name it: ${EVM_CHAIN_FORM}; a Bitcoin network (bip122:…, e.g. ${BITCOIN_CHAINS.bitcoin}); or ${NOSTR_CHAIN}`;
}

/** What an asset id should have been, by its namespace (the input itself is not echoed). */
function assetIdMessage(input: unknown): string {
  const id = String(input);
  if (new RegExp(`^${EVM_CHAIN}/slip44:`).test(id)) {
    return 'the native coin of every EVM chain is charged as eip155:<chain id>/slip44:60, whatever the coin: write that';
  }
  if (id.startsWith('eip155:')) return 'expected eip155:<chain id>/erc20:0x<token address: 40 hex digits> or eip155:<chain id>/slip44:60 (the native coin), the chain id decimal without leading zeros (e.g. eip155:8453/erc20:0x833589fc…)';
  if (id.startsWith('bip122:')) return `expected <network>/slip44:0, the bitcoin of a network (in millisatoshis), with the network one of: ${BITCOIN_NETWORK_IDS}`;
  if (id.startsWith(`${NOSTR_CHAIN}/`)) return 'Nostr requests move no asset: no rule can name one';
  return `expected an asset id as requests name it: eip155:<chain id>/erc20:0x<token address> (e.g. eip155:8453/erc20:0x833589fc…), eip155:<chain id>/slip44:60 (the native coin), or bip122:<network>/slip44:0 (bitcoin, e.g. ${BITCOIN_CHAINS.bitcoin}/slip44:0)`;
}

export const chainField = z
  .string({ error: 'expected a CAIP-2 chain id' })
  .regex(chainIdPattern, { error: (issue) => chainIdMessage(issue.input) })
  // Zod runs every check even after the regex failed: only judge the number of an id of the right form.
  .refine((id) => !chainIdPattern.test(id) || !isUnsafeEvmChainId(id), 'an EIP-155 chain id is at most 2^53-1: no request names a larger one')
  .describe('A CAIP-2 chain id as requests name it: eip155:<chain id>, bip122:<genesis hash prefix> (Bitcoin and Lightning), or nostr:mainnet.');

export const assetField = z
  .string({ error: 'expected a CAIP-19 asset id' })
  .regex(assetIdPattern, { error: (issue) => assetIdMessage(issue.input) })
  .refine((id) => !assetIdPattern.test(id) || !isUnsafeEvmChainId(id), 'an EIP-155 chain id is at most 2^53-1: no request names a larger one')
  .describe('A CAIP-19 asset id as requests are charged: eip155:<chain id>/erc20:0x<token>, eip155:<chain id>/slip44:60 (native coin), or bip122:<network>/slip44:0 (bitcoin, msat).');

export const nostrKindField = z.number({ error: 'expected a Nostr event kind (an integer 0..65535)' }).int('expected an integer kind').min(0).max(65535, 'a Nostr kind is at most 65535');

/** A Nostr public key: 64 lowercase or uppercase hex digits (x-only, as in `p` tags). Compared lowercase. */
export const nostrPubkeyField = z.string({ error: 'expected a Nostr pubkey (64 hex digits)' }).regex(/^[0-9a-fA-F]{64}$/, 'expected a Nostr pubkey: 64 hex digits (x-only, as in p tags)');

export const scopeField = z.enum(['agent', 'session', 'fleet'], { error: 'expected one of: agent, session, fleet' });

const nonEmpty = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'expected a non-empty list');

/** A decoded argument: its name, dotted into tuple fields (`params.recipient`) and array items (`path.0`). */
export const argPathField = z
  .string({ error: 'expected an argument name' })
  .regex(/^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64}){0,7}$/, 'expected an argument name, dotted for tuple fields (params.amountIn)');

const argScalar = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' });

export const argConstraintField = z
  .strictObject({
    eq: argScalar.optional(),
    in: z.union([setRefField, nonEmpty(z.union([z.string(), z.number()], { error: 'expected a string or number' }))]).optional(),
    lte: amountField.optional(),
    gte: amountField.optional(),
  })
  .refine((c) => c.eq !== undefined || c.in !== undefined || c.lte !== undefined || c.gte !== undefined, 'expected at least one of eq, in, lte, gte');

export const domainField = z
  .strictObject({
    chain_id: z.number().int().positive().optional(),
    verifying_contract: addressField.optional(),
    name: z.string().optional(),
    version: z.string().optional(),
  })
  .refine((d) => Object.values(d).some((v) => v !== undefined), 'a domain names at least one of chain_id, verifying_contract, name, version');

export const messageField = z
  .strictObject({
    prefix: z.string().min(1).optional(),
    pattern: z.string().min(1).optional().describe('A regular expression tested against the message text (JavaScript syntax, unicode mode). Patterns judge at most 16,384 characters of text; a longer message is refused (message_too_large) wherever the pattern would run.'),
    /**
     * A personal message of exactly 32 bytes is what Safe (`eth_sign`, v + 4) and some smart accounts (EIP-191 over
     * the userOpHash) take as the owner's approval of a hash: granted only by a rule that says so.
     */
    allow_hash_length: z.literal(true).optional(),
  })
  .refine((m) => m.prefix !== undefined || m.pattern !== undefined, 'expected prefix and/or pattern');

/** Where a rule applies (or, for allow/deny, what it grants/denies). All given fields must match. */
export const matchField = z
  .strictObject({
    actions: nonEmpty(z.enum(ACTIONS, { error: `expected one of: ${ACTIONS.join(', ')}` })).optional(),
    chains: nonEmpty(chainField).optional(),
    kinds: nonEmpty(z.enum(INTENT_KINDS, { error: `expected an intent kind (${INTENT_KINDS.join(', ')})` })).optional(),
    to: addressListField.optional(),
    assets: nonEmpty(assetField).optional(),
    contracts: addressListField.optional(),
    selectors: nonEmpty(z.string().regex(/^0x[0-9a-fA-F]{8}$/, 'expected a 4-byte selector (0x + 8 hex digits)')).optional(),
    args: z
      .record(argPathField, argConstraintField)
      .optional()
      .describe('Decoded call arguments by name (`amount`, or `params.recipient` for a tuple field, `path.0` for an array item). `eq`/`in` may name `$self`: the signing agent.'),
    primary_types: nonEmpty(z.string().min(1)).optional(),
    domains: nonEmpty(domainField).optional(),
    message: messageField.optional(),
    resources: nonEmpty(z.string().min(1).max(2048))
      .optional()
      .describe('x402 paid-resource URL patterns (`*` one host label or path segment, `**` anything). Only payments that name a matching resource match.'),
    bitcoin_sighash: nonEmpty(z.enum(SIGHASH_NAMES, { error: `expected a sighash name (${SIGHASH_NAMES.join(', ')})` }))
      .optional()
      .describe('Bitcoin sighash types a PSBT input may sign with beyond ALL/DEFAULT. SINGLE, NONE and ANYONECANPAY let others change the transaction after the agent signed: a PSBT asking for one is granted only by an allow rule listing it here.'),
    nostr_kinds: nonEmpty(nostrKindField)
      .optional()
      .describe('Nostr event kinds (NIP-01). Only Nostr events of a listed kind match; a NIP-98 auth event is kind 27235.'),
  })
  .describe('All given fields must match; omitted fields match anything.');

export type MatchOptions = z.output<typeof matchField>;

/** Fields every rule has. */
export const ruleBase = {
  name: ruleNameField,
  description: z.string().optional(),
};

/**
 * What one call moves, declared by the operator (never guessed): each spend's asset, amount and receiver; or the
 * call it makes its account execute (a module's exec function), which is then decoded and granted as a call of its own.
 */
const callMovesField = z
  .strictObject({
    spends: nonEmpty(
      z.strictObject({
        asset: z
          .union([assetField, argPathField], { error: 'expected a CAIP-19 asset id or the name of an address argument (the token)' })
          .describe('A fixed CAIP-19 asset id, or the name of the address argument that holds the token.'),
        amount: argPathField.describe('The name of the unsigned integer argument that holds the amount (base units).'),
        to: argPathField.optional().describe('The name of the address argument that receives what the spend buys; default: the contract called.'),
      }),
    ).optional(),
    executes: z
      .strictObject({
        to: argPathField.describe('The name of the address argument: the target of the call the account executes.'),
        value: argPathField.optional().describe('The name of the unsigned integer argument: the native value the account sends; default: none.'),
        data: argPathField.describe('The name of the bytes argument: the calldata of that call.'),
        operation: argPathField.optional().describe('The name of the uint8 argument: 0 CALL, 1 DELEGATECALL (Safe\'s Enum.Operation); default: always CALL.'),
      })
      .optional()
      .describe('The function makes the account the contract is attached to (a Safe module\'s avatar) execute a call: that call is decoded like a transaction and must be granted as one; see docs/policy.md#abis.'),
  })
  .refine((m) => m.spends !== undefined || m.executes !== undefined, 'expected spends or executes');

/** One registered ABI: human-readable function fragments for some contracts, and what their calls move. */
export const abiField = z
  .strictObject({
    contracts: addressListField.describe('Contracts this ABI decodes calls to.'),
    functions: nonEmpty(
      z.string({ error: 'expected a human-readable function fragment' }).min(1).max(4096).regex(/^\s*function\s/, 'expected a human-readable function fragment ("function name(type arg, …)")'),
    ).describe('Human-readable function fragments, e.g. `function exactInputSingle((address tokenIn, …) params) returns (uint256)`.'),
    moves: z
      .record(z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\(.*\))?$/, 'expected a function name (or its signature when overloaded)'), callMovesField)
      .optional()
      .describe('Per function (name, or `name(types)` when overloaded): the spends its calls make, or the call it makes its account execute. Calls without an entry move nothing but their native value.'),
  })
  .describe('Calls to `contracts` decode against `functions` into named arguments (`match.args`); `moves` turns arguments into spends.');
