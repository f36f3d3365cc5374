// The testbed on its own, without Airlock: the compiled token has USDC's EIP-712 domain, the facilitator
// lists the local network, and the official client paying with a plain local key settles on chain. When an
// Airlock test fails, this one says whether the testbed or Airlock is at fault.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, http, type Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { compiledContracts } from './compile.ts';
import { startFacilitator, type RunningFacilitator } from './facilitator.ts';
import { startPaidApi, type PaidApi } from './paid-api.ts';
import { authorizationsUsed, balanceOf, deployToken, mint } from './token.ts';

const PAY_TO = '0x7777777777777777777777777777777777777777' as Address;

describe('x402 testbed (no Airlock)', () => {
  let anvil: Anvil;
  let token: Address;
  let facilitator: RunningFacilitator;
  let api: PaidApi;

  before(async () => {
    anvil = await startAnvil();
    token = await deployToken(anvil.rpcUrl);
    facilitator = await startFacilitator({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, networks: ['eip155:31337'] });
    api = await startPaidApi({ facilitatorUrl: facilitator.url, network: 'eip155:31337', asset: token, routes: { '/thing': { price: 1234n, payTo: PAY_TO } } });
  });
  after(async () => {
    await api?.close();
    await facilitator?.close();
    await anvil?.stop();
  });

  test('TestUSDC carries USDC\'s EIP-712 domain and 6 decimals', async () => {
    const client = createPublicClient({ transport: http(anvil.rpcUrl) });
    const abi = compiledContracts().TestUSDC.abi;
    const read = (functionName: string) => client.readContract({ address: token, abi, functionName });
    assert.equal(await read('name'), 'USD Coin');
    assert.equal(await read('version'), '2');
    assert.equal(await read('decimals'), 6);
    const domain = (await read('eip712Domain')) as readonly unknown[];
    assert.equal(domain[1], 'USD Coin');
    assert.equal(domain[2], '2');
    assert.equal(domain[3], 31337n);
  });

  test('the facilitator lists the local network for v2 and base-sepolia for v1', async () => {
    const supported = (await (await fetch(`${facilitator.url}/supported`)).json()) as { kinds: { x402Version: number; scheme: string; network: string }[] };
    assert.ok(supported.kinds.some((k) => k.x402Version === 2 && k.scheme === 'exact' && k.network === 'eip155:31337'));
    assert.ok(supported.kinds.some((k) => k.x402Version === 1 && k.network === 'base-sepolia'));
  });

  test('the official client with a local key pays and the token moves', async () => {
    const payer = privateKeyToAccount(generatePrivateKey());
    await mint(anvil.rpcUrl, token, payer.address, 10_000n);
    const client = new x402Client().register('eip155:*', new ExactEvmScheme(payer)).setSpendControls({ allowedAssets: [{ network: 'eip155:31337', asset: token }] });
    const res = await wrapFetchWithPayment(fetch, client)(`${api.url}/thing`);
    assert.equal(res.status, 200);
    assert.equal(await balanceOf(anvil.rpcUrl, token, payer.address), 10_000n - 1234n);
    assert.equal(await balanceOf(anvil.rpcUrl, token, PAY_TO), 1234n);
    assert.equal((await authorizationsUsed(anvil.rpcUrl, token, payer.address)).length, 1);
  });

  test('without a payment the API answers 402 and nothing moves', async () => {
    const res = await fetch(`${api.url}/thing`);
    assert.equal(res.status, 402);
    assert.ok(res.headers.get('payment-required'));
    assert.equal(api.served.get('/thing'), 1, 'only the paid call was served');
  });
});
