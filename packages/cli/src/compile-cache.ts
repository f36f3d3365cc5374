// Where the CLI may keep Node's compile cache. Loaded before everything else, so node: built-ins only.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * `<data dir>/compile-cache`, or undefined when it cannot be trusted. Node reads cached compiled code
 * back guarded only by a checksum, so whoever can write the directory chooses the code that runs in the
 * daemon, next to the passphrase and the keys. Node's default (`os.tmpdir()/node-compile-cache`) is
 * shared by every local user; this one must be a real directory owned by us with no access for others,
 * inside a data directory that already exists (a client command never creates one), is ours, and is not
 * writable by others (else the cache directory could be swapped out from under us).
 */
export function privateCompileCacheDir(argv: readonly string[], env: NodeJS.ProcessEnv, uid = process.getuid?.()): string | undefined {
  if (uid === undefined) return undefined;
  const dataDir = resolve(dataDirFlag(argv) ?? env.AIRLOCK_DATA_DIR ?? 'data');
  const ownDataDir = statOrUndefined(() => statSync(dataDir));
  if (!ownDataDir?.isDirectory() || ownDataDir.uid !== uid || (ownDataDir.mode & 0o022) !== 0) return undefined;
  const dir = join(dataDir, 'compile-cache');
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
  }
  // lstat: a symlink planted under that name is refused, not followed.
  const cache = statOrUndefined(() => lstatSync(dir));
  if (!cache?.isDirectory() || cache.uid !== uid || (cache.mode & 0o077) !== 0) return undefined;
  return dir;
}

/** `--data-dir DIR` or `--data-dir=DIR`, as parseArgs will read it later. */
function dataDirFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (arg === '--data-dir') return argv[i + 1];
    if (arg.startsWith('--data-dir=')) return arg.slice('--data-dir='.length);
  }
  return undefined;
}

function statOrUndefined<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
