/**
 * A promise-chain mutex: callers run one at a time, in arrival order, whatever the previous one's outcome.
 * Shared with the store (its SQLite connection is one in-process, so two async transactions must never
 * interleave on it); core imports nothing from the store, so it lives here.
 */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
