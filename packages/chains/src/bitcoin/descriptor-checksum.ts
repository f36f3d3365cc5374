// BIP-380 descriptor checksum: a BCH code over the descriptor's characters (three groups of 32), written after
// `#` as 8 bech32 characters. Step by step as the BIP's Python reference (descsum_polymod / _expand / _create).
import { AirlockError } from '@airlock/core';

const INPUT_CHARSET = '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

function polymod(symbols: readonly number[]): bigint {
  let chk = 1n;
  for (const value of symbols) {
    const top = chk >> 35n;
    chk = ((chk & 0x7ffffffffn) << 5n) ^ BigInt(value);
    for (let i = 0; i < 5; i++) if ((top >> BigInt(i)) & 1n) chk ^= GENERATOR[i]!;
  }
  return chk;
}

/** Each character's position in its group, and after every third character one symbol for the three groups. */
function expand(descriptor: string): number[] {
  const symbols: number[] = [];
  let groups: number[] = [];
  for (const c of descriptor) {
    const v = INPUT_CHARSET.indexOf(c);
    if (v < 0) throw new AirlockError('invalid_request', 'the descriptor has a character outside the BIP-380 character set');
    symbols.push(v & 31);
    groups.push(v >> 5);
    if (groups.length === 3) {
      symbols.push(groups[0]! * 9 + groups[1]! * 3 + groups[2]!);
      groups = [];
    }
  }
  if (groups.length === 1) symbols.push(groups[0]!);
  else if (groups.length === 2) symbols.push(groups[0]! * 3 + groups[1]!);
  return symbols;
}

/** The 8-character checksum of a descriptor written without one. */
export function descriptorChecksum(descriptor: string): string {
  const checksum = polymod([...expand(descriptor), 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1n;
  let out = '';
  for (let i = 0; i < 8; i++) out += CHECKSUM_CHARSET[Number((checksum >> BigInt(5 * (7 - i))) & 31n)];
  return out;
}

/** `descriptor#checksum`. */
export function withDescriptorChecksum(descriptor: string): string {
  return `${descriptor}#${descriptorChecksum(descriptor)}`;
}

/** True when `text` is `SCRIPT#CHECKSUM` with the right 8-character checksum (BIP-380 descsum_check). */
export function hasValidDescriptorChecksum(text: string): boolean {
  if (text.length < 9 || text[text.length - 9] !== '#') return false;
  const checksum = text.slice(-8);
  if (![...checksum].every((c) => CHECKSUM_CHARSET.includes(c))) return false;
  try {
    return polymod([...expand(text.slice(0, -9)), ...[...checksum].map((c) => CHECKSUM_CHARSET.indexOf(c))]) === 1n;
  } catch {
    return false;
  }
}
