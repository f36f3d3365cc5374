// docs/smart-accounts.md's examples, run as written: each fenced TypeScript block is copied to a file inside the
// repository (so `@airlock/sdk` resolves as it does for a user of the workspace) and run with Node against a
// daemon on loopback and an anvil with the official EntryPoint v0.8 and Simple7702Account, and EntryPoint v0.7 with
// Solady's account factory. The EIP-7702 block runs first (it delegates the agent's address), then the
// user-operation block, then the Coinbase one, then the EntryPoint v0.7 block (a Solady account of the same agent). The Safe
// block runs as a second agent, one owner of a 2-of-3 Safe 1.5.0, under the section's policy as written (local
// addresses and chain swapped in); the on-chain limits block as a third, to which the Safe's two other owners
// grant a role on a Zodiac Roles module (anvil's code size limit is lifted for the Roles build the SDK ships).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeAbiParameters, encodeFunctionData, erc20Abi, parseAbi, recoverAddress, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { getUserOperationHash } from 'viem/account-abstraction';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from '../../server/src/testing/harness.ts';
import { installEntryPoint, installEntryPointV07, type InstalledEntryPoint, type InstalledEntryPointV07 } from './entry-point.ts';
import { deployRolesModifier, rolesKey, spendingRoleCalls } from './roles-modifier.ts';
import { createSafe, deploySafeStack, execSafeTx, multiSendData, ownerSignature, safeNonce, safeTx, MULTI_SEND_CALL_ONLY } from './safe.ts';
import { ANVIL_KEYS, balanceOf, deployToken, mint, publicClientFor, rpc } from './token.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHOP = '0x1111111111111111111111111111111111111111' as Address;

