#!/usr/bin/env node
// Launcher: Airlock runs on Node 24 (node:sqlite, crypto.argon2). In the checkout it runs the TypeScript
// sources (Node 24 type stripping); installed from npm, the built dist/. When invoked by an older Node,
// re-run on a Node 24 installed as the `node` npm package (the checkout depends on it), if there is one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/run.js', import.meta.url));
const main = existsSync(built) ? built : fileURLToPath(new URL('../src/run.ts', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  await import(main);
} else {
  const require = createRequire(import.meta.url);
  let node;
  try {
    node = require.resolve('node/bin/node');
  } catch {
    console.error(`airlock needs Node 24 or newer (this is ${process.version}): install it, or run \`npm install\` in the Airlock checkout.`);
    process.exit(1);
  }
  // Asynchronous, so that signals sent to this launcher (kill, systemctl stop, docker stop) reach the daemon
  // instead of orphaning it; a synchronous spawn would block the handlers below.
  const child = spawn(node, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
}
