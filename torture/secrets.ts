// Part 5, secrets: a scenario with a known mnemonic, passphrase, admin token and session tokens (captured
// from an in-process init), run through real daemons and the CLI. Afterwards every log line, every response
// body (except the one that issues a token, by design), every audit entry and the audit export are searched
// for each secret in raw, hex, base64 and base64url form, and for runs of mnemonic words: zero hits allowed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { ALICE, usdcAuthorization, usdcPolicy, usdcTransfer } from '../packages/server/src/testing/harness.ts';
import { loadConfig } from '../packages/server/src/config.ts';
import { initAirlock } from '../packages/server/src/runtime.ts';
import { httpJson, readWholeAudit, startDaemon, type Daemon, type DaemonData, type HttpResult } from '../packages/server/src/testing/processes.ts';
import { Violations, type Mode, type Part, type PartReport } from './lib.ts';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const NODE = join(REPO, 'node_modules/.bin/node');
const CLI = join(REPO, 'packages/cli/src/run.ts');
const PASSPHRASE = 'torture known passphrase: correct horse battery staple 42';

/** Every encoding a careless line could use for a secret. */
function encodings(label: string, secret: string | Uint8Array): [string, string][] {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  const out: [string, string][] = [[`${label} hex`, bytes.toString('hex')], [`${label} base64`, bytes.toString('base64').replace(/=+$/, '')], [`${label} base64url`, bytes.toString('base64url')]];
  if (typeof secret === 'string') out.push([`${label} raw`, secret]);
  return out;
}

function needlesFor(mnemonic: string, adminToken: string, sessionTokens: string[], accountIndexes: number[]): [string, string][] {
  const seed = mnemonicToSeedSync(mnemonic);
  const root = HDKey.fromMasterSeed(seed);
  const needles: [string, string][] = [
    ...encodings('passphrase', PASSPHRASE),
    ...encodings('mnemonic', mnemonic),
    ...encodings('seed', seed),
    ...encodings('root xprv', root.privateExtendedKey),
    ...encodings('root private key', root.privateKey!),
    ...encodings('admin token', adminToken),
    // The secret part alone, and its decoded bytes.
    ...encodings('admin token secret', adminToken.slice(4)),
    ...encodings('admin token bytes', Buffer.from(adminToken.slice(4), 'base64url')),
  ];
  for (const [i, token] of sessionTokens.entries()) {
    const secret = token.split('.')[1]!;
    needles.push(...encodings(`session token ${i}`, token), ...encodings(`session token ${i} secret`, secret), ...encodings(`session token ${i} bytes`, Buffer.from(secret, 'base64url')));
  }
  for (const index of accountIndexes) needles.push(...encodings(`agent ${index} private key`, root.derive(`m/44'/60'/${index}'/0/0`).privateKey!));
  // Short forms (under 16 chars) would match by chance in large haystacks; every secret here is longer.
  return needles.filter(([, n]) => n.length >= 16);
}

/** Hits of any needle, and of any 3 consecutive mnemonic words, in one haystack. */
function search(haystack: string, needles: [string, string][], words: string[]): string[] {
  const lower = haystack.toLowerCase();
  const hits = needles.filter(([label, n]) => (label.includes('hex') ? lower.includes(n.toLowerCase()) : haystack.includes(n))).map(([label]) => label);
  for (let i = 0; i + 3 <= words.length; i++) {
    const run = new RegExp(words.slice(i, i + 3).map((w) => `\\b${w}\\b`).join('[^a-z]{1,8}'), 'i');
    if (run.test(haystack)) hits.push(`mnemonic words ${i + 1}-${i + 3} in sequence`);
  }
  return hits;
}

