import { AirlockError } from '@airlock/core';

/**
 * The writes every signing transaction depends on: an agent's status, a session's revocation, a policy, the
 * agent's signing key. On PostgreSQL a signing batch locks its agent and reads these rows in one statement,
 * whose snapshot is taken before the lock wait (READ COMMITTED); that read is current only because these rows
 * change under the signing lock taken exclusively, which no batch holds (docs/architecture.md). A writer that
 * forgets `{ exclusive: true }` would let a request waiting on another instance sign after the change (a
 * revoke-all and a child-session revoke did, until 2026-12-03). So both stores refuse such a write outside an
 * exclusive transaction: the mistake fails every test that reaches it, on SQLite too, where it would be
 * harmless (one writer) and so would otherwise go unseen. A circuit breaker's freeze is not one of these: it
 * runs in the batch of the request that trips it (docs/threat-model.md gives what that leaves). An approver's status
 * is one too: a vote reads it unlocked, and a disable must wait for every vote in flight (found by review).
 */
export type ExclusiveWrite = 'setAgentStatus' | 'revokeSession' | 'putPolicy' | 'rotateAgentKey' | 'setApproverStatus';

export function requireExclusive(exclusive: boolean, write: ExclusiveWrite): void {
  if (!exclusive) {
    throw new AirlockError('internal', `${write} must run in an exclusive transaction (Store.transaction with { exclusive: true }): a signing transaction on another instance could otherwise commit after it having read the state before it`);
  }
}
