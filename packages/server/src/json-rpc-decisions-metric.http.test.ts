// airlock_decisions_total and the request log count a signing decision whatever endpoint made it (found by review:
// a policy denial through the JSON-RPC signer, /v1/rpc/:chainId, answers HTTP 200 with a JSON-RPC error, and was
// counted nowhere, so an agent probing through the JSON-RPC endpoint stayed under any deny-rate alert). Each signing
// call of a JSON-RPC batch is one decision.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness } from './testing/harness.ts';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { AirlockMetrics } from './http/metrics.ts';
import { PassThrough } from 'node:stream';
import { createLogger } from './http/request-log.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => h.close());

async function denials(metrics: AirlockMetrics): Promise<number> {
  const all = await metrics.registry.getMetricsAsJSON();
  const m = all.find((x) => x.name === 'airlock_decisions_total');
  return (m?.values ?? []).filter((v) => v.labels.outcome === 'deny').reduce((s, v) => s + v.value, 0);
}

test('a policy denial through the JSON-RPC signer is counted in airlock_decisions_total like one through /v1/sign/transaction', async () => {
  const holder = new AirlockHolder(h.airlock);
  const metrics = new AirlockMetrics(holder, { budgetTopAgents: 0 });
  const lines: any[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString('utf8').trim().split('\n').map((l) => JSON.parse(l))));
  const logger = createLogger('info', out as never);
  const app = createApp(holder, { observer: { metrics, logger }, sessionRate: { perSecond: 0, burst: 0 } });
  const { token, agent } = await provisionAgent(h, { policy: usdcPolicy({ perRequest: '1000000' }) });
  const post = (path: string, body: unknown) =>
    app.request(path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  // 5 USDC over a 1 USDC per-request cap, through REST: 403 policy_denied, counted.
  const over = usdcTransfer(ALICE, 5_000_000n, 0);
  const rest = await post('/v1/sign/transaction', over);
  assert.equal(rest.status, 403);
  assert.equal(await denials(metrics), 1, 'REST denial counted');

  // The same transfer through JSON-RPC eth_signTransaction: denied by the same rule...
  const tx = { ...over.transaction, from: agent.address, chainId: '0x2105', nonce: '0x1', gas: '0xea60', maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0xf4240', type: '0x2' };
  const rpc = await post('/v1/rpc/8453', { jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [tx] });
  const body = (await rpc.json()) as any;
  assert.equal(rpc.status, 200, 'JSON-RPC answers 200 with an error object');
  assert.ok(body.error, `denied: ${JSON.stringify(body)}`);
  assert.match(JSON.stringify(body.error), /policy_denied|usdc-per-request/);
  const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries.filter((e: any) => e.decision === 'deny');
  assert.equal(audit.length, 2, 'both denials are in the audit log');

  // The request log names the REST denial's rule; the JSON-RPC line says only 200.
  await new Promise((r) => setImmediate(r));
  const restLine = lines.find((l) => l.route === '/v1/sign/transaction');
  const rpcLine = lines.find((l) => l.route === '/v1/rpc/:chainId');
  assert.equal(restLine?.decision, 'deny');
  // ...but the metric did not move.
  assert.equal(await denials(metrics), 2, 'the JSON-RPC denial must be counted too');
  assert.equal(rpcLine?.decision, 'deny', 'the JSON-RPC request log line must carry the decision');
  assert.equal(rpcLine?.rule, 'agent/usdc-per-request');

  // A batch of two signing calls, one allowed and one denied: two decisions, and the line names the denial.
  const under = usdcTransfer(ALICE, 500_000n, 0);
  const batch = await post('/v1/rpc/8453', [
    { jsonrpc: '2.0', id: 2, method: 'eth_signTransaction', params: [{ ...under.transaction, from: agent.address, chainId: '0x2105', nonce: '0x2', gas: '0xea60', maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0xf4240', type: '0x2' }] },
    { jsonrpc: '2.0', id: 3, method: 'eth_signTransaction', params: [{ ...tx, nonce: '0x3' }] },
  ]);
  const answers = (await batch.json()) as any[];
  assert.ok(answers[0].result && answers[1].error, JSON.stringify(answers));
  assert.equal(await denials(metrics), 3);
  const allows = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'airlock_decisions_total')!.values.filter((v) => v.labels.outcome === 'allow').reduce((s, v) => s + v.value, 0);
  assert.equal(allows, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.filter((l) => l.route === '/v1/rpc/:chainId').at(-1)?.decision, 'deny');
});
