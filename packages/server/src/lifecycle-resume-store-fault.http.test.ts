// A sweep left `planned` (the daemon died between its plan and its signature) is resumed by the tracker. A store
// read that fails while the resumed plan is judged again is not an answer: the job stays planned and the next pass
// signs, records and broadcasts it, instead of failing it for good (which stranded its nonce and asked the
// operator to sweep by hand). Through the HTTP app on anvil, with the tracker's passes run as the daemon runs them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicClient, http, type Address, type PublicClient } from 'viem';
import { AirlockError } from '@airlock/core';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { rpc } from '../../x402-testbed/src/token.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = 'eip155:31337';
const TREASURY = '0x7ea5000000000000000000000000000000000002';
const ETH = 10n ** 18n;

describe('a resumed sweep when the store fails a read (sqlite)', () => {
  let anvil: Anvil;
  let h: Harness;
  let client: PublicClient;

  before(async () => {
    anvil = await startAnvil();
    client = createPublicClient({ transport: http(anvil.rpcUrl) });
    h = await startHarness({ store: 'sqlite', manualClock: true, config: { evmRpc: { [CHAIN]: anvil.rpcUrl } } });
    const set = await h.admin('PUT', '/v1/policies/fleet', { document: { version: 1, rules: [], lifecycle: { treasury: { [CHAIN]: TREASURY } } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
  });
  after(async () => {
    await h?.close();
    await anvil?.stop();
  });

  test('stays planned and is signed on the next pass; nothing fails, the treasury is paid once', async () => {
    const { agent } = await provisionAgent(h);
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [agent.address, `0x${(ETH / 10n).toString(16)}`]);
    // The crash: the plan is committed, then the process is gone before it signs (as AIRLOCK_FAULT=lifecycle_before_sign).
    const options = (h.airlock.lifecycle as unknown as { options: { beforeSign?: () => void } }).options;
    options.beforeSign = () => { throw new Error('crashed before signing'); };
    await h.admin('POST', `/v1/agents/${agent.id}/sweep`, {});
    delete options.beforeSign;
    const [job] = (await h.admin('GET', `/v1/lifecycle/jobs?agent=${agent.id}`)).body.jobs as any[];
    assert.equal(job.state, 'planned');

    h.clock!.advance(11_000); // past the resume delay
    const store = h.airlock.store as unknown as { getPolicy: (...args: unknown[]) => Promise<unknown> };
    const getPolicy = store.getPolicy;
    let failedReads = 0;
    store.getPolicy = async (...args) => {
      failedReads++;
      throw new AirlockError('store_unavailable', 'the store did not answer');
    };
    try {
      await h.airlock.lifecycle.track();
    } finally {
      store.getPolicy = getPolicy;
    }
    assert.ok(failedReads > 0, 'the resume read the fleet policy');
    const after = (await h.admin('GET', `/v1/lifecycle/jobs/${job.id}`)).body;
    assert.equal(after.state, 'planned', `a failed read is no answer: ${after.failure}`);
    assert.equal((await h.admin('GET', `/v1/audit?type=lifecycle.failed&agent=${agent.id}`)).body.entries.length, 0);

    await h.airlock.lifecycle.track(); // signs, records and broadcasts
    // Then reads the receipt: anvil mines at once, but on a loaded machine the receipt may come a pass later (CI
    // saw `submitted` after one reading pass). The passes are bounded; a second signature would show below.
    let done = (await h.admin('GET', `/v1/lifecycle/jobs/${job.id}`)).body;
    for (let pass = 0; pass < 50 && done.state !== 'mined'; pass++) {
      if (pass > 0) await new Promise((r) => setTimeout(r, 100));
      await h.airlock.lifecycle.track();
      done = (await h.admin('GET', `/v1/lifecycle/jobs/${job.id}`)).body;
    }
    assert.equal(done.state, 'mined', JSON.stringify(done));
    assert.equal(await client.getBalance({ address: agent.address as Address }), 0n);
    assert.ok((await client.getBalance({ address: TREASURY })) > 0n);
    assert.equal((await h.admin('GET', `/v1/audit?type=lifecycle.signed&agent=${agent.id}`)).body.entries.length, 1);
  });
});
