// The `lifecycle:` section of a policy document: where the lifecycle path (operator-only sweeps and
// revocations signed with an agent's key at any key index) may send funds, how much it may move, and the
// hot-balance caps, orphan detection and rotation schedule it runs on. See docs/policy.md#lifecycle.
import { z } from 'zod';
import { toChecksumAddress } from '../evm-address.ts';
import { addressField, amountField, assetField, chainField, durationField } from './fields.ts';
import { toAmount } from './amount.ts';
import { parseDuration } from './duration.ts';
import { formatPath, invalidPolicy, type PolicyIssue } from './path.ts';

const evmChainField = chainField.refine((c) => /^eip155:[1-9][0-9]{0,15}$/.test(c), 'expected an EVM chain id (eip155:<chainId>): the lifecycle path is EVM only');
const evmAssetField = assetField.refine(
  (a) => /^eip155:[1-9][0-9]{0,15}\/(slip44:60|erc20:0x[0-9a-fA-F]{40})$/.test(a),
  'expected an EVM asset: eip155:<chainId>/slip44:60 (native) or eip155:<chainId>/erc20:0x<token>',
);

const capField = z.strictObject({
  asset: evmAssetField,
  max: amountField,
  window: durationField,
});

const hotBalanceCapField = z.strictObject({
  asset: evmAssetField,
  max: amountField.describe('The most (base units) an agent address may hold; the excess is swept to the treasury.'),
});

/**
 * Where every sweep goes, so a typo must not be accepted: an address written in mixed case must carry a valid
 * EIP-55 checksum (all lowercase or all uppercase carries none, as everywhere), and the zero address is refused.
 */
const treasuryAddressField = addressField
  .refine((a) => !/[a-f]/.test(a.slice(2)) || !/[A-F]/.test(a.slice(2)) || toChecksumAddress(a) === a, 'bad EIP-55 checksum: the mixed-case address has a typo (or write it all lowercase)')
  .refine((a) => !/^0x0{40}$/.test(a), 'the zero address cannot be a treasury (swept funds would be burnt)');

export const lifecycleField = z
  .strictObject({
    treasury: z.record(evmChainField, treasuryAddressField).optional().describe('Per CAIP-2 chain, the fleet treasury address sweeps go to.'),
    sweep_assets: z.record(evmChainField, z.array(evmAssetField)).optional().describe('Per chain, the ERC-20 assets swept besides the native coin.'),
    caps: z.array(capField).optional().describe('The most the lifecycle path may move per asset per rolling window (fleet-wide).'),
    hot_balance_caps: z.array(hotBalanceCapField).optional().describe('Per asset, the most an agent address may hold (also allowed in an agent policy: the lower cap wins).'),
    orphan_after: durationField.optional().describe('An agent without session activity for this long is an orphan.'),
    sweep_orphans: z.boolean().optional().describe('Sweep orphans to the treasury (default false: report only).'),
    rotate_every: durationField.optional().describe('Rotate every active agent whose current key is older than this (its old address is swept to the new one).'),
    max_gas_price: z.record(evmChainField, amountField).optional().describe('Per chain, the highest gas price (wei) a lifecycle transaction may pay; a higher quote from the RPC is refused (lifecycle_gas_price_too_high).'),
  })
  .describe('The lifecycle path: treasury, swept assets, caps, hot-balance caps, orphans, rotation. See docs/policy.md#lifecycle.');

export type LifecycleSection = z.input<typeof lifecycleField>;

/** The lifecycle section, compiled: addresses lowercase, amounts bigint, durations in ms. */
export interface LifecyclePolicy {
  treasury: ReadonlyMap<string, string>;
  sweepAssets: ReadonlyMap<string, readonly string[]>;
  caps: readonly { asset: string; max: bigint; window: string; windowMs: number }[];
  hotBalanceCaps: ReadonlyMap<string, bigint>;
  orphanAfterMs?: number;
  sweepOrphans: boolean;
  rotateEveryMs?: number;
  /** Per chain, the highest gas price (wei) a lifecycle transaction may pay (`max_gas_price`). */
  maxGasPrice: ReadonlyMap<string, bigint>;
}

export const EMPTY_LIFECYCLE: LifecyclePolicy = { treasury: new Map(), sweepAssets: new Map(), caps: [], hotBalanceCaps: new Map(), sweepOrphans: false, maxGasPrice: new Map() };

