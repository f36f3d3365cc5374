// A client generated from docs/openapi.json, driving a daemon through one agent's first minutes.
// openapi-client.http.test.ts generates `./airlock.ts` beside a copy of this file (openapi-typescript),
// compiles both with tsc (strict) and runs the flow against a live daemon: if the document and the
// daemon disagree, this file stops compiling or the flow fails. docs/api.md shows the commands.
import createClient from 'openapi-fetch';
import type { components, paths } from './airlock.ts';

type Schemas = components['schemas'];

const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const ALICE = '0x1111111111111111111111111111111111111111';
const MALLORY = '0x2222222222222222222222222222222222222222';

/** An unsigned EIP-1559 USDC.transfer(to, amount) on Base. */
function usdcTransfer(to: string, amount: bigint, nonce: number): Schemas['SignTransactionRequest'] {
  const data = `0xa9059cbb${to.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { chainId: 8453, transaction: { type: 'eip1559', to: USDC, value: '0', data, nonce, gas: '60000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000' } };
}

/** Throws the typed error body when a call did not succeed, so the flow stops at the first surprise. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (result.data === undefined) throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  return result.data;
}

/** A sign call succeeds with a signature (200) or a pending approval (202): this flow expects the signature. */
function allowed(answer: Schemas['SignResponse'] | Schemas['PendingApproval']): Schemas['SignResponse'] {
  if (answer.decision !== 'allow') throw new Error(`held for approval ${answer.approvalId}`);
  return answer;
}

export interface FlowResult {
  agent: Schemas['Agent'];
  policyVersion: number;
  session: Schemas['Session'];
  signed: Schemas['SignResponse'];
  replayed: Schemas['SignResponse'];
  denied: { status: number; code: string; violations: Schemas['Violation'][] };
  dryRun: Schemas['DryRunResponse'];
  deniedDryRun: Schemas['DryRunResponse'];
}

export async function runFlow(baseUrl: string, adminToken: string, fetch: (request: Request) => Promise<Response> = globalThis.fetch): Promise<FlowResult> {
  const admin = createClient<paths>({ baseUrl, fetch, headers: { Authorization: `Bearer ${adminToken}` } });

  // The operator creates an agent, gives it a policy and issues it a session.
  const [agent] = ok(await admin.POST('/v1/agents', { body: { names: ['typed-client-bot'] } }), 'create agent').agents;
  if (!agent) throw new Error('no agent created');
  const document = {
    version: 1,
    rules: [
      { name: 'usdc-to-alice', type: 'allow', match: { chains: ['eip155:8453'], kinds: ['erc20.transfer'], to: [ALICE] } },
      { name: 'usdc-per-request', type: 'max_amount', asset: `eip155:8453/erc20:${USDC}`, max: '100000000' },
      { name: 'usdc-daily', type: 'budget', asset: `eip155:8453/erc20:${USDC}`, max: '500000000', window: '24h', scope: 'agent' },
      { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    ],
  };
  const policy = ok(await admin.PUT('/v1/policies/{scope}', { params: { path: { scope: agent.name } }, body: { document } }), 'set policy');
  const issued = ok(await admin.POST('/v1/agents/{id}/sessions', { params: { path: { id: agent.id } }, body: { ttl: '1h', actions: ['evm.transaction'] } }), 'issue session');

  // The agent signs with its session token.
  const bot = createClient<paths>({ baseUrl, fetch, headers: { Authorization: `Bearer ${issued.token}` } });
  const transfer = usdcTransfer(ALICE, 1_000_000n, 0);
  const idempotent = { params: { header: { 'Idempotency-Key': 'typed-client-1' } }, body: transfer };
  const signed = allowed(ok(await bot.POST('/v1/sign/transaction', idempotent), 'sign'));
  const replayed = allowed(ok(await bot.POST('/v1/sign/transaction', idempotent), 'retry'));

  // A transfer to someone the policy does not name: 403, and the violations say which rule refused.
  const refused = await bot.POST('/v1/sign/transaction', { body: usdcTransfer(MALLORY, 1_000_000n, 1) });
  if (!refused.error) throw new Error('a transfer to MALLORY was signed');
  const denied = { status: refused.response.status, code: refused.error.error.code, violations: refused.error.error.violations ?? [] };

  const dryRun = ok(await bot.POST('/v1/dry-run', { body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 2_000_000n, 2) } }), 'dry-run');
  const deniedDryRun = ok(await bot.POST('/v1/dry-run', { body: { action: 'evm.transaction', payload: usdcTransfer(MALLORY, 2_000_000n, 2) } }), 'dry-run (deny)');
  return { agent, policyVersion: policy.record.version, session: issued.session, signed, replayed, denied, dryRun, deniedDryRun };
}
