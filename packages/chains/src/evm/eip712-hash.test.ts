// The EIP-712 digest Airlock computes (each struct's type hash once per request) is byte-identical to viem's
// hashTypedData: on the shapes real typed data has, on edge values, and on random type graphs and messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesToHex, hashTypedData } from 'viem';
import { encodeType } from './eip712-hash.ts';
import { readTypedDataRequest, typedDataDigest } from './typed-data.ts';

function same(typedData: Record<string, unknown>, label: string): void {
  const data = readTypedDataRequest({ typedData });
  const ours = bytesToHex(typedDataDigest(data));
  assert.equal(ours, hashTypedData({ domain: data.domain, types: data.types, primaryType: data.primaryType, message: data.message } as never), label);
  // And viem on the request exactly as sent (strings for numbers, checksummed or mixed-case addresses).
  assert.equal(ours, hashTypedData(typedData as never), `${label} (as sent)`);
}

const A = '0x5B38Da6a701c568545dCfcB03FcB875f56beddC4';
const B = '0xab8483f64d9c6d1ecf9b849ae677dd3315835cb2';

test('known shapes: Mail with nested structs and arrays, Permit2 batch witness, fixed and nested arrays, every elementary type', () => {
  same({
    domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: B },
    types: { Person: [{ name: 'name', type: 'string' }, { name: 'wallets', type: 'address[]' }], Mail: [{ name: 'from', type: 'Person' }, { name: 'to', type: 'Person[]' }, { name: 'contents', type: 'string' }, { name: 'attachment', type: 'bytes' }], Group: [{ name: 'name', type: 'string' }, { name: 'members', type: 'Person[]' }] },
    primaryType: 'Mail',
    message: { from: { name: 'Cow', wallets: [A, B] }, to: [{ name: 'Bob', wallets: [] }, { name: 'Ünïcødé ✓', wallets: [B] }], contents: 'Hello, Bob!', attachment: '0x' },
  }, 'Mail');
  same({
    domain: { name: 'Permit2', chainId: 8453, verifyingContract: '0x000000000022D473030F116dDEE9F6B43aC78BA3' },
    types: {
      PermitBatchWitnessTransferFrom: [{ name: 'permitted', type: 'TokenPermissions[]' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }, { name: 'witness', type: 'Witness' }],
      TokenPermissions: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }],
      Witness: [{ name: 'to', type: 'address' }, { name: 'validAfter', type: 'uint256' }],
    },
    primaryType: 'PermitBatchWitnessTransferFrom',
    message: { permitted: [{ token: A, amount: '1' }, { token: B, amount: ((1n << 256n) - 1n).toString() }], spender: B, nonce: '5', deadline: '1800000000', witness: { to: A, validAfter: '0' } },
  }, 'Permit2 batch witness');
  same({
    domain: { name: 'Grid', version: '2', chainId: 10, salt: `0x${'5a'.repeat(32)}` },
    types: {
      Grid: [{ name: 'cells', type: 'int16[2][]' }, { name: 'flags', type: 'bool[3]' }, { name: 'tags', type: 'bytes4[]' }, { name: 'pts', type: 'Pt[][2]' }, { name: 'b1', type: 'bytes1' }, { name: 'b32', type: 'bytes32' }, { name: 'i256', type: 'int256' }, { name: 'u8', type: 'uint8' }, { name: 'blobs', type: 'bytes[]' }, { name: 'words', type: 'string[]' }],
      Pt: [{ name: 'x', type: 'int8' }, { name: 'y', type: 'uint256' }],
    },
    primaryType: 'Grid',
    message: {
      cells: [[-1, 2], [-32768, 32767]], flags: [true, false, true], tags: ['0xdeadbeef', '0x00000000'],
      pts: [[{ x: -128, y: '0' }], [{ x: 127, y: '0xff' }, { x: 0, y: 1 }]], b1: '0x01', b32: `0x${'ff'.repeat(32)}`,
      i256: `-${(1n << 255n).toString()}`, u8: 255, blobs: ['0x', '0x00ff', `0x${'ab'.repeat(100)}`], words: ['', 'a', 'é'],
    },
  }, 'every elementary type');
  // The domain alone (primaryType EIP712Domain), and a domain with no fields at all.
  same({ domain: { name: 'Only', chainId: 1 }, types: {}, primaryType: 'EIP712Domain', message: {} }, 'EIP712Domain');
  same({ domain: { chainId: 1 }, types: { M: [] }, primaryType: 'M', message: {} }, 'empty struct');
});

