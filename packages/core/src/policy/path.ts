import { AirlockError } from '../errors.ts';

export type PolicyPath = readonly (string | number | symbol)[];

/** `['rules', 2, 'max']` -> `rules[2].max`: the form every policy error message starts with. */
export function formatPath(path: PolicyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(document)' : out;
}

export interface PolicyIssue {
  path: string;
  message: string;
}

/** One `invalid_policy` error for one or more issues; the message names the first issue's path. */
export function invalidPolicy(issues: PolicyIssue[]): AirlockError {
  const [first] = issues;
  const head = first ? `${first.path}: ${first.message}` : 'invalid policy';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? 's' : ''})` : '';
  return new AirlockError('invalid_policy', head + more, {
    details: { issues },
    hints: ['See docs/policy.md for the document format.'],
  });
}

export function invalidPolicyAt(path: PolicyPath, message: string): AirlockError {
  return invalidPolicy([{ path: formatPath(path), message }]);
}