/** CAIP-19 with the token address lowercase (the form intents use). */
function normaliseAsset(asset: string): string {
  const i = asset.indexOf('/erc20:');
  return i < 0 ? asset : asset.slice(0, i) + asset.slice(i).toLowerCase();
}

/** Builds the compiled section from an already schema-checked one; checks what the schema cannot (cross-field). */
export function compileLifecycle(section: z.output<typeof lifecycleField> | undefined): LifecyclePolicy {
  if (!section) return EMPTY_LIFECYCLE;
  const issues: PolicyIssue[] = [];
  const sweepAssets = new Map<string, string[]>();
  for (const [chain, assets] of Object.entries(section.sweep_assets ?? {})) {
    assets.forEach((asset, i) => {
      const path = ['lifecycle', 'sweep_assets', chain, i];
      if (!asset.startsWith(`${chain}/`)) issues.push({ path: formatPath(path), message: `the asset is on another chain than ${chain}` });
      else if (!asset.includes('/erc20:')) issues.push({ path: formatPath(path), message: 'the native coin is always swept; list ERC-20 assets here' });
    });
    sweepAssets.set(chain, [...new Set(assets.map(normaliseAsset))]);
  }
  const seenCaps = new Set<string>();
  const caps = (section.caps ?? []).map((c, i) => {
    const key = `${normaliseAsset(c.asset)} ${c.window}`;
    if (seenCaps.has(key)) issues.push({ path: formatPath(['lifecycle', 'caps', i]), message: 'a cap for this asset and window is already listed' });
    seenCaps.add(key);
    return { asset: normaliseAsset(c.asset), max: toAmount(c.max), window: c.window, windowMs: parseDuration(c.window) };
  });
  const hotBalanceCaps = new Map<string, bigint>();
  (section.hot_balance_caps ?? []).forEach((c, i) => {
    const asset = normaliseAsset(c.asset);
    if (hotBalanceCaps.has(asset)) issues.push({ path: formatPath(['lifecycle', 'hot_balance_caps', i, 'asset']), message: 'this asset already has a hot-balance cap' });
    hotBalanceCaps.set(asset, toAmount(c.max));
  });
  if (issues.length > 0) throw invalidPolicy(issues);
  return {
    treasury: new Map(Object.entries(section.treasury ?? {}).map(([chain, address]) => [chain, address.toLowerCase()])),
    sweepAssets,
    caps,
    hotBalanceCaps,
    ...(section.orphan_after !== undefined ? { orphanAfterMs: parseDuration(section.orphan_after) } : {}),
    sweepOrphans: section.sweep_orphans ?? false,
    ...(section.rotate_every !== undefined ? { rotateEveryMs: parseDuration(section.rotate_every) } : {}),
    maxGasPrice: new Map(Object.entries(section.max_gas_price ?? {}).map(([chain, max]) => [chain, toAmount(max)])),
  };
}

/** What an agent policy's `lifecycle:` may hold: its own hot-balance caps; the rest belongs to the fleet. */
export const AGENT_LIFECYCLE_FIELDS = ['hot_balance_caps'] as const;

/** `invalid_policy` issues for lifecycle fields an agent-scoped document may not set. */
export function agentLifecycleIssues(doc: unknown): PolicyIssue[] {
  const section = (doc as { lifecycle?: Record<string, unknown> } | null)?.lifecycle;
  if (!section || typeof section !== 'object') return [];
  return Object.keys(section)
    .filter((k) => !(AGENT_LIFECYCLE_FIELDS as readonly string[]).includes(k))
    .map((k) => ({ path: formatPath(['lifecycle', k]), message: 'only the fleet policy sets this (an agent policy may set lifecycle.hot_balance_caps)' }));
}

/** Throws `invalid_policy` when an agent-scoped document sets a fleet-only lifecycle field. */
export function assertAgentLifecycle(doc: unknown): void {
  const issues = agentLifecycleIssues(doc);
  if (issues.length > 0) throw invalidPolicy(issues);
}

/** The hot-balance cap of `asset` for an agent: the lower of the fleet's and the agent's (undefined: none). */
export function effectiveHotBalanceCap(asset: string, fleet: LifecyclePolicy, agent: LifecyclePolicy | undefined): bigint | undefined {
  const a = fleet.hotBalanceCaps.get(asset);
  const b = agent?.hotBalanceCaps.get(asset);
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}
