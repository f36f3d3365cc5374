// Test helper: the example policies of README.md and docs/*.md, extracted from their fenced yaml/json
// blocks exactly as written, each keyed by `<file>#<nearest heading>`.
import { readFileSync } from 'node:fs';
import { parsePolicyText } from '@airlock/core';

const REPO_ROOT = new URL('../../../../', import.meta.url);

export interface DocPolicy {
  /** `docs/policy.md#A trading agent` */
  key: string;
  /** The block's text, as written. */
  source: string;
  document: { version: 1; rules: unknown[] } & Record<string, unknown>;
}

/**
 * Every fenced `yaml`/`json` block that is a whole policy document (`version: 1` with `rules`).
 * Blocks with an ellipsis (`0x1111…`) illustrate the format and are not policies.
 */
export function docPolicies(files: readonly string[] = ['README.md', 'docs/policy.md', 'docs/x402.md']): DocPolicy[] {
  const out: DocPolicy[] = [];
  for (const file of files) {
    const text = readFileSync(new URL(file, REPO_ROOT), 'utf8');
    let heading = '';
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const h = /^#{1,6}\s+(.*)$/.exec(line);
      if (h) heading = h[1]!.trim();
      const fence = /^```(yaml|json)\s*$/.exec(line);
      if (!fence) continue;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
      const source = body.join('\n');
      if (source.includes('…')) continue;
      const document = parsePolicyText(source) as DocPolicy['document'] | null;
      if (document === null || typeof document !== 'object' || document.version !== 1 || !Array.isArray(document.rules)) continue;
      out.push({ key: `${file}#${heading}`, source, document });
    }
  }
  return out;
}

/** One example by key; its file is the key's part before `#` (any doc, not only the default list). */
export function docPolicy(key: string): DocPolicy {
  const found = docPolicies([key.slice(0, key.indexOf('#'))]).find((p) => p.key === key);
  if (!found) throw new Error(`no example policy ${key} in the docs`);
  return found;
}
