import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';

/** sha256 hex of the canonical JSON of a policy document: identifies a policy version. */
export function hashPolicy(doc: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(doc))));
}
