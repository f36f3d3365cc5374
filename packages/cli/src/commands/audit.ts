import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { AirlockError, AuditChainVerifier, checkpointDigest, verifyStoredAudit, type AuditCheckpoint, type AuditEntry, type AuditVerifyResult } from '@airlock/core';
import { loadConfig, verifySchnorr } from '@airlock/server';
import { openStore } from '@airlock/store';
import type { Command, CliContext } from '../context.ts';
import { printJson, table } from '../format.ts';
import { usage } from './agents.ts';

interface EntryJson { seq: number; at: string; type: string; agentId?: string; action?: string; decision?: string; data: { violations?: { rule: string; code: string }[]; errorCode?: string; intent?: { summary?: string } } }

export const EXPORT_FORMAT = 'airlock-audit-export/v1';

export const auditCommand: Command = {
  name: 'audit',
  summary: 'tail | verify | export the hash-chained audit log',
  usage: [
    'airlock audit tail [--agent A] [--decision allow|deny|require_approval|error] [--from T] [--to T] [--limit N] [--follow]',
    'airlock audit verify                       (asks the daemon)',
    'airlock audit verify --offline [--data-dir DIR | --store URL]   (reads the store directly; no vault needed)',
    'airlock audit verify --file export.jsonl [--public-key HEX]      (an export, anywhere)',
    'airlock audit export [--out FILE]           (JSON lines: a header with checkpoints, then every entry)',
  ].join('\n'),
  options: { agent: { type: 'string' }, decision: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, follow: { type: 'boolean' }, offline: { type: 'boolean' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, file: { type: 'string' }, 'public-key': { type: 'string' }, out: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    switch (positionals[0]) {
      case 'tail':
        return tail(ctx, values);
      case 'verify': {
        let result: AuditVerifyResult;
        if (values.file) result = await verifyExport(String(values.file), values['public-key'] as string | undefined);
        else if (values.offline) {
          const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
          const store = await openStore(config.storeUrl);
          try {
            result = await verifyStoredAudit(store, verifySchnorr, (values['public-key'] as string | undefined) ?? (await store.getMeta('audit_public_key')));
          } finally {
            await store.close();
          }
        } else {
          result = (await ctx.admin().request<AuditVerifyResult>('POST', '/v1/audit/verify')).body;
        }
        report(ctx, result);
        return;
      }
      case 'export':
        return exportLog(ctx, values.out as string | undefined);
      default:
        throw usage(this.usage);
    }
  },
};

function report(ctx: CliContext, r: AuditVerifyResult): void {
  if (ctx.json) printJson(r);
  else if (r.ok) console.log(`OK: ${r.entries} entries, ${r.checkpoints} signed checkpoints, head ${r.headHash.slice(0, 16)}…${r.unanchored ? ` (${r.unanchored} newest entries not yet under a checkpoint)` : ''}`);
  else console.log(`FAILED at entry ${r.firstBad!.seq}: ${r.firstBad!.reason}`);
  if (!r.ok) process.exitCode = 2;
}

async function tail(ctx: CliContext, values: Record<string, unknown>): Promise<void> {
  const http = ctx.admin();
  const base: Record<string, string> = {};
  for (const k of ['agent', 'decision', 'from', 'to'] as const) if (values[k]) base[k] = String(values[k]);
  let after: number | undefined;
  const limit = Number(values.limit ?? 20);
  const show = (entries: EntryJson[]) => {
    if (ctx.json) for (const e of entries) console.log(JSON.stringify(e));
    else if (entries.length) console.log(table(entries.map(row), ['seq', 'at', 'type', 'agentId', 'decision', 'detail']));
  };
  if (!values.from) {
    // Without --from, start from the newest `limit` entries.
    const { body } = await http.request<{ seq: number }>('GET', '/v1/audit/head');
    after = Math.max(0, body.seq - limit);
  }
  const fetchPage = async () => {
    const q = new URLSearchParams({ ...base, limit: String(Math.min(1000, limit)), ...(after !== undefined ? { after: String(after) } : {}) });
    const { body } = await http.request<{ entries: EntryJson[] }>('GET', `/v1/audit?${q}`);
    if (body.entries.length) after = body.entries.at(-1)!.seq;
    return body.entries;
  };
  show(await fetchPage());
  while (values.follow) {
    await new Promise((r) => setTimeout(r, 1000));
    show(await fetchPage());
  }
}

function row(e: EntryJson) {
  const v = e.data.violations?.map((x) => `${x.rule}:${x.code}`).join(' ');
  return { ...e, detail: e.data.errorCode ?? (v || e.data.intent?.summary || e.action || '') };
}

async function exportLog(ctx: CliContext, out: string | undefined): Promise<void> {
  const http = ctx.admin();
  const stream = out ? createWriteStream(out, { mode: 0o600 }) : process.stdout;
  const { body: cps } = await http.request<{ publicKey: string; checkpoints: AuditCheckpoint[] }>('GET', '/v1/audit/checkpoints');
  stream.write(`${JSON.stringify({ format: EXPORT_FORMAT, publicKey: cps.publicKey, checkpoints: cps.checkpoints })}\n`);
  let after = 0;
  let count = 0;
  for (;;) {
    const { body } = await http.request<{ entries: (AuditEntry & { at: string })[] }>('GET', `/v1/audit?after=${after}&limit=1000`);
    for (const e of body.entries) stream.write(`${JSON.stringify({ ...e, at: Date.parse(e.at) })}\n`);
    count += body.entries.length;
    if (body.entries.length < 1000) break;
    after = body.entries.at(-1)!.seq;
  }
  if (out) {
    await new Promise<void>((r) => (stream as ReturnType<typeof createWriteStream>).end(r));
    if (!ctx.json) console.log(`exported ${count} entries and ${cps.checkpoints.length} checkpoints to ${out}`);
  }
}

/** Verifies an export file with nothing but the file (and, ideally, the published audit public key). */
export async function verifyExport(file: string, publicKey?: string): Promise<AuditVerifyResult> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header: { format: string; publicKey: string; checkpoints: AuditCheckpoint[] } | undefined;
  let verifier: AuditChainVerifier | undefined;
  for await (const line of lines) {
    if (!line.trim()) continue;
    const value = JSON.parse(line);
    if (!header) {
      if (value.format !== EXPORT_FORMAT) throw new AirlockError('invalid_request', 'Not an Airlock audit export.');
      header = value;
      verifier = new AuditChainVerifier(value.checkpoints);
      continue;
    }
    if (!verifier!.push(value as AuditEntry)) break;
  }
  if (!header || !verifier) throw new AirlockError('invalid_request', 'Empty export file.');
  return verifier.finish(header.checkpoints, (cp) => verifySchnorr(cp.publicKey, checkpointDigest(cp), cp.signature), publicKey ?? header.publicKey);
}
