import { z } from 'zod';
import { AirlockError, isAirlockError, type ErrorCode } from '@airlock/core';
import { apiSchema } from '../http/api-schemas.ts';
import type { AirlockHolder } from '../http/holder.ts';
import type { RouteSpec } from '../http/route-table.ts';
import { BunkerInputError, type NostrBunker } from './bunker.ts';

export const NostrConnectRequest = apiSchema(
  'NostrConnectRequest',
  z
    .object({
      nostrconnect: z.string().max(4096).optional().describe('A client\'s nostrconnect:// URI (client-initiated flow). Omit it to get a bunker:// string instead.'),
    })
    .strict(),
);

export const NostrConnectResponse = apiSchema(
  'NostrConnectResponse',
  z.object({
    sessionId: z.string(),
    transportPubkey: z.string().describe('The agent\'s NIP-46 transport key (x-only hex): what clients p-tag, never the identity key.'),
    relays: z.array(z.string()),
    bunker: z.string().optional().describe('bunker://<transport pubkey>?relay=…&secret=…: shown once; the secret connects one client, once.'),
    clientPubkey: z.string().optional().describe('nostrconnect flow: the client key now connected to this session.'),
  }),
);

const DEAD_SESSION: ReadonlySet<ErrorCode> = new Set(['session_expired', 'session_revoked', 'agent_frozen', 'agent_retired']);

function bunkerOf(holder: AirlockHolder): NostrBunker {
  const bunker = holder.get().bunker;
  if (!bunker) {
    throw new AirlockError('conflict', 'The Nostr bunker is not running on this daemon.', { hints: ['Set AIRLOCK_NOSTR_RELAYS to the relay URLs it should listen on, and restart.'] });
  }
  return bunker;
}

/** POST /v1/sessions/:id/nostr-connect: a one-time bunker:// string, or accepting a client's nostrconnect:// URI. */
export function buildNostrBunkerRoutes(holder: AirlockHolder): RouteSpec[] {
  return [
    {
      method: 'post', path: '/v1/sessions/:id/nostr-connect', operationId: 'connectNostrClient',
      summary: 'NIP-46: issue a single-use bunker:// connection string for a session (shown once), or connect a client\'s nostrconnect:// URI',
      tag: 'sessions', auth: 'admin', body: NostrConnectRequest,
      responses: { 201: NostrConnectResponse }, errors: [400, 401, 403, 404, 409],
      handler: async (c, { body }) => {
        const bunker = bunkerOf(holder);
        const sessionId = c.req.param('id')!;
        const uri = (body as { nostrconnect?: string }).nostrconnect;
        try {
          if (uri === undefined) {
            const issued = await bunker.issueConnection(sessionId, 'admin');
            return c.json({ sessionId, transportPubkey: issued.transportPubkey, relays: issued.relays, bunker: issued.uri }, 201);
          }
          const accepted = await bunker.acceptNostrConnect(sessionId, uri, 'admin');
          return c.json({ sessionId, ...accepted }, 201);
        } catch (e) {
          if (e instanceof BunkerInputError) throw new AirlockError('invalid_request', e.message);
          // The admin token is fine: say why the session cannot be connected without a 401 that suggests otherwise.
          if (isAirlockError(e) && DEAD_SESSION.has(e.code)) throw new AirlockError('conflict', `This session cannot be connected: ${e.code}.`);
          throw e;
        }
      },
    },
  ];
}
