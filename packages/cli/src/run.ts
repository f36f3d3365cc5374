// Entry point of the `airlock` command.
import { enableCompileCache } from 'node:module';

// Caches compiled code on disk (os.tmpdir()/node-compile-cache; NODE_DISABLE_COMPILE_CACHE=1 turns it off):
// every command starts in about half the time. It must run before the CLI's modules load, hence the
// dynamic import below.
enableCompileCache();
const { main } = await import('./main.ts');

const code = await main(process.argv.slice(2));
// `start` keeps the process alive with its server; every other command exits with its code.
if (process.argv[2] !== 'start' || code !== 0) process.exit(code);
