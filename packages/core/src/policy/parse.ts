import { isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { AirlockError } from '../errors.ts';
import { checkJsonShape, MAX_JSON_DEPTH } from '../parse-untrusted-json.ts';
import { formatPath, invalidPolicy, type PolicyIssue, type PolicyPath } from './path.ts';

const SUBJECT = 'The policy document';

/**
 * YAML 1.2 or JSON text -> plain data. Hex and octal integer forms are switched off: in YAML 1.2
 * an unquoted `0x833589fc…` would otherwise become a (rounded) number instead of an address.
 * The result gets the same key and depth checks as a request body.
 */
export function parsePolicyText(text: string): unknown {
  const doc = parseDocument(text, {
    customTags: (tags) => tags.filter((t) => !(typeof t === 'object' && 'format' in t && (t.format === 'HEX' || t.format === 'OCT'))),
    prettyErrors: true,
  });
  const [error] = doc.errors;
  // The YAML parser recurses per nesting level and reports its own stack overflow as a syntax error.
  if (error && /Maximum call stack size exceeded/.test(error.message)) {
    throw new AirlockError('payload_too_deep', `${SUBJECT} nests deeper than ${MAX_JSON_DEPTH} levels.`);
  }
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
    const headline = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new AirlockError('invalid_policy', `${where}: ${headline}`, {
      details: { issues: [{ path: where, message: headline, line: pos?.line, column: pos?.col }] },
    });
  }
  const numbers = integerFormIssues(doc, text);
  if (numbers.length > 0) throw invalidPolicy(numbers);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    if (cause instanceof RangeError) throw new AirlockError('payload_too_deep', `${SUBJECT} nests deeper than ${MAX_JSON_DEPTH} levels.`);
    // Aliases fail only here, not in doc.errors: an alias to an unknown anchor, or one that expands too far.
    throw new AirlockError('invalid_policy', 'an alias cannot be resolved or expands too far', {
      cause,
      details: { issues: [{ path: '(document)', message: 'an alias cannot be resolved or expands too far' }] },
    });
  }
  checkJsonShape(value, { subject: SUBJECT });
  return value;
}

/** How an integer is written: plain decimal digits, no sign but `-`, no leading zero, no fraction or exponent. */
const INTEGER_SOURCE = /^-?(0|[1-9][0-9]*)$/;

/**
 * Every number whose value is an integer but which is not written as one: `1e6`, `1.5e1`, `2.0`, `0.0`, `-0`,
 * `+5`, `010` (YAML and JSON read these as 1000000, 15, 2, 0, 0, 5, 10). An amount or a count written so is
 * most likely not what was meant (`010` an octal 8? `1e6` a million what?), and docs/policy.md says amounts are
 * decimal strings or plain integers: each is refused with its path, before the schema sees only the value.
 * Numbers with a fraction (a percentage of `0.5`) are left to the schema. Read from the YAML nodes' own source
 * text (JSON goes through the same parser). Iterative: the document may nest as deep as the parser allowed.
 */
function integerFormIssues(doc: Document, text: string): PolicyIssue[] {
  const issues: (PolicyIssue & { at: number })[] = [];
  const stack: { node: unknown; path: PolicyPath }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        stack.push({ node: pair.value, path: [...path, key] });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
    } else if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value) && node.range) {
      const source = text.slice(node.range[0], node.range[1]);
      if (!INTEGER_SOURCE.test(source) || source === '-0') {
        issues.push({ at: node.range[0], path: formatPath(path), message: `a number written as ${JSON.stringify(source.slice(0, 40))}: write an integer as plain decimal digits (an amount preferably as a decimal string, "1000000")` });
      }
    }
  }
  // In document order.
  return issues.sort((a, b) => a.at - b.at).map(({ path, message }) => ({ path, message }));
}
