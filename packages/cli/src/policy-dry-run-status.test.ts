// `airlock policy dry-run` denies for a frozen or retired agent (exit 3, violation agent_not_active), whatever its
// policy says: every request of such an agent is refused 403 agent_frozen / agent_retired before policy runs, and the
// README tells operators a script can gate on the dry-run's exit code. Found by review: it answered ALLOW, exit 0,
// for a frozen agent. A real daemon and the CLI as an operator runs them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, runCli, startDaemon, type Daemon } from './testing/cli-process.ts';

const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const POLICY = `version: 1
rules:
  - name: usdc-to-partners
    type: allow
    match: { chains: [eip155:8453], kinds: [erc20.transfer], assets: [eip155:8453/erc20:${USDC}], to: ["0x1111111111111111111111111111111111111111"] }
`;
const ONE_UNIT = {
  chainId: 8453,
  transaction: { to: USDC, nonce: 2, gas: '60000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000', data: `0xa9059cbb${'11'.repeat(20).padStart(64, '0')}${'1'.padStart(64, '0')}` },
};

describe('airlock policy dry-run and the agent\'s status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-dry-run-status-'));
  const dataDir = join(dir, 'data');
  let daemon: Daemon;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: 'dry-run status passphrase 01' }));
    const token = /export AIRLOCK_ADMIN_TOKEN=(adm_\S+)/.exec(readFileSync(join(dataDir, 'first-run-secrets.txt'), 'utf8'))![1]!;
    env = cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: token, AIRLOCK_DATA_DIR: dataDir });
    writeFileSync(join(dir, 'p.yaml'), POLICY);
    writeFileSync(join(dir, 'one.json'), JSON.stringify(ONE_UNIT));
  });
  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const dryRun = (agent: string) => runCli(['policy', 'dry-run', '--agent', agent, '--action', 'evm.transaction', join(dir, 'one.json')], env);

  test('allowed while active (exit 0); frozen: denied, exit 3, naming agent_not_active; unfrozen: allowed again; retired: denied', async () => {
    assert.equal((await runCli(['agent', 'create', '--name', 'gated'], env)).code, 0);
    assert.equal((await runCli(['policy', 'set', 'gated', join(dir, 'p.yaml')], env)).code, 0);
    const active = await dryRun('gated');
    assert.equal(active.code, 0, active.stdout + active.stderr);
    assert.match(active.stdout, /ALLOW/);

    assert.equal((await runCli(['agent', 'freeze', 'gated'], env)).code, 0);
    const frozen = await dryRun('gated');
    assert.equal(frozen.code, 3, frozen.stdout + frozen.stderr);
    assert.match(frozen.stdout, /DENY/);
    assert.match(frozen.stdout, /agent_not_active/);
    assert.match(frozen.stdout, /frozen/);

    assert.equal((await runCli(['agent', 'unfreeze', 'gated'], env)).code, 0);
    assert.equal((await dryRun('gated')).code, 0);

    assert.equal((await runCli(['agent', 'retire', 'gated', '--no-sweep'], env)).code, 0);
    const retired = await dryRun('gated');
    assert.equal(retired.code, 3, retired.stdout + retired.stderr);
    assert.match(retired.stdout, /agent_not_active/);
    assert.match(retired.stdout, /retired/);
  });
});
