// Airlock as the owner of smart accounts, driven through the SDK exactly as an agent would, on anvil with
// eth-infinitism's official EntryPoints from npm: v0.8 with Simple7702Account (@account-abstraction/contracts
// 0.8.0), and v0.7 (0.7.0, at its canonical address) with Solady's ERC4337 account deployed by its factory through
// initCode (npm `solady`). handleOps is submitted directly by a relayer key (no bundler on a local chain). Coinbase
// Smart Wallet (EntryPoint v0.6) is not on npm: its owner signature is checked offline against viem's userOpHash.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createPublicClient, createWalletClient, decodeAbiParameters, encodeFunctionData, erc20Abi, hashMessage, http, parseEventLogs, recoverAddress,
  type Address, type Hex, type PublicClient,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { getUserOperationHash, toCoinbaseSmartAccount, toPackedUserOperation, toSimple7702SmartAccount, toSoladySmartAccount } from 'viem/account-abstraction';
import { AirlockApiError, AirlockPolicyError, airlockAccount, airlockSmartAccount, findAirlockError, type AirlockAccount } from '@airlock/sdk';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { provisionAgent, startHarness, type Harness } from '../../server/src/testing/harness.ts';
import { installEntryPoint, installEntryPointV07, type InstalledEntryPoint, type InstalledEntryPointV07 } from './entry-point.ts';
import { ANVIL_KEYS, deployToken, localChain, mint, rpc } from './token.ts';

