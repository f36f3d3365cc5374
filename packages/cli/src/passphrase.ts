import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AirlockError } from '@airlock/core';

/**
 * Where the unseal passphrase comes from, in order: --passphrase-file, AIRLOCK_PASSPHRASE_FILE,
 * AIRLOCK_PASSPHRASE, then a hidden prompt when stdin is a terminal. Trade-offs in docs/operations.md.
 * The file must be owner-only, as every secret file the CLI reads (readOwnerOnlyFile).
 */
export async function readPassphrase(opts: { file?: string; confirm?: boolean; prompt?: string }): Promise<string | undefined> {
  const file = opts.file ?? process.env.AIRLOCK_PASSPHRASE_FILE;
  if (file) return readOwnerOnlyFile(file, 'passphrase').replace(/\r?\n$/, '');
  if (process.env.AIRLOCK_PASSPHRASE) return process.env.AIRLOCK_PASSPHRASE;
  if (!process.stdin.isTTY) return undefined;
  const first = await hiddenPrompt(opts.prompt ?? 'Vault passphrase: ');
  if (opts.confirm) {
    const second = await hiddenPrompt('Repeat passphrase: ');
    if (first !== second) throw new AirlockError('invalid_request', 'The passphrases do not match.');
  }
  return first;
}

/**
 * A secret from a regular file only its owner can read (no group or other permission bits): passphrase, recovery
 * phrase, share and token files. The mode is read from the open file, so the file checked is the file read.
 * Errors name the file, never its content.
 */
export function readOwnerOnlyFile(file: string, what: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new AirlockError('invalid_request', `Cannot read the ${what} file.`, { cause: e });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AirlockError('invalid_request', `The ${what} file is not a regular file.`);
    if ((stat.mode & 0o077) !== 0) {
      throw new AirlockError('invalid_request', `The ${what} file can be read by other users (mode ${(stat.mode & 0o777).toString(8)}); nothing was done.`, {
        hints: [`chmod 600 ${file}`],
      });
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export function hiddenPrompt(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
    let asked = false;
    out._writeToOutput = (s: string) => {
      // Echo the question once, then nothing: the passphrase never appears on screen.
      if (!asked) {
        process.stdout.write(s);
        asked = true;
      }
    };
    rl.question(question, (answer) => {
      process.stdout.write('\n');
      rl.close();
      resolve(answer);
    });
  });
}
