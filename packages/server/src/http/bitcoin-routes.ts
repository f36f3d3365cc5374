// Bitcoin for agents: PSBT signing and BIP-322 messages through the one signing path (docs/bitcoin.md).
import { AirlockError, type Agent, type BitcoinNetwork } from '@airlock/core';
import { assertNetworkEnabled, bitcoinAccountView, deriveBitcoinAddress, type BitcoinAddressType } from '@airlock/chains';
import type { z } from 'zod';
import type { Airlock } from '../runtime.ts';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as B from './bitcoin-schemas.ts';
import * as S from './schemas.ts';

export function buildBitcoinRoutes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  // As the other signing routes: 403 a policy denial, 202 held for approval, 409 an Idempotency-Key conflict.
  const signing = { auth: 'agent', headers: [IDEMPOTENCY_KEY_HEADER], errors: [409], rechecksCredentials: true } as const;
  return [
    {
      method: 'get', path: '/v1/bitcoin/account', operationId: 'getBitcoinAccount', summary: "The agent's Bitcoin accounts: xpubs and watch-only descriptors (BIP-84 P2WPKH, BIP-86 P2TR)", tag: 'bitcoin', auth: 'agent',
      query: B.BitcoinNetworkQuery, responses: { 200: B.BitcoinAccountResponse },
      handler: async (c, { query }) => c.json(await accountOf(A(), agentOf(c).agent, (query as { network: BitcoinNetwork }).network)),
    },
    {
      method: 'get', path: '/v1/bitcoin/address', operationId: 'getBitcoinAddress', summary: 'One of the agent\'s addresses (receive or change, by index), derived from its account', tag: 'bitcoin', auth: 'agent',
      query: B.BitcoinAddressQuery, responses: { 200: B.BitcoinAddressResponse },
      handler: async (c, { query }) => {
        const q = query as { network: BitcoinNetwork; type: BitcoinAddressType; change: '0' | '1'; index: string };
        // An address of a network not signed for would take coins nothing here can spend (or, in its mainnet form, that a test label would).
        assertNetworkEnabled(q.network, A().config.bitcoinNetworks);
        const change = Number(q.change) as 0 | 1;
        const index = Number(q.index);
        if (index > 0x7fffffff) throw new AirlockError('invalid_request', 'index: at most 2^31-1 (non-hardened)');
        const derived = deriveBitcoinAddress(await A().signing.signerOf('bitcoin', agentOf(c).agent), q.network, q.type, change, index);
        return c.json({ network: q.network, type: q.type, change, index, path: derived.path, address: derived.address });
      },
    },
    {
      method: 'get', path: '/v1/agents/:id/bitcoin', operationId: 'getAgentBitcoinAccount', summary: "An agent's Bitcoin accounts for the operator: xpubs and watch-only descriptors", tag: 'bitcoin', auth: 'admin',
      query: B.BitcoinNetworkQuery, responses: { 200: B.BitcoinAccountResponse }, errors: [404],
      handler: async (c, { query }) => c.json(await accountOf(A(), await A().operator.getAgent(c.req.param('id')!), (query as { network: BitcoinNetwork }).network)),
    },
    {
      method: 'post', path: '/v1/sign/psbt', operationId: 'signPsbt', summary: "Sign a PSBT's inputs that are the agent's, after every output, the change and the fee were checked against policy", tag: 'bitcoin', ...signing,
      body: B.SignPsbtRequest, responses: { 200: B.SignPsbtResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse },
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'bitcoin.psbt', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'post', path: '/v1/sign/bitcoin-message', operationId: 'signBitcoinMessage', summary: 'Sign a BIP-322 message with one of the agent\'s addresses (denied unless a rule names the message)', tag: 'bitcoin', ...signing,
      body: B.SignBitcoinMessageRequest, responses: { 200: B.SignBitcoinMessageResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse },
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'bitcoin.message', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
  ];
}

/** Both accounts of an agent on one network, as a watch-only wallet imports them. */
async function accountOf(airlock: Airlock, agent: Agent, network: BitcoinNetwork): Promise<z.output<typeof B.BitcoinAccountResponse>> {
  assertNetworkEnabled(network, airlock.config.bitcoinNetworks);
  const signer = await airlock.signing.signerOf('bitcoin', agent);
  const keys = (type: BitcoinAddressType) => {
    const view = bitcoinAccountView(signer, network, type);
    return { path: view.path, xpub: view.xpub, descriptor: view.descriptors.multipath, receiveDescriptor: view.descriptors.receive, changeDescriptor: view.descriptors.change };
  };
  const p2wpkh = bitcoinAccountView(signer, network, 'p2wpkh');
  return { network, fingerprint: p2wpkh.fingerprint, accountIndex: agent.accountIndex, accounts: { p2wpkh: keys('p2wpkh'), p2tr: keys('p2tr') } };
}
