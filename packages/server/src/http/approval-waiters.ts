/**
 * Wakes long polls on GET /v1/approvals/{id}?wait= when something on this instance decides or votes on the
 * approval. Other instances' decisions are seen by the poll's own re-read (at least once a second).
 */
export class ApprovalWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  notify(approvalId: string): void {
    const wakers = this.waiting.get(approvalId);
    if (!wakers) return;
    this.waiting.delete(approvalId);
    for (const wake of wakers) wake();
  }

  /** Resolves after `ms`, on `notify(approvalId)`, or when `signal` aborts, whichever comes first. */
  sleep(approvalId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiting.get(approvalId) ?? new Set();
      this.waiting.set(approvalId, set);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(approvalId) === set) this.waiting.delete(approvalId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }
}
