import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { AirlockError } from '@airlock/core';

/**
 * Makes `path` free for a Unix socket to listen on: nothing there, or a stale socket, which is removed. Anything
 * else is refused and left alone. Found by review: the path was unlinked whatever it held, so a mistyped
 * `--socket data/vault.json` deleted the vault under a key process that went on "listening" with it in memory,
 * and `--socket data/airlock.db` deleted the store under a daemon; a live socket was silently taken over from the
 * process serving on it. Called before anything is opened (so a refusal changes nothing) and again just before
 * listening.
 */
export async function claimSocketPath(path: string, setting: string): Promise<void> {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (!stat.isSocket()) {
    throw new AirlockError('invalid_request', `${path} exists and is not a socket: refusing to replace it.`, {
      hints: [`Choose a path for the socket that names no existing file (${setting}).`],
    });
  }
  if (await answers(path)) {
    throw new AirlockError('address_in_use', `${path} is already in use.`, {
      hints: [`Another process serves on that socket (another Airlock?): stop it, or choose another path with ${setting}.`],
    });
  }
  unlinkSync(path);
}

/** Whether a process accepts connections on the socket (a stale one left by a killed process refuses them). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (live: boolean) => {
      socket.destroy();
      resolve(live);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(2_000, () => done(true)); // accepted into a backlog nobody reads: treat as in use
  });
}
