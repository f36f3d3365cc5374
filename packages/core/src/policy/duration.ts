import { AirlockError } from '../errors.ts';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^([1-9][0-9]{0,9})(s|m|h|d)$/;

/** True for `90s`, `15m`, `1h`, `24h`, `7d`: a positive integer and one unit, nothing else. */
export function isDuration(text: string): boolean {
  return DURATION.test(text);
}

/** Strict duration to milliseconds. No fractions, no spaces, no combined units, no zero. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) {
    throw new AirlockError('invalid_policy', `invalid duration: expected a positive integer followed by s, m, h or d (e.g. 90s, 15m, 24h, 7d)`);
  }
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
