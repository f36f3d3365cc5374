// The packages install like any npm package: `scripts/pack.ts` builds and packs the SDK and the CLI (with the
// workspace packages the CLI needs), a scratch project in a temp dir OUTSIDE the checkout installs the
// tarballs with plain `npm install` (third-party dependencies from the registry), the packed CLI creates a
// vault and runs the daemon, and the packed SDK signs through it on plain Node: Node 24 (the project's) and
// the system's older Node (20), which the SDK's `engines` claims. A consumer's tsc reads the declarations.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pack, publishedPackages, workspacePackages } from './pack.ts';
import { undeclaredImports } from './package-imports.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE_24 = process.execPath;
const NODE_SYSTEM = '/usr/bin/node';
const FRIEND = '0x1111111111111111111111111111111111111111';

/** Every import of every shipped file names a dependency its own package.json declares. */
describe('package.json dependencies', () => {
  for (const [name, pkg] of workspacePackages()) {
    test(`${name} declares every third-party module its src/ imports`, () => {
      assert.deepEqual(undeclaredImports(pkg), []);
    });
  }
});

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
}

describe('the packed SDK and CLI installed into a project outside the workspace', () => {
  let work: string;
  let scratch: string;
  let tarballs: string[];
  let daemon: ChildProcess | undefined;
  let daemonUrl: string;
  let adminToken: string;
  /** PATH with Node 24 first: the CLI's `#!/usr/bin/env node` launcher picks the node on PATH. */
  const env24 = () => ({ PATH: `${dirname(NODE_24)}:${process.env.PATH}`, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'airlock-pack-'));
    assert.ok(relative(ROOT, work).startsWith('..'), 'the scratch project lives outside the checkout');
    tarballs = pack(join(work, 'out'));
    scratch = join(work, 'project');
    execFileSync('mkdir', ['-p', scratch]);
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    // ethers for the SDK's optional `@airlock/sdk/ethers` subpath; everything else comes with the tarballs.
    run('npm', ['install', '--no-audit', '--no-fund', ...tarballs, 'ethers@^6.13.0'], scratch);
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('one tarball per published package; each ships dist/ with declarations and no tests', () => {
    const names = publishedPackages(workspacePackages()).map((p) => p.json.name);
    assert.deepEqual(names.toSorted(), ['@airlock/chains', '@airlock/cli', '@airlock/core', '@airlock/keys', '@airlock/mcp', '@airlock/sdk', '@airlock/server', '@airlock/store']);
    assert.equal(tarballs.length, names.length);
    for (const tarball of tarballs) {
      const files = run('tar', ['tzf', tarball], work).trim().split('\n');
      assert.ok(files.includes('package/dist/index.js') && files.includes('package/dist/index.d.ts'), `${tarball}: ${files.join(' ')}`);
      assert.deepEqual(files.filter((f) => /\.test[.-]|\/testing\/|\.ts$/.test(f) && !f.endsWith('.d.ts')), [], `${tarball} ships sources or tests`);
    }
    const sdk = JSON.parse(readFileSync(join(scratch, 'node_modules/@airlock/sdk/package.json'), 'utf8'));
    assert.deepEqual(sdk.exports['./ethers'], { types: './dist/ethers.d.ts', default: './dist/ethers.js' });
    assert.deepEqual(sdk.exports['./webhooks'], { types: './dist/webhooks.d.ts', default: './dist/webhooks.js' });
    assert.deepEqual(sdk.exports['./approvals'], { types: './dist/approvals.d.ts', default: './dist/approvals.js' });
    assert.equal(sdk.private, undefined);
    assert.equal(sdk.devDependencies, undefined);
  });

  test('the packed CLI: `airlock --help`, `airlock mcp --help`, `airlock init`, and `airlock start` serves on a free port', async () => {
    const airlock = join(scratch, 'node_modules/.bin/airlock');
    const help = run(airlock, ['--help'], scratch, env24());
    assert.match(help, /run `airlock <command> --help` for its usage/);
    // `airlock mcp` loads @airlock/mcp lazily: the packed CLI must bring it.
    assert.match(run(airlock, ['mcp', '--help'], scratch, env24()), /airlock mcp/);

    const dataDir = join(work, 'data');
    const secrets = { AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: 'correct horse battery staple, packed' };
    const init = run(airlock, ['init'], scratch, { ...env24(), ...secrets });
    adminToken = /export AIRLOCK_ADMIN_TOKEN=(adm_[A-Za-z0-9_-]+)/.exec(init)?.[1] ?? assert.fail(init);

    daemon = spawn(airlock, ['start'], { cwd: scratch, env: { ...env24(), ...secrets, AIRLOCK_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    daemonUrl = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no daemon within 60 s:\n${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d;
        const m = /Airlock listening on (http:\/\/\S+)/.exec(out);
        if (m) (clearTimeout(timer), resolve(m[1]!));
      };
      daemon!.stdout!.on('data', onData);
      daemon!.stderr!.on('data', onData);
      daemon!.once('exit', (code) => (clearTimeout(timer), reject(new Error(`daemon exited with ${code}:\n${out}`))));
    });
    assert.equal((await fetch(`${daemonUrl}/v1/health`)).status, 200);
    // The operator console ships with the server package, its front-end libraries come from the installed dependencies.
    for (const path of ['/console/', '/console/app.js', '/console/vendor/preact.mjs', '/console/vendor/uplot.mjs']) assert.equal((await fetch(`${daemonUrl}${path}`)).status, 200, path);
  });

  /** Operator steps over HTTP with the admin token: an agent, a policy, a session token. */
  async function provisionAgent(): Promise<{ address: string; token: string }> {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${daemonUrl}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
      return res.json() as Promise<any>;
    };
    const { agents } = await call('POST', '/v1/agents', { names: [`packed-${Math.random().toString(16).slice(2, 8)}`] });
    await call('PUT', `/v1/policies/${agents[0].name}`, {
      document: {
        version: 1,
        rules: [
          { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'Sign in' } } },
          { name: 'pay-friend', type: 'allow', match: { chains: ['eip155:31337'], kinds: ['native.transfer'], to: [FRIEND] } },
        ],
      },
    });
    const { token } = await call('POST', `/v1/agents/${agents[0].name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.message'] });
    return { address: agents[0].address, token };
  }

  /** What an agent writes: plain JavaScript importing the installed packages by name. */
  const AGENT_SCRIPT = `
import { airlockAccount, findAirlockError, AirlockPolicyError } from '@airlock/sdk';
import { airlockEthersSigner } from '@airlock/sdk/ethers';
import { verifyWebhook } from '@airlock/sdk/webhooks';
import { createHmac } from 'node:crypto';
import { verifyMessage, parseTransaction, recoverTransactionAddress } from 'viem';
import { verifyMessage as ethersVerifyMessage } from 'ethers';

const options = { url: process.env.AIRLOCK_URL, token: process.env.AIRLOCK_SESSION };
const account = await airlockAccount(options);
const message = 'Sign in to the packed test';
const signature = await account.signMessage({ message });
const signed = await account.signTransaction({ chainId: 31337, type: 'eip1559', to: '${FRIEND}', value: 1000n, nonce: 0, gas: 21000n, maxFeePerGas: 2000000000n, maxPriorityFeePerGas: 1000000n });
let refusal;
try {
  await account.signMessage({ message: 'Transfer everything' });
} catch (e) {
  const found = findAirlockError(e, AirlockPolicyError);
  refusal = found && { name: found.name, violations: found.violations.map((v) => v.rule + ':' + v.code) };
}
const ethersSigner = await airlockEthersSigner(options);
const ethersSignature = await ethersSigner.signMessage(message);
const hookBody = JSON.stringify({ id: 'evt_1', type: 'alert.loop_guard' });
const hookT = Math.floor(Date.now() / 1000);
const hookSecret = 'whsec_' + 'A'.repeat(43); // shaped as Airlock issues them (verifyWebhook refuses others: invalid_secret)
const hookHeader = 't=' + hookT + ',v1=' + createHmac('sha256', hookSecret).update(hookT + '.' + hookBody).digest('hex');
console.log(JSON.stringify({
  node: process.version,
  address: account.address,
  messageVerifies: await verifyMessage({ address: account.address, message, signature }),
  transactionTo: parseTransaction(signed).to,
  transactionFrom: await recoverTransactionAddress({ serializedTransaction: signed }),
  refusal,
  ethersRecovers: ethersVerifyMessage(message, ethersSignature),
  webhook: [verifyWebhook({ secret: hookSecret, signatureHeader: hookHeader, body: hookBody }).ok, verifyWebhook({ secret: 'whsec_' + 'B'.repeat(42) + 'A', signatureHeader: hookHeader, body: hookBody }).ok],
}));
`;

  for (const [label, node] of [
    ['Node 24', NODE_24],
    ['the system Node 20', NODE_SYSTEM],
  ] as const) {
    test(`the packed SDK signs through the packed daemon on ${label}: viem account, ethers signer, a typed refusal`, async (t) => {
      if (!existsSync(node)) return t.skip(`${node} is not installed here`);
      assert.ok(daemonUrl, 'the daemon runs (previous test)');
      const agent = await provisionAgent();
      writeFileSync(join(scratch, 'agent.mjs'), AGENT_SCRIPT);
      const out = JSON.parse(run(node, ['agent.mjs'], scratch, { ...process.env, AIRLOCK_URL: daemonUrl, AIRLOCK_SESSION: agent.token }));
      t.diagnostic(`ran on ${out.node}`);
      if (node === NODE_SYSTEM) assert.match(out.node, /^v20\./);
      assert.equal(out.address.toLowerCase(), agent.address.toLowerCase());
      assert.equal(out.messageVerifies, true);
      assert.equal(out.transactionTo, FRIEND);
      assert.equal(out.transactionFrom.toLowerCase(), agent.address.toLowerCase());
      assert.deepEqual(out.refusal, { name: 'AirlockPolicyError', violations: ['agent/default:message_not_allowed'] });
      assert.equal(out.ethersRecovers.toLowerCase(), agent.address.toLowerCase());
      assert.deepEqual(out.webhook, [true, false], 'the webhook verifier accepts the right secret only');
    });
  }

  test('a TypeScript consumer type-checks against the published declarations', () => {
    writeFileSync(
      join(scratch, 'consumer.ts'),
      `import { airlockAccount, findAirlockError, AirlockPolicyError, type Violation } from '@airlock/sdk';
import { airlockEthersSigner, AirlockEthersSigner } from '@airlock/sdk/ethers';
import { verifyWebhook, type VerifyWebhookResult } from '@airlock/sdk/webhooks';
const hook: VerifyWebhookResult = verifyWebhook({ secret: 'whsec_x', signatureHeader: 't=1,v1=00', body: '{}', toleranceSeconds: 300, now: Date.now() });
const hookType: string | undefined = hook.ok ? hook.event.type : undefined;
const account = await airlockAccount({ url: 'http://127.0.0.1:8420', token: 't', nonceManager: true });
const signer: AirlockEthersSigner = await airlockEthersSigner({ url: 'http://127.0.0.1:8420', token: 't' });
const violations: Violation[] | undefined = findAirlockError(new Error('x'), AirlockPolicyError)?.violations;
export { account, signer, violations, hookType };
// @ts-expect-error: the published types reject an unknown option
await airlockAccount({ url: 'u', token: 't', nonceManagr: true });
`,
    );
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, lib: ['es2022', 'dom'], types: [] }, files: ['consumer.ts'] }),
    );
    run(NODE_24, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], scratch);
  });
});
