// Entry point of the `airlock` command.
import { constants, enableCompileCache } from 'node:module';
import { readFileSync } from 'node:fs';
import { privateCompileCacheDir } from './compile-cache.ts';

const { args, configPath } = takeConfigOption(process.argv.slice(2));
if (args[0] === '--version' || args[0] === '-v' || args[0] === 'version') {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  console.log(`airlock ${version} (node ${process.versions.node})`);
  process.exit(0);
}
if (configPath) await applyConfig(configPath);

// Caches compiled code on disk (NODE_DISABLE_COMPILE_CACHE=1 turns it off): a command needs 25-40% less CPU
// to start (`agent list`: 1.55 -> 1.16 s CPU, median, on a busy 2-core machine). Only in a private directory
// under the data directory, never in the shared temp directory (see compile-cache.ts). It must run before
// the CLI's modules load, hence the dynamic import below. After the config file: it may name the data directory.
const cacheDir = privateCompileCacheDir(args, process.env);
const cacheStatus = cacheDir ? enableCompileCache(cacheDir).status : undefined;
if (cacheDir && (cacheStatus === constants.compileCacheStatus.ENABLED || cacheStatus === constants.compileCacheStatus.ALREADY_ENABLED)) {
  // Worker threads do not inherit enableCompileCache (Node 24: it is per thread); they read NODE_COMPILE_CACHE as
  // they start. `audit verify`'s workers used no cache and spent about a tenth of a 1M-entry verify compiling
  // (4.15 -> 3.73 µs of CPU per entry with it, measured). The same private directory, so nothing new to trust.
  process.env.NODE_COMPILE_CACHE = cacheDir;
}
const { main } = await import('./main.ts');

const code = await main(args);
// `start`, `key-process` and `frost node` keep the process alive with their servers; every other command exits with its code.
const serves = args[0] === 'start' || args[0] === 'key-process' || (args[0] === 'frost' && args[1] === 'node');
if (!serves || code !== 0) process.exit(code);

/** `--config PATH` / `--config=PATH` anywhere on the line (every command accepts it), else AIRLOCK_CONFIG. */
function takeConfigOption(argv: string[]): { args: string[]; configPath?: string } {
  const rest: string[] = [];
  let configPath = process.env.AIRLOCK_CONFIG || undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config' && i + 1 < argv.length) configPath = argv[++i];
    else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    else rest.push(arg);
  }
  return configPath ? { args: rest, configPath } : { args: rest };
}

/** Settings from the file go under the environment (a variable already set wins); loaded only when asked for. */
async function applyConfig(path: string): Promise<void> {
  const { applyConfigFile } = await import('@airlock/server/config-file');
  try {
    applyConfigFile(path);
  } catch (e) {
    const err = e as { code?: string; message: string; hints?: string[] };
    console.error(`error [${err.code ?? 'config_invalid'}]: ${err.message}`);
    for (const hint of err.hints ?? []) console.error(`  hint: ${hint}`);
    process.exit(1);
  }
}
