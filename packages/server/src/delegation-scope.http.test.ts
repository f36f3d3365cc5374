// A `delegations` rule (the EIP-7702 delegate allowlist) or a `user_operations` paymaster list scoped by `match`
// guards only what its match covers; found by review: the default deny asked only whether ANY such rule existed
// (governsDelegations, paymasterListedBy), while the rule itself passes a request its match leaves out. So a
// delegations rule scoped to Base had an authorization handing the whole account to any contract signed on Base
// Sepolia, and a paymaster list scoped to Base had any paymaster signed on Optimism. The default now asks whether
// a rule WHOSE MATCH APPLIES lists it: outside every such rule, delegations and paymasters are refused. Over HTTP on
// both stores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, parseAbi } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { ALICE, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const SIMPLE7702 = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const ATTACKER_DELEGATE = '0x6666666666666666666666666666666666666666';
const ROGUE_PAYMASTER = '0x7777777777777777777777777777777777777777';
const GOOD_PAYMASTER = '0x2222222222222222222222222222222222222222';
const ENTRY_POINT_V07 = '0x0000000071727de22e5e9d8baf0edac6f37da032';
const ACCOUNT_ABI = parseAbi(['function execute(address target, uint256 value, bytes data)']);
const OTHER = privateKeyToAccount(`0x${'42'.repeat(32)}`);

