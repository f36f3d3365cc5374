/**
 * The wallet service keys Airlock answers NIP-47 requests with. NIP-47: the wallet service pubkey "SHOULD be
 * unique per client connection", so each connection string gets its own key, derived in the key backend under
 * the agent's Nostr account at change 2 (identity is change 0, the NIP-46 transport key change 1):
 * `m/44'/1237'/<account>'/2/<connection index>`. The index is random and recorded in the audit entry that
 * issued the connection (connections.ts), so the same key is derived again after a restart or on another
 * instance. Like the bunker's transport key (NostrService.transport), the private key never leaves the key
 * backend: it signs the event id and computes the NIP-44 conversation key there.
 */
import { AirlockError, NOSTR_COIN_TYPE, type KeyBackend, type SignedNostrEvent, type UnsignedNostrEvent } from '@airlock/core';
import { nip44Decrypt, nip44Encrypt } from '@airlock/chains';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { isHexPubkey, nostrEventId } from '../nostr-bunker/nip01.ts';
import { NWC_INFO_KIND, NWC_RESPONSE_KIND } from '../lightning/nwc-transport.ts';

const MAX_INDEX = 2 ** 31 - 1;

/** The wallet service key of one connection: change 2 of the agent's Nostr account, child `connectionIndex`. */
export function nwcWalletServicePath(accountIndex: number, connectionIndex: number): string {
  for (const [name, value] of [['account', accountIndex], ['connection', connectionIndex]] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_INDEX) throw new AirlockError('invalid_request', `an NWC ${name} index must be an integer 0..2^31-1`);
  }
  return `m/44'/${NOSTR_COIN_TYPE}'/${accountIndex}'/2/${connectionIndex}`;
}

export interface NwcWalletKey {
  /** x-only hex: what the connection string names and clients p-tag. */
  readonly pubkey: string;
  /** Signs a NIP-47 info (13194) or response (23195) event; any other kind is refused. */
  sign(event: UnsignedNostrEvent): Promise<SignedNostrEvent>;
  encrypt(clientPubkey: string, plaintext: string): Promise<string>;
  decrypt(clientPubkey: string, payload: string): Promise<string>;
}

/** The key at `path`, used through the key backend only. */
export async function walletKeyAt(keys: KeyBackend, path: string): Promise<NwcWalletKey> {
  const pubkey = bytesToHex((await keys.getPublicKey(path)).slice(1));
  const conversationKey = (peer: string) => {
    if (!isHexPubkey(peer)) throw new AirlockError('invalid_request', 'an NWC client key is 32 bytes of lowercase hex');
    return keys.nip44ConversationKey(path, hexToBytes(peer));
  };
  return {
    pubkey,
    async sign(event) {
      // What this key may vouch for: NIP-47 events, never a note or a NIP-46 envelope in the agent's name.
      if (event.kind !== NWC_INFO_KIND && event.kind !== NWC_RESPONSE_KIND) throw new AirlockError('invalid_request', 'a wallet service key signs NIP-47 info and response events only');
      const unsigned = { pubkey, created_at: event.created_at, kind: event.kind, tags: event.tags, content: event.content };
      const id = nostrEventId(unsigned);
      // The backend verifies its BIP-340 signature against this key before returning it.
      const sig = bytesToHex(await keys.signSchnorr(path, hexToBytes(id)));
      return { ...unsigned, id, sig };
    },
    async encrypt(peer, plaintext) {
      const key = await conversationKey(peer);
      try {
        return nip44Encrypt(plaintext, key);
      } finally {
        key.fill(0);
      }
    },
    async decrypt(peer, payload) {
      const key = await conversationKey(peer);
      try {
        return nip44Decrypt(payload, key);
      } finally {
        key.fill(0);
      }
    },
  };
}
