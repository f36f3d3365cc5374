import { compilePolicy, type CompiledPolicy } from './compile.ts';

/** Entries kept before the cache starts over: far more policy versions than a deployment has live at once. */
const MAX_ENTRIES = 1000;

/**
 * Compiled policies by content hash. Documents are immutable once stored, so an entry can never be stale;
 * the map is only bounded (cleared when full). Each service keeps its own.
 */
export class CompiledPolicies {
  private readonly byHash = new Map<string, CompiledPolicy>();

  /** The compiled document; throws what compilePolicy throws (nothing is cached then). */
  of(record: { hash: string; document: unknown }): CompiledPolicy {
    let policy = this.byHash.get(record.hash);
    if (!policy) {
      policy = compilePolicy(record.document);
      if (this.byHash.size > MAX_ENTRIES) this.byHash.clear();
      this.byHash.set(record.hash, policy);
    }
    return policy;
  }
}
