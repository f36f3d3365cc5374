/**
 * The SLIP-39 passphrase encryption of the master secret: a 4-round Feistel network whose round function is
 * PBKDF2-HMAC-SHA256 with (10000 << e) / 4 iterations; the salt binds the set's identifier unless the set is
 * extendable.
 */
import { pbkdf2Sync } from 'node:crypto';

const BASE_ITERATION_COUNT = 10_000;
const ROUND_COUNT = 4;

function salt(identifier: number, extendable: boolean): Buffer {
  return extendable ? Buffer.alloc(0) : Buffer.concat([Buffer.from('shamir', 'ascii'), Buffer.from([identifier >> 8, identifier & 0xff])]);
}

function feistel(input: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean, rounds: number[]): Uint8Array {
  const half = input.length / 2;
  let l = Buffer.from(input.subarray(0, half));
  let r = Buffer.from(input.subarray(half));
  const s = salt(identifier, extendable);
  for (const i of rounds) {
    const f = pbkdf2Sync(Buffer.concat([Buffer.from([i]), passphrase]), Buffer.concat([s, r]), (BASE_ITERATION_COUNT << e) / ROUND_COUNT, r.length, 'sha256');
    const next = Buffer.alloc(half);
    for (let k = 0; k < half; k++) next[k] = l[k]! ^ f[k]!;
    l.fill(0);
    f.fill(0);
    l = r;
    r = next;
  }
  const out = new Uint8Array(Buffer.concat([r, l]));
  l.fill(0);
  r.fill(0);
  return out;
}

export function encryptMasterSecret(secret: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean): Uint8Array {
  return feistel(secret, passphrase, e, identifier, extendable, [0, 1, 2, 3]);
}

export function decryptMasterSecret(ems: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean): Uint8Array {
  return feistel(ems, passphrase, e, identifier, extendable, [3, 2, 1, 0]);
}
