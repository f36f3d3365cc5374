// keccak-256 for the signing path: the transaction digest, the transaction hash and the signer's address are
// three hashes per signature. viem hashes with @noble/hashes 1.x in pure JS: about 20 µs for a 180-byte
// transaction on the development machine, 10.8 µs with @noble/hashes 2.x, 1.5 µs with hash-wasm's WebAssembly
// build of the reference Keccak code (bench/.tmp measurements, 2026-12-01; about 7% of a whole in-process
// signature). hash-wasm needs no native build and no install script; its result is checked against noble on
// every length around the 136-byte rate boundary and random inputs (keccak.test.ts).
import { createRequire } from 'node:module';
import { keccak_256 } from '@noble/hashes/sha3.js';

interface WasmHasher {
  init(): WasmHasher;
  update(data: Uint8Array): WasmHasher;
  digest(outputType: 'binary'): Uint8Array;
}

// Only the keccak build of hash-wasm (11 KB), not its 270 KB bundle of every algorithm. The package ships UMD
// per algorithm and no `exports` map, hence the require.
const { createKeccak } = createRequire(import.meta.url)('hash-wasm/dist/keccak.umd.min.js') as { createKeccak(bits: 256): Promise<WasmHasher> };

/** The WebAssembly hasher, or undefined where WebAssembly cannot be instantiated (then noble hashes). */
const wasm: WasmHasher | undefined = await createKeccak(256).catch(() => undefined);

/** keccak-256 of `data` (32 bytes). Synchronous: the hasher is instantiated once when this module loads. */
export function keccak256Bytes(data: Uint8Array): Uint8Array {
  if (!wasm) return keccak_256(data);
  // One hasher serves every call: each call runs to completion on this thread before the next begins.
  return wasm.init().update(data).digest('binary');
}

/** Which implementation hashes (reported by tests and the bench). */
export const keccakImplementation: 'wasm' | 'noble' = wasm ? 'wasm' : 'noble';
