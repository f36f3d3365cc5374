import { parseDocument } from 'yaml';
import { AirlockError } from '../errors.ts';

/**
 * YAML 1.2 or JSON text -> plain data. Hex and octal integer forms are switched off: in YAML 1.2
 * an unquoted `0x833589fc…` would otherwise become a (rounded) number instead of an address.
 */
export function parsePolicyText(text: string): unknown {
  const doc = parseDocument(text, {
    customTags: (tags) => tags.filter((t) => !(typeof t === 'object' && 'format' in t && (t.format === 'HEX' || t.format === 'OCT'))),
    prettyErrors: true,
  });
  const [error] = doc.errors;
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
    const headline = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new AirlockError('invalid_policy', `${where}: ${headline}`, {
      details: { issues: [{ path: where, message: headline, line: pos?.line, column: pos?.col }] },
    });
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    // Aliases fail only here, not in doc.errors: an alias to an unknown anchor, or one that expands too far.
    throw new AirlockError('invalid_policy', 'an alias cannot be resolved or expands too far', {
      cause,
      details: { issues: [{ path: '(document)', message: 'an alias cannot be resolved or expands too far' }] },
    });
  }
}
