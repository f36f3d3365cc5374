// A policy that registers a router's ABI, on a real chain: a Uniswap-style router compiled with solc-js and
// deployed on anvil, the trading-agent example of docs/policy.md (its addresses swapped for the local ones),
// Airlock over HTTP on SQLite and PostgreSQL. Signed swaps are sent and settle; refused ones never exist.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWalletClient, encodeFunctionData, http, type Address, type Hex } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { compiledContracts } from './compile.ts';
import { ANVIL_KEYS, balanceOf, deployToken, localAccount, localChain, mint, publicClientFor, rpc } from './token.ts';

const CHAIN_ID = 8453;
const DOC = { usdc: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', weth: '0x4200000000000000000000000000000000000006', router: '0x2626664c2603336e57b271c5c0b26f421741e481' };
const ATTACKER = '0x3333333333333333333333333333333333333333' as Address;
const USDC = (n: number) => BigInt(n) * 1_000_000n;

describe('registered ABI on anvil: a swap router', () => {
  let anvil: Anvil;
  let tokenIn: Address;
  let tokenOut: Address;
  let router: Address;
  let policySource: string;

  before(async () => {
    anvil = await startAnvil({ chainId: CHAIN_ID });
    tokenIn = await deployToken(anvil.rpcUrl);
    tokenOut = await deployToken(anvil.rpcUrl);
    const { TestSwapRouter } = compiledContracts();
    const wallet = createWalletClient({ account: localAccount(ANVIL_KEYS.deployer), chain: localChain(anvil.rpcUrl, CHAIN_ID), transport: http(anvil.rpcUrl) });
    const hash = await wallet.deployContract({ abi: TestSwapRouter.abi, bytecode: TestSwapRouter.bytecode });
    const receipt = await publicClientFor(anvil.rpcUrl, CHAIN_ID).waitForTransactionReceipt({ hash });
    router = receipt.contractAddress!;
    await mint(anvil.rpcUrl, tokenOut, router, USDC(10_000));

    // The docs example as written, with Base's USDC, WETH and SwapRouter02 replaced by the local contracts.
    policySource = docPolicy('docs/policy.md#A trading agent').source;
    for (const [name, local] of [['usdc', tokenIn], ['weth', tokenOut], ['router', router]] as const) {
      assert.ok(policySource.includes(DOC[name]), `the trading example names ${name} ${DOC[name]}`);
      policySource = policySource.replaceAll(DOC[name], local.toLowerCase());
    }
  });
  after(async () => anvil?.stop());

  for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
    describe(store, () => {
      let h: Harness;
      before(async () => {
        h = await startHarness({ store });
      });
      after(async () => h?.close());

      const swapData = (p: { recipient: Address; amountIn: bigint; amountOutMinimum: bigint }): Hex =>
        encodeFunctionData({
          abi: compiledContracts().TestSwapRouter.abi,
          functionName: 'exactInputSingle',
          args: [{ tokenIn, tokenOut, fee: 500, recipient: p.recipient, amountIn: p.amountIn, amountOutMinimum: p.amountOutMinimum, sqrtPriceLimitX96: 0n }],
        } as never);

      async function sign(token: string, from: Address, to: Address, data: Hex) {
        const nonce = await publicClientFor(anvil.rpcUrl, CHAIN_ID).getTransactionCount({ address: from, blockTag: 'pending' });
        const transaction = { type: 'eip1559', to, value: '0', data, nonce, gas: '200000', maxFeePerGas: '3000000000', maxPriorityFeePerGas: '1000000' };
        return h.call('POST', '/v1/sign/transaction', { token, body: { chainId: CHAIN_ID, transaction } });
      }
      async function send(signedTransaction: Hex) {
        const hash = (await rpc(anvil.rpcUrl, 'eth_sendRawTransaction', [signedTransaction])) as Hex;
        const receipt = await publicClientFor(anvil.rpcUrl, CHAIN_ID).waitForTransactionReceipt({ hash });
        assert.equal(receipt.status, 'success');
      }
      const codesOf = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`);

      test('a swap back to the agent is signed and settles; another recipient, a bigger amountIn and bad calldata are refused; amountIn counts in the budget', async () => {
        const assetIn = `eip155:${CHAIN_ID}/erc20:${tokenIn.toLowerCase()}`;
        const { agent, token } = await provisionAgent(h, { actions: ['evm.transaction'], chains: [`eip155:${CHAIN_ID}`], budgets: [{ asset: assetIn, max: USDC(200).toString(), window: '1h' }] });
        const set = await h.admin('PUT', `/v1/policies/${agent.name}`, { source: policySource });
        assert.equal(set.status, 200, JSON.stringify(set.body));
        assert.deepEqual(set.body.warnings, []);
        const self = agent.address as Address;
        await rpc(anvil.rpcUrl, 'anvil_setBalance', [self, '0xde0b6b3a7640000']);
        await mint(anvil.rpcUrl, tokenIn, self, USDC(1_000));

        const approveData = encodeFunctionData({ abi: compiledContracts().TestUSDC.abi, functionName: 'approve', args: [router, USDC(100)] } as never);
        const approved = await sign(token, self, tokenIn, approveData);
        assert.equal(approved.status, 200, JSON.stringify(approved.body));
        await send(approved.body.signedTransaction);

        const toAttacker = await sign(token, self, router, swapData({ recipient: ATTACKER, amountIn: USDC(60), amountOutMinimum: USDC(59) }));
        assert.equal(toAttacker.status, 403);
        assert.deepEqual(codesOf(toAttacker), ['agent/swap argument_constraint_failed']);
        const tooBig = await sign(token, self, router, swapData({ recipient: self, amountIn: USDC(300), amountOutMinimum: USDC(299) }));
        assert.equal(tooBig.status, 403);
        assert.ok(codesOf(tooBig).includes('agent/swap-size amount_exceeds_max'), JSON.stringify(tooBig.body));
        const garbled = await sign(token, self, router, `${swapData({ recipient: self, amountIn: USDC(1), amountOutMinimum: 1n })}00` as Hex);
        assert.equal(garbled.status, 403);
        assert.deepEqual(codesOf(garbled), ['agent/abis.swap-router abi_decode_failed']);

        const swapped = await sign(token, self, router, swapData({ recipient: self, amountIn: USDC(60), amountOutMinimum: USDC(59) }));
        assert.equal(swapped.status, 200, JSON.stringify(swapped.body));
        assert.deepEqual(swapped.body.allowedBy, ['agent/swap']);
        assert.match(swapped.body.intent.summary, /^call exactInputSingle on 0x[0-9a-f]{40} spending 60000000 of /);
        await send(swapped.body.signedTransaction);
        assert.equal(await balanceOf(anvil.rpcUrl, tokenIn, self), USDC(940));
        assert.equal(await balanceOf(anvil.rpcUrl, tokenOut, self), USDC(60));
        assert.equal(await balanceOf(anvil.rpcUrl, tokenOut, ATTACKER), 0n);

        // The session budget has seen the 100 USDC approval and the 60 USDC swap: another 60 does not fit.
        const again = await sign(token, self, router, swapData({ recipient: self, amountIn: USDC(60), amountOutMinimum: USDC(59) }));
        assert.equal(again.status, 403);
        const budget = again.body.error.violations.find((v: any) => v.code === 'budget_exceeded');
        assert.deepEqual({ rule: budget.rule, used: budget.used, requested: budget.requested }, { rule: 'session/budget-0', used: USDC(160).toString(), requested: USDC(60).toString() });

        const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&decision=allow`);
        const swapEntry = audit.body.entries.find((e: any) => e.seq === swapped.body.auditSeq);
        assert.equal(swapEntry.data.intent.call.args.params.amountIn, USDC(60).toString());
      });
    });
  }
});
