import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AirlockError } from '@airlock/core';

/**
 * Where the unseal passphrase comes from, in order: --passphrase-file, AIRLOCK_PASSPHRASE_FILE,
 * AIRLOCK_PASSPHRASE, then a hidden prompt when stdin is a terminal. Trade-offs in docs/operations.md.
 */
export async function readPassphrase(opts: { file?: string; confirm?: boolean; prompt?: string }): Promise<string | undefined> {
  const file = opts.file ?? process.env.AIRLOCK_PASSPHRASE_FILE;
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new AirlockError('invalid_request', 'Cannot read the passphrase file.', { cause: e });
    }
  }
  if (process.env.AIRLOCK_PASSPHRASE) return process.env.AIRLOCK_PASSPHRASE;
  if (!process.stdin.isTTY) return undefined;
  const first = await hiddenPrompt(opts.prompt ?? 'Vault passphrase: ');
  if (opts.confirm) {
    const second = await hiddenPrompt('Repeat passphrase: ');
    if (first !== second) throw new AirlockError('invalid_request', 'The passphrases do not match.');
  }
  return first;
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
