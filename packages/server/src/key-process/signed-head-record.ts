// The key process's own record of the last tree head it signed (docs/custody.md, "Across restarts"). The daemon
// owns the store and can rewrite every row while the key process is down: leaves, hash columns, tree nodes and
// stored heads alike. What it cannot rewrite is this file (kept by the key process, under its own user in the
// deployment custody.md describes), so a restarted key process holds the log to the head it signed before.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AirlockError, AsyncMutex, type TreeHeadToSign } from '@airlock/core';
import { replaceFileAtomically } from '@airlock/keys';

export interface SignedHeadRecord {
  /** The vault this key process holds: a record written for another vault is refused. */
  fingerprint: string;
  treeSize: number;
  rootHash: string;
  at: number;
}

/** Beside the vault file unless `--head-file` says otherwise. */
export function defaultHeadRecordPath(vaultPath: string): string {
  return join(dirname(vaultPath), 'key-process-head.json');
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The record's directory must be this user's and writable by no one else: a daemon running as another user that
 * can write there can unlink or replace the record (directory write permission is enough), which voids it (found by
 * review: the default beside the vault is the daemon's data directory in the own-user deployment).
 */
export async function assertHeadRecordDirectoryOwned(path: string): Promise<void> {
  const dir = dirname(path);
  let info;
  try {
    info = await stat(dir);
  } catch (e) {
    throw new AirlockError('key_process_head_record_invalid', `The directory of the key process's signed-head record (${dir}) cannot be read: ${(e as Error).message}`);
  }
  const uid = process.getuid?.();
  if ((uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
    throw new AirlockError('key_process_head_record_invalid', `The directory of the key process's signed-head record (${dir}) is another user's or writable by others: whoever can write there can replace the record.`, { hints: ['Give the key process a directory of its own: --head-file /var/lib/airlock-keys/head.json (mode 0700, owned by its user).'] });
  }
}

/** The record at `path`, or undefined when there is none; a record that cannot be read as one is refused, never ignored. */
export async function readSignedHeadRecord(path: string, fingerprint: string): Promise<SignedHeadRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AirlockError('key_process_head_record_invalid', `The key process cannot read its signed-head record ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const r = parsed as Partial<SignedHeadRecord> | undefined;
  if (!r || typeof r !== 'object' || typeof r.fingerprint !== 'string' || !Number.isSafeInteger(r.treeSize) || r.treeSize! < 1 || typeof r.rootHash !== 'string' || !HEX64.test(r.rootHash) || !Number.isSafeInteger(r.at)) {
    // A damaged record could hide a rewrite as well as a missing one: the operator decides (--forget-signed-head).
    throw new AirlockError('key_process_head_record_invalid', `The key process's signed-head record ${path} is not a record it wrote.`, { hints: ['After checking the log (`airlock audit verify`), start the key process with --forget-signed-head to begin a new record.'] });
  }
  if (r.fingerprint !== fingerprint) {
    throw new AirlockError('key_process_head_record_invalid', `The signed-head record ${path} belongs to another vault (${r.fingerprint}, this one is ${fingerprint}).`, { hints: ['Give each key process its own --head-file, or start with --forget-signed-head once you have checked the log.'] });
  }
  return { fingerprint: r.fingerprint, treeSize: r.treeSize!, rootHash: r.rootHash, at: r.at! };
}

/**
 * Keeps the record of the largest head signed: written (atomically, fsynced) before the head's signature is
 * returned, so no head the daemon holds is missing from it. Heads are written one at a time; an older one than
 * the record changes nothing.
 */
export class SignedHeadRecorder {
  private readonly path: string;
  private readonly fingerprint: string;
  private last: SignedHeadRecord | undefined;
  private readonly writing = new AsyncMutex();

  constructor(path: string, fingerprint: string, last: SignedHeadRecord | undefined) {
    this.path = path;
    this.fingerprint = fingerprint;
    this.last = last;
  }

  get current(): SignedHeadRecord | undefined {
    return this.last;
  }

  async record(head: TreeHeadToSign): Promise<void> {
    await this.writing.run(async () => {
      if (this.last && head.treeSize <= this.last.treeSize) return;
      const next: SignedHeadRecord = { fingerprint: this.fingerprint, treeSize: head.treeSize, rootHash: head.rootHash, at: head.at };
      await replaceFileAtomically(this.path, `${JSON.stringify(next)}\n`);
      this.last = next;
    });
  }
}
