// With a separate key process (docs/custody.md), revoke-all's cancellation of a chainless EIP-3009 authorization is
// signed by the key process too: it re-checks the committed `lifecycle.planned` entry's payload, { chainId,
// typedData } with a domain without chainId, against the same rule as the daemon (lifecycle-payloads.ts: only a
// CancelAuthorization of the signing key may be chainless) and signs it bound to that entry. Found by review:
// revoke-all left such an authorization usable (reported `chainless_cancel_unsigned`). Anvil answers as Base; the
// token is a Base address with no code there (the call only has to be estimated and sent).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decodeFunctionData, parseAbi, parseTransaction, recoverTypedDataAddress, serializeSignature, type Hex } from 'viem';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { rpc } from '../../x402-testbed/src/token.ts';
import { ALICE, BASE, USDC, USDC_ASSET, usdcAuthorization } from './testing/harness.ts';
import { adminClient, httpJson, killAllDaemons, prepareDaemonData, sleep, startDaemon, startKeyProcessChild, type Daemon, type DaemonData } from './testing/processes.ts';

const CANCEL_ABI = parseAbi(['function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)']);
const NONCE = `0x${'0c'.repeat(32)}`;

describe('key process: revoke-all cancels a chainless EIP-3009 authorization, signed bound to its plan', () => {
  let anvil: Anvil;
  let data: DaemonData;
  let keyProcess: Daemon;
  let daemon: Daemon;
  before(async () => {
    anvil = await startAnvil({ chainId: 8453 });
    data = await prepareDaemonData('sqlite');
    const socket = join(data.dataDir, 'keys.sock');
    keyProcess = await startKeyProcessChild(data, socket);
    daemon = await startDaemon(data, { AIRLOCK_KEY_PROCESS_SOCKET: socket, AIRLOCK_EVM_RPC: `${BASE}=${anvil.rpcUrl}` });
  });
  after(async () => {
    await killAllDaemons();
    await data?.cleanup();
    await anvil?.stop();
  });

  test('the CancelAuthorization under the chainless domain is planned, signed by the key process and sent on the chain named', async () => {
    const admin = adminClient(daemon.url, data.adminToken);
    const agent = (await admin('POST', '/v1/agents', { names: ['kp-chainless'] })).body.agents[0];
    const policy = { version: 1, rules: [{ name: 'pay-alice', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], assets: [USDC_ASSET], to: [ALICE] } }] };
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
    const session = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] })).body.token;
    await rpc(anvil.rpcUrl, 'anvil_setBalance', [agent.address, '0x56BC75E2D63100000']);
    const { typedData } = usdcAuthorization(agent.address, ALICE, 800_000_000n, Math.floor(Date.now() / 1000) + 30 * 24 * 3600, NONCE);
    const { chainId: _chainId, ...domain } = typedData.domain;
    const signed = await httpJson(daemon.url, 'POST', '/v1/sign/typed-data', { token: session, body: { chainId: 8453, typedData: { ...typedData, domain } } });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));

    const report = await admin('POST', `/v1/agents/${agent.id}/revoke-all`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    assert.deepEqual(report.body.steps.map((s: { chain: string; status: string; error?: unknown }) => [s.chain, s.status, s.error]), [[BASE, 'submitted', undefined]], JSON.stringify(report.body));
    assert.deepEqual(report.body.unplanned.map((u: { reason: string }) => u.reason), ['chainless_other_chains']);

    // The typed data was planned without chainId (the chain it is sent on beside it) and the key process signed it bound to that plan.
    const plans = (await admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}&limit=100`)).body.entries;
    const typedPlan = plans.find((e: { action: string }) => e.action === 'evm.typed_data');
    assert.deepEqual([typedPlan.data.chain, typedPlan.data.payload.chainId, typedPlan.data.payload.typedData.primaryType, 'chainId' in typedPlan.data.payload.typedData.domain], [BASE, 8453, 'CancelAuthorization', false]);
    const line = new RegExp(`"kind":"lifecycle","agentId":"${agent.id}","action":"evm.typed_data","auditSeq":${typedPlan.seq}`);
    for (let i = 0; i < 80 && !line.test(keyProcess.output()); i++) await sleep(25);
    assert.match(keyProcess.output(), line);

    // The call carries the agent's signature over the chainless domain.
    const job = (await admin('GET', `/v1/lifecycle/jobs/${report.body.steps[0].jobId}`)).body;
    const tx = parseTransaction(job.rawTransaction as Hex);
    assert.equal(tx.to, USDC);
    const [authorizer, nonce, v, r, s] = decodeFunctionData({ abi: CANCEL_ABI, data: tx.data! }).args;
    const recovered = await recoverTypedDataAddress({
      domain: domain as { name: string; version: string; verifyingContract: Hex },
      types: { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] },
      primaryType: 'CancelAuthorization', message: { authorizer, nonce }, signature: serializeSignature({ r, s, v: BigInt(v) }),
    });
    assert.deepEqual([recovered.toLowerCase(), nonce], [agent.address.toLowerCase(), NONCE]);
  });
});
