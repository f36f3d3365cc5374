// Argument checks shared by the commands. A UsageError exits 2 and prints usage, never a stack.

export class UsageError extends Error {}

export function usage(text: string): UsageError {
  return new UsageError(`usage:\n${text}`);
}

export function need(v: string | undefined, what: string): string {
  if (!v) throw new UsageError(`missing <${what}>`);
  return v;
}

/** `--count 10`, `--limit 50`: a positive integer, or a usage error naming the flag. */
export function positiveInt(v: unknown, flag: string): number {
  const s = String(v);
  if (!/^[1-9]\d*$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UsageError(`--${flag}: expected a positive integer`);
  return Number(s);
}

/** `--label team=ops`: split at the first '=' so values may contain '=' themselves. */
export function keyValue(v: string, flag: string): [string, string] {
  const at = v.indexOf('=');
  if (at <= 0) throw new UsageError(`--${flag}: expected key=value`);
  return [v.slice(0, at), v.slice(at + 1)];
}
