// `airlock agent revoke-all` against a DAI-style permit on anvil (issue 14, section 3), on SQLite and PostgreSQL.
// DAI's permit predates EIP-2612: Permit(holder, spender, nonce, expiry, allowed) where allowed = true sets an
// unlimited allowance and expiry 0 never lapses. The token here is a minimal copy of Dai.sol's permit, allowance,
// nonces and transferFrom (compiled with solc-js for this test). The agent, through its own session, signs two DAI
// permits an attacker holds and never submits: nonce 0 to S1 with expiry 0 (for ever) and nonce 1 to S2 with an
// expiry. The map reads both live (`permit_unused`); the command burns nonces 0 and 1 with permits of allowed =
// false signed by the agent's key on the lifecycle path, then sets both allowances to 0. After: both held permits
// revert (Dai/invalid-nonce), nothing moved, and the map reads both dead. An on-chain approve(spender, 0) alone
// would not do: the held permit could be submitted afterwards and set the allowance to uint256 max again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { createAdaptorServer } from '@hono/node-server';
import { createPublicClient, createWalletClient, http, parseSignature, type Abi, type Address, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
import { listenOnLoopback } from '../../x402-testbed/src/listen.ts';
import { ANVIL_KEYS, localChain, rpc } from '../../x402-testbed/src/token.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

const CHAIN = 'eip155:31337';
const MAX = (1n << 256n) - 1n;
const ETH = 10n ** 18n;
// DAI permits are unlimited grants: allowed by an approvals rule, as they must be.
const POLICY = { version: 1, rules: [{ name: 'grants', type: 'allow', match: { chains: [CHAIN], kinds: ['dai.permit'] } }, { name: 'unlimited-grants', type: 'approvals', allow_unlimited: true }] };
const DAI_PERMIT_TYPES = { Permit: [{ name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' }] };

// Dai.sol's permit, allowance and nonces (MakerDAO, dss/src/dai.sol), in Solidity 0.8: the same typehash, domain,
// checks (signer, expiry 0 or not passed, nonce == nonces[holder]++) and effect (allowance uint256 max or 0).
const TEST_DAI = `// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.20;
contract TestDai {
  string public constant name = "Dai Stablecoin";
  string public constant version = "1";
  mapping(address => uint256) public balanceOf;
  mapping(address => mapping(address => uint256)) public allowance;
  mapping(address => uint256) public nonces;
  bytes32 public immutable DOMAIN_SEPARATOR;
  bytes32 public constant PERMIT_TYPEHASH = keccak256("Permit(address holder,address spender,uint256 nonce,uint256 expiry,bool allowed)");
  event Approval(address indexed src, address indexed guy, uint256 wad);
  event Transfer(address indexed src, address indexed dst, uint256 wad);
  constructor() {
    DOMAIN_SEPARATOR = keccak256(abi.encode(keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"), keccak256(bytes(name)), keccak256(bytes(version)), block.chainid, address(this)));
  }
  function mint(address usr, uint256 wad) external { balanceOf[usr] += wad; emit Transfer(address(0), usr, wad); }
  function approve(address usr, uint256 wad) external returns (bool) { allowance[msg.sender][usr] = wad; emit Approval(msg.sender, usr, wad); return true; }
  function transferFrom(address src, address dst, uint256 wad) public returns (bool) {
    require(balanceOf[src] >= wad, "Dai/insufficient-balance");
    if (src != msg.sender && allowance[src][msg.sender] != type(uint256).max) {
      require(allowance[src][msg.sender] >= wad, "Dai/insufficient-allowance");
      allowance[src][msg.sender] -= wad;
    }
    balanceOf[src] -= wad;
    balanceOf[dst] += wad;
    emit Transfer(src, dst, wad);
    return true;
  }
  function permit(address holder, address spender, uint256 nonce, uint256 expiry, bool allowed, uint8 v, bytes32 r, bytes32 s) external {
    bytes32 digest = keccak256(abi.encodePacked("\\x19\\x01", DOMAIN_SEPARATOR, keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, nonce, expiry, allowed))));
    require(holder != address(0), "Dai/invalid-address-0");
    require(holder == ecrecover(digest, v, r, s), "Dai/invalid-permit");
    require(expiry == 0 || block.timestamp <= expiry, "Dai/permit-expired");
    require(nonce == nonces[holder]++, "Dai/invalid-nonce");
    uint256 wad = allowed ? type(uint256).max : 0;
    allowance[holder][spender] = wad;
    emit Approval(holder, spender, wad);
  }
}
`;

function compileTestDai(): { abi: Abi; bytecode: Hex } {
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string): string };
  const input = { language: 'Solidity', sources: { 'TestDai.sol': { content: TEST_DAI } }, settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun', outputSelection: { '*': { TestDai: ['abi', 'evm.bytecode.object'] } } } };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as { errors?: { severity: string; formattedMessage: string }[]; contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>> };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const c = output.contracts['TestDai.sol']!.TestDai!;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

/** The harness app on a real port, so the CLI reaches it as it reaches a daemon. */
const listen = (h: Harness) => listenOnLoopback(createAdaptorServer({ fetch: (req: Request) => h.fetch(req) }) as Server);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`airlock agent revoke-all against a DAI permit on anvil (${store})`, () => {
    let anvil: Anvil;
    let h: Harness;
    let server: { url: string; close: () => Promise<void> };
    let client: PublicClient;
    let dai: Address;
    let abi: Abi;

    before(async () => {
      anvil = await startAnvil();
      client = createPublicClient({ transport: http(anvil.rpcUrl) });
      const compiled = compileTestDai();
      abi = compiled.abi;
      // The deployer key without viem's shared nonce manager: this anvil is ours alone.
      const wallet = createWalletClient({ account: privateKeyToAccount(ANVIL_KEYS.deployer), chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
      const receipt = await client.waitForTransactionReceipt({ hash: await wallet.deployContract({ abi, bytecode: compiled.bytecode }) });
      assert.equal(receipt.status, 'success');
      dai = receipt.contractAddress!.toLowerCase() as Address;
      h = await startHarness({ store, config: { evmRpc: { [CHAIN]: anvil.rpcUrl } } });
      server = await listen(h);
    });
    after(async () => {
      await server?.close();
      await h?.close();
      await anvil?.stop();
    });

    test('held DAI permits (expiry 0 and dated) are live in the map, burnt by revoke-all with allowed = false, then revert and read dead', async (t) => {
      const { agent, token: session } = await provisionAgent(h, { policy: POLICY });
      const owner = agent.address as Address;
      const [s1, s2] = [0, 1].map(() => privateKeyToAccount(generatePrivateKey()));
      for (const address of [owner, s1!.address, s2!.address]) await rpc(anvil.rpcUrl, 'anvil_setBalance', [address, `0x${ETH.toString(16)}`]);
      const minter = createWalletClient({ account: privateKeyToAccount(ANVIL_KEYS.deployer), chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
      await client.waitForTransactionReceipt({ hash: await minter.writeContract({ address: dai, abi, functionName: 'mint', args: [owner, 1_000_000n] }) });
      const now = Number((await client.getBlock()).timestamp);
      const domain = { name: 'Dai Stablecoin', version: '1', chainId: 31337, verifyingContract: dai };

      // Signed through the agent's session as a wallet would, held by an attacker, never submitted.
      const signPermit = async (spender: Address, nonce: number, expiry: number) => {
        const message = { holder: owner, spender, nonce: String(nonce), expiry: String(expiry), allowed: true };
        const res = await h.call('POST', '/v1/sign/typed-data', { token: session, body: { typedData: { domain, types: DAI_PERMIT_TYPES, primaryType: 'Permit', message } } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const sig = parseSignature((res.body as { signature: Hex }).signature);
        return [owner, spender, BigInt(nonce), BigInt(expiry), true, Number(sig.v), sig.r, sig.s] as const;
      };
      const forever = await signPermit(s1!.address, 0, 0);
      const dated = await signPermit(s2!.address, 1, now + 3600);

      const submitForever = () => client.simulateContract({ account: s1!, address: dai, abi, functionName: 'permit', args: forever });
      const submitDated = () => client.simulateContract({ account: s2!, address: dai, abi, functionName: 'permit', args: dated });
      const read = (functionName: string, args: unknown[]) => client.readContract({ address: dai, abi, functionName, args }) as Promise<bigint>;
      // Before: both held permits work on the contract, in order, and let their spender pull (so every check below can
      // fail); the chain is put back afterwards.
      const snapshot = await rpc(anvil.rpcUrl, 'evm_snapshot', []);
      for (const [account, args] of [[s1!, forever], [s2!, dated]] as const) {
        const wallet = createWalletClient({ account, chain: localChain(anvil.rpcUrl, 31337), transport: http(anvil.rpcUrl) });
        const { request } = await client.simulateContract({ account, address: dai, abi, functionName: 'permit', args });
        assert.equal((await client.waitForTransactionReceipt({ hash: await wallet.writeContract(request) })).status, 'success');
        assert.equal(await read('allowance', [owner, account.address]), MAX);
        await client.simulateContract({ account, address: dai, abi, functionName: 'transferFrom', args: [owner, account.address, 1n] });
      }
      assert.equal(await rpc(anvil.rpcUrl, 'evm_revert', [snapshot]), true);
      assert.equal(await read('nonces', [owner]), 0n);
      await submitForever();
      const balance = await read('balanceOf', [owner]);

      // The map reads the contract: both permits unused, so live, whoever holds them can submit them.
      const grantsOf = async () => {
        const map = await h.admin('GET', `/v1/agents/${agent.id}/dependencies?reconcile=true`);
        assert.equal(map.status, 200, JSON.stringify(map.body));
        return (map.body.grants as { kind: string; spender: string; amount: string; unlimited: boolean; nonce: string; deadline?: number; live: unknown; evidence?: { reason: string; chainNonce?: string } }[])
          .map((g) => `${g.kind}|${g.spender}|${g.amount === MAX.toString()}|${g.unlimited}|${g.nonce}|${g.deadline ?? '-'}|${g.live}|${g.evidence?.reason}|${g.evidence?.chainNonce}`);
      };
      const [a1, a2] = [s1!.address.toLowerCase(), s2!.address.toLowerCase()];
      assert.deepEqual(await grantsOf(), [
        `dai.permit|${a1}|true|true|0|-|true|permit_unused|0`,
        `dai.permit|${a2}|true|true|1|${now + 3600}|true|permit_unused|0`,
      ]);

      const tracker = setInterval(() => void h.airlock.lifecycle.track().catch(() => undefined), 200);
      let run;
      try {
        run = await runCli(['agent', 'revoke-all', agent.name, '--wait', '--timeout', '60', '--json'], cliEnv({ AIRLOCK_URL: server.url, AIRLOCK_ADMIN_TOKEN: h.adminToken }));
      } finally {
        clearInterval(tracker);
      }
      if (store === 'sqlite') t.diagnostic(`airlock agent revoke-all ${agent.name} --wait --json\n${run.stdout}${run.stderr}`);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const report = JSON.parse(run.stdout);
      // The burns first, nonce by nonce from the chain's, then approve(spender, 0) for each spender.
      assert.deepEqual(report.steps.map((s: { status: string; purpose: string }) => `${s.status}|${s.purpose}`), [
        `submitted|burn DAI permit nonce 0 of ${dai} (permit allowed = false to ${a1})`,
        `submitted|burn DAI permit nonce 1 of ${dai} (permit allowed = false to ${a2})`,
        `submitted|approve(${a1}, 0) on ${dai}`,
        `submitted|approve(${a2}, 0) on ${dai}`,
      ]);
      assert.deepEqual(report.jobs.map((j: { state: string }) => j.state), Array(4).fill('mined'));
      assert.deepEqual(report.unplanned, []);
      // What the agent's key signed decoded, on Airlock's own path, as DAI permits that take the allowance away.
      const planned = (await h.admin('GET', `/v1/audit?type=lifecycle.planned&agent=${agent.id}`)).body.entries
        .filter((e: { data: { kind?: string } }) => e.data.kind === 'revocation_signature')
        .map((e: { action: string; data: { intent: string; summary: string } }) => `${e.action}|${e.data.intent}|${e.data.summary}`);
      assert.deepEqual(planned, [
        `evm.typed_data|DAI permit: take away ${a1}'s allowance of ${CHAIN}/erc20:${dai}|DAI permit allowed = false (nonce 0) of ${a1} on ${dai}`,
        `evm.typed_data|DAI permit: take away ${a2}'s allowance of ${CHAIN}/erc20:${dai}|DAI permit allowed = false (nonce 1) of ${a2} on ${dai}`,
      ]);

      // On chain: both held permits revert on their used nonces, no allowance is left, nothing moved.
      await assert.rejects(submitForever(), /Dai\/invalid-nonce/);
      await assert.rejects(submitDated(), /Dai\/invalid-nonce/);
      assert.equal(await read('nonces', [owner]), 2n);
      assert.deepEqual([await read('allowance', [owner, s1!.address]), await read('allowance', [owner, s2!.address])], [0n, 0n]);
      assert.equal(await read('balanceOf', [owner]), balance);

      // The map reads both dead; pressed again, nothing is signed.
      assert.deepEqual(await grantsOf(), [
        `dai.permit|${a1}|true|true|0|-|false|permit_used|2`,
        `dai.permit|${a2}|true|true|1|${now + 3600}|false|permit_used|2`,
      ]);
      const again = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body.steps, []);
      assert.equal(again.body.alreadyDead.length, 2, JSON.stringify(again.body.alreadyDead));
    });
  });
}
