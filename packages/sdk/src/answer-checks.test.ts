// The SDK checks Airlock's answers before the caller sees them: a signature or signed transaction rewritten in
// transit (plain-http AIRLOCK_URL, a compromised proxy) throws AirlockApiError `invalid_response`, it is never
// handed to viem, ethers, the x402 client or the caller. The agent talks to a real Airlock over HTTP through a
// man in the middle (a `fetch` that forwards every request and rewrites chosen answers); the forgeries are the
// agent's own genuine signatures of other requests (replayed) and signatures by another key. With the middle
// passing everything through, the same calls succeed and their results verify with viem, ethers and bip322-js.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as bitcoin from 'bitcoinjs-lib';
import { Signer, Verifier } from 'bip322-js';
import { parseEther, parseTransaction, recoverTransactionAddress, verifyMessage, verifyTypedData, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { verifyMessage as ethersVerifyMessage, verifyTypedData as ethersVerifyTypedData, type TypedDataField } from 'ethers';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';
import { ECPair, TestWallet } from '../../testing/src/bitcoin/wallet.ts';
import { airlockAccount } from './account.ts';
import { airlockBitcoinWallet } from './bitcoin.ts';
import { airlockEthersSigner } from './ethers.ts';
import { AirlockApiError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { airlockX402Signer } from './x402.ts';

const CHAIN = 'eip155:31337';
const ETH = `${CHAIN}/slip44:60`;
const FRIEND = '0x1111111111111111111111111111111111111111' as Address;
const OTHER_FRIEND = '0x3333333333333333333333333333333333333333' as Address;
const ORDERS = '0xcccccccccccccccccccccccccccccccccccccccc' as Address;
const LOGIN = 'Sign in to airlock.test';
const PROOF = 'airlock proof of reserves: ';
const REGTEST = bitcoin.networks.regtest;
const mallory = privateKeyToAccount(`0x${'42'.repeat(32)}`);

const POLICY = {
  version: 1,
  rules: [
    { name: 'eth-to-friends', type: 'allow', match: { chains: [CHAIN], kinds: ['native.transfer'], to: [FRIEND, OTHER_FRIEND] } },
    { name: 'eth-per-request', type: 'max_amount', asset: ETH, max: parseEther('1').toString() },
    { name: 'orders', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['Order'], domains: [{ chain_id: 31337, verifying_contract: ORDERS, name: 'Airlock Test Exchange' }] } },
    { name: 'login', type: 'allow', match: { actions: ['evm.message'], message: { prefix: LOGIN } } },
    { name: 'proofs', type: 'allow', match: { actions: ['bitcoin.message'], message: { prefix: PROOF } } },
  ],
};

const order = (maker: Address, amount: bigint) =>
  ({
    domain: { name: 'Airlock Test Exchange', version: '1', chainId: 31337, verifyingContract: ORDERS },
    types: { Order: [{ name: 'maker', type: 'address' }, { name: 'amount', type: 'uint256' }] },
    primaryType: 'Order',
    message: { maker, amount },
  }) as const;

/** The same typed data as ethers takes it (mutable field lists). */
const ethersTypes = (typed: ReturnType<typeof order>) => typed.types as unknown as Record<string, TypedDataField[]>;

const transfer = (to: Address, value: bigint, nonce: number) =>
  ({ chainId: 31337, type: 'eip1559', to, value, nonce, gas: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n }) as const;

/** What a promise settled to: the value, or the code of the AirlockApiError it threw (anything else fails). */
async function outcome<T>(p: Promise<T>): Promise<{ accepted: T } | { refused: string }> {
  try {
    return { accepted: await p };
  } catch (e) {
    assert.ok(e instanceof AirlockApiError, `expected an AirlockApiError, got ${String(e)}`);
    return { refused: e.code };
  }
}

/** Rewrites of Airlock's JSON answers, by request path; everything else passes through untouched. */
type Rewrites = Map<string, (body: Record<string, unknown>) => Record<string, unknown>>;

/** A man in the middle: forwards to the real Airlock and rewrites the answers `rewrites` names. */
function middle(rewrites: Rewrites): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const rewrite = rewrites.get(new URL(String(input)).pathname);
    if (!rewrite || res.status !== 200) return res;
    const body = rewrite((await res.json()) as Record<string, unknown>);
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };
}

