/** The RS1024 checksum over 10-bit words (a Reed-Solomon code over GF(1024)), as SLIP-39 defines it. */

export const CHECKSUM_WORDS = 3;

const GEN = [0xe0e040, 0x1c1c080, 0x3838100, 0x7070200, 0xe0e0009, 0x1c0c2412, 0x38086c24, 0x3090fc48, 0x21b1f890, 0x3f3f120];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const b = chk >>> 20;
    chk = (((chk & 0xfffff) << 10) ^ v) >>> 0;
    for (let i = 0; i < 10; i++) if ((b >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk;
}

/** "shamir" for original shares, "shamir_extendable" for extendable ones. */
export function customizationString(extendable: boolean): number[] {
  return [...Buffer.from(extendable ? 'shamir_extendable' : 'shamir', 'ascii')];
}

export function createChecksum(data: readonly number[], extendable: boolean): number[] {
  const pm = polymod([...customizationString(extendable), ...data, 0, 0, 0]) ^ 1;
  return [2, 1, 0].map((i) => (pm >>> (10 * i)) & 1023);
}

export function verifyChecksum(data: readonly number[], extendable: boolean): boolean {
  return polymod([...customizationString(extendable), ...data]) === 1;
}