export const secretsPart: Part = {
  name: 'secrets',
  summary: 'known seed, passphrase and tokens: searched for in logs, error bodies, audit entries and the export',
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    const dataDir = mkdtempSync(join(tmpdir(), 'airlock-torture-secrets-'));
    const config = loadConfig({ dataDir }, {});
    const init = await initAirlock(config, PASSPHRASE);
    const data: DaemonData = { dataDir, storeUrl: config.storeUrl, passphrase: PASSPHRASE, adminToken: init.adminToken, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
    const logs: string[] = [];
    const bodies: string[] = [];
    const sessionTokens: string[] = [];
    const accountIndexes: number[] = [];
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(data);
      const url = () => daemon!.url;
      const call = async (method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpResult> => {
        const r = await httpJson(url(), method, path, opts);
        // The response that issues a session token shows it once, by design; everything else is searched.
        if (!(path.endsWith('/sessions') && method === 'POST' && r.status === 201)) bodies.push(JSON.stringify(r.body));
        return r;
      };
      const admin = (method: string, path: string, body?: unknown) => call(method, path, { token: init.adminToken, ...(body !== undefined ? { body } : {}) });

      const rounds = mode === 'full' ? 5 : 1;
      for (let round = 0; round < rounds; round++) {
        const created = await admin('POST', '/v1/agents', { count: 2 });
        for (const a of created.body.agents) accountIndexes.push(a.accountIndex);
        const [a, b] = created.body.agents;
        await admin('PUT', `/v1/policies/${a.name}`, { document: usdcPolicy({ daily: '5000000', approvalAbove: '3000000' }) });
        const issued = await admin('POST', `/v1/agents/${a.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message'] });
        const token = issued.body.token as string;
        sessionTokens.push(token);
        const issuedB = await admin('POST', `/v1/agents/${b.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
        sessionTokens.push(issuedB.body.token);
        // Allowed, denied, approval, replayed, malformed and unauthorised requests: every kind of answer.
        await call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, round), headers: { 'idempotency-key': `s-${round}` } });
        await call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, round), headers: { 'idempotency-key': `s-${round}` } });
        await call('POST', '/v1/sign/typed-data', { token, body: usdcAuthorization(a.address, ALICE, 1n, Math.floor(Date.now() / 1000) + 600) });
        await call('POST', '/v1/sign/message', { token, body: { chainId: 8453, message: 'hello' } });
        const pending = await call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 4_000_000n, 100 + round) });
        if (pending.body?.approvalId) {
          await admin('POST', `/v1/approvals/${pending.body.approvalId}/approve`);
          await admin('POST', `/v1/approvals/${pending.body.approvalId}/approve`);
        }
        await call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 9_000_000n, 200 + round) });
        await call('POST', '/v1/sign/transaction', { token, body: { chainId: 8453, transaction: { to: '0x12' } } });
        await call('POST', '/v1/sign/transaction', { token: `${token.slice(0, -4)}AAAA`, body: usdcTransfer(ALICE, 1n) });
        await call('POST', '/v1/sign/transaction', { token: init.adminToken, body: usdcTransfer(ALICE, 1n) });
        await call('GET', '/v1/agents', { token });
        await call('GET', '/v1/agents', { token: `${init.adminToken}x` });
        await call('POST', '/v1/unseal', { body: { passphrase: PASSPHRASE } });
        await call('POST', '/v1/unseal', { body: { passphrase: 'wrong passphrase 0123456789' } });
        await admin('POST', `/v1/sessions/${issuedB.body.session.id}/revoke`);
        await call('POST', '/v1/sign/transaction', { token: issuedB.body.token, body: usdcTransfer(ALICE, 1n) });
        await admin('POST', `/v1/agents/${b.name}/freeze`);
        await admin('PUT', '/v1/policies/fleet', { source: 'version: 1\nrules: [ {type: nonsense} ]' });
        await admin('POST', '/v1/audit/verify');
        // A crash and a restart, then a clean stop: startup, recovery and shutdown lines are searched too.
        logs.push(daemon.output());
        await daemon.kill(round % 2 ? 'SIGTERM' : 'SIGKILL');
        logs.push(daemon.output());
        daemon = await startDaemon(data);
      }

      // The export, through the CLI, as an operator would take it; its own output is a log too.
      const exportFile = join(dataDir, 'export.jsonl');
      const cli = await promisify(execFile)(NODE, [CLI, 'audit', 'export', '--out', exportFile], { cwd: REPO, env: { ...process.env, AIRLOCK_URL: url(), AIRLOCK_ADMIN_TOKEN: init.adminToken } });
      logs.push(cli.stdout, cli.stderr);
      const verifyCli = await promisify(execFile)(NODE, [CLI, 'audit', 'verify', '--file', exportFile], { cwd: REPO, env: { ...process.env } }).catch((e) => ({ stdout: String(e.stdout), stderr: String(e.stderr) }));
      logs.push(verifyCli.stdout, verifyCli.stderr);
      const exported = readFileSync(exportFile, 'utf8');
      const audit = JSON.stringify(await readWholeAudit(url(), init.adminToken));
      await daemon.kill('SIGTERM');
      logs.push(daemon.output());

      const needles = needlesFor(init.mnemonic, init.adminToken, sessionTokens, accountIndexes);
      const words = init.mnemonic.split(' ');
      const haystacks: [string, string][] = [['daemon and CLI logs', logs.join('\n')], ['response bodies', bodies.join('\n')], ['audit entries', audit], ['audit export', exported]];
      for (const [where, text] of haystacks) {
        for (const hit of search(text, needles, words)) v.add(`${hit} found in ${where}`);
      }
      // The searcher itself must be able to fail: the needles are found where they are known to be.
      v.check(search(`x ${init.mnemonic} ${Buffer.from(init.adminToken).toString('base64')} x`, needles, words).length >= 2, () => 'the secret search cannot find planted secrets');
      return {
        figures: {
          needles: needles.length + (words.length - 2),
          logBytes: logs.join('').length,
          responseBodies: bodies.length,
          auditEntries: JSON.parse(audit).length,
          exportBytes: exported.length,
          hits: v.count,
        },
        violations: v.done(),
      };
    } finally {
      await daemon?.kill('SIGKILL');
      await data.cleanup();
    }
  },
};
