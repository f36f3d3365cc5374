import { z } from 'zod';
import { nostrPubkeyField, ruleBase } from '../fields.ts';
import { defineRule } from './types.ts';

/** NIP-44 and NIP-04 (`nostr.nip44`, `nostr.nip04`): the agent encrypts to and decrypts from the listed pubkeys only. Other requests pass. */
export const nostrPeersRule = defineRule({
  type: 'nostr_peers',
  schema: z.strictObject({ ...ruleBase, type: z.literal('nostr_peers'), allow: z.array(nostrPubkeyField).describe('Peer pubkeys (x-only hex). Empty: no peer at all.') }),
  build(options) {
    const allow = new Set(options.allow.map((p) => p.toLowerCase()));
    return {
      name: options.name,
      type: 'nostr_peers',
      windows() {},
      evaluate(ctx) {
        const peer = ctx.input.intent.nostr?.nip44?.peer ?? ctx.input.intent.nostr?.nip04?.peer;
        if (peer === undefined || allow.has(peer)) return 'pass';
        return [{ code: 'nostr_peer_not_allowed', message: `peer ${peer.slice(0, 12)}… is not among the ${allow.size} allowed pubkeys` }];
      },
    };
  },
});
