/**
 * Arithmetic in GF(256) with the Rijndael polynomial x^8 + x^4 + x^3 + x + 1, as SLIP-39 specifies, and
 * Lagrange interpolation of byte-wise polynomials through the given points.
 */

// exp/log tables over the generator x + 1 (3): every non-zero element is 3^i for one i in 0..254.
const EXP = new Uint8Array(255);
const LOG = new Uint8Array(256);
{
  let poly = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = poly;
    LOG[poly] = i;
    poly = (poly << 1) ^ poly; // multiply by x + 1
    if (poly & 0x100) poly ^= 0x11b; // reduce
  }
}

export interface Point {
  x: number;
  y: Uint8Array;
}

/**
 * f(x) for the polynomials (one per byte position) through `points`. The x coordinates must be distinct
 * and the y values of equal length (the callers check both and name the failure).
 */
export function interpolate(points: readonly Point[], x: number): Uint8Array {
  const length = points[0]!.y.length;
  const known = points.find((p) => p.x === x);
  if (known) return Uint8Array.from(known.y);
  // log of the product of (x_i - x) over all points; subtraction is XOR in GF(2^8).
  let logProduct = 0;
  for (const p of points) logProduct += LOG[p.x ^ x]!;
  const result = new Uint8Array(length);
  for (const p of points) {
    let logBasis = logProduct - LOG[p.x ^ x]!;
    for (const other of points) if (other !== p) logBasis -= LOG[p.x ^ other.x]!;
    logBasis = ((logBasis % 255) + 255) % 255;
    for (let i = 0; i < length; i++) {
      const y = p.y[i]!;
      if (y !== 0) result[i]! ^= EXP[(LOG[y]! + logBasis) % 255]!;
    }
  }
  return result;
}
