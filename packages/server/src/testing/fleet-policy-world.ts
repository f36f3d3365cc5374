// A harness for the detector tests: a manual clock, one fleet policy, fresh agents under that policy alone (a day's
// evm.transaction session each) and USDC transfers from them. Call it inside a describe: it registers that suite's
// before and after hooks.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent, startHarness, uniqueName, usdcTransfer, type Harness, type StoreKind } from './harness.ts';

export interface FleetPolicyWorld {
  /** Set once the suite's before hook ran. */
  h: Harness;
  /** A new agent under the fleet policy alone. */
  agent(): Promise<{ name: string; token: string }>;
  /** A USDC transfer signed for the agent, each with a nonce of its own. */
  transfer(agent: { token: string }, to: string, amount: bigint): ReturnType<Harness['call']>;
  /** The agent's status as operators see it (`active`, `frozen`, ...). */
  status(agent: { name: string }): Promise<string>;
}

export function fleetPolicyWorld(store: StoreKind, policy: object, namePrefix: string): FleetPolicyWorld {
  let nonce = 0;
  const world: FleetPolicyWorld = {
    h: undefined as unknown as Harness,
    async agent() {
      const { agent, token } = await provisionAgent(world.h, { name: uniqueName(namePrefix), actions: ['evm.transaction'], ttl: '1d' });
      return { name: agent.name as string, token };
    },
    transfer: (agent, to, amount) => world.h.call('POST', '/v1/sign/transaction', { token: agent.token, body: usdcTransfer(to, amount, ++nonce) }),
    status: async (agent) => (await world.h.admin('GET', `/v1/agents/${agent.name}`)).body.status,
  };
  before(async () => {
    world.h = await startHarness({ store, manualClock: true });
    const set = await world.h.admin('PUT', '/v1/policies/fleet', { document: policy });
    assert.equal(set.status, 200, JSON.stringify(set.body));
  });
  after(async () => world.h.close());
  return world;
}
