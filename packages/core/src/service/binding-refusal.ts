import { AirlockError } from '../errors.ts';

/**
 * Why a key process refused a bound request (`key_process_refused`, details.reason). Stable: operators grep the
 * key process's log for them and docs/custody.md lists them.
 */
export type BindingRefusal =
  | 'binding_missing'
  | 'audit_entry_not_found'
  | 'decision_not_allow'
  | 'agent_mismatch'
  | 'request_hash_mismatch'
  | 'digest_mismatch'
  | 'agent_key_changed'
  | 'unsupported_action'
  | 'tree_head_stale'
  | 'tree_root_mismatch'
  /**
   * A leaf of the log that does not hash to its stored hash, whose columns are not the ones its leaf records, that
   * is out of place, or that is not the leaf the key process read before at that index: the log was edited.
   */
  | 'audit_leaf_mismatch'
  /** A bare digest for a key that signs only bound requests (agent keys, the audit key). */
  | 'unbound_digest'
  /** A key-path operation (Nostr transport ECDH, webhook secrets) on a path outside those it serves. */
  | 'path_not_allowed'
  /** A lifecycle request naming an entry that is not a `lifecycle.planned` one. */
  | 'not_lifecycle_plan'
  /** A lifecycle request for a key that is not one of the agent's (by index, registry and address). */
  | 'key_not_agents'
  /** A lifecycle payload that is not a lifecycle call (a transfer elsewhere, a grant, another shape). */
  | 'lifecycle_call_refused'
  /** A lifecycle transaction whose job is no longer `planned` (signed, failed or finished already). */
  | 'lifecycle_job_not_planned'
  /**
   * Leaves the key process read longer ago than its deadline are under no tree head it signed: the daemon stopped
   * asking for heads (a restart would then take that tail as found). Nothing is signed until a head covers them.
   */
  | 'tree_head_overdue';

export function bindingRefused(reason: BindingRefusal, message: string): AirlockError {
  return new AirlockError('key_process_refused', `Key process: ${message}`, { details: { reason } });
}
