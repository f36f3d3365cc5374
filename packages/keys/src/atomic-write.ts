import { randomBytes } from 'node:crypto';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Creates `path` with `data` so that a crash leaves either no file or the complete file, and an
 * existing file is never replaced: temp file in the same directory (mode 0600, `wx`), write,
 * fsync, close, publish under the final name, fsync the directory.
 *
 * Publishing uses link(2), which fails with EEXIST instead of replacing (rename(2) would silently
 * overwrite a file created after our existence check). Filesystems without hard links fall back
 * to check-then-rename. Throws the fs error; EEXIST means the path already exists.
 */
export async function writeNewFileAtomically(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tempPath, 'wx', mode);
  try {
    try {
      await handle.chmod(mode); // the open() mode is filtered by the umask
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await publishWithoutReplacing(tempPath, path);
  } finally {
    await unlink(tempPath).catch(() => {}); // gone already after a rename
  }
  await fsyncDirectory(dir);
}

/**
 * Replaces `path` with `data` so that a crash leaves the old or the new file, never a mix: temp file
 * (mode 0600, `wx`), write, fsync, close, rename(2) over the final name, fsync the directory.
 */
export async function replaceFileAtomically(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tempPath, 'wx', mode);
  try {
    try {
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tempPath, path);
  } finally {
    await unlink(tempPath).catch(() => {});
  }
  await fsyncDirectory(dir);
}

/** link(2) fails with EEXIST rather than replace; filesystems without hard links fall back to check-then-rename. */
export async function publishWithoutReplacing(tempPath: string, path: string): Promise<void> {
  try {
    await link(tempPath, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    if (await exists(path)) throw Object.assign(new Error('file exists'), { code: 'EEXIST' });
    await rename(tempPath, path);
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Makes the new directory entry durable (POSIX: fsync on the file does not cover its name). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
