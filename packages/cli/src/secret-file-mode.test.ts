// The vault passphrase file (--passphrase-file, AIRLOCK_PASSPHRASE_FILE) and the FROST bearer-token files
// (--token-file, a nodes file's tokenFile) are secrets like the recovery-phrase and share files: one that group or
// other users may read is refused before it is used, naming the file and the chmod, never its content.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../server/src/config.ts';
import { initAirlock } from '../../server/src/runtime.ts';
import { readPassphrase } from './passphrase.ts';
import { cliEnv, runCli, type CliResult } from './testing/cli-process.ts';

const PASSPHRASE = 'file mode passphrase 0123456789';
const TOKEN = 'frost-node-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'airlock-secret-file-mode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function secretFile(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, `${text}\n`, { mode });
  chmodSync(path, mode); // writeFileSync's mode passes through the umask
  return path;
}

function refusedAsExposed(r: CliResult, file: string, what: string): void {
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error \\[invalid_request\\]: The ${what} file can be read by other users \\(mode 6[0-7]{2}\\); nothing was done\\.`, 'm'));
  assert.ok(r.stderr.includes(`chmod 600 ${file}`), r.stderr);
  assert.ok(!r.stderr.includes(PASSPHRASE) && !r.stderr.includes(TOKEN) && !r.stdout.includes(PASSPHRASE), 'the secret is not echoed');
}

describe('the vault passphrase file', () => {
  const saved = process.env.AIRLOCK_PASSPHRASE_FILE;
  after(() => {
    if (saved === undefined) delete process.env.AIRLOCK_PASSPHRASE_FILE;
    else process.env.AIRLOCK_PASSPHRASE_FILE = saved;
  });

  test('owner-only (0600, 0400) is read, the trailing newline dropped; group- or world-accessible is refused, from the flag and the environment', async () => {
    for (const mode of [0o600, 0o400]) assert.equal(await readPassphrase({ file: secretFile(`ok-${mode.toString(8)}`, PASSPHRASE, mode) }), PASSPHRASE);
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o620]) {
      const file = secretFile(`open-${mode.toString(8)}`, PASSPHRASE, mode);
      await assert.rejects(readPassphrase({ file }), (e: any) => {
        assert.equal(e.code, 'invalid_request');
        assert.equal(e.message, `The passphrase file can be read by other users (mode ${mode.toString(8)}); nothing was done.`);
        assert.deepEqual(e.hints, [`chmod 600 ${file}`]);
        return true;
      });
      process.env.AIRLOCK_PASSPHRASE_FILE = file;
      await assert.rejects(readPassphrase({}), { code: 'invalid_request' });
      delete process.env.AIRLOCK_PASSPHRASE_FILE;
    }
    await assert.rejects(readPassphrase({ file: dir }), { code: 'invalid_request', message: 'The passphrase file is not a regular file.' });
    await assert.rejects(readPassphrase({ file: join(dir, 'missing') }), { code: 'invalid_request', message: 'Cannot read the passphrase file.' });
  });

  test('`airlock vault split` and `airlock start` refuse a world-readable one and write nothing; at 0600 the split runs', async () => {
    const config = loadConfig({ dataDir: join(dir, 'data') }, {});
    await initAirlock(config, PASSPHRASE);
    const env = cliEnv({ AIRLOCK_DATA_DIR: config.dataDir, AIRLOCK_STORE: config.storeUrl });
    const exposed = secretFile('exposed.pass', PASSPHRASE, 0o644);
    const out = join(dir, 'shares');

    refusedAsExposed(await runCli(['vault', 'split', '--groups', '2of3', '--out-dir', out, '--passphrase-file', exposed], env), exposed, 'passphrase');
    assert.deepEqual(existsSync(out) ? readdirSync(out) : [], [], 'no share was written');
    const started = await runCli(['start', '--port', '0'], { ...env, AIRLOCK_PASSPHRASE_FILE: exposed });
    refusedAsExposed(started, exposed, 'passphrase');

    chmodSync(exposed, 0o600);
    const split = await runCli(['vault', 'split', '--groups', '2of3', '--out-dir', out, '--passphrase-file', exposed, '--json'], env);
    assert.equal(split.code, 0, split.stderr);
    assert.equal(readdirSync(out).length, 3);
  });
});

describe('the FROST token files', () => {
  let cluster: string;
  let policy: string;
  let pass: string;
  before(() => {
    cluster = join(dir, 'cluster.json');
    writeFileSync(cluster, JSON.stringify({ threshold: 2, nodes: [{ name: 'alice', identifier: 1, identityKey: '11'.repeat(32) }, { name: 'bob', identifier: 2, identityKey: '22'.repeat(32) }] }));
    policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'version: 1\n');
    pass = secretFile('node.pass', PASSPHRASE, 0o600);
  });

  test('`frost node --token-file` refuses a token file others can read, before the node starts', async () => {
    const token = secretFile('alice.token', TOKEN, 0o640);
    const nodeDir = join(dir, 'alice');
    mkdirSync(nodeDir);
    refusedAsExposed(await runCli(['frost', 'node', '--dir', nodeDir, '--cluster', cluster, '--policy', policy, '--token-file', token, '--passphrase-file', pass], cliEnv()), token, 'token');
  });

  test('a coordinator refuses a nodes file whose tokenFile others can read, before any node is called', async () => {
    const nodesDir = join(dir, 'coordinator');
    mkdirSync(nodesDir);
    const nodes = join(nodesDir, 'nodes.json');
    writeFileSync(nodes, JSON.stringify({ nodes: [{ name: 'alice', url: 'http://127.0.0.1:9', tokenFile: 'alice.token' }, { name: 'bob', url: 'http://127.0.0.1:9', tokenFile: 'bob.token' }] }));
    writeFileSync(join(nodesDir, 'alice.token'), TOKEN, { mode: 0o600 });
    writeFileSync(join(nodesDir, 'bob.token'), TOKEN);
    chmodSync(join(nodesDir, 'bob.token'), 0o644);
    refusedAsExposed(await runCli(['frost', 'key', '--cluster', cluster, '--nodes', nodes], cliEnv()), join(nodesDir, 'bob.token'), 'token \\(bob\\)');
    assert.equal(readFileSync(join(nodesDir, 'bob.token'), 'utf8'), TOKEN);
  });
});