const SHOP = '0x1111111111111111111111111111111111111111' as Address;
const THIEF = '0x6666666666666666666666666666666666666666' as Address;
const PAYMASTER = '0x9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a' as Address;
const GAS = { callGasLimit: 200_000n, verificationGasLimit: 200_000n, preVerificationGas: 60_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
const MAX_PREFUND = 10n ** 16n; // 0.01 ETH
/** viem's operations carry a `signature` before they are signed (a stub); it is not hashed. */
const UNSIGNED = { signature: '0x' as Hex };

const refusal = async (p: Promise<unknown>): Promise<AirlockPolicyError> => {
  const e = await p.then(() => assert.fail('signed'), (err: unknown) => err);
  // viem wraps the owner's error: walk the cause chain.
  for (let cur: unknown = e; cur; cur = (cur as { cause?: unknown }).cause) if (cur instanceof AirlockPolicyError) return cur;
  throw e;
};
const violations = (e: AirlockPolicyError) => e.violations;

describe('smart accounts owned by an Airlock key', () => {
  let anvil: Anvil;
  let h: Harness;
  let aa: InstalledEntryPoint;
  let aa7: InstalledEntryPointV07;
  let token: Address;
  let client: PublicClient;
  let owner: AirlockAccount;
  let agentAddress: Address;
  const chainId = 31337;

  const transfer = (to: Address, amount: bigint) => ({ to: token, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] }) });
  const balance = (who: Address) => client.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [who] });

  before(async () => {
    anvil = await startAnvil();
    client = createPublicClient({ chain: localChain(anvil.rpcUrl, chainId), transport: http(anvil.rpcUrl) });
    aa = await installEntryPoint(anvil.rpcUrl, chainId);
    aa7 = await installEntryPointV07(anvil.rpcUrl, chainId);
    token = await deployToken(anvil.rpcUrl);
    h = await startHarness();
    const asset = `eip155:${chainId}/erc20:${token.toLowerCase()}`;
    const { agent, token: sessionToken } = await provisionAgent(h, {
      actions: ['evm.transaction', 'evm.typed_data', 'evm.user_operation', 'evm.authorization'],
      policy: {
        version: 1,
        rules: [
          { name: 'pay-shop', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [asset] } },
          { name: 'usdc-cap', type: 'max_amount', asset, max: '1000000' },
          // The agent's own type-4 transaction (to itself, no value) that installs the delegation.
          { name: 'self-delegation', type: 'allow', match: { actions: ['evm.transaction'], kinds: ['native.transfer'] } },
          { name: 'authorize', type: 'allow', match: { kinds: ['eip7702.authorization'] } },
          { name: 'delegates', type: 'delegations', allow: [aa.simple7702] },
          { name: 'gas', type: 'user_operations', max_prefund: MAX_PREFUND.toString() },
        ],
      },
    });
    owner = await airlockAccount({ url: 'http://127.0.0.1', token: sessionToken, fetch: h.fetch });
    agentAddress = owner.address;
    assert.equal(agentAddress.toLowerCase(), agent.address.toLowerCase());
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [agentAddress, '0xde0b6b3a7640000']);
    await mint(anvil.rpcUrl, token, agentAddress, 5_000_000n);
  });
  after(async () => {
    await h?.close();
    await anvil?.stop();
  });

  /** Submits signed operations through EntryPoint.handleOps from a relayer key; returns the UserOperationEvents. */
  async function handleOps(ops: Parameters<typeof toPackedUserOperation>[0][], ep: { entryPoint: Address; entryPointAbi: InstalledEntryPoint['entryPointAbi'] } = aa) {
    const relayer = privateKeyToAccount(ANVIL_KEYS.facilitator);
    const wallet = createWalletClient({ account: relayer, chain: localChain(anvil.rpcUrl, chainId), transport: http(anvil.rpcUrl) });
    const hash = await wallet.writeContract({ address: ep.entryPoint, abi: ep.entryPointAbi, functionName: 'handleOps', args: [ops.map((op) => toPackedUserOperation(op)), relayer.address] });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    return parseEventLogs({ abi: ep.entryPointAbi, logs: receipt.logs, eventName: 'UserOperationEvent' }) as unknown as { args: { success: boolean; userOpHash: Hex; nonce: bigint } }[];
  }

  test('EIP-7702: an allowlisted delegation is signed and lands in the agent’s own type-4 transaction', async () => {
    const wallet = createWalletClient({ account: owner, chain: localChain(anvil.rpcUrl, chainId), transport: http(anvil.rpcUrl) });
    const authorization = await wallet.signAuthorization({ contractAddress: aa.simple7702, executor: 'self' });
    const hash = await wallet.sendTransaction({ authorizationList: [authorization], to: agentAddress, data: '0x' });
    assert.equal((await client.waitForTransactionReceipt({ hash })).status, 'success');
    assert.equal((await client.getCode({ address: agentAddress }))?.toLowerCase(), `0xef0100${aa.simple7702.slice(2).toLowerCase()}`);
  });

  test('a user operation through the delegated account: Airlock decodes its call, signs, handleOps moves the tokens', async () => {
    const account = await toSimple7702SmartAccount({ client, owner: owner as unknown as PrivateKeyAccount, implementation: aa.simple7702 });
    const op = { sender: agentAddress, nonce: await account.getNonce(), callData: await account.encodeCalls([transfer(SHOP, 1_000n)]), ...GAS, ...UNSIGNED };
    const signature = await account.signUserOperation({ ...op, chainId });
    const [event] = await handleOps([{ ...op, signature }]);
    assert.equal(event?.args.success, true);
    assert.equal(event?.args.userOpHash, getUserOperationHash({ chainId, entryPointAddress: aa.entryPoint, entryPointVersion: '0.8', userOperation: { ...op, signature } }));
    assert.equal(await balance(SHOP), 1_000n);
  });

  test('a batch whose third call drains to an unlisted address is refused with the rule; nothing is signed', async () => {
    const account = await toSimple7702SmartAccount({ client, owner: owner as unknown as PrivateKeyAccount, implementation: aa.simple7702 });
    const callData = await account.encodeCalls([transfer(SHOP, 10n), transfer(SHOP, 10n), transfer(THIEF, 500_000n)]);
    const e = await refusal(account.signUserOperation({ sender: agentAddress, nonce: await account.getNonce(), callData, ...GAS, ...UNSIGNED, chainId }));
    assert.deepEqual(violations(e).map((v) => `${v.rule}:${v.code}`), ['agent/default:no_matching_allow_rule']);
    assert.match(violations(e)[0]!.message, /^call 3 of 3 \(erc20\.transfer 0x6666/);
    assert.equal(await balance(THIEF), 0n);
  });

  test('a session scoped to typed data (x402) cannot sign a user operation sent as PackedUserOperation typed data', async () => {
    const { token: typedOnly } = await provisionAgent(h, { actions: ['evm.typed_data'], policy: { version: 1, rules: [{ name: 'anything', type: 'allow', match: { kinds: ['erc20.transfer'] } }] } });
    const narrow = await airlockAccount({ url: 'http://127.0.0.1', token: typedOnly, fetch: h.fetch });
    const account = await toSimple7702SmartAccount({ client, owner: narrow as unknown as PrivateKeyAccount, implementation: aa.simple7702 });
    const e = await refusal(account.signUserOperation({ sender: narrow.address, nonce: 0n, callData: await account.encodeCalls([transfer(SHOP, 1n)]), ...GAS, ...UNSIGNED, chainId }));
    assert.ok(violations(e).some((v) => v.rule === 'session/actions' && v.code === 'action_not_allowed'), JSON.stringify(violations(e)));
  });

  test('gas and paymaster games: an absurd prefund and an unlisted paymaster are refused with their rules', async () => {
    const account = await toSimple7702SmartAccount({ client, owner: owner as unknown as PrivateKeyAccount, implementation: aa.simple7702 });
    const base = { sender: agentAddress, nonce: await account.getNonce(), callData: await account.encodeCalls([transfer(SHOP, 1n)]), chainId, ...UNSIGNED };
    const greedy = await refusal(account.signUserOperation({ ...base, ...GAS, verificationGasLimit: 5_000_000n, maxFeePerGas: 10n ** 12n }));
    assert.deepEqual(violations(greedy).map((v) => `${v.rule}:${v.code}`), ['agent/gas:prefund_exceeds_cap']);
    const sponsored = await refusal(account.signUserOperation({ ...base, ...GAS, paymaster: PAYMASTER, paymasterVerificationGasLimit: 50_000n, paymasterPostOpGasLimit: 50_000n, paymasterData: '0x' }));
    assert.deepEqual(violations(sponsored).map((v) => `${v.rule}:${v.code}`), ['agent/default:paymaster_not_allowed']);
  });

  test('EIP-7702 attacks: an unlisted delegate, an any-chain authorization, a type-4 transaction relaying another authority', async () => {
    const attackerContract = privateKeyToAccount(generatePrivateKey()).address;
    const unlisted = await refusal(owner.signAuthorization!({ address: attackerContract, chainId, nonce: 5 }));
    assert.deepEqual(violations(unlisted).map((v) => `${v.rule}:${v.code}`), ['agent/delegates:delegate_not_allowed']);
    const anyChain = await refusal(owner.signAuthorization!({ address: aa.simple7702, chainId: 0, nonce: 5 }));
    assert.deepEqual(violations(anyChain).map((v) => `${v.rule}:${v.code}`), ['agent/delegates:delegation_any_chain']);
    // Someone else's authorization to an attacker contract, slipped into a transaction the agent would send.
    const victim = privateKeyToAccount(generatePrivateKey());
    const foreign = await victim.signAuthorization({ address: attackerContract, chainId, nonce: 0 });
    const wallet = createWalletClient({ account: owner, chain: localChain(anvil.rpcUrl, chainId), transport: http(anvil.rpcUrl) });
    const relayed = await refusal(wallet.sendTransaction({ authorizationList: [foreign], to: agentAddress, data: '0x', gas: 100_000n }));
    assert.deepEqual(violations(relayed).map((v) => `${v.rule}:${v.code}`), ['agent/delegates:delegate_not_allowed']);
  });

  test('Coinbase Smart Wallet (v0.6, owner signs the raw userOpHash): the SDK sends the operation, never the bare hash', async () => {
    const address = privateKeyToAccount(generatePrivateKey()).address;
    const bare = await toCoinbaseSmartAccount({ client, owners: [owner], address, version: '1.1' });
    const op = { sender: address, nonce: 0n, callData: await bare.encodeCalls([transfer(SHOP, 7n)]), initCode: '0x' as Hex, paymasterAndData: '0x' as Hex, ...GAS };
    await assert.rejects(bare.signUserOperation({ ...op, chainId } as never), /never signs a bare hash/);
    const account = airlockSmartAccount(bare, owner);
    const wrapped = await account.signUserOperation({ ...op, chainId } as never);
    // Coinbase's wrapper: abi.encode(ownerIndex, signatureData) with signatureData = r || s || v.
    const [{ ownerIndex, signatureData }] = decodeAbiParameters([{ type: 'tuple', components: [{ name: 'ownerIndex', type: 'uint8' }, { name: 'signatureData', type: 'bytes' }] }], wrapped);
    const hash = getUserOperationHash({ chainId, entryPointAddress: bare.entryPoint.address, entryPointVersion: '0.6', userOperation: { ...op, signature: '0x' } as never });
    assert.equal(ownerIndex, 0);
    assert.equal((await recoverAddress({ hash, signature: signatureData })).toLowerCase(), agentAddress.toLowerCase());
    // At the next nonce: another operation over nonce 0 would be refused before policy (nonce_reused).
    const drain = await refusal(account.signUserOperation({ ...op, nonce: 1n, callData: await bare.encodeCalls([transfer(SHOP, 1n), transfer(THIEF, 1n)]), chainId } as never));
    assert.equal(violations(drain)[0]?.code, 'no_matching_allow_rule');
  });

  describe('EntryPoint v0.7 on chain: a Solady account (viem toSoladySmartAccount) owned by the agent', () => {
    let agent7: AirlockAccount;
    let token7: string;
    let account: Awaited<ReturnType<typeof soladyAccount>>;
    const USDC_DAILY = 10_000n;
    /** viem's toSoladySmartAccount over the local factory; the salt starts with the owner, so only the owner's operation can deploy at the address. */
    const soladyAccount = async (owner: AirlockAccount) => airlockSmartAccount(await toSoladySmartAccount({ client, owner, factoryAddress: aa7.soladyFactory, salt: `${owner.address}${'0'.repeat(24)}` }), owner);
    const signOverHttp = async (op: Record<string, unknown>) => {
      const res = await h.fetch('http://127.0.0.1/v1/sign/user-operation', {
        method: 'POST', headers: { authorization: `Bearer ${token7}`, 'content-type': 'application/json' },
        body: JSON.stringify({ chainId, entryPoint: aa7.entryPoint, entryPointVersion: '0.7', signing: 'eip191', userOperation: op }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    before(async () => {
      const asset = `eip155:${chainId}/erc20:${token.toLowerCase()}`;
      const provisioned = await provisionAgent(h, {
        actions: ['evm.user_operation'],
        policy: {
          version: 1,
          rules: [
            { name: 'pay-shop', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [asset] } },
            { name: 'usdc-daily', type: 'budget', asset, max: USDC_DAILY.toString(), window: '24h' },
            { name: 'gas', type: 'user_operations', max_prefund: MAX_PREFUND.toString(), entry_points: [aa7.entryPoint] },
          ],
        },
      });
      token7 = provisioned.token;
      agent7 = await airlockAccount({ url: 'http://127.0.0.1', token: token7, fetch: h.fetch });
      account = await soladyAccount(agent7);
    });

    test('the first operation deploys the account through its factory (initCode) and pays the shop', async () => {
      const address = await account.getAddress();
      assert.equal(await client.getCode({ address }), undefined, 'counterfactual: nothing deployed yet');
      await rpc(anvil.rpcUrl, 'anvil_setBalance', [address, '0xde0b6b3a7640000']);
      await mint(anvil.rpcUrl, token, address, 50_000n);
      const before = await balance(SHOP);
      const { factory, factoryData } = await account.getFactoryArgs();
      assert.equal(factory?.toLowerCase(), aa7.soladyFactory.toLowerCase());
      // Deploying costs verification gas (the proxy and its initialize): 500k, still inside max_prefund.
      const op = { sender: address, nonce: await account.getNonce(), factory, factoryData, callData: await account.encodeCalls([transfer(SHOP, 1_000n)]), ...GAS, verificationGasLimit: 500_000n, ...UNSIGNED };
      const signature = await account.signUserOperation({ ...op, chainId });
      const [event] = await handleOps([{ ...op, signature }], aa7);
      assert.equal(event?.args.success, true);
      assert.equal(event?.args.userOpHash, getUserOperationHash({ chainId, entryPointAddress: aa7.entryPoint, entryPointVersion: '0.7', userOperation: { ...op, signature } }));
      assert.notEqual(await client.getCode({ address }), undefined, 'the factory deployed the account');
      assert.equal((await client.readContract({ address, abi: account.abi, functionName: 'owner' })).toLowerCase(), agent7.address.toLowerCase());
      assert.equal(await balance(SHOP), before + 1_000n);
    });

    test('a batch whose third call drains to an unlisted address is refused with the rule; nothing lands', async () => {
      const callData = await account.encodeCalls([transfer(SHOP, 10n), transfer(SHOP, 10n), transfer(THIEF, 5_000n)]);
      const e = await refusal(account.signUserOperation({ sender: account.address, nonce: await account.getNonce(), callData, ...GAS, ...UNSIGNED, chainId }));
      assert.deepEqual(violations(e).map((v) => `${v.rule}:${v.code}`), ['agent/default:no_matching_allow_rule']);
      assert.match(violations(e)[0]!.message, /^call 3 of 3 \(erc20\.transfer 0x6666/);
      assert.equal(await balance(THIEF), 0n);
    });

    test('one operation per nonce: the same operation again is a free replay, another one over that nonce is nonce_reused and charges nothing', async () => {
      const nonce = await account.getNonce();
      const op = { sender: account.address, nonce, callData: await account.encodeCalls([transfer(SHOP, 2_000n)]), ...GAS, ...UNSIGNED };
      const signature = await account.signUserOperation({ ...op, chainId });
      // The byte-identical operation again: the same signature, not charged again.
      assert.equal(await account.signUserOperation({ ...op, chainId }), signature);
      const replay = await signOverHttp(op);
      assert.equal(replay.status, 200, JSON.stringify(replay.body));
      assert.equal(replay.body.replayed, true);

      // Another operation over the signed nonce (a larger payment, a fee bump): refused before policy, over HTTP and the SDK.
      const larger = { ...op, callData: await account.encodeCalls([transfer(SHOP, 5_000n)]) };
      const http409 = await signOverHttp(larger);
      assert.equal(http409.status, 409, JSON.stringify(http409.body));
      assert.equal(http409.body.error.code, 'nonce_reused');
      assert.equal(http409.body.signature, undefined);
      const bumped = await account.signUserOperation({ ...op, maxFeePerGas: GAS.maxFeePerGas * 2n, chainId }).then(() => assert.fail('signed'), (err: unknown) => err);
      assert.equal(findAirlockError(bumped, AirlockApiError)?.code, 'nonce_reused');

      // Charged so far: 1,000 (the deployment's payment) + 2,000 once. The budget says so at the next nonce.
      const probe = await signOverHttp({ ...op, nonce: nonce + 1n, callData: await account.encodeCalls([transfer(SHOP, USDC_DAILY - 3_000n + 1n)]) });
      assert.equal(probe.status, 403, JSON.stringify(probe.body));
      const budget = probe.body.error.violations.find((v: any) => v.code === 'budget_exceeded');
      assert.deepEqual({ rule: budget.rule, used: budget.used }, { rule: 'agent/usdc-daily', used: '3000' });

      // The one signed operation lands.
      const before = await balance(SHOP);
      const [event] = await handleOps([{ ...op, signature }], aa7);
      assert.deepEqual([event?.args.success, event?.args.nonce], [true, nonce]);
      assert.equal(await balance(SHOP), before + 2_000n);
    });
  });
});