const codes = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`).sort();

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`allowlists scoped by match guard only their match; elsewhere the default deny holds (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => h.close());

  test('a delegations rule scoped to Base: on Base Sepolia an authorization to any delegate, listed or not, is refused delegate_not_allowed (default deny)', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'delegate', type: 'allow', match: { actions: ['evm.authorization'], chains: ['eip155:8453', 'eip155:84532'] } },
        { name: 'simple7702-on-base', type: 'delegations', allow: [SIMPLE7702], match: { chains: ['eip155:8453'] } },
      ],
    };
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.authorization'] });
    const sign = (chainId: number, address: string, nonce: number) =>
      h.call('POST', '/v1/sign/authorization', { token, body: { chainId, authorization: { address, chainId, nonce } } });
    // Where the rule applies, it decides: the listed delegate signs, another is refused by the rule.
    const listed = await sign(8453, SIMPLE7702, 0);
    assert.equal(listed.status, 200, JSON.stringify(listed.body).slice(0, 300));
    const onBase = await sign(8453, ATTACKER_DELEGATE, 1);
    assert.equal(onBase.status, 403);
    assert.deepEqual(codes(onBase), ['agent/simple7702-on-base delegate_not_allowed']);
    // Outside its match no rule lists a delegate: refused, whichever delegate.
    for (const [i, delegate] of [ATTACKER_DELEGATE, SIMPLE7702].entries()) {
      const res = await sign(84532, delegate, i);
      assert.equal(res.status, 403, `signed a delegation of the whole account to ${delegate} outside the delegations rule's match: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.equal(res.body.error.code, 'policy_denied');
      assert.deepEqual(codes(res), ['agent/default delegate_not_allowed']);
      assert.match(res.body.error.violations[0].message, /whose match applies/);
      assert.equal(res.body.signature, undefined);
    }
    const entry = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
    assert.equal(entry.decision, 'deny');
  });

  test('a delegations rule scoped to the authorization action does not lift the default for the authorizations a type-4 transaction carries', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'pay-alice', type: 'allow', match: { actions: ['evm.transaction'], kinds: ['native.transfer'], to: [ALICE] } },
        { name: 'delegate', type: 'allow', match: { actions: ['evm.authorization'] } },
        { name: 'simple7702-alone', type: 'delegations', allow: [SIMPLE7702], match: { actions: ['evm.authorization'] } },
      ],
    };
    const { token } = await provisionAgent(h, { policy, actions: ['evm.authorization', 'evm.transaction'] });
    const theirs = await OTHER.signAuthorization({ address: ATTACKER_DELEGATE, chainId: 8453, nonce: 0 });
    const transaction = {
      type: 'eip7702', to: ALICE, value: '0', nonce: 0, gas: '100000', maxFeePerGas: '1', maxPriorityFeePerGas: '1',
      authorizationList: [{ address: ATTACKER_DELEGATE, chainId: 8453, nonce: 0, r: theirs.r, s: theirs.s, yParity: theirs.yParity }],
    };
    const res = await h.call('POST', '/v1/sign/transaction', { token, body: { chainId: 8453, transaction } });
    assert.equal(res.status, 403, `signed a type-4 transaction delegating to ${ATTACKER_DELEGATE}: ${JSON.stringify(res.body).slice(0, 300)}`);
    assert.deepEqual(codes(res), ['agent/default delegate_not_allowed']);
    assert.equal(res.body.signedTransaction, undefined);
  });

  test('a user_operations paymaster list scoped to Base: on Optimism any paymaster, listed there or not, is refused paymaster_not_allowed (default deny)', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'pay', type: 'allow', match: { actions: ['evm.user_operation'], kinds: ['native.transfer'], to: [ALICE] } },
        { name: 'base-paymaster', type: 'user_operations', paymasters: [GOOD_PAYMASTER], match: { chains: ['eip155:8453'] } },
      ],
    };
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.user_operation'] });
    const op = (chainId: number, paymaster: string, nonce: number) => ({
      chainId, entryPoint: ENTRY_POINT_V07, entryPointVersion: '0.7',
      userOperation: {
        sender: agent.address, nonce: String(nonce),
        callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'execute', args: [ALICE, 1n, '0x'] }),
        callGasLimit: '100000', verificationGasLimit: '100000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
        paymaster, paymasterVerificationGasLimit: '100000', paymasterPostOpGasLimit: '100000', paymasterData: '0x',
      },
    });
    const sign = (chainId: number, paymaster: string, nonce: number) => h.call('POST', '/v1/sign/user-operation', { token, body: op(chainId, paymaster, nonce) });
    const listed = await sign(8453, GOOD_PAYMASTER, 1);
    assert.equal(listed.status, 200, JSON.stringify(listed.body).slice(0, 300));
    const onBase = await sign(8453, ROGUE_PAYMASTER, 2);
    assert.equal(onBase.status, 403);
    assert.deepEqual(codes(onBase), ['agent/base-paymaster paymaster_not_allowed']);
    for (const [i, paymaster] of [ROGUE_PAYMASTER, GOOD_PAYMASTER].entries()) {
      const res = await sign(10, paymaster, 3 + i);
      assert.equal(res.status, 403, `signed an operation naming paymaster ${paymaster} outside the paymaster list's match: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.deepEqual(codes(res), ['agent/default paymaster_not_allowed']);
      assert.equal(res.body.signature, undefined);
    }
  });

  test('an unscoped list alongside a scoped one: the unscoped list decides outside the scoped one\'s match', async () => {
    const policy = {
      version: 1,
      rules: [
        { name: 'pay', type: 'allow', match: { actions: ['evm.user_operation'], kinds: ['native.transfer'], to: [ALICE] } },
        { name: 'base-paymaster', type: 'user_operations', paymasters: [ROGUE_PAYMASTER], match: { chains: ['eip155:8453'] } },
        { name: 'everywhere', type: 'user_operations', paymasters: [GOOD_PAYMASTER] },
      ],
    };
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.user_operation'] });
    const sign = (paymaster: string, nonce: number) => h.call('POST', '/v1/sign/user-operation', {
      token,
      body: {
        chainId: 10, entryPoint: ENTRY_POINT_V07, entryPointVersion: '0.7',
        userOperation: {
          sender: agent.address, nonce: String(nonce),
          callData: encodeFunctionData({ abi: ACCOUNT_ABI, functionName: 'execute', args: [ALICE, 1n, '0x'] }),
          callGasLimit: '100000', verificationGasLimit: '100000', preVerificationGas: '50000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000',
          paymaster, paymasterVerificationGasLimit: '100000', paymasterPostOpGasLimit: '100000', paymasterData: '0x',
        },
      },
    });
    assert.equal((await sign(GOOD_PAYMASTER, 1)).status, 200);
    const rogue = await sign(ROGUE_PAYMASTER, 2);
    assert.equal(rogue.status, 403);
    assert.deepEqual(codes(rogue), ['agent/everywhere paymaster_not_allowed']);
  });
});
