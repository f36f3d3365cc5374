/**
 * The key registry: every EVM key an agent ever had (m/44'/60'/{accountIndex}'/0/{keyIndex}), so that every
 * address stays attributable to its agent after a rotation. Rows are never deleted and a key index is never
 * handed out twice (the next one is the largest ever used + 1, under the schema's primary key).
 *
 * - `active`: the agent's signing key (`Agent.keyIndex` / `Agent.address`); at most one per agent.
 * - `rotated`: replaced by a later key; nothing is signed with it any more, and a request naming it as its
 *   signer is refused `key_rotated`. Funds or allowances may still sit at its address.
 * - `retired`: an operator (or the lifecycle sweep) declared it done with: nothing is left at the address.
 *
 * A state only moves forward (active -> rotated -> retired; a retired agent's active key -> retired).
 */
export type AgentKeyState = 'active' | 'rotated' | 'retired';

export interface AgentKey {
  agentId: string;
  keyIndex: number;
  /** Lowercase EVM address of the key. */
  address: string;
  state: AgentKeyState;
  createdAt: number; // ms
  /** When it stopped being the agent's signing key. */
  rotatedAt?: number;
  /** When it was marked retired. */
  retiredAt?: number;
}

/** Maps (accountIndex, keyIndex) to the address of that key (the key backend through the EVM adapter). */
export type DeriveAgentAddress = (accountIndex: number, keyIndex: number) => string | Promise<string>;
