/**
 * One SLIP-39 share as a mnemonic and back. Layout (10-bit words): identifier (15 bits), extendable flag (1),
 * iteration exponent (4), group index (4), group threshold - 1 (4), group count - 1 (4), member index (4),
 * member threshold - 1 (4), the share value left-padded to a whole number of words, and the RS1024 checksum
 * (3 words). Errors name word positions, never words: a share is a secret.
 */
import { AirlockError } from '@airlock/core';
import { CHECKSUM_WORDS, createChecksum, verifyChecksum } from './rs1024.ts';
import { SLIP39_WORDLIST } from './wordlist.ts';

const RADIX_BITS = 10;
const METADATA_WORDS = 2 + 2 + CHECKSUM_WORDS; // id+exp, share parameters, checksum
/** 128-bit secrets at least: 20 words. */
export const MIN_SHARE_WORDS = METADATA_WORDS + Math.ceil(128 / RADIX_BITS);

export interface Share {
  identifier: number;
  extendable: boolean;
  iterationExponent: number;
  groupIndex: number;
  groupThreshold: number;
  groupCount: number;
  memberIndex: number;
  memberThreshold: number;
  value: Uint8Array;
}

const WORD_INDEX = new Map(SLIP39_WORDLIST.map((w, i) => [w, i]));

function wordsToInt(indices: readonly number[]): bigint {
  let v = 0n;
  for (const i of indices) v = (v << 10n) | BigInt(i);
  return v;
}

function intToWords(value: bigint, count: number): number[] {
  const out: number[] = [];
  for (let i = count - 1; i >= 0; i--) out.push(Number((value >> BigInt(10 * i)) & 1023n));
  return out;
}

export function encodeShare(share: Share): string {
  const idExp = (share.identifier << 5) | (Number(share.extendable) << 4) | share.iterationExponent;
  const params =
    (share.groupIndex << 16) | ((share.groupThreshold - 1) << 12) | ((share.groupCount - 1) << 8) | (share.memberIndex << 4) | (share.memberThreshold - 1);
  const valueWords = Math.ceil((share.value.length * 8) / RADIX_BITS);
  const data = [...intToWords(BigInt(idExp), 2), ...intToWords(BigInt(params), 2), ...intToWords(BigInt(`0x${Buffer.from(share.value).toString('hex')}`), valueWords)];
  return [...data, ...createChecksum(data, share.extendable)].map((i) => SLIP39_WORDLIST[i]).join(' ');
}

/** Lower case, any whitespace: a share pasted or typed from paper. */
export function shareWords(mnemonic: string): string[] {
  if (typeof mnemonic !== 'string') throw invalidShare('a share must be a string of words');
  return mnemonic.normalize('NFKD').trim().toLowerCase().split(/\s+/).filter((w) => w !== '');
}

export function decodeShare(mnemonic: string): Share {
  const words = shareWords(mnemonic);
  const unknown = words.flatMap((w, i) => (WORD_INDEX.has(w) ? [] : [i + 1]));
  if (unknown.length > 0) {
    throw new AirlockError('slip39_invalid_word', 'the share contains words that are not in the SLIP-39 wordlist', {
      hints: [`check word number ${unknown.join(', ')}`],
    });
  }
  const data = words.map((w) => WORD_INDEX.get(w)!);
  if (data.length < MIN_SHARE_WORDS) throw invalidShare(`a share has at least ${MIN_SHARE_WORDS} words, got ${data.length}`);
  const paddingBits = (RADIX_BITS * (data.length - METADATA_WORDS)) % 16;
  if (paddingBits > 8) throw invalidShare(`no SLIP-39 share has ${data.length} words`);
  const idExp = Number(wordsToInt(data.slice(0, 2)));
  const extendable = ((idExp >> 4) & 1) === 1;
  if (!verifyChecksum(data, extendable)) {
    throw new AirlockError('slip39_invalid_checksum', 'the share checksum does not match', {
      hints: ['a word is probably mistyped or the words are out of order'],
    });
  }
  const params = Number(wordsToInt(data.slice(2, 4)));
  const share: Omit<Share, 'value'> = {
    identifier: idExp >> 5,
    extendable,
    iterationExponent: idExp & 15,
    groupIndex: (params >> 16) & 15,
    groupThreshold: ((params >> 12) & 15) + 1,
    groupCount: ((params >> 8) & 15) + 1,
    memberIndex: (params >> 4) & 15,
    memberThreshold: (params & 15) + 1,
  };
  if (share.groupThreshold > share.groupCount) throw invalidShare('the share says its group threshold exceeds its group count');
  const valueWords = data.slice(4, -CHECKSUM_WORDS);
  const valueBytes = (RADIX_BITS * valueWords.length - paddingBits) / 8;
  const value = wordsToInt(valueWords);
  if (value >> BigInt(valueBytes * 8) !== 0n) throw invalidShare('the share padding is not zero');
  if (valueBytes < 16 || valueBytes % 2 !== 0) throw invalidShare('the share holds a secret of a length SLIP-39 does not allow');
  const hex = value.toString(16).padStart(valueBytes * 2, '0');
  return { ...share, value: Uint8Array.from(Buffer.from(hex, 'hex')) };
}

function invalidShare(message: string): AirlockError {
  return new AirlockError('slip39_invalid_share', message);
}
