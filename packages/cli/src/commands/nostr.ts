import type { Command } from '../context.ts';
import { printJson } from '../format.ts';
import { need, usage } from '../args.ts';

interface NostrConnectJson { sessionId: string; transportPubkey: string; relays: string[]; bunker?: string; clientPubkey?: string }

export const nostrCommand: Command = {
  name: 'nostr',
  summary: 'bunker: NIP-46 connection strings for agent sessions',
  usage: [
    'airlock nostr bunker <session-id>                         print a single-use bunker:// string (shown once)',
    'airlock nostr bunker <session-id> --connect <nostrconnect://…>   connect a client that showed a nostrconnect:// URI',
  ].join('\n'),
  options: { connect: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    if (sub !== 'bunker') throw usage(this.usage);
    const sessionId = need(target, 'session-id');
    const http = ctx.admin();
    const body = values.connect ? { nostrconnect: String(values.connect) } : {};
    const { body: res } = await http.request<NostrConnectJson>('POST', `/v1/sessions/${encodeURIComponent(sessionId)}/nostr-connect`, body);
    if (ctx.json) return printJson(res);
    if (res.clientPubkey) return console.log(`client ${res.clientPubkey} connected to session ${res.sessionId} (remote signer ${res.transportPubkey})`);
    console.log(`BUNKER CONNECTION STRING for session ${res.sessionId} (shown once; its secret connects one client, once):`);
    console.log(`  ${res.bunker}`);
  },
};
