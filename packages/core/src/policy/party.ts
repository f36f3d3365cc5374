import { base58check, bech32, bech32m } from '@scure/base';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * How a party (a counterparty, a set entry) is compared. 0x addresses, Lightning node ids and bech32 Bitcoin
 * addresses are case-insensitive and compared lowercase. Base58 Bitcoin addresses (P2PKH `1…`/`m…`/`n…`,
 * P2SH `3…`/`2…`) are case-SENSITIVE: two of them differing only in case are different scripts, so they
 * are kept as written.
 */
export function normaliseParty(party: string): string {
  return BASE58_ADDRESS.test(party) ? party : party.toLowerCase();
}

const BASE58_ADDRESS = /^[123mn][1-9A-HJ-NP-Za-km-z]{25,34}$/;
const BECH32_ADDRESS = /^(bc|tb|bcrt)1[02-9ac-hj-np-z]{8,87}$/i;
const b58 = base58check(sha256);
/** Version bytes of base58 addresses: P2PKH and P2SH on mainnet, then on the test networks. */
const BASE58_VERSIONS = new Set([0x00, 0x05, 0x6f, 0xc4]);

/**
 * A Bitcoin address a policy may name: segwit v0 in bech32 (20 or 32-byte program), v1+ in bech32m
 * (BIP-350), or a base58check P2PKH/P2SH address, on mainnet, the test networks or regtest. Checksums are
 * checked, so a typo in a policy is refused instead of silently never matching.
 */
export function isBitcoinAddress(s: string): boolean {
  if (BECH32_ADDRESS.test(s)) {
    if (s !== s.toLowerCase() && s !== s.toUpperCase()) return false; // BIP-173: no mixed case
    const lower = s.toLowerCase();
    for (const codec of [bech32, bech32m]) {
      try {
        const { words } = codec.decode(lower as `${string}1${string}`, 90);
        const version = words[0]!;
        const program = codec.fromWords(words.slice(1));
        if (version > 16 || program.length < 2 || program.length > 40) return false;
        // BIP-350: v0 uses bech32, v1+ bech32m; v0 programs are 20 or 32 bytes.
        if (version === 0) return codec === bech32 && (program.length === 20 || program.length === 32);
        return codec === bech32m;
      } catch {
        continue;
      }
    }
    return false;
  }
  if (BASE58_ADDRESS.test(s)) {
    try {
      const payload = b58.decode(s);
      return payload.length === 21 && BASE58_VERSIONS.has(payload[0]!);
    } catch {
      return false;
    }
  }
  return false;
}
