// The Safe multisig's EIP-712 transaction type (Safe 1.3.0 and later; 1.0-1.2 differ and are not recognised):
// shared by the eip155 decoder, which recognises it by this exact field list, and by policy, which grants the
// calls it executes only through rules naming it.
import type { Eip712Fields } from './x402/eip712-fields.ts';

export const SAFE_TX_PRIMARY_TYPE = 'SafeTx';

/** `SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)`. */
export const SAFE_TX_FIELDS: Eip712Fields = [
  ['to', 'address'], ['value', 'uint256'], ['data', 'bytes'], ['operation', 'uint8'], ['safeTxGas', 'uint256'],
  ['baseGas', 'uint256'], ['gasPrice', 'uint256'], ['gasToken', 'address'], ['refundReceiver', 'address'], ['nonce', 'uint256'],
];
