#!/usr/bin/env node
// Launcher: Airlock runs on Node 24 (node:sqlite, crypto.argon2, type stripping). When invoked by an older
// system Node, re-run on the Node 24 that the project installs as its `node` dependency.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/run.ts', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  await import(main);
} else {
  const require = createRequire(import.meta.url);
  let node;
  try {
    node = require.resolve('node/bin/node');
  } catch {
    console.error('airlock needs Node 24: run `npm install` in the Airlock checkout first.');
    process.exit(1);
  }
  const r = spawnSync(node, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
