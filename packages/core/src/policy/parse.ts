import { parseDocument } from 'yaml';
import { AirlockError } from '../errors.ts';
import { checkJsonShape, MAX_JSON_DEPTH } from '../parse-untrusted-json.ts';

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
