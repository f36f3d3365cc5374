// Entry point of the `airlock` command.
import { enableCompileCache } from 'node:module';
import { privateCompileCacheDir } from './compile-cache.ts';

// Caches compiled code on disk (NODE_DISABLE_COMPILE_CACHE=1 turns it off): a command needs 25-40% less CPU
// to start (`agent list`: 1.55 -> 1.16 s CPU, median, on a busy 2-core machine). Only in a private directory
// under the data directory, never in the shared temp directory (see compile-cache.ts). It must run before
// the CLI's modules load, hence the dynamic import below.
const cacheDir = privateCompileCacheDir(process.argv.slice(2), process.env);
if (cacheDir) enableCompileCache(cacheDir);
const { main } = await import('./main.ts');

const code = await main(process.argv.slice(2));
// `start` keeps the process alive with its server; every other command exits with its code.
if (process.argv[2] !== 'start' || code !== 0) process.exit(code);
