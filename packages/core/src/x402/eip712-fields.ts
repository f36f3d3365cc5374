/**
 * EIP-712 field lists that both sides must agree on: the x402 builder (what Airlock constructs) and the
 * EVM decoder (what it recognises as a payment). One definition, so the two cannot drift apart.
 * Each entry is [name, solidity type], in struct order.
 */
export type Eip712Fields = readonly (readonly [name: string, type: string])[];

/** EIP-3009 `TransferWithAuthorization` / `ReceiveWithAuthorization`. */
export const EIP3009_AUTHORIZATION_FIELDS: Eip712Fields = [
  ['from', 'address'], ['to', 'address'], ['value', 'uint256'], ['validAfter', 'uint256'], ['validBefore', 'uint256'], ['nonce', 'bytes32'],
];

/** x402's exact-scheme Permit2 witness (@x402/evm `permit2WitnessTypes`): the proxy checks `Witness(to, validAfter)`. */
export const X402_PERMIT2_WITNESS_FIELDS: Eip712Fields = [['to', 'address'], ['validAfter', 'uint256']];

/** The `{name, type}` objects EIP-712 libraries and the x402 client use. */
export function eip712Types(fields: Eip712Fields): { name: string; type: string }[] {
  return fields.map(([name, type]) => ({ name, type }));
}
