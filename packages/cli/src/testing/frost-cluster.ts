// A FROST signer cluster for process tests: `airlock frost init` and `airlock frost node` as child processes on
// loopback, each node with its own passphrase, token, policy, sealed share and ledger, as an operator runs them.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, REPO_ROOT, RUN_TS, runCli } from './cli-process.ts';

export interface FrostTestCluster<Name extends string> {
  readonly dir: string;
  readonly names: readonly Name[];
  readonly tokens: Record<Name, string>;
  readonly clusterFile: string;
  nodeDir(name: Name): string;
  url(name: Name): string | undefined;
  /** `airlock frost init` for every node and the cluster file (threshold 2, identifiers 1..n in `names` order). */
  init(threshold?: number): Promise<void>;
  /** `airlock frost node` as a child process (with `args`, e.g. `--network regtest`); resolves once it prints its URL. */
  startNode(name: Name, args?: string[]): Promise<{ child: ChildProcess; url: string }>;
  stopNode(name: Name): Promise<void>;
  stopAll(): Promise<void>;
  /** What a coordinator is pointed at: each node's URL (or a stand-in's) and its token file. */
  writeNodesFile(file: string, urls?: Partial<Record<Name, string>>): string;
  /** One request to a node with its token (or another). */
  call(name: Name, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }>;
  /** `airlock frost dkg`: the group key every node confirmed. */
  generateKey(): Promise<string>;
}

export function frostTestCluster<Name extends string>(dir: string, env: NodeJS.ProcessEnv, policies: Record<Name, string>): FrostTestCluster<Name> {
  const names = Object.keys(policies) as Name[];
  const tokens = Object.fromEntries(names.map((n) => [n, randomBytes(24).toString('hex')])) as Record<Name, string>;
  const running = new Map<Name, { child: ChildProcess; url: string }>();
  const clusterFile = join(dir, 'cluster.json');
  const nodeDir = (name: Name) => join(dir, name);

  const cluster: FrostTestCluster<Name> = {
    dir, names, tokens, clusterFile, nodeDir,
    url: (name) => running.get(name)?.url,

    async init(threshold = 2) {
      for (const n of names) {
        writeFileSync(join(dir, `${n}.pass`), `passphrase of ${n} node`, { mode: 0o600 });
        writeFileSync(join(dir, `${n}.token`), tokens[n], { mode: 0o600 });
        writeFileSync(join(dir, `${n}.policy.yaml`), policies[n]);
      }
      const inits = await Promise.all(names.map((n) => runCli(['frost', 'init', '--json', '--dir', nodeDir(n), '--name', n, '--passphrase-file', join(dir, `${n}.pass`)], env)));
      const nodes = inits.map((r, i) => {
        assert.equal(r.code, 0, r.stderr);
        return { name: names[i]!, identifier: i + 1, identityKey: JSON.parse(r.stdout).identityKey as string };
      });
      writeFileSync(clusterFile, JSON.stringify({ threshold, nodes }));
    },

    startNode(name, args = []) {
      const child = spawn(NODE, [RUN_TS, 'frost', 'node', '--dir', nodeDir(name), '--cluster', clusterFile, '--policy', join(dir, `${name}.policy.yaml`), '--token-file', join(dir, `${name}.token`), '--passphrase-file', join(dir, `${name}.pass`), ...args], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      return new Promise((resolve, reject) => {
        // A node opens its passphrase file with the production KDF: under a loaded 2-core CI run, a restart took over 30 s.
        const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), 90_000);
        const onData = (d: Buffer) => {
          out += d;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            const node = { child, url: m[1]! };
            running.set(name, node);
            resolve(node);
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited with ${code}:\n${out}`));
        });
      });
    },

    async stopNode(name) {
      const node = running.get(name);
      if (!node) return;
      running.delete(name);
      if (node.child.exitCode !== null) return;
      const exited = new Promise((r) => node.child.once('exit', r));
      node.child.kill('SIGTERM');
      await exited;
    },

    async stopAll() {
      await Promise.all(names.map((n) => cluster.stopNode(n)));
    },

    writeNodesFile(file, urls = {}) {
      const path = join(dir, file);
      writeFileSync(path, JSON.stringify({ nodes: names.map((n) => ({ name: n, url: urls[n] ?? running.get(n)?.url ?? 'http://127.0.0.1:9', tokenFile: `${n}.token` })) }));
      return path;
    },

    async call(name, path, body, token = tokens[name]) {
      const res = await fetch(`${running.get(name)!.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: await res.json() };
    },

    async generateKey() {
      const r = await runCli(['frost', 'dkg', '--json', '--cluster', clusterFile, '--nodes', cluster.writeNodesFile('nodes.json')], env);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).groupKey as string;
    },
  };
  return cluster;
}
