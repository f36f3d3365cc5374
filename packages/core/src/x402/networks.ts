/**
 * x402 v1 names networks; v2 uses CAIP-2 (`eip155:<chainId>`). This is the same table as @x402/evm's
 * `EVM_NETWORK_CHAIN_ID_MAP` (src/constants.ts, 2.27.0): a v1 requirement on any other name is skipped.
 */
export const V1_EVM_NETWORKS: Readonly<Record<string, number>> = {
  ethereum: 1,
  sepolia: 11155111,
  abstract: 2741,
  'abstract-testnet': 11124,
  'base-sepolia': 84532,
  base: 8453,
  'avalanche-fuji': 43113,
  avalanche: 43114,
  iotex: 4689,
  sei: 1329,
  'sei-testnet': 1328,
  polygon: 137,
  'polygon-amoy': 80002,
  peaq: 3338,
  story: 1514,
  educhain: 41923,
  'skale-base-sepolia': 324705682,
  megaeth: 4326,
  monad: 143,
  stable: 988,
  'stable-testnet': 2201,
  celo: 42220,
  flare: 14,
};

const CAIP2_EVM = /^eip155:([1-9][0-9]{0,15})$/;

/** The EVM chain id a requirement's network names, or undefined when Airlock cannot pay on it. */
export function evmChainIdOf(network: unknown, x402Version: 1 | 2): number | undefined {
  if (typeof network !== 'string') return undefined;
  if (x402Version === 1 && Object.hasOwn(V1_EVM_NETWORKS, network)) return V1_EVM_NETWORKS[network];
  const m = CAIP2_EVM.exec(network);
  if (!m) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}
