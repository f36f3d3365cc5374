/**
 * A promise-chain mutex: callers run one at a time, in arrival order, whatever the previous one's outcome.
 * (The store has its own; core imports nothing from the store.)
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
