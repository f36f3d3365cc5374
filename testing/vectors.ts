// Locates ../shared/vectors (official spec test vectors). CI always has it: there (CI=true) a missing
// directory fails every conformance test with a clear message. A plain clone may not have it, in which
// case conformance tests skip with that message instead of failing.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const explicit = process.env.AIRLOCK_VECTORS_DIR;
// An explicit directory is the only place looked at: a wrong setting must not fall back to another copy.
const candidates = explicit
  ? [explicit]
  : [resolve(new URL('.', import.meta.url).pathname, '../../shared/vectors'), resolve(process.cwd(), '../shared/vectors')];

export const vectorsDir: string | undefined = candidates.find((p) => existsSync(join(p, 'README.md')));

const missing = explicit
  ? 'spec vectors not found in AIRLOCK_VECTORS_DIR'
  : 'spec vectors not found: expected ../shared/vectors beside the checkout (or AIRLOCK_VECTORS_DIR)';

/** CI sets CI=true; a CI run without the vectors would otherwise pass while proving nothing. */
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';

export const vectorsSkipReason: string | false = vectorsDir || inCi ? false : missing;

export function readVector(name: string): string {
  if (!vectorsDir) throw new Error(inCi ? `${missing}; CI=true, so the conformance tests fail instead of skipping` : missing);
  return readFileSync(join(vectorsDir, name), 'utf8');
}
