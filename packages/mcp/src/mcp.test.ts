// `airlock mcp` driven by the official MCP client (@modelcontextprotocol/sdk's Client), as an LLM host drives
// it: the real CLI process over stdio and over Streamable HTTP, against a real Airlock, a local chain (anvil),
// the official x402 facilitator and a paid API (packages/x402-testbed). Money claims are checked on chain.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { encodeFunctionData, erc20Abi, parseAbiItem, verifyTypedData, zeroAddress, type Address } from 'viem';
import { getUserOperationTypedData } from 'viem/account-abstraction';
import { mint, publicClientFor, rpc, startTestbed, type Testbed } from '@airlock/x402-testbed';
import { cliEnv, NODE, REPO_ROOT, RUN_TS, runCli } from '../../cli/src/testing/cli-process.ts';

const API_OWNER = '0x1111111111111111111111111111111111111111' as Address;
const STRANGER = '0x2222222222222222222222222222222222222222' as Address;
const FRIEND = '0x3333333333333333333333333333333333333333' as Address;
const PRICE = 10_000n; // 0.01 of the 6-decimal test token
const ETH = 10n ** 18n;
const SAFE = '0x5afe00000000000000000000000000000000cafe' as Address;

/** POST to `url` with a chosen Host header (fetch does not let a caller set Host). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end('{}');
  });
}

interface ToolAnswer {
  isError?: boolean;
  structuredContent?: any;
  content: { type: string; text?: string }[];
}

describe('airlock mcp through the official MCP client', () => {
  let tb: Testbed;
  let agent: { name: string; address: Address; token: string };
  let client: Client;
  let mcpStderr = '';
  /** Everything the MCP server sent back (tool lists, results, errors) and printed, for the secret check. */
  const seen: string[] = [];

  const policy = () => ({
    version: 1,
    sets: { apis: [API_OWNER], friends: [FRIEND] },
    rules: [
      { name: 'pay-known-apis', type: 'allow', match: { actions: ['evm.typed_data'], chains: [tb.caip2], kinds: ['eip3009.transfer_with_authorization'], assets: [tb.asset], to: '$apis', resources: [`${tb.api.url}/data/*`, `${tb.api.url}/injected/*`] } },
      { name: 'authorizations-to-friends', type: 'allow', match: { actions: ['evm.typed_data'], chains: [tb.caip2], kinds: ['eip3009.transfer_with_authorization'], assets: [tb.asset], to: '$friends' } },
      { name: 'eth-to-friends', type: 'allow', match: { actions: ['evm.transaction'], chains: [tb.caip2], kinds: ['native.transfer'], to: '$friends' } },
      { name: 'token-to-friends', type: 'allow', match: { actions: ['evm.transaction'], chains: [tb.caip2], kinds: ['erc20.transfer'], assets: [tb.asset], to: '$friends' } },
      { name: 'safe-pays-friends', type: 'allow', match: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [{ chain_id: tb.anvil.chainId, verifying_contract: SAFE }], kinds: ['erc20.transfer'], assets: [tb.asset], to: '$friends' } },
      { name: 'payees', type: 'destinations', allow: ['$apis', '$friends'] },
      { name: 'token-max', type: 'max_amount', asset: tb.asset, max: '900000' },
      { name: 'token-daily', type: 'budget', asset: tb.asset, max: '1000000', window: '24h', scope: 'agent' },
      { name: 'token-needs-human', type: 'approval_tier', asset: tb.asset, above: '500000' },
      { name: 'eth-max', type: 'max_amount', asset: `${tb.caip2}/slip44:60`, max: ETH.toString() },
      { name: 'eth-daily', type: 'budget', asset: `${tb.caip2}/slip44:60`, max: (2n * ETH).toString(), window: '24h', scope: 'agent' },
      { name: 'short-auth', type: 'validity_window', max_seconds: 600 },
      { name: 'gas', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    ],
  });

  // The paid API runs on loopback, which pay_x402 refuses unless the operator allows private URLs.
  const mcpEnv = () => ({ AIRLOCK_URL: tb.airlock.url, AIRLOCK_SESSION: agent.token, AIRLOCK_EVM_RPC: `${tb.caip2}=${tb.anvil.rpcUrl}`, AIRLOCK_MCP_ALLOW_PRIVATE_URLS: '1' });

  async function call(name: string, args: Record<string, unknown> = {}, via: Client = client): Promise<ToolAnswer> {
    const result = (await via.callTool({ name, arguments: args })) as ToolAnswer;
    seen.push(JSON.stringify(result));
    // Clients that read only text get the same JSON as structuredContent (the SDK's own input-validation errors are text only).
    if (result.structuredContent !== undefined) assert.deepEqual(JSON.parse(result.content[0]!.text!), result.structuredContent, `${name}: text and structuredContent agree`);
    return result;
  }

  before(async () => {
    tb = await startTestbed({ routes: { '/data/quote': { price: PRICE, payTo: API_OWNER }, '/injected/pay-me': { price: PRICE, payTo: STRANGER } } });
    const created = await tb.admin.request<{ agents: { name: string; address: Address }[] }>('POST', '/v1/agents', { names: ['mcp-bot'] });
    const a = created.body.agents[0]!;
    await tb.admin.request('PUT', `/v1/policies/${a.name}`, { document: policy() });
    const issued = await tb.admin.request<{ token: string }>('POST', `/v1/agents/${a.name}/sessions`, { ttl: '1h', actions: ['evm.transaction', 'evm.typed_data'], chains: [tb.caip2] });
    agent = { name: a.name, address: a.address, token: issued.body.token };
    await rpc(tb.anvil.rpcUrl, 'anvil_setBalance', [agent.address, `0x${(10n * ETH).toString(16)}`]);
    await mint(tb.anvil.rpcUrl, tb.token, agent.address, 5_000_000n);

    const transport = new StdioClientTransport({ command: NODE, args: [RUN_TS, 'mcp'], cwd: REPO_ROOT, env: mcpEnv(), stderr: 'pipe' });
    transport.stderr?.on('data', (d: Buffer) => (mcpStderr += d));
    client = new Client({ name: 'airlock-mcp-test', version: '1.0.0' });
    await client.connect(transport);
  });
  after(async () => {
    await client?.close();
    await tb?.close();
  });

  test('lists its tools, each with a description and a JSON input schema', async () => {
    const { tools } = await client.listTools();
    seen.push(JSON.stringify(tools));
    assert.deepEqual(tools.map((t) => t.name).sort(), ['dry_run_transfer', 'list_pending_approvals', 'pay_l402', 'pay_x402', 'remaining_budget', 'send_transfer', 'sign_typed_data', 'whoami']);
    for (const t of tools) {
      assert.ok((t.description ?? '').length > 80, `${t.name} explains itself`);
      assert.equal(t.inputSchema.type, 'object');
    }
    const send = tools.find((t) => t.name === 'send_transfer')!;
    assert.deepEqual([...(send.inputSchema.required ?? [])].sort(), ['amount', 'chainId', 'to']);
    const props = send.inputSchema.properties as Record<string, { description?: string; pattern?: string }>;
    assert.match(props.amount!.description!, /base units/);
    assert.ok(props.to!.pattern, 'addresses carry their pattern');
    assert.equal(send.annotations?.destructiveHint, true);
    assert.match(mcpStderr, /serving agent mcp-bot/);
  });

  test('whoami: the agent address, its session scope and the chains it can broadcast on', async () => {
    const r = await call('whoami');
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.address, agent.address);
    assert.equal(r.structuredContent.agent.name, 'mcp-bot');
    assert.deepEqual(r.structuredContent.session.actions, ['evm.transaction', 'evm.typed_data']);
    assert.deepEqual(r.structuredContent.session.chains, [tb.caip2]);
    assert.deepEqual(r.structuredContent.broadcastChains, [tb.caip2]);
  });

  test('send_transfer: native and token transfers are signed by Airlock and land on anvil', async () => {
    const chain = publicClientFor(tb.anvil.rpcUrl, tb.anvil.chainId);
    const before = await chain.getBalance({ address: FRIEND });
    const eth = await call('send_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: (ETH / 10n).toString() });
    assert.ok(!eth.isError, JSON.stringify(eth));
    assert.equal(eth.structuredContent.status, 'success');
    assert.equal(await chain.getBalance({ address: FRIEND }), before + ETH / 10n);
    const tx = await chain.getTransaction({ hash: eth.structuredContent.transactionHash });
    assert.equal(tx.from.toLowerCase(), agent.address.toLowerCase(), 'sent from the agent address Airlock holds the key of');

    const token = await call('send_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: '300000', token: tb.token });
    assert.ok(!token.isError, JSON.stringify(token));
    assert.equal(token.structuredContent.status, 'success');
    assert.equal(await tb.balanceOf(FRIEND), 300_000n);
  });

  test('remaining_budget: every budget and cap on the asset, with limit, used and remaining', async () => {
    const r = await call('remaining_budget', { chainId: tb.anvil.chainId, token: tb.token, to: FRIEND });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.deepEqual(r.structuredContent.budgets, [{ rule: 'agent/token-daily', asset: tb.asset, limit: '1000000', used: '300000', remaining: '700000' }]);
    assert.deepEqual(r.structuredContent.perRequestCaps, [{ rule: 'agent/token-max', asset: tb.asset, limit: '900000' }]);
    assert.equal(r.structuredContent.maxSendableNow, '700000');
    assert.equal(r.structuredContent.refusedWhateverTheAmount, false);

    const stranger = await call('remaining_budget', { chainId: tb.anvil.chainId, token: tb.token, to: STRANGER });
    assert.equal(stranger.structuredContent.refusedWhateverTheAmount, true);
    assert.ok(stranger.structuredContent.blockers.some((v: any) => v.rule === 'agent/payees' && v.code === 'destination_not_allowed'), JSON.stringify(stranger.structuredContent));
  });

  test('a refusal is a structured tool error with rule, code, limit, used and requested; nothing moves', async () => {
    const chain = publicClientFor(tb.anvil.rpcUrl, tb.anvil.chainId);
    const nonce = await chain.getTransactionCount({ address: agent.address });
    const dry = await call('dry_run_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: '800000', token: tb.token });
    assert.equal(dry.structuredContent.decision, 'deny');

    const r = await call('send_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: '800000', token: tb.token });
    assert.equal(r.isError, true);
    const error = r.structuredContent.error;
    assert.equal(error.code, 'policy_denied');
    const budget = error.violations.find((v: any) => v.code === 'budget_exceeded');
    assert.deepEqual({ rule: budget.rule, limit: budget.limit, used: budget.used, requested: budget.requested }, { rule: 'agent/token-daily', limit: '1000000', used: '300000', requested: '800000' });
    assert.deepEqual(dry.structuredContent.violations.find((v: any) => v.code === 'budget_exceeded'), budget, 'the dry-run predicted the same refusal');
    assert.equal(await tb.balanceOf(FRIEND), 300_000n);
    assert.equal(await chain.getTransactionCount({ address: agent.address }), nonce, 'no transaction was broadcast');
  });

  test('above the approval tier: approval_required, then list_pending_approvals follows it until a human approves', async () => {
    const r = await call('send_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: '600000', token: tb.token });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.error.code, 'approval_required');
    const id = r.structuredContent.error.approvalId as string;
    assert.match(id, /^apr_/);

    const pending = await call('list_pending_approvals');
    assert.deepEqual(pending.structuredContent.approvals.map((a: any) => [a.id, a.state, a.requestedBy]), [[id, 'pending', 'send_transfer']]);

    await tb.admin.request('POST', `/v1/approvals/${id}/approve`, {});
    assert.deepEqual((await call('list_pending_approvals')).structuredContent.approvals, [], 'nothing pending any more');
    const decided = await call('list_pending_approvals', { includeDecided: true });
    assert.equal(decided.structuredContent.approvals[0].state, 'approved');
    assert.match(decided.structuredContent.approvals[0].result.transactionHash, /^0x[0-9a-f]{64}$/);
  });

  test('pay_x402: pays through Airlock and returns the paid resource; the token moves on chain', async () => {
    const ownerBefore = await tb.balanceOf(API_OWNER);
    const r = await call('pay_x402', { url: `${tb.api.url}/data/quote` });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.status, 200);
    assert.equal(JSON.parse(r.structuredContent.body).resource, '/data/quote');
    assert.equal(r.structuredContent.paid, true);
    const settled = await tb.settledAuthorizations(agent.address);
    assert.equal(settled.length, 1);
    assert.equal(r.structuredContent.payment.transaction, settled[0]!.transactionHash);
    assert.equal(await tb.balanceOf(API_OWNER), ownerBefore + PRICE);
  });

  test('pay_x402 to a payee the policy does not know: refused with the rule, nothing paid', async () => {
    const r = await call('pay_x402', { url: `${tb.api.url}/injected/pay-me` });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.error.code, 'policy_denied');
    assert.ok(r.structuredContent.error.violations.some((v: any) => v.rule === 'agent/payees' && v.code === 'destination_not_allowed'), JSON.stringify(r.structuredContent));
    assert.equal(await tb.balanceOf(STRANGER), 0n);
  });

  test('sign_typed_data: an EIP-3009 authorization the policy allows is signed by the agent\'s key and charged', async () => {
    const before = (await call('remaining_budget', { chainId: tb.anvil.chainId, token: tb.token, to: FRIEND })).structuredContent;
    const typedData = {
      domain: { name: 'Test Token', version: '1', chainId: tb.anvil.chainId, verifyingContract: tb.token },
      types: { TransferWithAuthorization: [
        { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
        { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
      ] },
      primaryType: 'TransferWithAuthorization',
      message: { from: agent.address, to: FRIEND, value: '1234', validAfter: '0', validBefore: String(Math.floor(Date.now() / 1000) + 300), nonce: `0x${'5a'.repeat(32)}` },
    };
    const r = await call('sign_typed_data', { typedData });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.signer, agent.address);
    // Checked by viem on its own, from the typed data the model sent.
    assert.equal(await verifyTypedData({ address: agent.address, ...typedData, signature: r.structuredContent.signature } as never), true);
    const after = (await call('remaining_budget', { chainId: tb.anvil.chainId, token: tb.token, to: FRIEND })).structuredContent;
    const remaining = (b: any) => BigInt(b.budgets.find((x: any) => x.rule === 'agent/token-daily').remaining);
    assert.equal(remaining(before) - remaining(after), 1234n, 'the authorization was charged to the daily budget');
  });

  test('sign_typed_data: unknown typed data is refused by default deny, naming the code', async () => {
    const typedData = { domain: { name: 'Game', version: '1', chainId: tb.anvil.chainId, verifyingContract: tb.token }, types: { Move: [{ name: 'to', type: 'address' }] }, primaryType: 'Move', message: { to: FRIEND } };
    const dry = await call('sign_typed_data', { typedData, dryRun: true });
    assert.equal(dry.structuredContent.decision, 'deny');
    const r = await call('sign_typed_data', { typedData });
    assert.equal(r.isError, true);
    assert.ok(r.structuredContent.error.violations.some((v: any) => v.code === 'unknown_typed_data'), JSON.stringify(r.structuredContent));
  });

  test('sign_typed_data co-signs a Safe transaction call by call; a DELEGATECALL and a user operation outside the session are refused with their codes', async () => {
    const safeTx = (to: Address, data: string, operation: number, nonce: number) => ({
      domain: { chainId: tb.anvil.chainId, verifyingContract: SAFE },
      types: { SafeTx: [
        { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'data', type: 'bytes' }, { name: 'operation', type: 'uint8' },
        { name: 'safeTxGas', type: 'uint256' }, { name: 'baseGas', type: 'uint256' }, { name: 'gasPrice', type: 'uint256' },
        { name: 'gasToken', type: 'address' }, { name: 'refundReceiver', type: 'address' }, { name: 'nonce', type: 'uint256' },
      ] },
      primaryType: 'SafeTx',
      message: { to, value: '0', data, operation, safeTxGas: '0', baseGas: '0', gasPrice: '0', gasToken: zeroAddress, refundReceiver: zeroAddress, nonce: String(nonce) },
    });
    const pay = safeTx(tb.token, encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [FRIEND, 2_000n] }), 0, 7);
    const dry = await call('sign_typed_data', { typedData: pay, dryRun: true });
    assert.equal(dry.structuredContent.decision, 'allow', JSON.stringify(dry.structuredContent));
    assert.match(dry.structuredContent.summary, new RegExp(`^co-sign Safe ${SAFE} transaction #7 `));
    assert.deepEqual(dry.structuredContent.allowedBy, ['agent/safe-pays-friends']);
    const signed = await call('sign_typed_data', { typedData: pay });
    assert.ok(!signed.isError, JSON.stringify(signed));
    assert.equal(await verifyTypedData({ address: agent.address, ...pay, signature: signed.structuredContent.signature } as never), true);

    const delegatecall = await call('sign_typed_data', { typedData: safeTx(FRIEND, '0x', 1, 8) });
    assert.equal(delegatecall.isError, true);
    assert.deepEqual(delegatecall.structuredContent.error.violations.map((v: any) => `${v.rule} ${v.code}`), ['agent/default delegatecall_not_allowed']);

    // A smart account's user operation as typed data: decoded (action evm.user_operation), and this session does not list that action.
    const callData = encodeFunctionData({ abi: [parseAbiItem('function execute(address target, uint256 value, bytes data)')], functionName: 'execute', args: [FRIEND, 1n, '0x'] });
    const op = getUserOperationTypedData({
      chainId: tb.anvil.chainId, entryPointAddress: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108',
      userOperation: { sender: agent.address, nonce: 0n, callData, callGasLimit: 100_000n, verificationGasLimit: 100_000n, preVerificationGas: 50_000n, maxFeePerGas: 1_000_000_000n, maxPriorityFeePerGas: 1_000_000n, signature: '0x' },
    });
    const userOperation = JSON.parse(JSON.stringify(op, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    const refused = await call('sign_typed_data', { typedData: userOperation });
    assert.equal(refused.isError, true);
    assert.ok(refused.structuredContent.error.violations.some((v: any) => v.rule === 'session/actions' && v.code === 'action_not_allowed'), JSON.stringify(refused.structuredContent));
    const whoami = await call('whoami');
    assert.match(whoami.structuredContent.notes[0], /evm\.user_operation = sign_typed_data of an ERC-4337 PackedUserOperation/);
  });

  test('bad input is a tool error naming the field, checked against the JSON schema before anything is signed', async () => {
    const r = await call('send_transfer', { chainId: tb.anvil.chainId, to: 'not-an-address', amount: '1.5' });
    assert.equal(r.isError, true);
    assert.match(r.content[0]!.text!, /Input validation error/);
    assert.match(r.content[0]!.text!, /address at to/);
    assert.match(r.content[0]!.text!, /integer string at amount/);
  });

  test('Streamable HTTP mode: the same tools over http://127.0.0.1:<port>/mcp; browsers are refused', async () => {
    const child = spawn(NODE, [RUN_TS, 'mcp', '--http', '--port', '0'], { cwd: REPO_ROOT, env: cliEnv(mcpEnv()), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 30_000);
        child.stdout.on('data', () => {
          const m = /Airlock MCP listening on (http:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then(() => reject(new Error(`exited early:\n${out}`)));
      });
      const browser = await fetch(url, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
      assert.equal(browser.status, 403);
      assert.equal(await statusWithHost(url, 'attacker.example'), 403, 'DNS rebinding: a foreign Host is refused');

      const httpClient = new Client({ name: 'airlock-mcp-http-test', version: '1.0.0' });
      await httpClient.connect(new StreamableHTTPClientTransport(new URL(url)));
      const { tools } = await httpClient.listTools();
      assert.equal(tools.length, 8);
      const me = await call('whoami', {}, httpClient);
      assert.equal(me.structuredContent.address, agent.address);
      const dry = await call('dry_run_transfer', { chainId: tb.anvil.chainId, to: FRIEND, amount: '1000', token: tb.token }, httpClient);
      assert.equal(dry.structuredContent.decision, 'allow');
      await httpClient.close();
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      seen.push(out);
    }
  });

  test('a refused token stops `airlock mcp` at start with Airlock\'s code, without printing the token', async () => {
    const bogus = 'ses_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const r = await runCli(['mcp'], cliEnv({ ...mcpEnv(), AIRLOCK_SESSION: bogus }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unauthenticated/);
    assert.ok(!r.stderr.includes(bogus) && !r.stdout.includes(bogus));
  });

  test('the session token never appears in any tool list, result, error or log line', () => {
    seen.push(mcpStderr);
    const secret = agent.token.slice(agent.token.indexOf('.') + 1);
    assert.ok(seen.length > 20, 'the check covers the whole session');
    for (const text of seen) {
      assert.ok(!text.includes(agent.token), 'the token leaked');
      assert.ok(!text.includes(secret), 'the secret half of the token leaked');
    }
  });
});
