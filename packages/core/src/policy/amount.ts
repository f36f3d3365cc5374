export const MAX_UINT256 = (1n << 256n) - 1n;

/**
 * Amount from a policy document: a decimal string of base units, or a non-negative safe integer
 * (what YAML gives for an unquoted small number). The schema has already rejected other shapes.
 */
export function toAmount(raw: string | number): bigint {
  return typeof raw === 'number' ? BigInt(raw) : BigInt(raw);
}
