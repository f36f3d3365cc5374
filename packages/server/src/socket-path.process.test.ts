// `--socket` never deletes what is not a stale socket. Found by review: a mistyped `airlock key-process --socket
// data/vault.json` deleted the vault under a key process that went on "listening" (the next start: vault_missing,
// the recovery phrase the only way back), `airlock start --socket data/airlock.db` deleted the store, and a second
// process silently took over a live socket. Driven through the CLI as an operator types it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllDaemons, prepareDaemonData, startKeyProcessChild, type DaemonData } from './testing/processes.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
const CLI = join(REPO_ROOT, 'packages/cli/src/run.ts');

let data: DaemonData;
before(async () => {
  data = await prepareDaemonData('sqlite');
});
after(async () => {
  await killAllDaemons();
  await data.cleanup();
});

/** `airlock <args>` with the data dir and passphrase in the environment; resolves when it exits (or after 60 s). */
function airlock(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(NODE, [CLI, ...args], { env: { ...process.env, AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_PORT: '0' } });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, out });
    });
  });
}

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('a socket path naming the vault or the store is refused before anything is opened, and the file is untouched', async () => {
  const vault = join(data.dataDir, 'vault.json');
  const store = join(data.dataDir, 'airlock.db');
  const before = { vault: digest(vault), store: digest(store) };
  for (const [command, path] of [['key-process', vault], ['key-process', store], ['start', store], ['start', vault]] as const) {
    const r = await airlock([command, '--socket', path]);
    assert.notEqual(r.code, 0, `${command} --socket ${path}: ${r.out}`);
    assert.match(r.out, /\[invalid_request\].*exists and is not a socket: refusing to replace it/, r.out);
    assert.doesNotMatch(r.out, /listening/i);
    assert.ok(lstatSync(path).isFile(), `${path} is still a file`);
  }
  assert.deepEqual({ vault: digest(vault), store: digest(store) }, before);
});

test('a live socket is not taken over (address_in_use); a stale one left by a killed process is replaced', async () => {
  const socket = join(data.dataDir, 'kp.sock');
  const first = await startKeyProcessChild(data, socket);
  const second = await airlock(['key-process', '--socket', socket]);
  assert.notEqual(second.code, 0, second.out);
  assert.match(second.out, /\[address_in_use\]/, second.out);
  assert.ok(lstatSync(socket).isSocket(), 'the first key process keeps its socket');
  // kill -9 leaves the socket file behind; the next start replaces it.
  first.child.kill('SIGKILL');
  await new Promise((done) => first.child.once('exit', done));
  assert.ok(lstatSync(socket).isSocket(), 'a killed process leaves its socket file');
  const again = await startKeyProcessChild(data, socket);
  assert.match(again.output(), /Key process listening on/);
  again.child.kill('SIGTERM');
});
