// Writes docs/policy.schema.json from the zod schema (the one source of truth for the format).
// Usage: node scripts/gen-policy-schema.ts [--check]   (--check fails if the file is out of date)
import { readFileSync, writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../packages/core/src/policy/index.ts';

const target = new URL('../docs/policy.schema.json', import.meta.url);
const schema = {
  title: 'Airlock policy document (version 1)',
  ...policyJsonSchema(),
};
const text = `${JSON.stringify(schema, null, 2)}\n`;

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== text) {
    console.error('docs/policy.schema.json is out of date: run node scripts/gen-policy-schema.ts');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target.pathname}`);
}
