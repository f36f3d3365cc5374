import { z } from 'zod';
import { nostrPubkeyField, ruleBase } from '../fields.ts';
import { defineRule } from './types.ts';

const OPS = ['encrypt', 'decrypt'] as const;

/**
 * NIP-44 and NIP-04 (`nostr.nip44`, `nostr.nip04`): the agent encrypts to and decrypts from the listed pubkeys only.
 * `ops` narrows the list to one direction: `[encrypt]` keeps what the agent may send to the listed peers while it
 * reads from anyone (NIP-17 gift wraps come from a fresh ephemeral key each time, which no list can name).
 * Other requests pass.
 */
export const nostrPeersRule = defineRule({
  type: 'nostr_peers',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('nostr_peers'),
    allow: z.array(nostrPubkeyField).describe('Peer pubkeys (x-only hex). Empty: no peer at all.'),
    ops: z
      .array(z.enum(OPS, { error: `expected one of: ${OPS.join(', ')}` }))
      .min(1, 'expected encrypt, decrypt or both (leave ops out for both)')
      .optional()
      .describe('The directions the list limits (default both). Requests in a direction not listed pass this rule.'),
  }),
  build(options) {
    const allow = new Set(options.allow.map((p) => p.toLowerCase()));
    const ops = new Set<string>(options.ops ?? OPS);
    return {
      name: options.name,
      type: 'nostr_peers',
      windows() {},
      evaluate(ctx) {
        const crypto = ctx.input.intent.nostr?.nip44 ?? ctx.input.intent.nostr?.nip04;
        if (crypto === undefined || !ops.has(crypto.op) || allow.has(crypto.peer)) return 'pass';
        return [{ code: 'nostr_peer_not_allowed', message: `${crypto.op === 'encrypt' ? 'encrypting to' : 'decrypting from'} peer ${crypto.peer.slice(0, 12)}… is not allowed: it is not among the ${allow.size} allowed pubkeys` }];
      },
    };
  },
});
