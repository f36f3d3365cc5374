// Airlock as one owner of a 2-of-3 Safe (Safe 1.5.0 from @safe-global/safe-smart-account, on anvil): the agent
// co-signs through the SDK's viem account, a local test key stands for a human owner, and execTransaction checks
// both signatures on chain. The policy is docs/smart-accounts.md's example as written, local addresses swapped in.
// Every refused co-signature is refused over HTTP with its rule and code, and charges nothing. Run on SQLite and on
// PostgreSQL: the charge, the replay and the one-SafeTx-per-nonce claim are the store's.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFunctionData, erc20Abi, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { airlockAccount, AirlockPolicyError, findAirlockError } from '@airlock/sdk';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { createSafe, deploySafeStack, execSafeTx, multiSendData, ownerSignature, safeNonce, safeTx, safeTxTypedData, MULTI_SEND_CALL_ONLY, type SafeTx } from './safe.ts';
import { balanceOf, deployToken, mint } from './token.ts';

const CHAIN_ID = 8453;
const DOC = { usdc: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', safe: '0x5afe00000000000000000000000000000000cafe', partner: '0x1111111111111111111111111111111111111111' };
const ATTACKER = '0x3333333333333333333333333333333333333333' as Address;
const USDC = (n: number) => BigInt(n) * 1_000_000n;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Safe multisig on anvil: Airlock co-signs as one owner of a 2-of-3 Safe (${store})`, () => {
  let anvil: Anvil;
  let h: Harness;
  let usdc: Address;
  let safe: Address;
  let partner: Address;
  let token: string;
  const human = generatePrivateKey();
  const otherHuman = generatePrivateKey();

  before(async () => {
    anvil = await startAnvil({ chainId: CHAIN_ID });
    usdc = await deployToken(anvil.rpcUrl);
    const stack = await deploySafeStack(anvil.rpcUrl, CHAIN_ID);
    h = await startHarness({ store });
    partner = privateKeyToAccount(generatePrivateKey()).address;

    const provisioned = await provisionAgent(h, { actions: ['evm.typed_data'], chains: [`eip155:${CHAIN_ID}`] });
    token = provisioned.token;
    const owners = [provisioned.agent.address as Address, privateKeyToAccount(human).address, privateKeyToAccount(otherHuman).address];
    safe = await createSafe(anvil.rpcUrl, CHAIN_ID, stack, owners, 2);
    await mint(anvil.rpcUrl, usdc, safe, USDC(1_000));

    let source = docPolicy('docs/smart-accounts.md#Safe multisig').source;
    for (const [name, local] of [['usdc', usdc], ['safe', safe], ['partner', partner]] as const) {
      assert.ok(source.includes(DOC[name]), `the Safe example names ${name} ${DOC[name]}`);
      source = source.replaceAll(DOC[name], local.toLowerCase());
    }
    const set = await h.admin('PUT', `/v1/policies/${provisioned.agent.name}`, { source });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.warnings, []);
  });
  after(async () => {
    await h?.close();
    await anvil?.stop();
  });

  const transferData = (to: Address, amount: bigint): Hex => encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
  /** The agent's co-signature over HTTP, as the SDK's viem account asks for it. */
  const signOverHttp = (tx: SafeTx) => h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: JSON.parse(JSON.stringify(safeTxTypedData(safe, CHAIN_ID, tx), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) } });
  const codesOf = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => `${v.rule} ${v.code}`);

  test('an allowed payment is co-signed through the SDK account and executes; one owner alone cannot execute it', async () => {
    const account = await airlockAccount({ url: 'http://127.0.0.1', token, fetch: h.fetch });
    const tx = safeTx({ to: usdc, data: transferData(partner, USDC(60)), nonce: await safeNonce(anvil.rpcUrl, CHAIN_ID, safe) });
    const agentSignature = await account.signTypedData(safeTxTypedData(safe, CHAIN_ID, tx));
    const humanSignature = await ownerSignature(human, safe, CHAIN_ID, tx);

    assert.equal(await execSafeTx(anvil.rpcUrl, CHAIN_ID, safe, tx, [humanSignature]), 'reverted', 'one of two signatures');
    assert.equal(await execSafeTx(anvil.rpcUrl, CHAIN_ID, safe, tx, [{ owner: account.address, signature: agentSignature }, humanSignature]), 'success');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(60));
    assert.equal(await safeNonce(anvil.rpcUrl, CHAIN_ID, safe), tx.nonce + 1n);
  });

  test('a MultiSend batch of two payments to partners is decoded call by call, co-signed and executed', async () => {
    const data = multiSendData([{ to: usdc, data: transferData(partner, USDC(10)) }, { to: usdc, data: transferData(partner, USDC(15)) }]);
    const tx = safeTx({ to: MULTI_SEND_CALL_ONLY, operation: 1, data, nonce: await safeNonce(anvil.rpcUrl, CHAIN_ID, safe) });
    const signed = await signOverHttp(tx);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal(signed.body.intent.kind, 'safe.transaction');
    assert.deepEqual(signed.body.intent.safe.calls.map((c: any) => `${c.kind} ${c.to} ${c.spends[0].amount}`), [`erc20.transfer ${partner.toLowerCase()} ${USDC(10)}`, `erc20.transfer ${partner.toLowerCase()} ${USDC(15)}`]);
    assert.deepEqual(signed.body.allowedBy, ['agent/treasury-pays-partners']);
    const agent = { owner: (await h.call('GET', '/v1/session', { token })).body.agent.address as Address, signature: signed.body.signature as Hex };
    assert.equal(await execSafeTx(anvil.rpcUrl, CHAIN_ID, safe, tx, [agent, await ownerSignature(otherHuman, safe, CHAIN_ID, tx)]), 'success');
    assert.equal(await balanceOf(anvil.rpcUrl, usdc, partner), USDC(85));
  });

  test('Airlock cannot be made to co-sign an over-budget payment, a drain in a batch, a DELEGATECALL or a refund drain; nothing is charged', async () => {
    const nonce = await safeNonce(anvil.rpcUrl, CHAIN_ID, safe);
    const attempts: { name: string; tx: SafeTx; expect: string[] }[] = [
      { name: 'over the per-request cap', tx: safeTx({ to: usdc, data: transferData(partner, USDC(150)), nonce }), expect: ['agent/usdc-per-request amount_exceeds_max'] },
      {
        name: 'a drain hidden in the third call of a batch',
        tx: safeTx({ to: MULTI_SEND_CALL_ONLY, operation: 1, nonce, data: multiSendData([{ to: usdc, data: transferData(partner, USDC(5)) }, { to: usdc, data: transferData(partner, USDC(5)) }, { to: usdc, data: transferData(ATTACKER, USDC(80)) }]) }),
        expect: ['agent/default no_matching_allow_rule'],
      },
      { name: 'a DELEGATECALL to an arbitrary contract', tx: safeTx({ to: usdc, operation: 1, data: transferData(ATTACKER, USDC(500)), nonce }), expect: ['agent/default delegatecall_not_allowed'] },
      {
        name: 'a gas refund paying USDC to an attacker',
        tx: safeTx({ to: usdc, data: transferData(partner, USDC(1)), gasPrice: 1_000_000n, gasToken: usdc, refundReceiver: ATTACKER, safeTxGas: 100_000n, nonce }),
        expect: ['agent/default safe_refund_not_allowed', 'agent/usdc-per-request amount_exceeds_max'],
      },
    ];
    for (const a of attempts) {
      const res = await signOverHttp(a.tx);
      assert.equal(res.status, 403, `${a.name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'policy_denied');
      for (const code of a.expect) assert.ok(codesOf(res).includes(code), `${a.name}: ${codesOf(res).join(', ')}`);
      assert.equal(res.body.signature, undefined);
    }
    const drain = await signOverHttp(attempts[1]!.tx);
    assert.match(drain.body.error.violations.find((v: any) => v.code === 'no_matching_allow_rule').message, /^call 3 of 3 \(erc20\.transfer 0x3333/);

    // The SDK account surfaces the same refusal as an AirlockPolicyError.
    const account = await airlockAccount({ url: 'http://127.0.0.1', token, fetch: h.fetch });
    const thrown = await account.signTypedData(safeTxTypedData(safe, CHAIN_ID, attempts[2]!.tx)).then(() => undefined, (e: unknown) => e);
    assert.ok(findAirlockError(thrown, AirlockPolicyError)?.violations.some((v) => v.code === 'delegatecall_not_allowed'));

    // Charged so far: 60 + 25 (both executed). The daily budget is 200: 100 more fits, then nothing over 15.
    const fits = await signOverHttp(safeTx({ to: usdc, data: transferData(partner, USDC(100)), nonce }));
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    const over = await signOverHttp(safeTx({ to: usdc, data: transferData(partner, USDC(16)), nonce: nonce + 1n }));
    assert.equal(over.status, 403);
    const budget = over.body.error.violations.find((v: any) => v.code === 'budget_exceeded');
    assert.deepEqual({ rule: budget.rule, used: budget.used, requested: budget.requested }, { rule: 'agent/usdc-daily', used: USDC(185).toString(), requested: USDC(16).toString() });

    // The same SafeTx again is a replay (same signature, not charged); another one at a signed nonce is refused.
    const replay = await signOverHttp(safeTx({ to: usdc, data: transferData(partner, USDC(100)), nonce }));
    assert.equal(replay.status, 200);
    assert.equal(replay.body.signature, fits.body.signature);
    const sameNonce = await signOverHttp(safeTx({ to: usdc, data: transferData(partner, USDC(1)), nonce }));
    assert.equal(sameNonce.status, 409);
    assert.equal(sameNonce.body.error.code, 'nonce_reused');
    // Neither the replay nor the refusals charged anything: the budget still holds 60 + 25 + 100.
    const after = await signOverHttp(safeTx({ to: usdc, data: transferData(partner, USDC(16)), nonce: nonce + 1n }));
    assert.equal(after.status, 403);
    assert.equal(after.body.error.violations.find((v: any) => v.code === 'budget_exceeded').used, USDC(185).toString());
  });
});
