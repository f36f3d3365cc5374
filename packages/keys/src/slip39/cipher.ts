/**
 * The SLIP-39 passphrase encryption of the master secret: a 4-round Feistel network whose round function is
 * PBKDF2-HMAC-SHA256 with (10000 << e) / 4 iterations; the salt binds the set's identifier unless the set is
 * extendable.
 *
 * The network is written once, as a generator that asks for each round's PBKDF2 and is driven either on the
 * calling thread (splitting, offline restore) or on libuv's thread pool (decryption inside the daemon): there e
 * comes from a share anyone may send, and each step of it doubles the work, so the event loop must not run it.
 */
import { pbkdf2, pbkdf2Sync } from 'node:crypto';

const BASE_ITERATION_COUNT = 10_000;
const ROUND_COUNT = 4;

/** One round's PBKDF2: what the network asks its driver to compute. */
interface RoundFunctionInput {
  password: Buffer;
  salt: Buffer;
  iterations: number;
  keyLength: number;
}

type Feistel = Generator<RoundFunctionInput, Uint8Array, Buffer>;

function salt(identifier: number, extendable: boolean): Buffer {
  return extendable ? Buffer.alloc(0) : Buffer.concat([Buffer.from('shamir', 'ascii'), Buffer.from([identifier >> 8, identifier & 0xff])]);
}

function* feistel(input: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean, rounds: number[]): Feistel {
  const half = input.length / 2;
  let l = Buffer.from(input.subarray(0, half));
  let r = Buffer.from(input.subarray(half));
  const s = salt(identifier, extendable);
  try {
    for (const i of rounds) {
      const f = yield { password: Buffer.concat([Buffer.from([i]), passphrase]), salt: Buffer.concat([s, r]), iterations: (BASE_ITERATION_COUNT << e) / ROUND_COUNT, keyLength: r.length };
      const next = Buffer.alloc(half);
      for (let k = 0; k < half; k++) next[k] = l[k]! ^ f[k]!;
      l.fill(0);
      f.fill(0);
      l = r;
      r = next;
    }
    return new Uint8Array(Buffer.concat([r, l]));
  } finally {
    // Also when the driver gives up half-way (a PBKDF2 error): no half of the secret stays behind.
    l.fill(0);
    r.fill(0);
  }
}

function runHere(network: Feistel): Uint8Array {
  let step = network.next();
  while (!step.done) {
    const { password, salt, iterations, keyLength } = step.value;
    step = network.next(pbkdf2Sync(password, salt, iterations, keyLength, 'sha256'));
  }
  return step.value;
}

async function runOnThreadPool(network: Feistel): Promise<Uint8Array> {
  try {
    let step = network.next();
    while (!step.done) {
      const { password, salt, iterations, keyLength } = step.value;
      const f = await new Promise<Buffer>((resolve, reject) => pbkdf2(password, salt, iterations, keyLength, 'sha256', (error, key) => (error ? reject(error) : resolve(key))));
      step = network.next(f);
    }
    return step.value;
  } catch (error) {
    network.return(new Uint8Array(0));
    throw error;
  }
}

export function encryptMasterSecret(secret: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean): Uint8Array {
  return runHere(feistel(secret, passphrase, e, identifier, extendable, [0, 1, 2, 3]));
}

/** Decryption with each PBKDF2 round on libuv's thread pool: the event loop keeps serving meanwhile. */
export function decryptMasterSecret(ems: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean): Promise<Uint8Array> {
  return runOnThreadPool(feistel(ems, passphrase, e, identifier, extendable, [3, 2, 1, 0]));
}

/** Decryption on the calling thread, for callers that serve nobody meanwhile (offline restore, the spec vectors). */
export function decryptMasterSecretSync(ems: Uint8Array, passphrase: Uint8Array, e: number, identifier: number, extendable: boolean): Uint8Array {
  return runHere(feistel(ems, passphrase, e, identifier, extendable, [3, 2, 1, 0]));
}
