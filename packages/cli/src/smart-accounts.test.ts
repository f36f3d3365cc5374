// Smart accounts from the operator's shell (docs/smart-accounts.md): `policy validate` warns about smart-account
// rules that cap nothing or can never grant, the docs' smart-account policies validate clean, `session issue`
// scopes a session to evm.user_operation and evm.authorization, and `policy dry-run` judges both actions. The
// session token then signs exactly what its actions name, against a real daemon process.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFunctionData, erc20Abi, parseAbiItem, type Address } from 'viem';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { prepareDaemonData, type DaemonData } from '../../server/src/testing/processes.ts';
import { cliEnv, REPO_ROOT, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const SHOP = '0x1111111111111111111111111111111111111111';
const SIMPLE_7702 = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const MIXER = '0x6666666666666666666666666666666666666666';

/** The `npx airlock …` command docs/smart-accounts.md#Sessions shows, as its arguments. */
function documentedSessionCommand(): string[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/smart-accounts.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Sessions\n'));
  const command = /```sh\nnpx airlock (.+)\n```/.exec(section)?.[1];
  assert.ok(command, 'docs/smart-accounts.md#Sessions shows a session command');
  return command.split(/\s+/);
}

/** An EntryPoint v0.8 operation of `sender` paying `to` through Simple7702Account's execute (the body of POST /v1/sign/user-operation). */
function userOperation(sender: string, to: Address, amount: bigint, nonce = 0n) {
  const transfer = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
  const callData = encodeFunctionData({ abi: [parseAbiItem('function execute(address target, uint256 value, bytes data)')], functionName: 'execute', args: [USDC, 0n, transfer] });
  return {
    chainId: 8453, entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8',
    userOperation: { sender, nonce: nonce.toString(), callData, callGasLimit: '200000', verificationGasLimit: '200000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' },
  };
}

describe('airlock CLI and smart accounts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-sa-'));
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  let data: DaemonData | undefined;
  let daemon: Daemon | undefined;
  after(async () => {
    await daemon?.stop();
    await data?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const airlock = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_URL: daemon?.url, AIRLOCK_ADMIN_TOKEN: data?.adminToken }));
  const exits = (r: CliResult, code: number) => {
    assert.equal(r.code, code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };

  test('policy validate: smart-account rules that cap nothing or can never grant are warned about; the docs policies are clean', async () => {
    const risky = file('risky.yaml', `version: 1
rules:
  - name: treasury
    type: allow
    match: { actions: [evm.typed_data], primary_types: [SafeTx], kinds: [erc20.transfer], assets: ["eip155:8453/erc20:${USDC}"] }
  - name: pay-shops
    type: allow
    match: { actions: [evm.user_operation], kinds: [erc20.transfer], assets: ["eip155:8453/erc20:${USDC}"], to: ["${SHOP}"] }
  - { name: delegate, type: allow, match: { actions: [evm.authorization] } }
  - { name: whole-operations, type: allow, match: { kinds: [erc4337.user_operation] } }
  - { name: cap, type: max_amount, asset: "eip155:8453/erc20:${USDC}", max: "25000000" }
  - { name: daily, type: budget, asset: "eip155:8453/erc20:${USDC}", max: "100000000", window: 24h }
`);
    const r = await airlock('policy', 'validate', risky);
    assert.match(exits(r, 0), /risky\.yaml: valid$/m);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 4, r.stderr);
    assert.match(lines[0]!, /^warning allow_never_grants at rules\[0\]\.match: allow rule treasury can never grant a request: the calls of a Safe transaction are granted only by a rule naming both primary_types: \[SafeTx\] and domains$/);
    assert.match(lines[1]!, /^warning prefund_unbounded at rules\[1\]\.match\.actions: /);
    assert.match(lines[2]!, /^warning delegation_without_allowlist at rules\[2\]\.match: /);
    assert.match(lines[3]!, /^warning allow_never_grants at rules\[3\]\.match: allow rule whole-operations can never grant a request: erc4337\.user_operation is never granted as a whole/);
    const json = JSON.parse(exits(await airlock('policy', 'validate', risky, '--json'), 0));
    assert.deepEqual(json.warnings.map((w: { code: string; rule: string }) => `${w.code} ${w.rule}`), ['allow_never_grants treasury', 'prefund_unbounded pay-shops', 'delegation_without_allowlist delegate', 'allow_never_grants whole-operations']);

    for (const key of ['docs/policy.md#A smart-account agent', 'docs/smart-accounts.md#Safe multisig', 'docs/smart-accounts.md#On-chain limits']) {
      const clean = await airlock('policy', 'validate', file('doc.yaml', docPolicy(key).source));
      exits(clean, 0);
      assert.equal(clean.stderr, '', key);
    }
  });

  test('session issue as docs/smart-accounts.md shows it (evm.user_operation, evm.authorization); policy dry-run judges both; the token signs only its actions', async () => {
    data = await prepareDaemonData('sqlite');
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_PORT: '0' }));
    exits(await airlock('agent', 'create', '--name', 'shop-bot'), 0);
    const set = await airlock('policy', 'set', 'shop-bot', file('smart.yaml', docPolicy('docs/policy.md#A smart-account agent').source));
    assert.match(exits(set, 0), /shop-bot: now version 1/);
    assert.equal(set.stderr, '');
    const agent = JSON.parse(exits(await airlock('agent', 'show', 'shop-bot', '--json'), 0));
    const address = agent.address as string;

    const help = await airlock('session', '--help');
    assert.match(exits(help, 0), /evm\.user_operation/);
    // The command docs/smart-accounts.md shows, as written.
    const printed = exits(await airlock(...documentedSessionCommand()), 0);
    assert.match(printed, /^session ses_\S+ for shop-bot, expires /m);
    const issued = { token: /^TOKEN \(shown once\):\n\s+(\S+)$/m.exec(printed)?.[1] ?? '' };
    assert.ok(issued.token, printed);
    assert.match(exits(await airlock('session', 'list', '--agent', 'shop-bot'), 0), /evm\.transaction,evm\.user_operation,evm\.authorization\s+eip155:8453\s/);
    const unknown = await airlock('session', 'issue', 'shop-bot', '--actions', 'evm.user_op');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /invalid_request/);

    const delegate = (address: string) => file('authorization.json', JSON.stringify({ chainId: 8453, authorization: { address, chainId: 8453, nonce: 0 } }));
    assert.match(exits(await airlock('policy', 'dry-run', '--agent', 'shop-bot', '--action', 'evm.authorization', delegate(SIMPLE_7702)), 0), /^ALLOW  delegate the account /);
    const refusedDelegate = exits(await airlock('policy', 'dry-run', '--agent', 'shop-bot', '--action', 'evm.authorization', delegate(MIXER)), 3);
    assert.match(refusedDelegate, /^DENY  /);
    assert.match(refusedDelegate, /^\s+agent\/simple7702-only\s+delegate_not_allowed: /m);
    const op = (to: Address, amount: bigint) => file('operation.json', JSON.stringify(userOperation(address, to, amount)));
    assert.match(exits(await airlock('policy', 'dry-run', '--agent', 'shop-bot', '--action', 'evm.user_operation', op(SHOP, 5_000_000n)), 0), /^ALLOW  user operation of /);
    assert.match(exits(await airlock('policy', 'dry-run', '--agent', 'shop-bot', '--action', 'evm.user_operation', op(MIXER, 5_000_000n)), 3), /^\s+agent\/default\s+no_matching_allow_rule: call 1 of 1 \(erc20\.transfer 0x6666/m);

    // The session signs what it lists; a session for transactions only is refused the same requests by its scope.
    const post = async (token: string, path: string, body: unknown) => {
      const res = await fetch(`${daemon!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const signedOp = await post(issued.token, '/v1/sign/user-operation', userOperation(address, SHOP, 5_000_000n));
    assert.equal(signedOp.status, 200, JSON.stringify(signedOp.body));
    const signedAuth = await post(issued.token, '/v1/sign/authorization', { authorization: { address: SIMPLE_7702, chainId: 8453, nonce: 0 } });
    assert.equal(signedAuth.status, 200, JSON.stringify(signedAuth.body));
    // (Nonce 1: another operation over the signed nonce 0 would be refused as nonce_reused, whatever the session.)
    const narrow = JSON.parse(exits(await airlock('session', 'issue', 'shop-bot', '--actions', 'evm.transaction', '--json'), 0));
    for (const [path, body] of [['/v1/sign/user-operation', userOperation(address, SHOP, 1n, 1n)], ['/v1/sign/authorization', { authorization: { address: SIMPLE_7702, chainId: 8453, nonce: 1 } }]] as const) {
      const refused = await post(narrow.token, path, body);
      assert.equal(refused.status, 403, path);
      assert.deepEqual(refused.body.error.violations.map((v: { rule: string; code: string }) => `${v.rule} ${v.code}`), ['session/actions action_not_allowed'], path);
    }
  });
});
