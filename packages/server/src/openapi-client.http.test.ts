// The OpenAPI document as a client author meets it: an independent validator accepts it, openapi-typescript
// generates types from it that compile (with openapi-fetch) and drive a live daemon, and every response the
// daemon gives along the way validates against the schema the document declares for its status.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createNodeState } from '@airlock/keys';
import { FrostCoordinator } from './frost-node/coordinator.ts';
import { NODE_STATE_FILE, startFrostNode } from './frost-node/serve-node.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';
import { encodePaymentRequiredHeader, encodePaymentResponseHeader } from '@x402/core/http';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { ALICE, BASE, MALLORY, TEST_PASSPHRASE, TEST_VAULT, USDC, USDC_ASSET, usdcAuthorization, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { OpenApiResponses, type ResponseCheck } from './testing/openapi-responses.ts';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { startL402Server } from '../../../testing/l402-server/server.ts';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { generateApproverKey, signApprovalView, signApprovalVote } from '@airlock/sdk/approvals';
import { docPolicy } from './testing/doc-policies.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FLOW = join(ROOT, 'packages/server/examples/openapi-client/flow.ts');

describe('the OpenAPI document, through a generated client and a live daemon', () => {
  let dir: string;
  let server: RunningServer;
  const lightning = new LightningNetwork();
  lightning.feeBaseMsat = 0n; // within the default fee limit of a 5000 msat payment
  const shop = lightning.payee();
  let adminToken: string;
  let doc: any;
  let responses: OpenApiResponses;
  const checks: ResponseCheck[] = [];

  /** fetch, recording how each response compares with the document. */
  const checkedFetch = async (request: Request): Promise<Response> => {
    const method = request.method;
    const res = await fetch(request);
    const text = await res.clone().text();
    checks.push(responses.check(method, request.url, res.status, text ? JSON.parse(text) : undefined));
    return res;
  };
  const call = async (token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await checkedFetch(new Request(`${server.url}${path}`, init));
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const admin = (method: string, path: string, body?: unknown) => call(adminToken, method, path, body);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-openapi-client-'));
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, { AIRLOCK_BITCOIN_NETWORKS: 'bitcoin,regtest' });
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, lightningBackend: new SimulatedBackend(lightning) });
    doc = await (await fetch(`${server.url}/v1/openapi.json`)).json();
    responses = new OpenApiResponses(doc);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the served document passes an independent OpenAPI 3.1 validator (swagger-parser, every $ref resolved)', async () => {
    // swagger-parser dereferences in place: hand it a copy.
    const api = (await SwaggerParser.validate(structuredClone(doc))) as any;
    assert.equal(api.openapi, '3.1.0');
    const operations = Object.values(doc.paths).flatMap((methods: any) => Object.values(methods)) as any[];
    assert.ok(operations.length >= 36);
    for (const op of operations) {
      assert.match(op.operationId, /^[a-z][A-Za-z0-9]+$/);
      const success = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
      assert.ok(success.length > 0 && success.every(([, r]: [string, any]) => r.content['application/json'].schema), `${op.operationId}: a success response with a schema`);
    }
    const sign = doc.paths['/v1/sign/transaction'].post;
    assert.deepEqual(sign.parameters.map((p: any) => [p.in, p.name, p.schema.pattern]), [['header', 'Idempotency-Key', '^[A-Za-z0-9_.:-]{1,128}$']]);
    assert.deepEqual(Object.keys(sign.responses), ['200', '202', '400', '401', '403', '409', '413', '421', '429', '500', '503']);
    assert.ok(sign.responses['429'].headers['Retry-After']);
    assert.deepEqual(Object.keys(doc.components.schemas.Error.properties.error.properties), ['code', 'message', 'hints', 'violations', 'details']);
  });

  test('openapi-typescript types + openapi-fetch compile (tsc --strict) and drive the daemon: agent, policy, session, sign, retry, deny, dry-run', async () => {
    const client = join(dir, 'client');
    await run(process.execPath, ['-e', `require('node:fs').mkdirSync(${JSON.stringify(client)})`]);
    writeFileSync(join(client, 'openapi.json'), JSON.stringify(doc));
    symlinkSync(join(ROOT, 'node_modules'), join(client, 'node_modules'), 'dir');
    // The command docs/api.md gives to client authors.
    await run(process.execPath, [join(ROOT, 'node_modules/openapi-typescript/bin/cli.js'), 'openapi.json', '-o', 'airlock.ts'], { cwd: client });
    copyFileSync(FLOW, join(client, 'flow.ts'));
    writeFileSync(
      join(client, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2024'], types: ['node'], strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true, noUncheckedIndexedAccess: true }, files: ['flow.ts', 'airlock.ts'] }),
    );
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', client]);
    } catch (e) {
      assert.fail(`the generated client does not compile:\n${(e as { stdout?: string }).stdout ?? e}`);
    }

    const { runFlow } = await import(pathToFileURL(join(client, 'flow.ts')).href);
    const flow = await runFlow(server.url, adminToken, checkedFetch);
    assert.equal(flow.agent.name, 'typed-client-bot');
    assert.equal(flow.policyVersion, 1);
    assert.deepEqual(flow.session.scope.actions, ['evm.transaction']);
    assert.equal(flow.signed.decision, 'allow');
    assert.match(flow.signed.signature, /^0x[0-9a-f]{130}$/);
    assert.match(flow.signed.signedTransaction, /^0x02/);
    assert.equal(flow.signed.receipt.auditSeq, flow.signed.auditSeq);
    assert.equal(flow.replayed.replayed, true, 'the same Idempotency-Key is a replay');
    assert.equal(flow.replayed.signature, flow.signed.signature);
    assert.equal(flow.denied.status, 403);
    assert.equal(flow.denied.code, 'policy_denied');
    assert.deepEqual(flow.denied.violations.map((v: any) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
    assert.equal(flow.dryRun.decision.decision, 'allow');
    assert.deepEqual(flow.dryRun.decision.allowedBy, ['agent/usdc-to-alice']);
    assert.equal(flow.deniedDryRun.decision.decision, 'deny');
    assert.deepEqual(
      checks.map((c) => c.problems).flat(),
      [],
      'every response of the flow matches the document',
    );
    assert.deepEqual(checks.map((c) => `${c.operationId} ${c.status}`), ['createAgents 201', 'setPolicy 200', 'issueSession 201', 'signTransaction 200', 'signTransaction 200', 'signTransaction 403', 'dryRun 200', 'dryRun 200']);
  });

  test('every operation, on its success and error paths, answers what the document declares', async () => {
    assert.equal((await call(undefined, 'GET', '/v1/health')).status, 200);
    assert.deepEqual((await call(undefined, 'GET', '/v1/health/live')).body, { status: 'alive' });
    assert.equal((await call(undefined, 'GET', '/v1/health/ready')).body.status, 'ready');
    assert.equal((await call(undefined, 'GET', '/v1/openapi.json')).status, 200);
    assert.deepEqual((await call(undefined, 'POST', '/v1/unseal', { passphrase: 'not checked once unsealed' })).body, { status: 'ok', alreadyUnsealed: true });
    const unsealedProgress = { status: 'unsealed', groupThreshold: null, groupCount: null, groupsComplete: 0, groups: [] };
    assert.deepEqual((await call(undefined, 'GET', '/v1/unseal/shares')).body, unsealedProgress);
    assert.deepEqual((await call(undefined, 'POST', '/v1/unseal/shares', { share: 'not checked once unsealed' })).body, unsealedProgress);
    assert.deepEqual((await call(undefined, 'POST', '/v1/unseal/shares/reset')).body, unsealedProgress);

    // An agent with approvals above 50 USDC, signing all three kinds.
    const [agent] = (await admin('POST', '/v1/agents', { names: ['tour-bot'] })).body.agents;
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ approvalAbove: '50000000' }) })).status, 200);
    const issued = await admin('POST', `/v1/agents/${agent.id}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data', 'evm.message'], label: 'tour' });
    const token = issued.body.token as string;
    assert.equal((await call(token, 'GET', '/v1/session')).body.agent.id, agent.id);

    const authorization = usdcAuthorization(agent.address, ALICE, 1_000_000n, Math.floor(Date.now() / 1000) + 3600);
    const typed = await call(token, 'POST', '/v1/sign/typed-data', authorization);
    assert.equal(typed.status, 200, JSON.stringify(typed.body));
    assert.match(typed.body.paymentId, /^pay_/);
    assert.equal((await call(token, 'POST', '/v1/sign/typed-data', authorization)).body.replayed, true, 'the identical authorization is a replay');
    const message = await call(token, 'POST', '/v1/sign/message', { chainId: 8453, message: 'hello' });
    assert.equal(message.status, 403);
    assert.equal(message.body.error.violations[0].code, 'message_not_allowed');
    // Smart accounts: this session may not sign user operations or EIP-7702 authorizations.
    const userOperation = await call(token, 'POST', '/v1/sign/user-operation', { chainId: 8453, entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', userOperation: { sender: agent.address, nonce: '0', callData: '0x' } });
    assert.equal(userOperation.status, 403);
    assert.ok(userOperation.body.error.violations.some((v: { code: string }) => v.code === 'action_not_allowed'));
    const delegation = await call(token, 'POST', '/v1/sign/authorization', { authorization: { address: ALICE, chainId: 8453, nonce: 0 } });
    assert.equal(delegation.status, 403);
    assert.ok(delegation.body.error.violations.some((v: { code: string }) => v.code === 'delegate_not_allowed'));

    const held = await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 60_000_000n, 3), { 'idempotency-key': 'tour-held' });
    assert.equal(held.status, 202);
    assert.equal((await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 60_000_000n, 3), { 'idempotency-key': 'tour-held' })).body.replayed, true);
    assert.equal((await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 1n, 3), { 'idempotency-key': 'tour-held' })).status, 409, 'same key, another payload');
    assert.equal((await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 1n, 3), { 'idempotency-key': 'not a valid key!' })).status, 400);
    assert.equal((await call(token, 'GET', `/v1/approvals/${held.body.approvalId}`)).body.state, 'pending');
    assert.equal((await admin('GET', '/v1/approvals')).body.approvals.length, 1);
    const approved = await admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
    assert.equal(approved.body.state, 'approved');
    assert.match(approved.body.result.signature, /^0x/);
    assert.equal((await admin('POST', `/v1/approvals/${held.body.approvalId}/approve`)).status, 409, 'an approval is single use');
    const second = await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 70_000_000n, 4));
    assert.equal((await admin('POST', `/v1/approvals/${second.body.approvalId}/deny`, { reason: 'not today' })).body.state, 'denied');
    assert.equal((await admin('GET', '/v1/approvals?state=all')).body.approvals.length, 2);

    // A quorum approval: approvers register a public key, read with a signed view and vote without a bearer token.
    const approverKey = generateApproverKey();
    const approver = await admin('POST', '/v1/approvers', { name: 'tour-ops', publicKey: approverKey.publicKey, groups: ['ops'] });
    assert.equal(approver.status, 201);
    assert.equal((await admin('POST', '/v1/approvers', { name: 'tour-ops', publicKey: approverKey.publicKey, groups: ['ops'] })).status, 409, 'names and keys are unique');
    const [quorumAgent] = (await admin('POST', '/v1/agents', { names: ['tour-quorum'] })).body.agents;
    assert.equal((await admin('PUT', `/v1/policies/${quorumAgent.name}`, { source: docPolicy('docs/policy.md#Approvals by stakes').source })).status, 200);
    const quorumToken = (await admin('POST', `/v1/agents/${quorumAgent.id}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token;
    const quorumHeld = (await call(quorumToken, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 500_000_000n, 0))).body;
    assert.equal((await admin('POST', `/v1/approvals/${quorumHeld.approvalId}/approve`)).status, 409, 'quorum_required');
    const approverView = await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/view`, signApprovalView({ secretKey: approverKey.secretKey, approvalId: quorumHeld.approvalId, approver: 'tour-ops' }));
    assert.equal(approverView.body.state, 'pending');
    assert.equal((await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/view`, { approver: 'tour-ops', at: new Date().toISOString(), signature: '00'.repeat(64) })).status, 401);
    const forged = signApprovalVote({ secretKey: generateApproverKey().secretKey, approvalId: quorumHeld.approvalId, digest: approverView.body.digest, decision: 'approve', approver: 'tour-ops' });
    assert.equal((await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/votes`, forged)).status, 401);
    const voted = await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/votes`, signApprovalVote({ secretKey: approverKey.secretKey, approvalId: quorumHeld.approvalId, digest: approverView.body.digest, decision: 'approve', approver: 'tour-ops' }));
    assert.deepEqual(voted.body.approvers, ['tour-ops']);
    assert.equal((await call(quorumToken, 'GET', `/v1/approvals/${quorumHeld.approvalId}?wait=5`)).body.state, 'approved');
    assert.equal((await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/votes`, signApprovalVote({ secretKey: approverKey.secretKey, approvalId: quorumHeld.approvalId, digest: approverView.body.digest, decision: 'approve', approver: 'tour-ops' }))).status, 409);
    assert.equal((await call(undefined, 'POST', `/v1/approvals/apr_0000000000000000/votes`, forged)).status, 404);
    assert.equal((await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/votes`, { ...forged, at: 'yesterday' })).status, 401);
    assert.deepEqual((await admin('GET', '/v1/approvers')).body.approvers.map((a: any) => a.name), ['tour-ops']);
    assert.equal((await admin('POST', '/v1/approvers/tour-ops/disable')).body.status, 'disabled');
    assert.equal((await admin('POST', '/v1/approvers/nobody/disable')).status, 404);
    const disabledView = await call(undefined, 'POST', `/v1/approvals/${quorumHeld.approvalId}/view`, signApprovalView({ secretKey: approverKey.secretKey, approvalId: quorumHeld.approvalId, approver: 'tour-ops' }));
    assert.equal(disabledView.status, 403);

    assert.equal((await admin('GET', '/v1/agents?status=active')).status, 200);
    assert.equal((await admin('GET', `/v1/agents/${agent.name}`)).body.id, agent.id);
    assert.equal((await admin('GET', '/v1/agents/no-such-agent')).status, 404);
    // The dependency map: the authorization signed above is outstanding; without an RPC it reconciles to unknown.
    assert.equal((await admin('GET', `/v1/agents/${agent.name}/dependencies`)).body.authorizations.length, 1);
    assert.equal((await admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`)).body.reconciled, true);
    assert.equal((await admin('GET', '/v1/agents/no-such-agent/dependencies')).status, 404);
    assert.equal((await admin('POST', `/v1/agents/${agent.id}/freeze`)).body.status, 'frozen');
    const frozen = await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 1n, 5));
    assert.deepEqual([frozen.status, frozen.body.error.code], [403, 'agent_frozen']);
    assert.equal((await admin('POST', `/v1/agents/${agent.id}/unfreeze`)).body.status, 'active');
    assert.equal((await admin('POST', '/v1/agents', { names: ['tour-bot'] })).status, 409, 'names are unique');
    // Key rotation and attribution: a spare agent, so the tour's agent keeps its address.
    const [rotating] = (await admin('POST', '/v1/agents', { names: ['tour-rotate'] })).body.agents;
    const rotatingToken = (await admin('POST', `/v1/agents/${rotating.id}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] })).body.token as string;
    const rotation = await admin('POST', `/v1/agents/${rotating.name}/rotate`);
    assert.deepEqual([rotation.body.previous.address, rotation.body.current.keyIndex], [rotating.address, 1]);
    assert.equal((await admin('POST', '/v1/agents/no-such-agent/rotate')).status, 404);
    assert.deepEqual((await admin('GET', `/v1/agents/${rotating.name}/keys`)).body.keys.map((k: any) => k.state), ['rotated', 'active']);
    assert.equal((await admin('GET', '/v1/agents/no-such-agent/keys')).status, 404);
    assert.deepEqual((await admin('GET', `/v1/agents?address=${rotating.address}`)).body.agents.map((a: any) => a.id), [rotating.id]);
    const oldKey = await call(rotatingToken, 'POST', '/v1/sign/typed-data', { chainId: 8453, ...usdcAuthorization(rotating.address, ALICE, 1n, Math.floor(Date.now() / 1000) + 600) });
    assert.deepEqual([oldKey.status, oldKey.body.error.code], [403, 'key_rotated']);
    // revoke-all (the incident button) on the spare agent: its own session cannot press it; the operator can.
    const bySession = await call(rotatingToken, 'POST', `/v1/agents/${rotating.id}/revoke-all`);
    assert.deepEqual([bySession.status, bySession.body.error.code], [403, 'forbidden']);
    const revoked = await admin('POST', `/v1/agents/${rotating.name}/revoke-all`);
    assert.deepEqual([revoked.status, revoked.body.agent.status, revoked.body.frozen, revoked.body.revokedSessions.length, revoked.body.steps.length], [200, 'frozen', true, 1, 0]);
    assert.equal((await admin('POST', '/v1/agents/no-such-agent/revoke-all')).status, 404);

    const spare = await admin('POST', `/v1/agents/${agent.id}/sessions`, { ttl: '5m', actions: ['evm.message'] });
    assert.equal((await admin('GET', `/v1/sessions?agent=${agent.name}`)).body.sessions.length, 2);
    const noBunker = await admin('POST', `/v1/sessions/${spare.body.session.id}/nostr-connect`);
    assert.deepEqual([noBunker.status, noBunker.body.error.code], [409, 'conflict'], 'no AIRLOCK_NOSTR_RELAYS: no bunker (the bunker tests drive the 201)');
    const noNwc = await admin('POST', `/v1/sessions/${spare.body.session.id}/nwc-connect`);
    assert.deepEqual([noNwc.status, noNwc.body.error.code], [409, 'conflict'], 'no AIRLOCK_NOSTR_RELAYS: no NWC wallet service (nwc-service/wallet-service.http.test.ts drives the 201)');
    // Child sessions: the spare session derives one for a sub-agent (never wider); revoking the spare takes it too.
    const child = await call(spare.body.token, 'POST', '/v1/session/children', { ttlSeconds: 60, label: 'sub-agent' });
    assert.equal(child.status, 201);
    assert.equal((await call(spare.body.token, 'POST', '/v1/session/children', { actions: ['evm.transaction'] })).body.error.details.axis, 'actions');
    assert.equal((await call(spare.body.token, 'GET', '/v1/session/children')).body.sessions[0].parentId, spare.body.session.id);
    assert.deepEqual((await call(child.body.token, 'GET', '/v1/session/budgets')).body.budgets, []);
    const grandchild = await call(child.body.token, 'POST', '/v1/session/children', {});
    assert.ok((await call(child.body.token, 'POST', `/v1/session/children/${grandchild.body.session.id}/revoke`)).body.revokedAt);
    assert.equal((await call(child.body.token, 'POST', `/v1/session/children/${spare.body.session.id}/revoke`)).status, 404, 'a child cannot revoke its parent');
    assert.ok((await admin('POST', `/v1/sessions/${spare.body.session.id}/revoke`)).body.revokedAt);
    assert.equal((await call(spare.body.token, 'GET', '/v1/session')).status, 401);
    assert.equal((await call(child.body.token, 'GET', '/v1/session')).status, 401, 'revoked with its parent');
    assert.equal((await call(undefined, 'GET', '/v1/agents')).status, 401);
    assert.equal((await call(token, 'GET', '/v1/agents')).status, 403, 'a session token on an admin route');
    assert.equal((await call(token, 'POST', '/v1/dry-run', 'x'.repeat(300_000))).status, 413);
    assert.equal((await call(token, 'POST', '/v1/dry-run', '{"action":')).status, 400);

    assert.equal((await admin('POST', '/v1/policies/validate', { document: usdcPolicy() })).body.valid, true);
    assert.equal((await admin('POST', '/v1/policies/validate', { document: { version: 1, rules: [{ type: 'nope' }] } })).body.valid, false);
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: usdcPolicy({ approvalAbove: '40000000' }) })).body.record.version, 2);
    assert.equal((await admin('GET', `/v1/policies/${agent.name}?version=1`)).body.version, 1);
    assert.equal((await admin('GET', `/v1/policies/${agent.name}`)).body.version, 2);
    assert.equal((await admin('GET', `/v1/policies/${agent.name}/versions`)).body.versions.length, 2);
    assert.match((await admin('GET', `/v1/policies/${agent.name}/diff`)).body.diff, /40000000/);
    assert.equal((await admin('GET', '/v1/policies/fleet')).status, 404);
    const adminDryRun = await admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload: usdcTransfer(MALLORY, 1n, 6) });
    assert.equal(adminDryRun.body.decision.decision, 'deny');
    // Shadow policies: a candidate staged beside the active policy, read, cleared; the active one promoted back unchanged.
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: usdcPolicy({ perRequest: '1' }) })).body.changed, true);
    assert.equal((await admin('GET', `/v1/policies/${agent.name}/shadow`)).body.summary.evaluated, 0);
    const shadowDryRun = await admin('POST', '/v1/policies/dry-run', { agent: agent.name, action: 'evm.transaction', payload: usdcTransfer(ALICE, 5n, 6) });
    assert.equal(shadowDryRun.body.shadow[0].kind, 'would_deny');
    assert.deepEqual((await admin('GET', `/v1/policies/${agent.name}/shadow/differences?limit=10`)).body.differences, []);
    assert.equal((await admin('DELETE', `/v1/policies/${agent.name}/shadow`)).body.summary.evaluated, 0);
    assert.equal((await admin('GET', `/v1/policies/${agent.name}/shadow`)).status, 404);
    await admin('PUT', `/v1/policies/${agent.name}/shadow`, { document: usdcPolicy({ approvalAbove: '40000000' }) });
    assert.deepEqual((await admin('POST', `/v1/policies/${agent.name}/shadow/promote`)).body.record.version, 2, 'identical to the active version: nothing new');

    // A detector trips a circuit breaker; the operator reads it and re-opens it.
    const [prober] = (await admin('POST', '/v1/agents', { names: ['tour-breaker'] })).body.agents;
    assert.equal((await admin('PUT', `/v1/policies/${prober.name}`, { document: { ...usdcPolicy(), detectors: [{ name: 'probing', type: 'refusal_run', max: 2, action: 'freeze' }] } })).status, 200);
    const proberToken = (await admin('POST', `/v1/agents/${prober.id}/sessions`, { ttl: '1h', actions: ['evm.transaction'] })).body.token as string;
    assert.equal((await call(proberToken, 'POST', '/v1/sign/transaction', usdcTransfer(MALLORY, 1n, 7))).status, 403);
    const probed = await call(proberToken, 'POST', '/v1/sign/transaction', usdcTransfer(MALLORY, 1n, 8));
    assert.equal(probed.body.error.violations.at(-1).code, 'breaker_tripped');
    const [breaker] = (await admin('GET', '/v1/breakers')).body.breakers;
    assert.equal((await admin('GET', `/v1/breakers/${breaker.id}`)).body.detector, 'detector/agent/probing');
    assert.deepEqual((await admin('POST', `/v1/breakers/${breaker.id}/reset`)).body.unfrozen, [prober.id]);
    assert.equal((await admin('GET', '/v1/breakers?state=all')).body.breakers[0].state, 'reset');
    assert.equal((await admin('GET', '/v1/breakers/brk_missing')).status, 404);

    // x402: an agent that pays for one API.
    const [payer] = (await admin('POST', '/v1/agents', { names: ['tour-payer'] })).body.agents;
    const x402Policy = { version: 1, rules: [{ name: 'paid-api', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization'], to: [ALICE], resources: ['https://api.example.com/**'] } }, { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' }] };
    await admin('PUT', `/v1/policies/${payer.name}`, { document: x402Policy });
    const payerToken = (await admin('POST', `/v1/agents/${payer.id}/sessions`, { ttl: '1h', actions: ['evm.typed_data'] })).body.token;
    const requirement = { scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } };
    const paymentRequired = (url: string, amount: string) => encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts: [{ ...requirement, amount }] } as never);
    const paid = await call(payerToken, 'POST', '/v1/x402/pay', { resource: 'https://api.example.com/data', paymentRequired: paymentRequired('https://api.example.com/data', '1000') });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.header.name, 'PAYMENT-SIGNATURE');
    const refused = await call(payerToken, 'POST', '/v1/x402/pay', { resource: 'https://api.example.com/data', paymentRequired: paymentRequired('https://api.example.com/data', '9000') });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.requirements[0].violations[0].code, 'amount_exceeds_max');
    const paymentResponse = encodePaymentResponseHeader({ success: true, transaction: `0x${'ab'.repeat(32)}`, network: BASE, payer: payer.address } as never);
    assert.equal((await call(payerToken, 'POST', '/v1/x402/settlement', { paymentId: paid.body.paymentId, paymentResponse })).body.state, 'reserved');
    assert.equal((await call(payerToken, 'POST', '/v1/x402/settlement', { paymentId: 'pay_0000000000000000', paymentResponse })).status, 404);
    assert.equal((await admin('GET', '/v1/x402/payments')).body.payments.length, 2, 'the typed-data payment and the x402 one');
    assert.ok((await admin('GET', `/v1/x402/summary?agent=${payer.name}`)).body.agents.length >= 1);
    assert.equal((await admin('POST', '/v1/x402/reconcile')).status, 200);
    assert.equal((await admin('POST', `/v1/agents/${payer.id}/retire`)).body.status, 'retired');
    assert.equal((await call(payerToken, 'GET', '/v1/session')).status, 401, 'retiring revokes its sessions');

    // The lifecycle path (no RPC here: nothing to read, so nothing to sweep; the anvil tests sweep for real).
    assert.deepEqual((await admin('POST', `/v1/agents/${payer.id}/sweep`, {})).body, { jobs: [], skipped: [] });
    assert.equal((await admin('POST', '/v1/agents/ag_missing/sweep', {})).status, 404);
    assert.deepEqual((await admin('GET', `/v1/lifecycle/jobs?agent=${payer.id}`)).body.jobs, []);
    assert.equal((await admin('GET', '/v1/lifecycle/jobs/lcj_missing')).status, 404);
    assert.ok(Array.isArray((await admin('GET', '/v1/lifecycle/orphans')).body.orphans));
    assert.equal((await admin('POST', '/v1/lifecycle/orphans/sweep', {})).status, 200);

    // Nostr: identity, an event, a NIP-98 auth event, NIP-44 both ways (docs/nostr.md).
    const [poster] = (await admin('POST', '/v1/agents', { names: ['tour-nostr'] })).body.agents;
    const peer = 'f'.repeat(63) + '0';
    const nostrPolicy = { version: 1, rules: [{ name: 'notes', type: 'allow', match: { actions: ['nostr.event', 'nostr.http_auth', 'nostr.nip44'] } }, { name: 'api', type: 'nostr_http_auth', urls: ['https://api.example.com/**'] }] };
    assert.equal((await admin('PUT', `/v1/policies/${poster.name}`, { document: nostrPolicy })).status, 200);
    const nostrToken = (await admin('POST', `/v1/agents/${poster.id}/sessions`, { ttl: '1h', actions: ['nostr.event', 'nostr.http_auth', 'nostr.nip44'] })).body.token;
    const nostrId = await call(nostrToken, 'GET', '/v1/nostr/identity');
    assert.match(nostrId.body.npub, /^npub1/);
    const nowSeconds = Math.floor(Date.now() / 1000);
    assert.equal((await call(nostrToken, 'POST', '/v1/sign/nostr-event', { kind: 1, tags: [], content: 'hi', created_at: nowSeconds })).body.event.pubkey, nostrId.body.pubkey);
    assert.equal((await call(nostrToken, 'POST', '/v1/sign/nostr-http-auth', { kind: 27235, tags: [['u', 'https://evil.example.net/'], ['method', 'GET']], content: '', created_at: nowSeconds })).status, 403);
    // The peer: the x-only key of secret 1 (the generator's x), a valid point.
    const generatorX = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
    const sealed = await call(nostrToken, 'POST', '/v1/nostr/nip44/encrypt', { peer: generatorX, plaintext: 'tour' });
    assert.equal(sealed.status, 200, JSON.stringify(sealed.body));
    assert.equal((await call(nostrToken, 'POST', '/v1/nostr/nip44/decrypt', { peer: generatorX, ciphertext: sealed.body.ciphertext })).body.plaintext, 'tour');
    assert.equal((await call(nostrToken, 'POST', '/v1/nostr/nip44/decrypt', { peer, ciphertext: 'not base64' })).status, 400);

    // A threshold key (docs/custody.md): two in-process signer nodes (2-of-2), the agent above bound, an event
    // signed by the cluster, the binding shown and removed; a cluster with a node down is not bound (503).
    const frostDir = join(dir, 'frost');
    const frostNames = ['ann', 'ben'];
    const frostTokens = frostNames.map(() => randomBytes(16).toString('hex'));
    const identityKeys = await Promise.all(frostNames.map((n) => {
      mkdirSync(join(frostDir, n), { recursive: true });
      return createNodeState(join(frostDir, n, NODE_STATE_FILE), n, `passphrase of ${n}`, { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true });
    }));
    const frostCluster = { threshold: 2, nodes: frostNames.map((name, i) => ({ name, identifier: i + 1, identityKey: identityKeys[i]! })) };
    const frostNodes = await Promise.all(frostNames.map((n, i) => startFrostNode({ dir: join(frostDir, n), passphrase: `passphrase of ${n}`, cluster: frostCluster, policyText: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n', token: frostTokens[i]! })));
    try {
      const nodeList = frostNames.map((name, i) => ({ name, url: frostNodes[i]!.url, token: frostTokens[i]! }));
      const { groupKey } = await new FrostCoordinator(frostCluster, nodeList).generateKey();
      const bound = await admin('PUT', `/v1/agents/${poster.id}/nostr/threshold`, { cluster: frostCluster, nodes: nodeList, groupKey });
      assert.equal(bound.status, 200, JSON.stringify(bound.body));
      assert.equal((await admin('GET', `/v1/agents/${poster.id}/nostr/threshold`)).body.groupKey, groupKey);
      const byCluster = await call(nostrToken, 'POST', '/v1/sign/nostr-event', { kind: 1, tags: [], content: 'two of two', created_at: nowSeconds });
      assert.equal(byCluster.status, 200, JSON.stringify(byCluster.body));
      assert.equal(byCluster.body.event.pubkey, groupKey);
      assert.equal((await admin('DELETE', `/v1/agents/${poster.id}/nostr/threshold`)).status, 200);
      assert.equal((await admin('GET', `/v1/agents/${poster.id}/nostr/threshold`)).status, 404);
      assert.equal((await admin('DELETE', `/v1/agents/${poster.id}/nostr/threshold`)).status, 404);
      await frostNodes[1]!.close();
      const down = await admin('PUT', `/v1/agents/${poster.id}/nostr/threshold`, { cluster: frostCluster, nodes: nodeList });
      assert.equal(down.status, 503);
      assert.equal(down.body.error.code, 'frost_threshold_not_met');
      assert.equal((await admin('PUT', `/v1/agents/${poster.id}/nostr/threshold`, { cluster: frostCluster, nodes: nodeList.slice(0, 1) })).status, 400, 'a node without URL and token');
    } finally {
      await Promise.all(frostNodes.map((n) => n.close().catch(() => undefined)));
    }

    // Lightning: a paid invoice, one that fails (502), the record, the operator's list and a reconcile round (docs/lightning.md).
    const [zapper] = (await admin('POST', '/v1/agents', { names: ['tour-lightning'] })).body.agents;
    await admin('PUT', `/v1/policies/${zapper.name}`, { document: { version: 1, rules: [{ name: 'shop', type: 'allow', match: { actions: ['lightning.pay'], to: [shop.node.nodeId] } }] } });
    const zapToken = (await admin('POST', `/v1/agents/${zapper.id}/sessions`, { ttl: '1h', actions: ['lightning.pay'] })).body.token;
    const ln = await call(zapToken, 'POST', '/v1/lightning/pay', { invoice: shop.invoice({ amountMsat: 5_000n }).invoice });
    assert.equal(ln.status, 200, JSON.stringify(ln.body));
    const doomed = shop.invoice({ amountMsat: 5_000n });
    lightning.script(doomed.paymentHash, { kind: 'fail', reason: 'no_route' });
    assert.equal((await call(zapToken, 'POST', '/v1/lightning/pay', { invoice: doomed.invoice })).status, 502);
    assert.equal((await call(zapToken, 'GET', `/v1/lightning/payments/${ln.body.paymentId}`)).body.status, 'succeeded');
    assert.equal((await admin('GET', `/v1/lightning/payments?agent=${zapper.name}`)).body.payments.length, 2);
    assert.equal((await admin('POST', '/v1/lightning/reconcile')).status, 200);
    assert.deepEqual((await admin('GET', '/v1/lightning/status')).body, { configured: true, backend: 'simulated', network: 'regtest', enforcesMaxFee: true, reachable: true });
    // L402: a paid API's challenge paid for its credential, which the API accepts; the token cache answers it again.
    const api = await startL402Server({ network: lightning, routes: { '/data': { priceSat: 5n } }, scheme: 'L402' });
    try {
      await admin('PUT', `/v1/policies/${zapper.name}`, { document: { version: 1, rules: [{ name: 'api', type: 'allow', match: { actions: ['lightning.pay'] } }] } });
      const challenge = (await fetch(`${api.url}/data`)).headers.get('www-authenticate')!;
      const l402 = await call(zapToken, 'POST', '/v1/l402/pay', { url: `${api.url}/data`, challenge });
      assert.equal(l402.status, 200, JSON.stringify(l402.body));
      assert.equal((await fetch(`${api.url}/data`, { headers: { authorization: l402.body.l402.authorization } })).status, 200);
      assert.equal((await call(zapToken, 'GET', `/v1/l402/token?url=${encodeURIComponent(`${api.url}/other`)}`)).body.authorization, l402.body.l402.authorization);
      assert.equal((await call(zapToken, 'GET', `/v1/l402/token?url=${encodeURIComponent('https://elsewhere.example/')}`)).status, 404);
      assert.equal((await call(zapToken, 'POST', '/v1/l402/pay', { url: `${api.url}/data`, challenge: 'L402 nonsense' })).status, 400);
    } finally {
      await api.close();
    }

    // Bitcoin: the account's descriptors (agent and operator), an address, a PSBT signed, a malformed one, a BIP-322 message (docs/bitcoin.md).
    const [saver] = (await admin('POST', '/v1/agents', { names: ['tour-bitcoin'] })).body.agents;
    await admin('PUT', `/v1/policies/${saver.name}`, {
      document: { version: 1, rules: [{ name: 'btc', type: 'allow', match: { actions: ['bitcoin.psbt'] } }, { name: 'proofs', type: 'allow', match: { actions: ['bitcoin.message'], message: { prefix: 'tour ' } } }] },
    });
    const btcToken = (await admin('POST', `/v1/agents/${saver.id}/sessions`, { ttl: '1h', actions: ['bitcoin.psbt', 'bitcoin.message'] })).body.token;
    const btcAccount = (await call(btcToken, 'GET', '/v1/bitcoin/account?network=regtest')).body;
    assert.deepEqual((await admin('GET', `/v1/agents/${saver.name}/bitcoin?network=regtest`)).body, btcAccount);
    const btcWallet = TestWallet.fromAccountResponse(btcAccount, 'regtest');
    assert.equal((await call(btcToken, 'GET', '/v1/bitcoin/address?network=regtest&type=p2tr&change=1&index=2')).body.address, btcWallet.change('p2tr', 2).address);
    assert.equal((await call(btcToken, 'GET', '/v1/bitcoin/address?network=regtest&index=-1')).status, 400);
    const btcChain = new BitcoinTestChain('regtest');
    const unsignedPsbt = buildPsbt(btcChain, [fundedInput(btcChain, btcWallet.receive('p2wpkh', 0), 50_000n)], [payTo(btcChain, TestWallet.stranger('tour shop', 'regtest').receive('p2wpkh').address, 30_000n), walletOutput(btcWallet.change('p2wpkh', 0), 19_000n)]).toBase64();
    const signedPsbt = await call(btcToken, 'POST', '/v1/sign/psbt', { psbt: unsignedPsbt, network: 'regtest', finalize: true });
    assert.equal(signedPsbt.status, 200, JSON.stringify(signedPsbt.body));
    assert.deepEqual(signedPsbt.body.signedInputs, [0]);
    assert.equal((await call(btcToken, 'POST', '/v1/sign/psbt', { psbt: 'cHNidP8BAA==', network: 'regtest' })).body.error.code, 'psbt_malformed');
    assert.equal((await call(btcToken, 'POST', '/v1/sign/bitcoin-message', { message: 'tour proof', network: 'regtest', addressType: 'p2wpkh' })).body.address, btcWallet.receive('p2wpkh', 0).address);
    assert.equal((await call(btcToken, 'POST', '/v1/sign/bitcoin-message', { message: 'anything else', network: 'regtest', addressType: 'p2tr' })).status, 403);

    // Webhooks: an endpoint (its secret once), the listing, a rotation, its delivery log, a refusal, the removal (docs/operations.md).
    const hook = await admin('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/tour-hook', events: ['alert.*'], description: 'tour' });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    assert.match(hook.body.secret, /^whsec_/);
    assert.deepEqual((await admin('GET', '/v1/webhooks')).body.endpoints.map((e: any) => e.id), [hook.body.endpoint.id]);
    assert.notEqual((await admin('POST', `/v1/webhooks/${hook.body.endpoint.id}/rotate-secret`)).body.secret, hook.body.secret);
    assert.deepEqual((await admin('GET', `/v1/webhooks/${hook.body.endpoint.id}/deliveries?state=pending`)).body, { deliveries: [] });
    assert.equal((await admin('POST', '/v1/webhooks', { url: 'https://user:pw@hooks.example/' })).body.error.code, 'webhook_url_credentials');
    assert.ok((await admin('DELETE', `/v1/webhooks/${hook.body.endpoint.id}`)).body.endpoint.removedAt);
    assert.equal((await admin('DELETE', `/v1/webhooks/${hook.body.endpoint.id}`)).status, 404);
    // The console (docs/console.md): its session, as a console request (the header and the daemon's own origin), and
    // the spend history its charts read; the newest audit entries first.
    const consoleHeaders = { 'x-airlock-console': '1', origin: server.url };
    const opened = await checkedFetch(new Request(`${server.url}/v1/console/session`, { method: 'POST', headers: { ...consoleHeaders, 'content-type': 'application/json' }, body: JSON.stringify({ token: adminToken }) }));
    assert.equal(opened.status, 201);
    const cookie = /^airlock_console=[^;]+/.exec(opened.headers.get('set-cookie') ?? '')![0];
    // Every request after login carries the session's proof (the login answer's `proof`) as the header's value.
    const withProof = { ...consoleHeaders, 'x-airlock-console': ((await opened.json()) as { proof: string }).proof, cookie };
    assert.equal((await call(undefined, 'GET', '/v1/console/session', undefined, withProof)).body.active, true);
    const spend = await call(undefined, 'GET', `/v1/spend?agent=${agent.name}&bucket=1h`, undefined, withProof);
    assert.equal(spend.status, 200, JSON.stringify(spend.body));
    assert.ok(spend.body.budgets.some((b: any) => b.rule === 'agent/usdc-daily'));
    assert.equal((await admin('GET', '/v1/spend?bucket=30s')).status, 400);
    assert.equal((await call(undefined, 'POST', '/v1/console/session', { token: adminToken })).status, 403, 'not a console request');
    assert.equal((await call(undefined, 'DELETE', '/v1/console/session', undefined, withProof)).body.closed, true);
    assert.equal((await admin('GET', `/v1/audit?agent=${agent.name}&order=newest&limit=1`)).body.entries.length, 1);

    // Audit: entries, head, signed tree heads, an inclusion proof, a consistency proof, whole-log verification.
    assert.ok((await admin('GET', `/v1/audit?agent=${agent.name}&limit=5`)).body.entries.length > 0);
    assert.equal((await call(token, 'GET', `/v1/audit/receipts/${typed.body.auditSeq}`)).status, 409, 'not yet under a signed head');
    await server.holder.get().audit.checkpoint();
    const first = (await admin('GET', '/v1/audit/head')).body.treeSize;
    await call(token, 'POST', '/v1/sign/transaction', usdcTransfer(ALICE, 1n, 7));
    await server.holder.get().audit.checkpoint();
    assert.equal((await admin('GET', '/v1/audit/checkpoints')).body.treeHeads.length, 2);
    assert.equal((await call(token, 'GET', `/v1/audit/receipts/${typed.body.auditSeq}`)).body.receipt.auditSeq, typed.body.auditSeq);
    assert.equal((await call(token, 'GET', '/v1/audit/receipts/0')).status, 400);
    assert.equal((await call(token, 'GET', `/v1/audit/consistency?from=${first}`)).body.from.treeSize, first);
    assert.equal((await admin('POST', '/v1/audit/verify')).body.ok, true);
    assert.equal((await admin('POST', '/v1/audit/acknowledge')).status, 409, 'nothing to acknowledge');

    // Last, as it replaces the token every call above used: the admin token rotated, the old one refused (docs/operations.md).
    const rotated = await admin('POST', '/v1/admin/token/rotate');
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal((await call(token, 'POST', '/v1/admin/token/rotate')).status, 403, 'a session token cannot rotate it');
    const previous = adminToken;
    adminToken = rotated.body.token;
    assert.equal((await call(previous, 'GET', '/v1/agents')).status, 401);
    assert.equal((await admin('GET', '/v1/agents')).status, 200);

    assert.deepEqual(checks.flatMap((c) => c.problems), [], 'every response matches the document');
    // A route added without being exercised here fails this list: add it to the tour above.
    const operations = Object.values(doc.paths).flatMap((methods: any) => Object.values(methods).map((op: any) => op.operationId as string));
    const seen = new Set(checks.map((c) => c.operationId));
    assert.deepEqual(operations.filter((id) => !seen.has(id)), [], 'every operation was exercised');
  });

  test('a daemon started sealed answers as the document says until it is unsealed', async () => {
    const config = loadConfig({ dataDir: join(dir, 'sealed'), host: '127.0.0.1', port: 0 }, {});
    const { adminToken: sealedAdmin } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    const sealed = await serveAirlock(config, undefined, { vault: TEST_VAULT, timers: false });
    const seen: ResponseCheck[] = [];
    const at = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await fetch(`${sealed.url}${path}`, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      const parsed: any = await res.json();
      seen.push(responses.check(method, path, res.status, parsed));
      return { status: res.status, body: parsed };
    };
    try {
      assert.deepEqual(await at('GET', '/v1/health'), { status: 503, body: { status: 'sealed' } });
      assert.deepEqual(await at('GET', '/v1/health/live'), { status: 200, body: { status: 'alive' } });
      assert.deepEqual(await at('GET', '/v1/health/ready'), { status: 503, body: { status: 'sealed' } });
      assert.equal((await at('GET', '/v1/agents', undefined, sealedAdmin)).body.error.code, 'sealed');
      assert.deepEqual((await at('GET', '/v1/unseal/shares')).body, { status: 'collecting', groupThreshold: null, groupCount: null, groupsComplete: 0, groups: [] });
      assert.equal((await at('POST', '/v1/unseal/shares', { share: 'academic acid acne' })).body.error.code, 'slip39_invalid_share');
      assert.equal((await at('POST', '/v1/unseal/shares/reset')).body.status, 'collecting');
      assert.equal((await at('POST', '/v1/unseal', { passphrase: 'not the passphrase' })).body.error.code, 'vault_wrong_passphrase');
      assert.deepEqual(await at('POST', '/v1/unseal', { passphrase: TEST_PASSPHRASE }), { status: 200, body: { status: 'ok' } });
      assert.equal((await at('GET', '/v1/agents', undefined, sealedAdmin)).status, 200);
      assert.deepEqual(seen.flatMap((c) => c.problems), []);
    } finally {
      await sealed.close();
    }
  });
});
