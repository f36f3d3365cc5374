// What every torture part shares: the run mode, the report a part hands back, and small helpers.
// A part never throws for a broken invariant: it records a violation and carries on, so one run
// reports everything it found. A thrown error means the part itself could not run (also a failure).

export type Mode = 'short' | 'full';

export interface PartReport {
  /** Figures printed and written to the results file (trials, faults injected, cases, ...). */
  figures: Record<string, number | string>;
  /** One line per broken invariant. Empty means the part passed. */
  violations: string[];
}

export interface Part {
  name: string;
  summary: string;
  run(mode: Mode): Promise<PartReport>;
}

/** Collects violations, capped so one systematic bug cannot flood the output. */
export class Violations {
  readonly list: string[] = [];
  private dropped = 0;
  add(message: string): void {
    if (this.list.length < 50) this.list.push(message);
    else this.dropped++;
  }
  /** Records `message` unless `ok`; returns `ok` so callers can branch on it. */
  check(ok: boolean, message: () => string): boolean {
    if (!ok) this.add(message());
    return ok;
  }
  get count(): number {
    return this.list.length + this.dropped;
  }
  done(): string[] {
    return this.dropped ? [...this.list, `... and ${this.dropped} more`] : this.list;
  }
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Short JSON for violation messages (bodies can be large). */
export function brief(value: unknown, max = 300): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** Counts keyed outcomes (HTTP statuses, error codes) for the figures. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(key: string | number, n = 1): void {
    this.counts.set(String(key), (this.counts.get(String(key)) ?? 0) + n);
  }
  get(key: string | number): number {
    return this.counts.get(String(key)) ?? 0;
  }
  toString(): string {
    return [...this.counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v}`).join(' ');
  }
}
