/**
 * Which client key may talk to which wallet service key, for which session: the NWC connections ("grants": one
 * client key per wallet service key, bound to the session the connection string was issued for).
 *
 * Where they live: in the audit log. Issuing a connection appends one `nwc.connection_issued` entry (operator
 * actor, the agent and session, the client pubkey, the wallet service pubkey and the index its key is derived
 * at). Nothing secret is in it: NIP-47 has the wallet service keep only the client's PUBLIC key ("SHOULD NOT
 * store the secret it generates for the client"), and Airlock forgets the secret once the connection string
 * is shown. So, with no new table and no migration:
 * - a restart reads the entries back (the same keys are derived again) and answers the same connection strings;
 * - another instance on the same store finds connections issued elsewhere when it next reads the log (`sync`);
 * - the record of who may spend through NWC is tamper-evident like everything else in the log.
 * A connection ends with its session (revoke, expiry): every request re-reads the session. Sessions live at most
 * 30 days, so only that much of the log is read at start-up; connections of sessions that have ended by then are
 * not listened for again (their requests go unanswered after a restart instead of being answered UNAUTHORIZED).
 */
import type { AuditEntryInput, Store } from '@airlock/core';
import { isHexPubkey } from '../nostr-bunker/nip01.ts';

export const NWC_CONNECTION_ISSUED = 'nwc.connection_issued';

export interface NwcGrant {
  sessionId: string;
  agentId: string;
  /** x-only hex of the connection secret's key: the only author whose requests are answered. */
  clientPubkey: string;
  /** x-only hex of this connection's wallet service key. */
  walletPubkey: string;
  /** The child index the wallet service key is derived at (wallet-key.ts). */
  keyIndex: number;
}

const PAGE = 1000;

/** The audit entry that records (and, read back, restores) a connection. */
export function grantIssuedEntry(at: number, grant: NwcGrant, by: string): AuditEntryInput {
  const { sessionId, agentId, clientPubkey, walletPubkey, keyIndex } = grant;
  return { at, type: NWC_CONNECTION_ISSUED, actor: 'operator', agentId, sessionId, data: { sessionId, clientPubkey, walletPubkey, keyIndex, by } };
}

/** Connections issued at or after `fromMs`, oldest first (a malformed entry, or one not written by the operator, is skipped: it grants nothing). */
export async function readIssuedGrants(store: Store, fromMs: number): Promise<NwcGrant[]> {
  const found: NwcGrant[] = [];
  let afterSeq: number | undefined;
  for (;;) {
    const page = await store.queryAudit({ type: NWC_CONNECTION_ISSUED, fromMs, limit: PAGE, ...(afterSeq !== undefined ? { afterSeq } : {}) });
    for (const entry of page) {
      const d = entry.data as Partial<Record<keyof NwcGrant, unknown>>;
      // Only the operator issues connections (grantIssuedEntry). No path lets anything else write this type;
      // checking it anyway keeps an entry written as another actor from granting a way to pay.
      if (entry.actor !== 'operator') continue;
      if (typeof entry.agentId !== 'string' || typeof d.sessionId !== 'string' || !isHexPubkey(d.clientPubkey) || !isHexPubkey(d.walletPubkey)) continue;
      if (!Number.isSafeInteger(d.keyIndex) || (d.keyIndex as number) < 0) continue;
      found.push({ sessionId: d.sessionId, agentId: entry.agentId, clientPubkey: d.clientPubkey, walletPubkey: d.walletPubkey, keyIndex: d.keyIndex as number });
    }
    if (page.length < PAGE) return found;
    afterSeq = page[page.length - 1]!.seq;
  }
}

/** The connections this instance answers, by wallet service key (one client per key). */
export class NwcGrants {
  private readonly byWallet = new Map<string, NwcGrant>();

  /** True when the connection is new here. */
  add(grant: NwcGrant): boolean {
    if (this.byWallet.has(grant.walletPubkey)) return false;
    this.byWallet.set(grant.walletPubkey, grant);
    return true;
  }

  forWalletKey(walletPubkey: string): NwcGrant | undefined {
    return this.byWallet.get(walletPubkey);
  }

  usesKeyIndex(agentId: string, keyIndex: number): boolean {
    for (const c of this.byWallet.values()) if (c.agentId === agentId && c.keyIndex === keyIndex) return true;
    return false;
  }

  walletKeys(): string[] {
    return [...this.byWallet.keys()];
  }

  get size(): number {
    return this.byWallet.size;
  }
}

/** Envelope ids seen lately: the same request arrives once per relay and must be handled once. */
export class RecentIds {
  private readonly ids = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  /** True the first time an id is seen. */
  firstSight(id: string): boolean {
    if (this.ids.has(id)) return false;
    if (this.ids.size >= this.max) this.ids.delete(this.ids.values().next().value!);
    this.ids.add(id);
    return true;
  }
}
