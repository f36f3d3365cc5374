import type { AgentKey, AgentKeyState } from '@airlock/core';
import type { Row } from './rows.ts';
import { toInt, toOptionalInt } from './values.ts';

/** Hardened BIP-32 indexes are below 2^31: no key index beyond that is ever handed out. */
export const MAX_KEY_INDEX = 2 ** 31 - 1;

export function agentKeyFromRow(r: Row): AgentKey {
  const rotatedAt = toOptionalInt(r.rotated_at);
  const retiredAt = toOptionalInt(r.retired_at);
  return {
    agentId: String(r.agent_id),
    keyIndex: toInt(r.key_index),
    address: String(r.address),
    state: String(r.state) as AgentKeyState,
    createdAt: toInt(r.created_at),
    ...(rotatedAt !== undefined ? { rotatedAt } : {}),
    ...(retiredAt !== undefined ? { retiredAt } : {}),
  };
}
