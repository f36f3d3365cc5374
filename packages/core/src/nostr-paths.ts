import { AirlockError } from './errors.ts';

/** SLIP-44 coin type registered for Nostr (never the funds' 60, so Nostr and EVM keys share only the vault root). */
export const NOSTR_COIN_TYPE = 1237;

function assertAccount(accountIndex: number): void {
  if (!Number.isSafeInteger(accountIndex) || accountIndex < 0 || accountIndex >= 2 ** 31) {
    throw new AirlockError('invalid_request', 'a Nostr account index must be an integer 0..2^31-1');
  }
}

/** NIP-06: an agent's Nostr identity is m/44'/1237'/<account>'/0/0 (one per agent, its account index). */
export function nostrIdentityPath(accountIndex: number): string {
  assertAccount(accountIndex);
  return `m/44'/${NOSTR_COIN_TYPE}'/${accountIndex}'/0/0`;
}

/** The agent's NIP-46 transport key: change 1 of the same account, never the identity. */
export function nostrTransportPath(accountIndex: number): string {
  assertAccount(accountIndex);
  return `m/44'/${NOSTR_COIN_TYPE}'/${accountIndex}'/1/0`;
}
