// Everything an x402 payment touches, on loopback: a local chain (anvil), the EIP-3009 token, the official
// facilitator, a paid API, and a real Airlock (HTTP server on a temporary data directory).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address, Hex } from 'viem';
import { initAirlock, loadConfig, serveAirlock, type OpenOptions, type RunningServer } from '@airlock/server';
import { createAirlockHttp, type AirlockHttp } from '@airlock/sdk';
import { startAnvil, type Anvil } from '../../sdk/src/testing/anvil.ts';
// Fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT } from '../../server/src/testing/harness.ts';
import { startFacilitator, type RunningFacilitator } from './facilitator.ts';
import { startPaidApi, startPaidApiV1, type PaidApi, type PaidRoute } from './paid-api.ts';
import { authorizationsUsed, balanceOf, deployToken, mineBlock, mint } from './token.ts';

export interface TestbedOptions {
  /** 'v2' (default): CAIP-2 network eip155:<chainId>, @x402/express. 'v1': network name base-sepolia on chain 84532. */
  version?: 'v1' | 'v2';
  /** Paths (GET) of the paid API and their prices. */
  routes: Record<string, PaidRoute>;
  /** Extra environment for Airlock's config (AIRLOCK_EVM_RPC is set to the local chain unless given). */
  airlockEnv?: Record<string, string>;
  /** Airlock's approval lifetime. */
  approvalTtlMs?: number;
  /** Airlock's clock (a ManualClock lets a test move the wall clock Airlock judges validBefore by). */
  clock?: OpenOptions['clock'];
}

export interface Testbed {
  version: 'v1' | 'v2';
  anvil: Anvil;
  /** CAIP-2 id of the local chain, e.g. eip155:31337. */
  caip2: string;
  /** The network string the paid API advertises (CAIP-2 for v2, a name for v1). */
  network: string;
  token: Address;
  /** CAIP-19 id of the token, as Airlock policies name assets. */
  asset: string;
  facilitator: RunningFacilitator;
  api: PaidApi;
  airlock: RunningServer;
  adminToken: string;
  /** The vault's recovery phrase: lets a test derive an agent's key, as a leaked key would be used. */
  mnemonic: string;
  admin: AirlockHttp;
  /** Creates an agent with `policy`, issues a session, mints `funds` of the token to its address. */
  provisionAgent(opts: { name?: string; policy: unknown; funds?: bigint }): Promise<{ name: string; address: Address; token: string }>;
  balanceOf(owner: Address): Promise<bigint>;
  /** Authorizations used on chain (each one a settled payment), optionally for one payer. */
  settledAuthorizations(payer?: Address): Promise<{ authorizer: Address; nonce: Hex; transactionHash: Hex }[]>;
  mineBlock(): Promise<void>;
  close(): Promise<void>;
}

/** Agents made by every testbed of this process, for their default names. */
let agentsMade = 0;

export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const version = options.version ?? 'v2';
  const chainId = version === 'v1' ? 84532 : 31337;
  const caip2 = `eip155:${chainId}`;
  const network = version === 'v1' ? 'base-sepolia' : caip2;
  const cleanup: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
    cleanup.length = 0;
  };
  try {
    const anvil = await startAnvil({ chainId });
    cleanup.push(() => anvil.stop());
    const token = await deployToken(anvil.rpcUrl);
    const facilitator = await startFacilitator({ rpcUrl: anvil.rpcUrl, chainId, networks: [caip2] });
    cleanup.push(() => facilitator.close());
    const apiOptions = { facilitatorUrl: facilitator.url, network, asset: token, routes: options.routes };
    const api = version === 'v1' ? await startPaidApiV1(apiOptions) : await startPaidApi(apiOptions);
    cleanup.push(() => api.close());

    const dataDir = mkdtempSync(join(tmpdir(), 'airlock-x402-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const env = { AIRLOCK_EVM_RPC: `${caip2}=${anvil.rpcUrl}`, ...options.airlockEnv };
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0, ...(options.approvalTtlMs ? { approvalTtlMs: options.approvalTtlMs } : {}) }, env);
    const { adminToken, mnemonic } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    const airlock = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, ...(options.clock ? { clock: options.clock } : {}) });
    cleanup.push(() => airlock.close());
    const admin = createAirlockHttp({ url: airlock.url, token: adminToken });

    return {
      version,
      anvil,
      caip2,
      network,
      token,
      asset: `${caip2}/erc20:${token.toLowerCase()}`,
      facilitator,
      api,
      airlock,
      adminToken,
      mnemonic,
      admin,
      async provisionAgent({ name, policy, funds }) {
        // Numbered: six random hex digits alone can name two of this testbed's agents alike (a 409).
        const agentName = name ?? `agent-${Math.random().toString(16).slice(2, 8)}-${++agentsMade}`;
        const created = await admin.request<{ agents: { name: string; address: Address }[] }>('POST', '/v1/agents', { names: [agentName] });
        const agent = created.body.agents[0]!;
        await admin.request('PUT', `/v1/policies/${agent.name}`, { document: policy });
        const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['evm.typed_data'], chains: [caip2] });
        if (funds) await mint(anvil.rpcUrl, token, agent.address, funds);
        return { name: agent.name, address: agent.address, token: issued.body.token };
      },
      balanceOf: (owner) => balanceOf(anvil.rpcUrl, token, owner),
      settledAuthorizations: (payer) => authorizationsUsed(anvil.rpcUrl, token, payer),
      mineBlock: () => mineBlock(anvil.rpcUrl),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
