// Locates ../shared/vectors (official spec test vectors). CI always has it; a plain clone may not,
// in which case conformance tests skip with a clear message instead of failing.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const candidates = [
  process.env.AIRLOCK_VECTORS_DIR,
  resolve(new URL('.', import.meta.url).pathname, '../../shared/vectors'),
  resolve(process.cwd(), '../shared/vectors'),
].filter((p): p is string => !!p);

export const vectorsDir: string | undefined = candidates.find((p) => existsSync(join(p, 'README.md')));

export const vectorsSkipReason = vectorsDir ? false : 'spec vectors not found: expected ../shared/vectors beside the checkout (or AIRLOCK_VECTORS_DIR)';

export function readVector(name: string): string {
  if (!vectorsDir) throw new Error(String(vectorsSkipReason));
  return readFileSync(join(vectorsDir, name), 'utf8');
}
