import { ed25519 as curve } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * Ed25519 for approver votes (core/approvals/vote.ts). RFC 8032 verification without the ZIP-215 leniency: a
 * signature is accepted in one encoding only. Both answer a result and never throw on bad input.
 */
export const ed25519 = {
  verify(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
    if (!HEX64.test(publicKeyHex) || !HEX128.test(signatureHex)) return false;
    try {
      return curve.verify(hexToBytes(signatureHex), message, hexToBytes(publicKeyHex), { zip215: false });
    } catch {
      return false;
    }
  },
  isPublicKey(hex: string): boolean {
    if (!HEX64.test(hex)) return false;
    try {
      const point = curve.Point.fromBytes(hexToBytes(hex), false);
      point.assertValidity();
      // A small-order key (the identity among them) verifies no vote under strict verification: an approver
      // registered with one could never vote (found by review).
      return !point.isSmallOrder();
    } catch {
      return false;
    }
  },
};