/** The first ```ts block after `heading`. */
function exampleBlock(heading: string): string {
  const doc = readFileSync(join(ROOT, 'docs/smart-accounts.md'), 'utf8');
  const at = doc.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `docs/smart-accounts.md has ${heading}`);
  const match = /```ts\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(match, `docs/smart-accounts.md has an example under ${heading}`);
  return match[1]!;
}

let anvil: Anvil;
let aa: InstalledEntryPoint;
let aa7: InstalledEntryPointV07;
let server: RunningServer;
let dataDir: string;
let workDir: string;
let env: Record<string, string>;
let safeEnv: Record<string, string>;
let limitsEnv: Record<string, string>;
let agentAddress: Address;
let token: Address;

before(async () => {
  anvil = await startAnvil({ disableCodeSizeLimit: true });
  aa = await installEntryPoint(anvil.rpcUrl, anvil.chainId);
  aa7 = await installEntryPointV07(anvil.rpcUrl, anvil.chainId);
  token = await deployToken(anvil.rpcUrl);
  dataDir = mkdtempSync(join(tmpdir(), 'airlock-docs-aa-'));
  const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
  const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
  server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return res.json() as Promise<any>;
  };
  const [agent] = (await admin('POST', '/v1/agents', { names: ['docs-smart-account'] })).agents;
  agentAddress = agent.address;
  const asset = `eip155:${anvil.chainId}/erc20:${token.toLowerCase()}`;
  await admin('PUT', `/v1/policies/${agent.name}`, {
    document: {
      version: 1,
      rules: [
        { name: 'pay-shop', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [asset] } },
        { name: 'per-operation', type: 'max_amount', asset, max: '5000000' },
        { name: 'self-delegation', type: 'allow', match: { actions: ['evm.transaction'], kinds: ['native.transfer'], to: [agentAddress] } },
        { name: 'authorize', type: 'allow', match: { kinds: ['eip7702.authorization'] } },
        { name: 'simple7702-only', type: 'delegations', allow: [aa.simple7702] },
        { name: 'gas', type: 'user_operations', max_prefund: '10000000000000000' },
      ],
    },
  });
  const session = await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.user_operation', 'evm.authorization'] });
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [agentAddress, '0xde0b6b3a7640000']);
  await mint(anvil.rpcUrl, token, agentAddress, 10_000_000n);
  env = {
    AIRLOCK_URL: server.url, AIRLOCK_TOKEN: session.token, RPC_URL: anvil.rpcUrl, TOKEN: token, SHOP, IMPLEMENTATION: aa.simple7702,
    RELAYER_KEY: ANVIL_KEYS.facilitator, WALLET: privateKeyToAccount(generatePrivateKey()).address, FACTORY: aa7.soladyFactory,
  };

  // The Safe section: a second agent, one owner of a 2-of-3 Safe with a local key standing for a person.
  const [safeAgent] = (await admin('POST', '/v1/agents', { names: ['docs-safe-owner'] })).agents;
  const otherOwner = generatePrivateKey();
  const thirdOwner = generatePrivateKey();
  const stack = await deploySafeStack(anvil.rpcUrl, anvil.chainId);
  const safe = await createSafe(anvil.rpcUrl, anvil.chainId, stack, [safeAgent.address, privateKeyToAccount(otherOwner).address, privateKeyToAccount(thirdOwner).address], 2);
  await mint(anvil.rpcUrl, token, safe, 1_000_000_000n);
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [privateKeyToAccount(otherOwner).address, '0xde0b6b3a7640000']);
  const partner = privateKeyToAccount(generatePrivateKey()).address;
  /** A docs/smart-accounts.md policy as written, with the local chain and these local addresses for the doc's Base ones. */
  const localPolicy = (key: string, addresses: Record<string, string>) => {
    let source = docPolicy(key).source;
    // The chain first: a local address may hold the digits 8453.
    for (const [doc, local] of [['8453', String(anvil.chainId)], ...Object.entries(addresses)] as const) {
      assert.ok(source.includes(doc), `${key} names ${doc}`);
      source = source.replaceAll(doc, local.toLowerCase());
    }
    return source;
  };
  const USDC_DOC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
  const PARTNER_DOC = '0x1111111111111111111111111111111111111111';
  const set = await admin('PUT', `/v1/policies/${safeAgent.name}`, { source: localPolicy('docs/smart-accounts.md#Safe multisig', { [USDC_DOC]: token, '0x5afe00000000000000000000000000000000cafe': safe, [PARTNER_DOC]: partner }) });
  assert.deepEqual(set.warnings, [], JSON.stringify(set));
  const safeSession = await admin('POST', `/v1/agents/${safeAgent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] });
  safeEnv = { AIRLOCK_URL: server.url, AIRLOCK_TOKEN: safeSession.token, RPC_URL: anvil.rpcUrl, SAFE: safe, USDC: token, PARTNER: partner, OWNER_KEY: otherOwner };

  // The on-chain limits section: the Safe's two other owners enable Zodiac Roles and grant a third agent a role,
  // USDC to the partner from 50 USDC a day.
  const [limitedAgent] = (await admin('POST', '/v1/agents', { names: ['docs-role-member'] })).agents;
  const roles = await deployRolesModifier(anvil.rpcUrl, anvil.chainId, safe);
  const start = (await publicClientFor(anvil.rpcUrl, anvil.chainId).getBlock()).timestamp;
  const grant = safeTx({
    to: MULTI_SEND_CALL_ONLY, operation: 1, nonce: await safeNonce(anvil.rpcUrl, anvil.chainId, safe),
    data: multiSendData(spendingRoleCalls(safe, roles, {
      roleKey: rolesKey('agent-payments'), member: limitedAgent.address, token, recipients: [partner],
      allowance: { key: rolesKey('agent-usdc-daily'), amount: 50_000_000n, period: 86_400n, start },
    })),
  });
  const humans = [await ownerSignature(otherOwner, safe, anvil.chainId, grant), await ownerSignature(thirdOwner, safe, anvil.chainId, grant)];
  assert.equal(await execSafeTx(anvil.rpcUrl, anvil.chainId, safe, grant, humans), 'success');
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [limitedAgent.address, '0xde0b6b3a7640000']);
  const limitsPolicy = localPolicy('docs/smart-accounts.md#On-chain limits', { [USDC_DOC]: token, '0x2222222222222222222222222222222222222222': roles, [PARTNER_DOC]: partner });
  const limitsSet = await admin('PUT', `/v1/policies/${limitedAgent.name}`, { source: limitsPolicy });
  assert.deepEqual(limitsSet.warnings, [], JSON.stringify(limitsSet));
  const limitsSession = await admin('POST', `/v1/agents/${limitedAgent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction'] });
  limitsEnv = { AIRLOCK_URL: server.url, AIRLOCK_TOKEN: limitsSession.token, RPC_URL: anvil.rpcUrl, ROLES: roles, USDC: token, PARTNER: partner };

  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  workDir = mkdtempSync(join(ROOT, '.tmp', 'docs-smart-accounts-'));
});

after(async () => {
  await server?.close().catch(() => {});
  await anvil?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function run(heading: string, values = env): Promise<string> {
  const script = join(workDir, `${heading.replace(/\W+/g, '-')}.ts`);
  writeFileSync(script, exampleBlock(heading));
  const { stdout } = await promisify(execFile)(process.execPath, [script], { env: { ...process.env, ...values }, timeout: 60_000 });
  return stdout;
}

test('docs/smart-accounts.md examples: delegate, pay through a user operation, refuse a drain; a Coinbase owner signature', async () => {
  const client = publicClientFor(anvil.rpcUrl, anvil.chainId);
  const delegated = await run('## EIP-7702');
  assert.equal(delegated.trim(), `delegated to ${aa.simple7702}\nrefused: agent/simple7702-only delegate_not_allowed`);
  assert.equal((await client.getCode({ address: agentAddress }))?.toLowerCase(), `0xef0100${aa.simple7702.slice(2).toLowerCase()}`);

  const paid = (await run('## User operations')).trim().split('\n');
  assert.equal(paid[0], 'handleOps success');
  assert.match(paid[1]!, /^refused: agent\/default no_matching_allow_rule: call 3 of 3 \(erc20\.transfer 0x6666/);
  assert.equal(await client.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [SHOP] }), 1_000_000n);

  const [, signature] = /^coinbase signature (0x[0-9a-f]+)$/m.exec(await run('## The SDK')) ?? [];
  assert.ok(signature);
  const [{ signatureData }] = decodeAbiParameters([{ type: 'tuple', components: [{ name: 'ownerIndex', type: 'uint8' }, { name: 'signatureData', type: 'bytes' }] }], signature as Hex);
  // The operation the example built: Coinbase's execute(token, 0, transfer(SHOP, 5)).
  const transfer = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [SHOP, 5n] });
  const callData = encodeFunctionData({ abi: parseAbi(['function execute(address target, uint256 value, bytes data)']), functionName: 'execute', args: [token, 0n, transfer] });
  const hash = getUserOperationHash({
    chainId: anvil.chainId, entryPointAddress: '0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789', entryPointVersion: '0.6',
    userOperation: { sender: env.WALLET as Address, nonce: 0n, callData, initCode: '0x', paymasterAndData: '0x', signature: '0x', callGasLimit: 200_000n, verificationGasLimit: 200_000n, preVerificationGas: 60_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n },
  });
  assert.equal((await recoverAddress({ hash, signature: signatureData })).toLowerCase(), agentAddress.toLowerCase());
});

test('docs/smart-accounts.md EntryPoint v0.7 example: the first operation deploys a Solady account and pays; another operation over its nonce is refused', async () => {
  // The account's counterfactual address (the factory's, for the example's salt) is funded first, as the doc says.
  const solady = await soladyAddress(aa7.soladyFactory, `${agentAddress}${'0'.repeat(24)}` as Hex);
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [solady, '0xde0b6b3a7640000']);
  await mint(anvil.rpcUrl, token, solady, 10_000_000n);
  const before = await balanceOf(anvil.rpcUrl, token, SHOP);
  assert.equal(await publicClientFor(anvil.rpcUrl, anvil.chainId).getCode({ address: solady }), undefined);
  const out = (await run('### EntryPoint v0.7: a Solady account deployed by its first operation')).trim();
  assert.equal(out, 'refused: nonce_reused\nhandleOps success, deployed true');
  assert.equal(await balanceOf(anvil.rpcUrl, token, SHOP), before + 1_000_000n);
  assert.equal(await balanceOf(anvil.rpcUrl, token, solady), 9_000_000n);
});

/** Where Solady's ERC4337Factory deploys the account for `salt`. */
function soladyAddress(factory: Address, salt: Hex): Promise<Address> {
  return publicClientFor(anvil.rpcUrl, anvil.chainId).readContract({ address: factory, abi: parseAbi(['function getAddress(bytes32 salt) view returns (address)']), functionName: 'getAddress', args: [salt] });
}

test('docs/smart-accounts.md Safe example: the agent and another owner execute a payment; 120 USDC is refused', async () => {
  const nonce = await safeNonce(anvil.rpcUrl, anvil.chainId, safeEnv.SAFE as Address);
  const out = (await run('## Safe multisig', safeEnv)).trim();
  assert.equal(out, 'execTransaction success\nrefused: agent/usdc-per-request amount_exceeds_max');
  assert.equal(await balanceOf(anvil.rpcUrl, token, safeEnv.PARTNER as Address), 60_000_000n);
  assert.equal(await safeNonce(anvil.rpcUrl, anvil.chainId, safeEnv.SAFE as Address), nonce + 1n);
});

test('docs/smart-accounts.md on-chain limits example: 45 USDC is refused by Airlock though the role covers it; 30 is paid from the Safe through the role', async () => {
  const before = await balanceOf(anvil.rpcUrl, token, limitsEnv.PARTNER as Address);
  const out = (await run('## On-chain limits', limitsEnv)).trim();
  assert.equal(out, 'refused: agent/usdc-per-request amount_exceeds_max\npaid success');
  assert.equal(await balanceOf(anvil.rpcUrl, token, limitsEnv.PARTNER as Address), before + 30_000_000n);
});