/** A small deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random type graphs and messages: the same digest as viem (300 seeds)', () => {
  const ELEMENTARY = ['address', 'bool', 'string', 'bytes', 'bytes1', 'bytes20', 'bytes32', 'uint8', 'uint64', 'uint256', 'int8', 'int128', 'int256'];
  for (let seed = 1; seed <= 300; seed++) {
    const r = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const typeCount = 1 + Math.floor(r() * 5);
    const names = Array.from({ length: typeCount }, (_, i) => `T${String.fromCharCode(65 + Math.floor(r() * 26))}${i}`);
    const types: Record<string, { name: string; type: string }[]> = {};
    // Type i uses only types after it: no cycles.
    names.forEach((name, i) => {
      const fieldCount = Math.floor(r() * 5);
      types[name] = Array.from({ length: fieldCount }, (_, f) => {
        let type = i + 1 < names.length && r() < 0.4 ? pick(names.slice(i + 1)) : pick(ELEMENTARY);
        const dims = r() < 0.3 ? 1 + Math.floor(r() * 2) : 0;
        for (let d = 0; d < dims; d++) type += r() < 0.5 ? '[]' : `[${1 + Math.floor(r() * 3)}]`;
        return { name: `f${f}_${Math.floor(r() * 1000)}`, type };
      });
    });
    const value = (type: string): unknown => {
      const array = /^(.+)\[([0-9]*)\]$/.exec(type);
      if (array) return Array.from({ length: array[2] === '' ? Math.floor(r() * 4) : Number(array[2]) }, () => value(array[1]!));
      if (Object.hasOwn(types, type)) return Object.fromEntries(types[type]!.map((f) => [f.name, value(f.type)]));
      const hex = (n: number) => `0x${Array.from({ length: n }, () => Math.floor(r() * 256).toString(16).padStart(2, '0')).join('')}`;
      if (type === 'address') return hex(20);
      if (type === 'bool') return r() < 0.5;
      if (type === 'string') return pick(['', 'x', 'héllo', 'a'.repeat(70)]);
      if (type === 'bytes') return hex(Math.floor(r() * 70));
      if (type.startsWith('bytes')) return hex(Number(type.slice(5)));
      const bits = BigInt(Number(type.replace(/^u?int/, '')));
      const signed = type.startsWith('int');
      const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
      const pickInt = pick([0n, 1n, max, signed ? -max - 1n : max - 1n]);
      return pickInt.toString();
    };
    const domain = { name: `D${seed}`, ...(r() < 0.7 ? { chainId: 1 + Math.floor(r() * 10_000) } : {}), ...(r() < 0.5 ? { verifyingContract: value('address') } : {}), ...(r() < 0.3 ? { version: '1' } : {}) };
    const chainId = 'chainId' in domain ? undefined : 1;
    const typedData = { domain, types, primaryType: names[0]!, message: value(names[0]!) };
    const data = readTypedDataRequest({ ...(chainId ? { chainId } : {}), typedData });
    assert.equal(bytesToHex(typedDataDigest(data)), hashTypedData({ ...data } as never), `seed ${seed}: ${JSON.stringify(typedData).slice(0, 400)}`);
  }
});

test('encodeType: the struct first, then the structs it uses sorted by name', () => {
  const types = { Mail: [{ name: 'from', type: 'Person' }, { name: 'to', type: 'Person[]' }, { name: 'att', type: 'Attachment[2][]' }], Person: [{ name: 'name', type: 'string' }], Attachment: [{ name: 'data', type: 'bytes' }] };
  assert.equal(encodeType('Mail', types), 'Mail(Person from,Person[] to,Attachment[2][] att)Attachment(bytes data)Person(string name)');
});
