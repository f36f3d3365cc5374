// The signed transaction, built from the very unsigned bytes whose keccak-256 is the signed digest: the RLP list
// of the unsigned transaction is reopened and the signature fields appended. What is broadcast therefore carries
// exactly the fields that were hashed and approved, by construction, without serialising the transaction again
// or parsing the result back. The output is byte-identical to viem's serializeTransaction with the same
// signature (transaction.test.ts compares the two over generated transactions).
import { AirlockError } from '@airlock/core';
import type { EcdsaSignature } from '@airlock/core';

/** What decode keeps of a transaction for finalize: its type, chain and unsigned serialization. */
export interface PreparedTransaction {
  kind: 'evm.transaction';
  type: 'eip1559' | 'legacy' | 'eip2930' | 'eip7702';
  chainId: number;
  /** The unsigned serialization: typed `0x01`/`0x02`/`0x04 || rlp([...fields])` or EIP-155 legacy `rlp([...6 fields, chainId, 0, 0])`. */
  unsigned: Uint8Array;
}

export function isPreparedTransaction(value: unknown): value is PreparedTransaction {
  return typeof value === 'object' && value !== null && (value as PreparedTransaction).kind === 'evm.transaction'
    && (value as PreparedTransaction).unsigned instanceof Uint8Array;
}

const TYPE_BYTES = { eip2930: 0x01, eip1559: 0x02, eip7702: 0x04 } as const;

/**
 * Typed (EIP-2718: 2930, 1559, 7702): `type || rlp([...unsigned fields, yParity, r, s])`.
 * Legacy (EIP-155): `rlp([...6 fields, v, r, s])` with v = chainId * 2 + 35 + recovery, replacing `chainId, 0, 0`.
 * r and s are minimal big-endian integers (leading zero bytes dropped), as RLP requires.
 */
export function signedTransactionBytes(prepared: PreparedTransaction, signature: EcdsaSignature): Uint8Array {
  const { type, chainId, unsigned } = prepared;
  const r = rlpString(minimalBytes(signature.compact.subarray(0, 32)));
  const s = rlpString(minimalBytes(signature.compact.subarray(32, 64)));
  if (type !== 'legacy') {
    const typeByte = TYPE_BYTES[type];
    if (unsigned[0] !== typeByte) throw malformed();
    const fields = listPayload(unsigned, 1);
    const yParity = rlpString(signature.recovery === 1 ? Uint8Array.of(1) : new Uint8Array(0));
    return concat([Uint8Array.of(typeByte), listHeader(fields.length + yParity.length + r.length + s.length), fields, yParity, r, s]);
  }
  const payload = listPayload(unsigned, 0);
  // The EIP-155 placeholder `chainId, 0, 0` ends the unsigned list: it must be exactly that before it is cut.
  const placeholder = concat([rlpString(bigEndian(BigInt(chainId))), Uint8Array.of(0x80, 0x80)]);
  const cut = payload.length - placeholder.length;
  if (cut < 0 || !equalBytes(payload.subarray(cut), placeholder)) throw malformed();
  const fields = payload.subarray(0, cut);
  const v = rlpString(bigEndian(BigInt(chainId) * 2n + 35n + BigInt(signature.recovery)));
  return concat([listHeader(fields.length + v.length + r.length + s.length), fields, v, r, s]);
}

function malformed(): AirlockError {
  return new AirlockError('signature_check_failed', 'the prepared unsigned transaction is not in the expected form');
}

/** The payload of the RLP list starting at `offset`, which must span the rest of `bytes`. */
function listPayload(bytes: Uint8Array, offset: number): Uint8Array {
  const first = bytes[offset];
  if (first === undefined || first < 0xc0) throw malformed();
  let start: number;
  let length: number;
  if (first <= 0xf7) {
    start = offset + 1;
    length = first - 0xc0;
  } else {
    const lengthOfLength = first - 0xf7;
    start = offset + 1 + lengthOfLength;
    length = 0;
    for (let i = offset + 1; i < start; i++) length = length * 256 + bytes[i]!;
  }
  if (start + length !== bytes.length) throw malformed();
  return bytes.subarray(start, start + length);
}

function listHeader(length: number): Uint8Array {
  if (length <= 55) return Uint8Array.of(0xc0 + length);
  const len = bigEndian(BigInt(length));
  return concat([Uint8Array.of(0xf7 + len.length), len]);
}

/** RLP of a byte string of at most 55 bytes (every signature field is). */
function rlpString(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 1 && bytes[0]! < 0x80) return bytes;
  return concat([Uint8Array.of(0x80 + bytes.length), bytes]);
}

function minimalBytes(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

function bigEndian(n: bigint): Uint8Array {
  const out: number[] = [];
  for (let x = n; x > 0n; x >>= 8n) out.unshift(Number(x & 0xffn));
  return Uint8Array.from(out);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
