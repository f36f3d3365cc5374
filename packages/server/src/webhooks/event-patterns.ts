import { AirlockError, type AuditEntry, type AuditMatch } from '@airlock/core';

/**
 * The audit types a webhook can ask for, by family. `alert.*` are the detectors' alerts (loop guard, audit
 * integrity, Lightning, reconciler, and whatever detector is added later), `approval.*` the human decisions,
 * `breaker.*` the circuit breakers; `agent.*`, `audit.*` and `webhook.*` are there for operators who want them.
 * Signing traffic (`sign.*`, `auth.*`) is not offered: a receiver would get one request per signature.
 */
export const WEBHOOK_EVENT_FAMILIES = ['alert', 'approval', 'breaker', 'agent', 'audit', 'webhook'] as const;

/** What an endpoint gets when it names no events. */
export const DEFAULT_WEBHOOK_EVENTS: readonly string[] = ['alert.*', 'approval.*', 'breaker.*'];

/**
 * A request held for a human is recorded as a `sign.request` entry with `decision: require_approval`; it is
 * sent as this event type, so `approval.*` covers the whole life of an approval.
 */
export const APPROVAL_REQUESTED = 'approval.requested';

const PATTERN = new RegExp(`^(${WEBHOOK_EVENT_FAMILIES.join('|')})\\.(\\*|[a-z0-9_]+(\\.[a-z0-9_]+)*)$`);
const MAX_PATTERNS = 32;

/** Checks and de-duplicates an endpoint's patterns (default when absent). Never echoes a pattern that is not one. */
export function parseEventPatterns(patterns: readonly string[] | undefined): string[] {
  if (patterns === undefined) return [...DEFAULT_WEBHOOK_EVENTS];
  if (patterns.length === 0) throw new AirlockError('webhook_event_unknown', 'events: name at least one pattern (or leave it out for alert.*, approval.*, breaker.*).');
  if (patterns.length > MAX_PATTERNS) throw new AirlockError('webhook_event_unknown', `events: at most ${MAX_PATTERNS} patterns.`);
  patterns.forEach((p, i) => {
    if (typeof p !== 'string' || !PATTERN.test(p)) {
      throw new AirlockError('webhook_event_unknown', `events[${i}] is not an event pattern: use family.* or family.name with a family among ${WEBHOOK_EVENT_FAMILIES.join(', ')}.`);
    }
  });
  return [...new Set(patterns)];
}

/** The type an entry is sent as (see APPROVAL_REQUESTED). */
export function webhookEventType(entry: Pick<AuditEntry, 'type' | 'decision'>): string {
  return entry.type === 'sign.request' && entry.decision === 'require_approval' ? APPROVAL_REQUESTED : entry.type;
}

export function matchesEventPatterns(patterns: readonly string[], eventType: string): boolean {
  return patterns.some((p) => (p.endsWith('.*') ? eventType.startsWith(p.slice(0, -1)) : p === eventType));
}

/**
 * What the store is asked for so that every entry some endpoint wants comes back (the dispatcher checks each
 * endpoint's patterns again): prefixes for `family.*`, exact types, and held decisions for approval.requested.
 */
export function auditMatchFor(patternSets: readonly (readonly string[])[]): AuditMatch {
  const types = new Set<string>();
  const prefixes = new Set<string>();
  let approvals = false;
  for (const p of patternSets.flat()) {
    if (p.endsWith('.*')) prefixes.add(p.slice(0, -1));
    else types.add(p);
    if (matchesEventPatterns([p], APPROVAL_REQUESTED)) approvals = true;
  }
  return { types: [...types], prefixes: [...prefixes], decisions: approvals ? ['require_approval'] : [] };
}