describe('answer checks: the SDK refuses answers that are not the agent\'s signature of its request (invalid_response)', () => {
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-answers-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, { AIRLOCK_BITCOIN_NETWORKS: 'regtest' });
    const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** An agent with the policy above and a session for its EVM and Bitcoin signing; `rewrites` sit between it and Airlock. */
  async function provision() {
    const created = await admin.request<{ agents: { name: string; address: Address }[] }>('POST', '/v1/agents', { names: [uniqueName('answers')] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: POLICY });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message', 'bitcoin.message'] });
    const rewrites: Rewrites = new Map();
    return { agent, rewrites, options: { url: server!.url, token: issued.body.token, fetch: middle(rewrites) } };
  }

  test('honest answers pass: a transaction, typed data and a message through airlockAccount, x402 and ethers signers, a BIP-322 proof', async () => {
    const { agent, options } = await provision();
    const account = await airlockAccount(options);
    const asked = transfer(FRIEND, parseEther('0.01'), 7);
    const signed = await account.signTransaction(asked);
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), agent.address.toLowerCase());
    const tx = parseTransaction(signed);
    assert.deepEqual([tx.to, tx.value, tx.nonce, tx.chainId], [FRIEND, asked.value, 7, 31337]);

    const typed = order(agent.address, 5n);
    assert.ok(await verifyTypedData({ address: agent.address, ...typed, signature: await account.signTypedData(typed) }));
    assert.ok(await verifyMessage({ address: agent.address, message: `${LOGIN} #1`, signature: await account.signMessage({ message: `${LOGIN} #1` }) }));

    const x402 = await airlockX402Signer(options);
    assert.ok(await verifyTypedData({ address: agent.address, ...typed, signature: await x402.signTypedData(typed) }));

    const ethers = await airlockEthersSigner(options);
    assert.equal(ethersVerifyMessage(`${LOGIN} #2`, await ethers.signMessage(`${LOGIN} #2`)).toLowerCase(), agent.address.toLowerCase());
    const ethersSig = await ethers.signTypedData(typed.domain, ethersTypes(typed), typed.message);
    assert.equal(ethersVerifyTypedData(typed.domain, ethersTypes(typed), typed.message, ethersSig).toLowerCase(), agent.address.toLowerCase());

    const wallet = airlockBitcoinWallet(options);
    const mine = await wallet.address({ network: 'regtest', type: 'p2tr', index: 3 });
    const proof = await wallet.signMessage({ message: `${PROOF}honest`, network: 'regtest', addressType: 'p2tr', index: 3 });
    assert.equal(proof.address, mine.address);
    assert.ok(Verifier.verifySignature(mine.address, `${PROOF}honest`, proof.signature));
  });

  test('airlockAccount.signTransaction: another of the agent\'s transactions, or one signed by another key, is refused', async () => {
    const { rewrites, options } = await provision();
    const account = await airlockAccount(options);
    // A genuine transaction of the agent's, for another recipient and amount: replayed as the answer to the next request.
    const genuine = await account.signTransaction(transfer(OTHER_FRIEND, parseEther('0.5'), 0));
    rewrites.set('/v1/sign/transaction', (body) => ({ ...body, signedTransaction: genuine }));
    assert.deepEqual(await outcome(account.signTransaction(transfer(FRIEND, parseEther('0.01'), 0))), { refused: 'invalid_response' });
    // Same recipient and amount, another nonce (a replay of an older transaction): refused too.
    const older = (rewrites.delete('/v1/sign/transaction'), await account.signTransaction(transfer(FRIEND, parseEther('0.01'), 1)));
    rewrites.set('/v1/sign/transaction', (body) => ({ ...body, signedTransaction: older }));
    assert.deepEqual(await outcome(account.signTransaction(transfer(FRIEND, parseEther('0.01'), 2))), { refused: 'invalid_response' });
    // Exactly the transaction asked for, signed by another key.
    const asked = transfer(FRIEND, parseEther('0.01'), 3);
    const forged = await mallory.signTransaction(asked);
    rewrites.set('/v1/sign/transaction', (body) => ({ ...body, signedTransaction: forged }));
    assert.deepEqual(await outcome(account.signTransaction(asked)), { refused: 'invalid_response' });
    rewrites.set('/v1/sign/transaction', (body) => ({ ...body, signedTransaction: '0x02deadbeef' }));
    assert.deepEqual(await outcome(account.signTransaction(asked)), { refused: 'invalid_response' });
  });

  test('typed data (airlockAccount, the x402 signer, ethers): the agent\'s signature of other data, or another key\'s, is refused', async () => {
    const { agent, rewrites, options } = await provision();
    const account = await airlockAccount(options);
    const x402 = await airlockX402Signer(options);
    const ethers = await airlockEthersSigner(options);
    const asked = order(agent.address, 5n);
    const other = await account.signTypedData(order(agent.address, 5_000_000n)); // genuine, over another amount
    const forged = await mallory.signTypedData(asked); // over the data asked, by another key
    for (const signature of [other, forged]) {
      rewrites.set('/v1/sign/typed-data', (body) => ({ ...body, signature }));
      assert.deepEqual(await outcome(account.signTypedData(asked)), { refused: 'invalid_response' });
      assert.deepEqual(await outcome(x402.signTypedData(asked)), { refused: 'invalid_response' });
      assert.deepEqual(await outcome(ethers.signTypedData(asked.domain, ethersTypes(asked), asked.message)), { refused: 'invalid_response' });
    }
  });

  test('messages (airlockAccount, ethers): the agent\'s signature of another message is refused', async () => {
    const { rewrites, options } = await provision();
    const account = await airlockAccount(options);
    const ethers = await airlockEthersSigner(options);
    const other = await account.signMessage({ message: `${LOGIN} yesterday` });
    rewrites.set('/v1/sign/message', (body) => ({ ...body, signature: other }));
    assert.deepEqual(await outcome(account.signMessage({ message: `${LOGIN} today` })), { refused: 'invalid_response' });
    assert.deepEqual(await outcome(ethers.signMessage(`${LOGIN} today`)), { refused: 'invalid_response' });
  });

  test('airlockBitcoinWallet.signMessage: a valid proof for another address, the agent\'s own or another wallet\'s, is refused', async () => {
    const { rewrites, options } = await provision();
    const wallet = airlockBitcoinWallet(options);
    const message = `${PROOF}withdrawal address`;
    // The agent's genuine proof, by its address at index 1, answered for a request for index 0.
    const index1 = await wallet.signMessage({ message, network: 'regtest', addressType: 'p2wpkh', index: 1 });
    rewrites.set('/v1/sign/bitcoin-message', (body) => ({ ...body, address: index1.address, signature: index1.signature }));
    assert.deepEqual(await outcome(wallet.signMessage({ message, network: 'regtest', addressType: 'p2wpkh' })), { refused: 'invalid_response' });
    // Another wallet's address with its own valid proof.
    const theirs = TestWallet.stranger('answer checks: attacker', 'regtest').key('p2wpkh', 0, 0);
    const signature = Signer.sign(ECPair.fromPrivateKey(Buffer.from(theirs.privateKey!), { network: REGTEST }).toWIF(), theirs.address, message) as string;
    assert.ok(Verifier.verifySignature(theirs.address, message, signature));
    rewrites.set('/v1/sign/bitcoin-message', (body) => ({ ...body, address: theirs.address, signature }));
    assert.deepEqual(await outcome(wallet.signMessage({ message, network: 'regtest', addressType: 'p2wpkh' })), { refused: 'invalid_response' });
  });
});

