import { stringify } from 'yaml';

function render(doc: unknown): string[] {
  if (doc === undefined) return [];
  return stringify(doc, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '').split('\n');
}

/**
 * Line diff of two policy documents rendered as YAML with sorted keys: `- ` removed, `+ ` added,
 * two spaces unchanged. A plain LCS diff: documents are small, readability is what counts.
 */
export function diffPolicies(a: unknown, b: unknown): string {
  const left = render(a);
  const right = render(b);
  const n = left.length;
  const m = right.length;
  // lcs[i][j] = length of the longest common subsequence of left[i..] and right[j..].
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = left[i] === right[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && left[i] === right[j]) {
      out.push(`  ${left[i++]}`);
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push(`- ${left[i++]}`);
    } else {
      out.push(`+ ${right[j++]}`);
    }
  }
  return out.join('\n');
}
