/** The Nostr service the bunker signs through: `airlock.nostr` (packages/core/src/service/nostr-service.ts). */
export type { NostrIdentity, NostrServicePort, NostrTransport, SignedNostrEvent, UnsignedNostrEvent } from '@airlock/core';
