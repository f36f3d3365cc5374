// Permit2 on anvil: the canonical address answers with the EIP-712 separator of that address (not of wherever the
// code was built), and a PermitSingle signed for it (viem, independent of Airlock) sets an allowance on chain.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, createWalletClient, http, type Address, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { compiledPermit2 } from './compile.ts';
import { installPermit2, PERMIT2_CANONICAL_ADDRESS, permit2DomainSeparator, permit2RuntimeCode } from './permit2.ts';
import { deployToken, localChain, rpc } from './token.ts';

let anvil: Anvil;
let client: PublicClient;
before(async () => {
  anvil = await startAnvil();
  client = createPublicClient({ transport: http(anvil.rpcUrl) });
});
after(async () => {
  await anvil?.stop();
});

test('the runtime code carries the domain separator it was built for, in the immutable the contract reads', async () => {
  const elsewhere = '0x00000000000000000000000000000000000000e1' as Address;
  await rpc(anvil.rpcUrl, 'anvil_setCode', [PERMIT2_CANONICAL_ADDRESS, permit2RuntimeCode(31337, elsewhere)]);
  const read = () => client.readContract({ address: PERMIT2_CANONICAL_ADDRESS, abi: compiledPermit2().abi, functionName: 'DOMAIN_SEPARATOR' });
  // Built for another address: the cached (wrong) separator is what Permit2 uses, so signatures would fail.
  assert.equal(await read(), permit2DomainSeparator(31337, elsewhere));
  assert.equal(await installPermit2(anvil.rpcUrl), PERMIT2_CANONICAL_ADDRESS);
  assert.equal(await read(), permit2DomainSeparator(31337));
});

test('a PermitSingle signed for the canonical address sets the allowance; a replay reverts', async () => {
  await installPermit2(anvil.rpcUrl);
  const token = await deployToken(anvil.rpcUrl);
  const owner = privateKeyToAccount(generatePrivateKey());
  const spender = privateKeyToAccount(generatePrivateKey()).address;
  await rpc(anvil.rpcUrl, 'anvil_setBalance', [owner.address, '0xde0b6b3a7640000']);
  const now = Number((await client.getBlock()).timestamp);
  const permit = { details: { token, amount: 500n, expiration: now + 3600, nonce: 0 }, spender, sigDeadline: BigInt(now + 3600) };
  const signature = await owner.signTypedData({
    domain: { name: 'Permit2', chainId: 31337, verifyingContract: PERMIT2_CANONICAL_ADDRESS },
    types: {
      PermitSingle: [{ name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' }],
      PermitDetails: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' }],
    },
    primaryType: 'PermitSingle',
    message: permit,
  });
  const wallet = createWalletClient({ account: owner, chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
  const abi = compiledPermit2().abi;
  const args = [owner.address, permit, signature] as const;
  const hash = await wallet.writeContract({ address: PERMIT2_CANONICAL_ADDRESS, abi, functionName: 'permit', args } as never);
  assert.equal((await client.waitForTransactionReceipt({ hash })).status, 'success');
  const [amount, expiration, nonce] = (await client.readContract({ address: PERMIT2_CANONICAL_ADDRESS, abi, functionName: 'allowance', args: [owner.address, token, spender] })) as [bigint, number, number];
  assert.deepEqual([amount, expiration, nonce], [500n, now + 3600, 1]);
  await assert.rejects(client.simulateContract({ account: owner, address: PERMIT2_CANONICAL_ADDRESS, abi, functionName: 'permit', args } as never), /InvalidNonce|revert/);
});
