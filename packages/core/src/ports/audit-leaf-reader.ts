// How `audit verify` workers read the log: each entry as the array of its columns straight from the
// driver, in leaf order, a page at a time. No row objects and no mapping: a million-entry verify spends
// most of its time turning rows into values, so a reader hands over exactly what the driver made.

/** The columns of `audit_entries` a reader selects, in this order (`AuditLeafRow`). */
export const AUDIT_LEAF_COLUMNS = ['seq', 'leaf_index', 'hash_version', 'hash', 'at', 'type', 'actor', 'agent_id', 'session_id', 'action', 'decision', 'leaf', 'prev_hash', 'data'] as const;

/** An integer column as a driver returns it: a number (node:sqlite) or decimal text (pg's INT8 and INT2). */
export type IntColumn = number | string;

/** One stored entry: `AUDIT_LEAF_COLUMNS`, SQL NULL as null, `data` as its JSON text. */
export type AuditLeafRow = [
  seq: IntColumn,
  leafIndex: IntColumn | null,
  hashVersion: IntColumn,
  hash: string,
  at: IntColumn,
  type: string,
  actor: string,
  agentId: string | null,
  sessionId: string | null,
  action: string | null,
  decision: string | null,
  leaf: string | null,
  prevHash: string | null,
  data: string | null,
];

export interface AuditLeafReader {
  /** The entries whose leaf index is in [from, to), in leaf order, in pages (a gap in the log is simply absent). */
  pages(from: number, to: number): AsyncIterable<AuditLeafRow[]> | Iterable<AuditLeafRow[]>;
  close(): Promise<void>;
}
