// A chainless EIP-3009 authorization signed under an EIP-712 domain with a `salt` cannot be cancelled by revoke-all:
// the lifecycle path signs no salt, and the token checks a CancelAuthorization under its own (salted) domain. The
// grant recorded only the domain's name and version, so revoke-all signed the cancellation under the domain without
// the salt, a signature the token rejects, and reported the step submitted while the authorization stayed usable
// (found by review). It is now reported unplanned (`domain_unsupported`, naming the salt) and no step is planned.
// SQLite and PostgreSQL: the grant's domain is a JSON column in both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainReader } from '@airlock/core';
import { ALICE, BASE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, type Harness, type StoreKind } from './testing/harness.ts';

const policy = {
  version: 1,
  rules: [
    { name: 'pay-alice', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } },
    { name: 'usdc-daily', type: 'budget', asset: USDC_ASSET, max: '10000000000', window: '24h', scope: 'agent' },
  ],
};
const NONCE = `0x${'0c'.repeat(32)}`;
const SALT = `0x${'5a'.repeat(32)}`;

/** Base, where the authorization's nonce is not used yet: the grant reads live. */
const baseReader = {
  supports: (chain: string) => chain === BASE,
  async latestBlockTimestamp() { return Math.floor(Date.now() / 1000); },
  async pinnedBlock() { return { tag: 'finalized', number: 1n, timestamp: Math.floor(Date.now() / 1000) }; },
  async authorizationState() { return false; },
} as unknown as ChainReader;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`revoke-all and a chainless authorization over a salted domain (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store, chainReader: baseReader });
  });
  after(async () => {
    await h?.close();
  });

  test('reported unplanned as domain_unsupported, naming the salt; no cancellation is signed or submitted', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['evm.typed_data'] });
    const validBefore = Math.floor(Date.now() / 1000) + 30 * 24 * 3600;
    const { typedData } = usdcAuthorization(agent.address, ALICE, 800_000_000n, validBefore, NONCE);
    const { chainId: _chainId, ...chainless } = typedData.domain;
    const signed = await h.call('POST', '/v1/sign/typed-data', { token, body: { chainId: 8453, typedData: { ...typedData, domain: { ...chainless, salt: SALT } } } });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const ref = { auditSeq: signed.body.auditSeq, index: 0, kind: 'eip3009.authorization' };

    const report = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    const mine = <T extends { grants: unknown[] }>(list: T[]) => list.filter((x) => JSON.stringify(x.grants) === JSON.stringify([ref]));
    assert.deepEqual(mine(report.body.steps), [], 'no cancellation step: it could not verify');
    const unplanned = mine(report.body.unplanned as { grants: unknown[]; reason: string; message: string }[]);
    assert.deepEqual(unplanned.map((u) => u.reason), ['domain_unsupported']);
    assert.match(unplanned[0]!.message, new RegExp(`salt \\(${SALT}\\)`));
    const jobs = (await h.admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs as unknown[];
    assert.deepEqual(jobs, [], 'nothing signed or sent');
  });
});
