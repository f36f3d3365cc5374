// A traffic replay for detector tests: a steady fleet with Poisson arrivals (seeded, so a run replays exactly),
// driven through the real HTTP API under a manual clock, and the figures a reader of a trip wants: how many
// requests were signed, refused or held, and which anomalies the detectors reported.
import { prng } from '../../../../testing/prng.ts';
import { USDC, uniqueName, type Harness } from './harness.ts';

export interface FleetAgent {
  id: string;
  name: string;
  token: string;
}

/** One request of the replay: who sends it, when (ms), to whom and how much (USDC base units). */
export interface TrafficEvent {
  at: number;
  agent: number;
  to: string;
  amount: bigint;
}

export interface SentRequest extends TrafficEvent {
  status: number;
  signed: boolean;
  body: any;
}

/** Creates `count` agents (with labels) and a long-lived session each. */
export async function provisionFleet(h: Harness, count: number, labelsOf: (i: number) => Record<string, string> = () => ({})): Promise<FleetAgent[]> {
  const fleet: FleetAgent[] = [];
  for (let i = 0; i < count; i++) {
    const created = await h.admin('POST', '/v1/agents', { names: [uniqueName(`fleet-${i}`)], labels: labelsOf(i) });
    if (created.status !== 201) throw new Error(`create agent: ${JSON.stringify(created.body)}`);
    const agent = created.body.agents[0];
    const issued = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '30d', actions: ['evm.transaction'] });
    if (issued.status !== 201) throw new Error(`issue session: ${JSON.stringify(issued.body)}`);
    fleet.push({ id: agent.id, name: agent.name, token: issued.body.token });
  }
  return fleet;
}

/**
 * Steady traffic: each agent sends requests at Poisson arrivals (mean gap `meanGapMs`) from `start` for
 * `durationMs`, paying one of `vendors` 1-5 USDC; a share `oddShare` of requests asks for more than the policy's
 * per-request cap (a refusal, as real agents occasionally produce). Sorted by time.
 */
export function steadyTraffic(opts: { seed: number; agents: number; start: number; durationMs: number; meanGapMs: number; vendors: readonly string[]; oddShare: number; oddAmount: bigint }): TrafficEvent[] {
  const random = prng(opts.seed);
  const events: TrafficEvent[] = [];
  for (let agent = 0; agent < opts.agents; agent++) {
    let at = opts.start;
    for (;;) {
      // Exponential gaps: a Poisson process of rate 1 / meanGapMs.
      at += Math.max(1, Math.round(-Math.log(1 - random()) * opts.meanGapMs));
      if (at >= opts.start + opts.durationMs) break;
      const odd = random() < opts.oddShare;
      const to = opts.vendors[Math.floor(random() * opts.vendors.length)]!;
      const amount = odd ? opts.oddAmount : BigInt(1_000_000 + Math.floor(random() * 4_000_000));
      events.push({ at, agent, to, amount });
    }
  }
  return events.sort((a, b) => a.at - b.at || a.agent - b.agent);
}

let nonce = 0;

/** An unsigned EIP-1559 transaction calling USDC.transfer(to, amount) on Base. */
export function transfer(to: string, amount: bigint) {
  const data = `0xa9059cbb${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId: 8453, transaction: { type: 'eip1559', to: USDC, value: '0', data, nonce: nonce++, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

/** Sends the events in time order, the clock set to each one's time. */
export async function replay(h: Harness, fleet: readonly FleetAgent[], events: readonly TrafficEvent[]): Promise<SentRequest[]> {
  const sent: SentRequest[] = [];
  for (const e of events) {
    h.clock!.set(e.at);
    const res = await h.call('POST', '/v1/sign/transaction', { token: fleet[e.agent]!.token, body: transfer(e.to, e.amount) });
    sent.push({ ...e, status: res.status, signed: res.status === 200 && typeof res.body?.signature === 'string', body: res.body });
  }
  return sent;
}

/** Every violation of the given codes in the replies (the detectors' findings as the agent saw them) and in audit alerts. */
export function findings(sent: readonly SentRequest[], codes: readonly string[]): SentRequest[] {
  return sent.filter((s) => (s.body?.error?.violations ?? s.body?.violations ?? []).some((v: { code: string }) => codes.includes(v.code)));
}
