/**
 * A promise-chain mutex: callers run one at a time in arrival order. `node:sqlite` is synchronous
 * and one connection is shared in-process, so two async transactions must never interleave on it.
 */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    // The next caller waits for this one to settle, whatever its outcome.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
