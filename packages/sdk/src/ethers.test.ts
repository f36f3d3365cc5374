// The ethers v6 Signer against a real Airlock over HTTP and a real local chain (anvil): ethers is used through
// its public API only (JsonRpcProvider, Contract, verifyMessage, verifyTypedData) and every claim is checked on
// chain or with ethers' own verifiers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Contract, JsonRpcProvider, parseEther, verifyMessage, verifyTypedData } from 'ethers';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
import { deployToken, mint } from '@airlock/x402-testbed';
import { airlockEthersSigner } from './ethers.ts';
import { AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { findAirlockError } from './find-airlock-error.ts';
import { startAnvil, type Anvil } from './testing/anvil.ts';
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';

const CHAIN = 'eip155:31337';
const FRIEND = '0x1111111111111111111111111111111111111111';
const STRANGER = '0x2222222222222222222222222222222222222222';
const ORDERS = '0xcccccccccccccccccccccccccccccccccccccccc';
const LOGIN_PREFIX = 'Sign in to airlock.test';
const ERC20 = ['function transfer(address to, uint256 amount) returns (bool)', 'function balanceOf(address owner) view returns (uint256)'];

function policy(token: string) {
  return {
    version: 1,
    sets: { friends: [FRIEND] },
    rules: [
      { name: 'eth-to-friends', type: 'allow', match: { chains: [CHAIN], kinds: ['native.transfer'], to: '$friends' } },
      { name: 'usdc-to-friends', type: 'allow', match: { chains: [CHAIN], kinds: ['erc20.transfer'], assets: [`${CHAIN}/erc20:${token.toLowerCase()}`], to: '$friends' } },
      { name: 'orders', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Order'], domains: [{ chain_id: 31337, verifying_contract: ORDERS, name: 'Airlock Test Exchange' }] } },
      { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN_PREFIX } } },
    ],
  };
}

describe('AirlockEthersSigner with ethers v6 on a real chain (anvil) and a real Airlock over HTTP', () => {
  let anvil: Anvil | undefined;
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;
  let provider: JsonRpcProvider;
  let token: string;

  before(async () => {
    anvil = await startAnvil();
    // cacheTimeout -1: ethers otherwise answers a repeated call (a balance before and after) from a 250 ms cache.
    provider = new JsonRpcProvider(anvil.rpcUrl, anvil.chainId, { staticNetwork: true, cacheTimeout: -1 });
    token = await deployToken(anvil.rpcUrl);
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-ethers-test-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
    const { adminToken } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    provider?.destroy();
    await server?.close().catch(() => {});
    await anvil?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function provision() {
    const created = await admin.request<{ agents: { name: string; address: string }[] }>('POST', '/v1/agents', { names: [uniqueName('eth')] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: policy(token) });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message'] });
    await provider.send('anvil_setBalance', [agent.address, '0x8ac7230489e80000']); // 10 ETH
    await mint(anvil!.rpcUrl, token as `0x${string}`, agent.address as `0x${string}`, 5_000_000n);
    const signer = await airlockEthersSigner({ url: server!.url, token: issued.body.token }, provider);
    return { agent, signer };
  }

  test('sendTransaction: ETH to a friend is signed by Airlock, mined, and sent from the agent address', async () => {
    const { agent, signer } = await provision();
    assert.equal((await signer.getAddress()).toLowerCase(), agent.address.toLowerCase());
    const before = await provider.getBalance(FRIEND);
    const tx = await signer.sendTransaction({ to: FRIEND, value: parseEther('0.01') });
    const receipt = await tx.wait();
    assert.equal(receipt?.status, 1);
    assert.equal(receipt?.from.toLowerCase(), agent.address.toLowerCase());
    assert.equal((await provider.getBalance(FRIEND)) - before, parseEther('0.01'));
  });

  test('an ERC-20 transfer through ethers.Contract moves the tokens on chain', async () => {
    const { agent, signer } = await provision();
    const usdc = new Contract(token, ERC20, signer);
    const before = (await usdc.getFunction('balanceOf')(FRIEND)) as bigint;
    const tx = await usdc.getFunction('transfer')(FRIEND, 1_250_000n);
    assert.equal((await tx.wait())?.status, 1);
    assert.equal(((await usdc.getFunction('balanceOf')(FRIEND)) as bigint) - before, 1_250_000n);
    assert.equal(await usdc.getFunction('balanceOf')(agent.address), 5_000_000n - 1_250_000n);
  });

  test('signMessage and signTypedData verify with ethers; changed content does not', async () => {
    const { agent, signer } = await provision();
    const login = `${LOGIN_PREFIX}\nNonce: 7`;
    const messageSignature = await signer.signMessage(login);
    assert.equal(verifyMessage(login, messageSignature).toLowerCase(), agent.address.toLowerCase());
    assert.notEqual(verifyMessage(`${login}!`, messageSignature).toLowerCase(), agent.address.toLowerCase());

    const domain = { name: 'Airlock Test Exchange', version: '1', chainId: 31337, verifyingContract: ORDERS };
    const types = { Order: [{ name: 'maker', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'memo', type: 'string' }] };
    const order = { maker: agent.address, amount: 123_456_789_000_000_000_000n, memo: 'gm' };
    const typedSignature = await signer.signTypedData(domain, types, order);
    assert.equal(verifyTypedData(domain, types, order, typedSignature).toLowerCase(), agent.address.toLowerCase());
    assert.notEqual(verifyTypedData(domain, types, { ...order, amount: 1n }, typedSignature).toLowerCase(), agent.address.toLowerCase());
  });

  test('a refusal throws AirlockPolicyError with the violations; nothing reaches the chain', async () => {
    const { agent, signer } = await provision();
    const nonceBefore = await provider.getTransactionCount(agent.address);
    const error = await signer.sendTransaction({ to: STRANGER, value: parseEther('0.01') }).then(
      () => assert.fail('the transfer was signed'),
      (e: unknown) => e,
    );
    const denied = findAirlockError(error, AirlockPolicyError);
    assert.ok(denied, `expected AirlockPolicyError, got ${String(error)}`);
    assert.deepEqual(denied.violations.map((v) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
    const refusedMessage = await signer.signMessage('Transfer all my funds').then(
      () => assert.fail('the message was signed'),
      (e: unknown) => e,
    );
    assert.equal(findAirlockError(refusedMessage, AirlockPolicyError)?.violations[0]?.code, 'message_not_allowed');
    assert.equal(await provider.getTransactionCount(agent.address), nonceBefore);
    assert.equal(await provider.getBalance(STRANGER), 0n);
  });
});
