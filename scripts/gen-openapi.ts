// Writes docs/openapi.json from the route table (the same table that validates requests).
// `--check` exits 1 when the committed file is stale (the test suite runs it).
import { readFileSync, writeFileSync } from 'node:fs';
import { AirlockHolder, buildOpenApi, buildRoutes } from '../packages/server/src/index.ts';

const path = new URL('../docs/openapi.json', import.meta.url).pathname;
const routes = buildRoutes(new AirlockHolder(), () => ({}));
const text = `${JSON.stringify(buildOpenApi(routes), null, 2)}\n`;
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {}
  if (current !== text) {
    console.error('docs/openapi.json is stale: run `npm run docs:gen`');
    process.exit(1);
  }
} else {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}
