// EIP-7702 authorization nonces above 2^53-1. viem hashes and serializes an authorization with a JS number:
// such a nonce was rounded or failed after decoding, a 500 with no audit entry. It is refused at decoding,
// `invalid_amount` naming the field, audited like any bad input, on both routes that carry authorizations;
// 2^53-1 itself still signs, over the exact nonce.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { privateKeyToAccount } from 'viem/accounts';
import { recoverAuthorizationAddress } from 'viem/utils';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const DELEGATE = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const BOB = '0xb0b0000000000000000000000000000000000b0b';
const OTHER = privateKeyToAccount(`0x${'42'.repeat(32)}`);

describe('EIP-7702 authorization nonces beyond 2^53-1', () => {
  let h: Harness;
  let token: string;
  let agent: { id: string; address: string };
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
    const policy = { version: 1, rules: [
      { name: 'delegate', type: 'allow', match: { actions: ['evm.authorization', 'evm.transaction'], chains: ['eip155:8453'] } },
      { name: 'simple7702-only', type: 'delegations', allow: [DELEGATE] },
      { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    ] };
    ({ token, agent } = await provisionAgent(h, { policy, actions: ['evm.authorization', 'evm.transaction'] }));
  });
  after(async () => h.close());

  async function refused(res: { status: number; body: any }, field: string) {
    assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.error.code, 'invalid_amount');
    assert.match(res.body.error.message, new RegExp(`^${field.replace(/[[\]]/g, '\\$&')} is larger than 2\\^53-1`));
    assert.equal(res.body.signature, undefined);
    assert.equal(res.body.signedTransaction, undefined);
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
    assert.equal(audit.type, 'sign.request');
    assert.equal(audit.data.errorCode, 'invalid_amount');
  }

  test('POST /v1/sign/authorization: 2^64-1 and 2^53 are refused invalid_amount and audited; 2^53-1 signs over that nonce', async () => {
    for (const nonce of ['18446744073709551615', '9007199254740992', '0x20000000000000']) {
      await refused(await h.call('POST', '/v1/sign/authorization', { token, body: { chainId: 8453, authorization: { address: DELEGATE, chainId: 8453, nonce } } }), 'authorization.nonce');
    }
    const max = Number.MAX_SAFE_INTEGER;
    const ok = await h.call('POST', '/v1/sign/authorization', { token, body: { chainId: 8453, authorization: { address: DELEGATE, chainId: 8453, nonce: String(max) } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    const authority = await recoverAuthorizationAddress({ authorization: { address: DELEGATE, chainId: 8453, nonce: max }, signature: ok.body.signature });
    assert.equal(authority.toLowerCase(), agent.address.toLowerCase());
  });

  test("a type-4 transaction whose authorization list carries a nonce of 2^53+1: refused invalid_amount and audited", async () => {
    const transaction = { type: 'eip7702', to: BOB, nonce: 0, gas: '100000', maxFeePerGas: '1', maxPriorityFeePerGas: '1' };
    const entry = { address: DELEGATE, chainId: 8453, nonce: '9007199254740993', r: '0x01', s: '0x01', yParity: 0 };
    await refused(await h.call('POST', '/v1/sign/transaction', { token, body: { chainId: 8453, transaction: { ...transaction, authorizationList: [entry] } } }), 'transaction.authorizationList[0].nonce');
    // Another account's authorization at 2^53-1 is carried: its authority is recovered over the exact nonce.
    const theirs = await OTHER.signAuthorization({ address: DELEGATE, chainId: 8453, nonce: Number.MAX_SAFE_INTEGER });
    const ok = await h.call('POST', '/v1/sign/transaction', { token, body: { chainId: 8453, transaction: { ...transaction, authorizationList: [{ address: DELEGATE, chainId: 8453, nonce: String(Number.MAX_SAFE_INTEGER), r: theirs.r, s: theirs.s, yParity: theirs.yParity }] } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.id}&order=newest&limit=1`)).body.entries[0];
    assert.match(JSON.stringify(audit.data), new RegExp(OTHER.address.toLowerCase()));
  });
});
