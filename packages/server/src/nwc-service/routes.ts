import { z } from 'zod';
import { AirlockError, isAirlockError, type ErrorCode } from '@airlock/core';
import { apiSchema } from '../http/api-schemas.ts';
import type { AirlockHolder } from '../http/holder.ts';
import type { RouteSpec } from '../http/route-table.ts';
import type { NwcWalletService } from './wallet-service.ts';

export const NwcConnectResponse = apiSchema(
  'NwcConnectResponse',
  z.object({
    sessionId: z.string(),
    uri: z.string().describe('nostr+walletconnect://<wallet service pubkey>?relay=…&secret=…: shown once (Airlock keeps only the public key of the secret). Whoever holds it pays under this session\'s policy until the session ends.'),
    walletPubkey: z.string().describe('This connection\'s wallet service key (x-only hex), derived for it in the key backend: what the client p-tags.'),
    clientPubkey: z.string().describe('The public key of the secret in the URI: the only author whose requests are answered.'),
    relays: z.array(z.string()),
  }),
);

const DEAD_SESSION: ReadonlySet<ErrorCode> = new Set(['session_expired', 'session_revoked', 'agent_frozen', 'agent_retired']);

function walletServiceOf(holder: AirlockHolder): NwcWalletService {
  const nwc = holder.get().nwc;
  if (!nwc) {
    throw new AirlockError('conflict', 'The NWC wallet service is not running on this daemon.', {
      hints: ['It runs when both AIRLOCK_NOSTR_RELAYS (the relays it listens on) and a Lightning backend (AIRLOCK_LIGHTNING_BACKEND) are configured; set them and restart.'],
    });
  }
  return nwc;
}

/** POST /v1/sessions/:id/nwc-connect: a Nostr Wallet Connect string that pays under a session's policy. */
export function buildNwcRoutes(holder: AirlockHolder): RouteSpec[] {
  return [
    {
      method: 'post', path: '/v1/sessions/:id/nwc-connect', operationId: 'connectNwcClient',
      summary: 'NIP-47: issue a nostr+walletconnect:// connection string for a session (shown once); its client pays, looks up and reads the balance under the session\'s policy',
      tag: 'sessions', auth: 'admin',
      responses: { 201: NwcConnectResponse }, errors: [404, 409],
      handler: async (c) => {
        const nwc = walletServiceOf(holder);
        const sessionId = c.req.param('id')!;
        try {
          const issued = await nwc.issueConnection(sessionId, 'admin');
          return c.json({ sessionId, uri: issued.uri, walletPubkey: issued.walletPubkey, clientPubkey: issued.clientPubkey, relays: issued.relays }, 201);
        } catch (e) {
          // The admin token is fine: say why the session cannot be connected without a 401 that suggests otherwise.
          if (isAirlockError(e) && DEAD_SESSION.has(e.code)) throw new AirlockError('conflict', `This session cannot be connected: ${e.code}.`);
          throw e;
        }
      },
    },
  ];
}
