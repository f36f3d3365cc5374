// `airlock lightning`: the configured backend and whether it answers, payments and the holds of those in flight
// per agent, and a reconcile round. The backend itself is chosen by the daemon's settings (listed in the usage).
import type { Command } from '../context.ts';
import { positiveInt, usage, UsageError } from '../args.ts';
import { printJson, table } from '../format.ts';

interface PaymentJson { id: string; agentId: string; state: string; amountMsat: string; maxFeeMsat: string; feeMsat?: string; failureReason?: string; payee: string; createdAt: string }
interface StatusJson { configured: boolean; backend?: string; network?: string; enforcesMaxFee?: boolean; reachable?: boolean; balanceMsat?: string; error?: { code: string; message: string } }
interface ReconcileJson { checked: number; succeeded: number; failed: number; errors: number }

const STATES = ['in_flight', 'succeeded', 'failed'];
const MAX_LIMIT = 1000;

export const lightningCommand: Command = {
  name: 'lightning',
  summary: 'status | payments | reconcile: the Lightning backend, payments and their holds',
  usage: [
    'airlock lightning status      the configured backend, whether it answers, its balance (exit 1 unless it answers)',
    'airlock lightning payments [--agent A] [--state in_flight|succeeded|failed] [--limit N]',
    '                              newest first (100 by default); a payment in flight holds amount + fee limit',
    'airlock lightning reconcile   ask the backend about every payment in flight now (exit 1 if it could not answer for some)',
    '',
    'The backend is configured on the daemon, by environment or config file (docs/operations.md, docs/lightning.md):',
    '  AIRLOCK_LIGHTNING_BACKEND              lnd or nwc (unset: Lightning is off)',
    '  AIRLOCK_LIGHTNING_NETWORK              bitcoin (default), testnet, signet or regtest',
    '  AIRLOCK_LND_URL                        lnd: its REST listener, https://host:8080',
    '  AIRLOCK_LND_MACAROON                   lnd: path of a pay-only macaroon file (lncli bakemacaroon, docs/lightning.md)',
    '  AIRLOCK_LND_TLS_CERT                   lnd: path of its tls.cert (pinned)',
    '  AIRLOCK_NWC_URL_FILE                   nwc: path of a file holding the nostr+walletconnect:// string',
    '  AIRLOCK_LIGHTNING_PAY_TIMEOUT          how long an agent waits before a payment is answered in flight (60s)',
    '  AIRLOCK_LIGHTNING_NOT_FOUND_GRACE      how long after that "no such payment" or a looked-up failure releases a hold (5m)',
    '  AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT  fee limit when a request names none, % of the amount, at least 1000 msat (1)',
    '  AIRLOCK_LIGHTNING_RECONCILE_BATCH      in-flight payments one reconcile round looks up; rounds page through all (200)',
    '  AIRLOCK_RECONCILE_INTERVAL             how often in-flight payments are looked up by the daemon itself (30s)',
  ].join('\n'),
  options: { agent: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['status', 'payments', 'reconcile'].includes(sub ?? '') || positionals.length > 1) throw usage(this.usage);
    if (values.state !== undefined && !STATES.includes(String(values.state))) throw new UsageError(`--state: expected one of ${STATES.join(', ')}`);
    const limit = values.limit === undefined ? undefined : positiveInt(values.limit, 'limit');
    if (limit !== undefined && limit > MAX_LIMIT) throw new UsageError(`--limit: at most ${MAX_LIMIT}`);
    const http = ctx.admin();
    switch (sub) {
      case 'status': {
        const { body } = await http.request<StatusJson>('GET', '/v1/lightning/status');
        // Scripts can gate on it: only a configured backend that answered is success.
        if (!body.reachable) process.exitCode = 1;
        if (ctx.json) return printJson(body);
        return console.log(describeStatus(body));
      }
      case 'payments': {
        const q = new URLSearchParams({ ...(values.agent ? { agent: String(values.agent) } : {}), ...(values.state ? { state: String(values.state) } : {}), ...(limit ? { limit: String(limit) } : {}) });
        const { body } = await http.request<{ payments: PaymentJson[] }>('GET', `/v1/lightning/payments${q.size ? `?${q}` : ''}`);
        if (ctx.json) return printJson(body);
        console.log(table(body.payments.map(paymentRow), ['id', 'agent', 'state', 'amount_msat', 'fee_msat', 'payee', 'created']));
        const holds = holdsByAgent(body.payments);
        if (holds.length > 0) console.log(`\nheld while in flight (amount + fee limit):\n${table(holds, ['agent', 'payments', 'held_msat'])}`);
        return;
      }
      case 'reconcile': {
        const { body } = await http.request<ReconcileJson>('POST', '/v1/lightning/reconcile');
        if (body.errors > 0) process.exitCode = 1;
        if (ctx.json) return printJson(body);
        const open = body.checked - body.succeeded - body.failed - body.errors;
        console.log(`checked ${body.checked} payment(s) in flight: ${body.succeeded} succeeded, ${body.failed} failed, ${open} still in flight, ${body.errors} not answered`);
        if (body.errors > 0) console.error(`the backend did not answer for ${body.errors} payment(s); their holds stay. \`airlock lightning status\` says why.`);
        return;
      }
      default:
        throw usage(this.usage);
    }
  },
};

function describeStatus(s: StatusJson): string {
  if (!s.configured) return 'backend    none: Lightning is off (set AIRLOCK_LIGHTNING_BACKEND on the daemon; `airlock lightning --help`)';
  const fee = s.enforcesMaxFee ? 'the node enforces the fee limit' : "the fee limit is the wallet's own budget (Airlock charges the fee reported)";
  const lines = [`backend    ${s.backend} on ${s.network}; ${fee}`];
  if (s.reachable) {
    lines.push('reachable  yes');
    if (s.balanceMsat !== undefined) lines.push(`balance    ${s.balanceMsat} msat`);
  } else {
    lines.push(`reachable  no: [${s.error?.code ?? 'unknown'}] ${s.error?.message ?? ''}`.trimEnd());
  }
  return lines.join('\n');
}

function paymentRow(p: PaymentJson): Record<string, unknown> {
  return {
    id: p.id,
    agent: p.agentId,
    state: p.state === 'failed' && p.failureReason ? `failed (${p.failureReason})` : p.state,
    amount_msat: p.amountMsat,
    // Succeeded: the fee it cost. In flight: the limit, which is held. Failed: nothing was charged.
    fee_msat: p.state === 'succeeded' ? p.feeMsat : p.state === 'in_flight' ? `max ${p.maxFeeMsat}` : undefined,
    payee: `${p.payee.slice(0, 8)}…${p.payee.slice(-4)}`,
    created: p.createdAt.replace(/\.\d{3}Z$/, 'Z'),
  };
}

/** Per agent, what its payments in flight hold: amount + fee limit each (of the payments listed). */
function holdsByAgent(payments: PaymentJson[]): Record<string, unknown>[] {
  const held = new Map<string, { payments: number; msat: bigint }>();
  for (const p of payments) {
    if (p.state !== 'in_flight') continue;
    const entry = held.get(p.agentId) ?? { payments: 0, msat: 0n };
    entry.payments += 1;
    entry.msat += BigInt(p.amountMsat) + BigInt(p.maxFeeMsat);
    held.set(p.agentId, entry);
  }
  return [...held].map(([agent, h]) => ({ agent, payments: h.payments, held_msat: h.msat.toString() }));
}