describe('answer checks without a server: authorizations and user operations signed by another key are refused', () => {
  const AGENT = privateKeyToAccount(`0x${'07'.repeat(32)}`).address;
  const token = `ses_0123456789abcdef.${'A'.repeat(43)}`;
  const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

  test('signAuthorization and a userOpHash signature by another key', async () => {
    const answers: Record<string, unknown> = {};
    const fake: typeof fetch = async (input) => {
      const path = new URL(String(input)).pathname;
      if (path === '/v1/session') return json({ agent: { address: AGENT } });
      return path in answers ? json(answers[path]) : new Response('{}', { status: 404 });
    };
    const account = await airlockAccount({ url: 'http://airlock.example', token, fetch: fake });
    const authorization = { address: ORDERS, chainId: 31337, nonce: 0 };
    const forgedAuthorization = await mallory.signAuthorization({ ...authorization });
    answers['/v1/sign/authorization'] = { signature: `0x${forgedAuthorization.r.slice(2)}${forgedAuthorization.s.slice(2)}${(27 + forgedAuthorization.yParity!).toString(16)}` };
    assert.deepEqual(await outcome(account.signAuthorization!(authorization)), { refused: 'invalid_response' });

    const hash = account.expectUserOperation({
      chainId: 31337,
      entryPoint: { address: '0x0000000071727De22E5E9d8BAf0edAc6f37da032', version: '0.7' },
      userOperation: { sender: FRIEND, nonce: 0n, callData: '0x', callGasLimit: 1n, verificationGasLimit: 1n, preVerificationGas: 1n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, signature: '0x' },
    });
    answers['/v1/sign/user-operation'] = { signature: await mallory.sign({ hash }), intent: { userOperation: { hash } } };
    assert.deepEqual(await outcome(account.sign!({ hash })), { refused: 'invalid_response' });
    answers['/v1/sign/user-operation'] = { signature: await mallory.signMessage({ message: { raw: hash } }), intent: { userOperation: { hash } } };
    assert.deepEqual(await outcome(account.signMessage({ message: { raw: hash } })), { refused: 'invalid_response' });
    // The agent's key, over the hash: accepted.
    const agentKey = privateKeyToAccount(`0x${'07'.repeat(32)}`);
    answers['/v1/sign/user-operation'] = { signature: await agentKey.sign({ hash }), intent: { userOperation: { hash } } };
    assert.equal(await account.sign!({ hash }), await agentKey.sign({ hash }));
  });
});
