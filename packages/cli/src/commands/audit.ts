import { constants as bufferConstants } from 'node:buffer';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { AirlockError, AuditLogVerifier, checkAnchoring, checkpointDigest, isAirlockError, parseUntrustedJson, treeHeadDigest, verifyStoredAudit, type AnchoringRequirements, type AuditAnchoringCode, type AuditCheckpoint, type AuditEntry, type AuditVerifyResult, type SignedTreeHead } from '@airlock/core';
import type { Command, CliContext } from '../context.ts';
import { printJson, table } from '../format.ts';
import { positiveInt, usage, UsageError } from '../args.ts';

interface EntryJson {
  seq: number;
  at: string;
  type: string;
  agentId?: string;
  action?: string;
  decision?: string;
  data: { violations?: { rule: string; code: string }[]; errorCode?: string; intent?: { summary?: string; nostr?: { eventKind?: number; eventId?: string; nip44?: { peer: string; op: string } } } };
}

/** v2: the header carries signed tree heads too, entries their leaf index and (version 3) stored leaf. v1 files still verify. */
export const EXPORT_FORMAT = 'airlock-audit-export/v2';
const LEGACY_EXPORT_FORMAT = 'airlock-audit-export/v1';

export const auditCommand: Command = {
  name: 'audit',
  summary: 'tail | verify | export | pubkey | acknowledge: the Merkle-tree audit log',
  usage: [
    'airlock audit tail [--agent A] [--type T] [--action A] [--decision allow|deny|require_approval|error] [--from T] [--to T] [--limit N] [--follow]',
    '                    (--action nostr.event|nostr.http_auth|nostr.nip44 lists Nostr signatures: event id, kind, decision)',
    'airlock audit verify [--require-anchored] [--min-tree-size N]   (asks the daemon)',
    'airlock audit verify --offline [--data-dir DIR | --store URL] [--public-key HEX] [--require-anchored] [--min-tree-size N]',
    '                    (reads the store and the anchor beside the vault; no passphrase)',
    'airlock audit verify --file export.jsonl [--public-key HEX] [--allow-unanchored] [--min-tree-size N [--expect-root HEX]]',
    '                    (an export, anywhere. With --public-key every entry must be under a signed tree head unless',
    '                    --allow-unanchored; --min-tree-size/--expect-root pin the size and root an earlier export or head showed.',
    '                    Exit 2: an entry or head does not verify; 5: all verify, but the signed heads do not vouch for the log as required)',
    'airlock audit export [--out FILE] [--wait SECONDS] [--include-unanchored]',
    '                    (JSON lines: a header with signed tree heads, then every entry up to the newest head; waits up to',
    '                    --wait, default 30, for a head over the log as it was at the start)',
    'airlock audit pubkey                        (the audit public key, derived from the vault: publish it)',
    'airlock audit acknowledge                   (accept the log as it is after an integrity alert; resumes signing)',
  ].join('\n'),
  options: { agent: { type: 'string' }, type: { type: 'string' }, action: { type: 'string' }, decision: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, follow: { type: 'boolean' }, offline: { type: 'boolean' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, file: { type: 'string' }, 'public-key': { type: 'string' }, out: { type: 'string' },
    'allow-unanchored': { type: 'boolean' }, 'require-anchored': { type: 'boolean' }, 'min-tree-size': { type: 'string' }, 'expect-root': { type: 'string' }, wait: { type: 'string' }, 'include-unanchored': { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    switch (positionals[0]) {
      case 'tail':
        return tail(ctx, values);
      case 'verify': {
        let result: AuditVerifyResult;
        const required = anchoringOptions(values);
        if (values.file) {
          const publicKey = values['public-key'] as string | undefined;
          if (publicKey === undefined) console.error('note: checking checkpoints against the key in the export itself; pass --public-key to check against the published key');
          const requireAnchored = values['allow-unanchored'] ? false : values['require-anchored'] ? true : undefined;
          result = await verifyExport(String(values.file), publicKey, { ...required, ...(requireAnchored !== undefined ? { requireAnchored } : {}) });
        }
        else if (required.expectRoot !== undefined) {
          // The daemon's and the store's verification return the whole tree's root only, not the root at a size.
          throw new UsageError('--expect-root checks an export: run it with --file (take one with `airlock audit export`)');
        } else if (values.offline) {
          // Loaded on demand: only the offline verifier needs the store and the server's config.
          const [{ loadConfig, verifySchnorr, auditAnchorPath, readAuditAnchorFile, auditVerifyOptions }, { openStore }] = await Promise.all([import('@airlock/server'), import('@airlock/store')]);
          const config = loadConfig({ ...(values['data-dir'] ? { dataDir: String(values['data-dir']) } : {}), ...(values.store ? { storeUrl: String(values.store) } : {}) });
          // Never the key stored in the database: its owner could have swapped it along with the checkpoints.
          const anchor = await readAuditAnchorFile(auditAnchorPath(config.vaultPath));
          const publicKey = (values['public-key'] as string | undefined) ?? anchor?.publicKey;
          if (!publicKey) {
            throw new AirlockError('invalid_request', 'No audit public key to verify checkpoints against.', { hints: ['Pass --public-key (printed by `airlock init` and `airlock audit pubkey`).'] });
          }
          const store = await openStore(config.storeUrl);
          try {
            result = await verifyStoredAudit(store, verifySchnorr, publicKey, anchor ? [anchor] : [], auditVerifyOptions(config.storeUrl));
          } finally {
            await store.close();
          }
        } else {
          result = (await ctx.admin().request<AuditVerifyResult>('POST', '/v1/audit/verify')).body;
        }
        // A live log always has its newest entries (one checkpoint interval's worth) past the last head:
        // accepted here unless asked otherwise. An export is checked strictly in verifyExport.
        if (!values.file) result = checkAnchoring(result, { ...required, requireAnchored: !!values['require-anchored'] });
        report(ctx, result);
        return;
      }
      case 'export':
        return exportLog(ctx, values.out as string | undefined, { waitMs: seconds(values.wait, 'wait', 30) * 1000, includeUnanchored: !!values['include-unanchored'] });
      case 'pubkey': {
        const { body } = await ctx.admin().request<{ publicKey: string }>('GET', '/v1/audit/checkpoints');
        if (ctx.json) printJson({ publicKey: body.publicKey });
        else console.log(body.publicKey);
        return;
      }
      case 'acknowledge': {
        // The API's AuditAcknowledgement (packages/server/src/http/schemas.ts): the new anchor is a signed tree head.
        type Head = { generation: number; treeSize: number; rootHash?: string };
        const { body } = await ctx.admin().request<{ anchor: Head & { rootHash: string }; previous?: Head; failure?: { seq: number; reason: string } }>('POST', '/v1/audit/acknowledge');
        if (ctx.json) return printJson(body);
        const { anchor, previous, failure } = body;
        console.log(`acknowledged${failure ? ` (${failure.reason})` : ''}: re-anchored at tree size ${anchor.treeSize}, root ${anchor.rootHash.slice(0, 16)}…, generation ${anchor.generation}; signing resumes`);
        if (previous) console.log(`  gave up: generation ${previous.generation}, tree size ${previous.treeSize}${previous.rootHash ? `, root ${previous.rootHash.slice(0, 16)}…` : ''}`);
        return;
      }
      default:
        throw usage(this.usage);
    }
  },
};

/** Exit code of a verification whose entries and heads all check out but do not vouch for the log as required. */
const EXIT_NOT_ANCHORED = 5;

const ANCHORING_HINTS: Record<AuditAnchoringCode, string> = {
  audit_no_signed_head: 'Each entry matches its own hash, but without a signed tree head over them an edited or truncated log looks the same. Take exports with `airlock audit export` (it waits for a signed head); --allow-unanchored accepts the unsigned entries.',
  audit_unanchored: 'Entries past the newest signed head could have been edited or appended by anyone. Take exports with `airlock audit export` (it ends at a signed head); --allow-unanchored accepts them.',
  audit_below_min_tree_size: 'Entries or signed heads were removed since the export or head the size was taken from, or the size is from another log.',
  audit_root_mismatch: 'The log was rewritten below that size (and its heads re-signed, e.g. after `airlock audit acknowledge`), or the root is from another log.',
};

function report(ctx: CliContext, r: AuditVerifyResult): void {
  if (ctx.json) printJson(r);
  else if (r.ok) console.log(`OK: ${r.entries} entries, ${r.treeHeads} signed tree heads${r.checkpoints ? ` and ${r.checkpoints} legacy checkpoints` : ''}, root ${r.rootHash.slice(0, 16)}…${r.unanchored ? ` (${r.unanchored} newest entries not yet under a signed head)` : ''}`);
  else if (r.anchoring) {
    console.log(`FAILED [${r.anchoring.code}]: ${r.anchoring.reason}`);
    console.error(`hint: ${ANCHORING_HINTS[r.anchoring.code]}`);
  } else console.log(`FAILED at entry ${r.firstBad!.seq}: ${r.firstBad!.reason}`);
  if (!r.ok) process.exitCode = r.anchoring ? EXIT_NOT_ANCHORED : 2;
}

/** --min-tree-size, --expect-root (needs the size) and the two anchoring switches, checked before anything is read. */
function anchoringOptions(values: Record<string, unknown>): AnchoringRequirements {
  if (values['allow-unanchored'] && values['require-anchored']) throw new UsageError('--allow-unanchored and --require-anchored contradict each other');
  const required: AnchoringRequirements = {};
  if (values['min-tree-size'] !== undefined) required.minTreeSize = positiveInt(values['min-tree-size'], 'min-tree-size');
  if (values['expect-root'] !== undefined) {
    const root = String(values['expect-root']).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(root)) throw new UsageError('--expect-root: expected a 32-byte root hash in hex (64 digits)');
    if (required.minTreeSize === undefined) throw new UsageError('--expect-root needs --min-tree-size N: the tree size that root is of');
    required.expectRoot = root;
  }
  return required;
}

/** `--wait 30`: whole seconds, 0 allowed. */
function seconds(v: unknown, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  const s = String(v);
  if (!/^\d{1,6}$/.test(s)) throw new UsageError(`--${flag}: expected whole seconds (0 or more)`);
  return Number(s);
}

const PAGE = 1000;

async function tail(ctx: CliContext, values: Record<string, unknown>): Promise<void> {
  const http = ctx.admin();
  const filter: Record<string, string> = {};
  for (const k of ['agent', 'type', 'decision', 'from', 'to'] as const) if (values[k]) filter[k] = String(values[k]);
  // The API filters by type, not by action: the action is matched here, before entries are counted.
  const action = values.action !== undefined ? String(values.action) : undefined;
  const wanted = (e: EntryJson) => action === undefined || e.action === action;
  const nostr = action?.startsWith('nostr.') ?? false;
  const limit = values.limit !== undefined ? positiveInt(values.limit, 'limit') : 20;
  /** Up to `max` matching entries with seq > after, oldest first, following pages. */
  const forward = async (after: number | undefined, max: number, upTo = Infinity): Promise<EntryJson[]> => {
    const out: EntryJson[] = [];
    for (;;) {
      const want = Math.min(PAGE, max - out.length);
      const q = new URLSearchParams({ ...filter, limit: String(want), ...(after !== undefined ? { after: String(after) } : {}) });
      const { body } = await http.request<{ entries: EntryJson[] }>('GET', `/v1/audit?${q}`);
      const inRange = body.entries.filter((e) => e.seq <= upTo);
      out.push(...inRange.filter(wanted));
      if (body.entries.length < want || inRange.length < body.entries.length || out.length >= max) return out;
      after = body.entries.at(-1)!.seq;
    }
  };
  const show = (entries: EntryJson[]) => {
    if (ctx.json) for (const e of entries) console.log(JSON.stringify(e));
    else if (entries.length && nostr) console.log(table(entries.map(nostrRow), ['seq', 'at', 'action', 'kind', 'eventId', 'decision', 'detail']));
    else if (entries.length) console.log(table(entries.map(row), ['seq', 'at', 'type', 'agentId', 'decision', 'detail']));
  };

  let entries: EntryJson[];
  let after: number;
  if (values.from) {
    entries = await forward(undefined, limit);
    after = entries.at(-1)?.seq ?? 0;
  } else {
    // The newest `limit` matching entries. The API pages forward only, so look back over windows that
    // grow until enough entries match: a filter such as --decision deny may match only old entries.
    const { body: head } = await http.request<{ seq: number }>('GET', '/v1/audit/head');
    entries = [];
    let hi = head.seq;
    for (let window = limit; entries.length < limit && hi > 0; window *= 4) {
      const lo = Math.max(0, hi - window);
      entries = [...(await forward(lo, Infinity, hi)), ...entries];
      hi = lo;
    }
    entries = entries.slice(-limit);
    after = head.seq;
  }
  if (entries.length === 0 && !ctx.json && !values.follow) console.log('(no matching entries)');
  show(entries);
  while (values.follow) {
    await new Promise((r) => setTimeout(r, 1000));
    const fresh = await forward(after, PAGE);
    if (fresh.length) after = fresh.at(-1)!.seq;
    show(fresh);
  }
}

function row(e: EntryJson) {
  const v = e.data.violations?.map((x) => `${x.rule}:${x.code}`).join(' ');
  return { ...e, detail: e.data.errorCode ?? (v || e.data.intent?.summary || e.action || '') };
}

/** A Nostr entry: the full event id (what a relay shows), its kind, and for NIP-44 the peer and direction. */
function nostrRow(e: EntryJson) {
  const n = e.data.intent?.nostr;
  const v = e.data.violations?.map((x) => `${x.rule}:${x.code}`).join(' ');
  const nip44 = n?.nip44 ? `${n.nip44.op} with ${n.nip44.peer}` : '';
  return { ...e, kind: n?.eventKind ?? '-', eventId: n?.eventId ?? '-', detail: e.data.errorCode ?? (v || nip44) };
}

interface SignedHeads {
  publicKey: string;
  checkpoints: AuditCheckpoint[];
  treeHeads: SignedTreeHead[];
}

/** How many leaves the signed heads (and legacy checkpoints, which sign a chain of seq = leaf count entries) cover. */
const signedSize = (s: SignedHeads) => Math.max(0, ...s.treeHeads.map((h) => h.treeSize), ...s.checkpoints.map((c) => c.seq));

/**
 * Writes the header (the signed heads) and the entries in leaf order, up to the newest signed head: an
 * export is worth keeping only for what the audit key vouches for, and `verify --file --public-key`
 * refuses entries past the last head. There is no endpoint to have a head signed on demand, so the export
 * first waits (up to `waitMs`) for the checkpointer's next head to cover the log as it was at the start.
 */
async function exportLog(ctx: CliContext, out: string | undefined, opts: { waitMs: number; includeUnanchored: boolean }): Promise<void> {
  const http = ctx.admin();
  const readHeads = async () => (await http.request<SignedHeads>('GET', '/v1/audit/checkpoints')).body;
  const { body: start } = await http.request<{ treeSize: number }>('GET', '/v1/audit/head');
  let heads = await readHeads();
  for (const deadline = Date.now() + opts.waitMs; signedSize(heads) < start.treeSize && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
    heads = await readHeads();
  }
  const signed = signedSize(heads);
  const upTo = opts.includeUnanchored ? Infinity : signed;
  const stream = out ? createWriteStream(out, { mode: 0o600 }) : process.stdout;
  stream.write(`${JSON.stringify({ format: EXPORT_FORMAT, publicKey: heads.publicKey, treeHeads: heads.treeHeads, checkpoints: heads.checkpoints })}\n`);
  let after = 0;
  let count = 0;
  for (let more = upTo > 0; more; ) {
    const { body } = await http.request<{ entries: (AuditEntry & { at: string })[] }>('GET', `/v1/audit?after=${after}&limit=1000`);
    for (const e of body.entries) {
      // Pages come in leaf order; entries before the tree have no leaf index (their leaf is seq - 1).
      if ((e.leafIndex ?? e.seq - 1) >= upTo) {
        more = false;
        break;
      }
      stream.write(`${JSON.stringify({ ...e, at: Date.parse(e.at) })}\n`);
      count++;
    }
    if (body.entries.length < 1000) more = false;
    else after = body.entries.at(-1)!.seq;
  }
  if (out) await new Promise<void>((r) => (stream as ReturnType<typeof createWriteStream>).end(r));
  const newest = heads.treeHeads.reduce<SignedTreeHead | undefined>((a, h) => (!a || h.treeSize > a.treeSize ? h : a), undefined);
  const { body: now } = await http.request<{ treeSize: number }>('GET', '/v1/audit/head');
  const leftOut = opts.includeUnanchored ? 0 : Math.max(0, now.treeSize - count);
  if (out && ctx.json) printJson({ out, entries: count, treeHeads: heads.treeHeads.length, newestHead: newest ? { treeSize: newest.treeSize, rootHash: newest.rootHash } : null, unanchored: Math.max(0, count - signed), leftOut });
  else if (out) console.log(`exported ${count} entries and ${heads.treeHeads.length} signed tree heads to ${out}${newest ? ` (newest head: size ${newest.treeSize}, root ${newest.rootHash})` : ''}`);
  if (leftOut > 0 && signed < start.treeSize && opts.waitMs > 0) {
    console.error(`warning: no signed tree head covered the log within ${opts.waitMs / 1000} s; the ${leftOut} entries past the newest head are not in the export. Is signing halted (\`airlock audit verify\`)? --include-unanchored exports them (verify that export with --allow-unanchored).`);
  } else if (leftOut > 0) {
    console.error(`note: ${leftOut} entries written after the newest signed tree head are left for the next export`);
  } else if (opts.includeUnanchored && count > signed) {
    console.error(`note: the newest ${count - signed} entries are not under a signed tree head: verify this export with --allow-unanchored`);
  }
}

/**
 * Verifies an export file with nothing but the file (and, ideally, the published audit public key).
 * `required` is what the signed heads must vouch for; with a public key every entry must be under a signed
 * head unless `requireAnchored` is false (`--allow-unanchored`).
 */
export async function verifyExport(file: string, publicKey?: string, options: AnchoringRequirements = {}, maxLineBytes = MAX_EXPORT_LINE_BYTES): Promise<AuditVerifyResult> {
  const required = { ...options, requireAnchored: options.requireAnchored ?? publicKey !== undefined };
  if (!existsSync(file)) throw new AirlockError('not_found', `No export file at ${file}.`);
  const lines = exportLines(file, maxLineBytes);
  let header: { format: string; publicKey: string; checkpoints: AuditCheckpoint[]; treeHeads: SignedTreeHead[] } | undefined;
  let verifier: AuditLogVerifier | undefined;
  let lineNo = 0;
  let lastSeq = 0;
  let unreadable: { seq: number; reason: string } | undefined;
  for await (const line of lines) {
    lineNo++;
    if (line === LINE_TOO_LONG) {
      // Not read further (exportLines stopped at the cap). Before the header there are no heads to check.
      unreadable = { seq: header ? lastSeq + 1 : 1, reason: `line ${lineNo} is longer than ${maxLineBytes} bytes, longer than any line the exporter writes (not read further)` };
      if (!verifier) {
        header = { format: '', publicKey: '', checkpoints: [], treeHeads: [] };
        verifier = new AuditLogVerifier([], [], required);
      }
      break;
    }
    if (!line.trim()) continue;
    const { value, refused } = parseLine(line);
    if (!header) {
      if (refused) throw new AirlockError(refused.code, `${file}: line ${lineNo}: ${refused.message}`);
      const legacy = value?.format === LEGACY_EXPORT_FORMAT;
      if ((value?.format !== EXPORT_FORMAT && !legacy) || !Array.isArray(value!.checkpoints) || (!legacy && !Array.isArray(value!.treeHeads))) {
        throw new AirlockError('invalid_request', `${file} is not an Airlock audit export (line ${lineNo} is not its header).`);
      }
      // A header with duplicate or extra members (a head carrying a note no key signed) fails like an edited entry.
      const problem = notAsExported(line, value!, HEADER_MEMBERS) ?? headsProblem(value!.checkpoints as unknown[], CHECKPOINT_MEMBERS, 'checkpoint') ?? (legacy ? undefined : headsProblem(value!.treeHeads as unknown[], HEAD_MEMBERS, 'tree head'));
      const checkpoints = problem ? [] : (value!.checkpoints as AuditCheckpoint[]);
      const treeHeads = legacy || problem ? [] : (value!.treeHeads as SignedTreeHead[]);
      header = { format: String(value!.format), publicKey: String(value!.publicKey), checkpoints, treeHeads };
      verifier = new AuditLogVerifier(treeHeads, checkpoints, required);
      if (problem) {
        unreadable = { seq: 1, reason: `line ${lineNo} (the header) ${problem}` };
        break;
      }
      continue;
    }
    // A line that is not an entry at all is tampering too: report it where the chain breaks. So is one
    // with a prototype key or absurd nesting, which no writer produces.
    if (refused) {
      unreadable = { seq: lastSeq + 1, reason: `line ${lineNo} is refused: ${refused.message}` };
      break;
    }
    if (value === undefined || typeof value.seq !== 'number') {
      unreadable = { seq: lastSeq + 1, reason: `line ${lineNo} is not an audit entry` };
      break;
    }
    // Exactly what the exporter writes, and only the documented members: JSON.parse lets the last of two
    // duplicate members win and keeps members nothing checks, so an edited line would verify like the
    // original while reading otherwise (`"decision":"allow","approvedBy":"cfo",` in front of the real ones).
    const version = value.hashVersion ?? 1;
    const problem = notAsExported(line, value, version === 3 ? V3_MEMBERS : CHAINED_MEMBERS);
    if (problem) {
      unreadable = { seq: value.seq, reason: `line ${lineNo} ${problem}` };
      break;
    }
    // A version-3 line's data is checked against its leaf, so one without data would verify (the leaf
    // still holds it) while showing none.
    if (version === 3 && !Object.hasOwn(value, 'data')) {
      unreadable = { seq: value.seq, reason: `line ${lineNo}: a version-3 entry without data (edited)` };
      break;
    }
    if (!verifier!.push(value as unknown as AuditEntry)) break;
    lastSeq = value.seq;
  }
  if (!header || !verifier) throw new AirlockError('invalid_request', `${file} is empty: not an Airlock audit export.`);
  const { verifySchnorr } = await import('@airlock/server');
  const expected = publicKey ?? header.publicKey;
  const result = verifier.finish(header.treeHeads, header.checkpoints, {
    publicKey: expected,
    verifyTreeHead: (h) => verifySchnorr(expected, treeHeadDigest(h), h.signature),
    verifyCheckpoint: (cp) => verifySchnorr(expected, checkpointDigest(cp), cp.signature),
  });
  // The chain stopped at the unreadable line, so it is the first problem (finish() would call it truncation).
  if (!unreadable) return result;
  const { anchoring: _verifiedPrefixOnly, ...rest } = result;
  return { ...rest, ok: false, firstBad: unreadable };
}

/**
 * The longest export line read, in bytes before its LF: the longest string Node can hold (2^29 - 24, ~512 MiB),
 * as many characters as the exporter, one JSON.stringify string per line, can write. Honest lines get long: the
 * header carries every head ever signed (~340 bytes each, one per AIRLOCK_CHECKPOINT_INTERVAL, 10 s, while the
 * log grows: 64 MiB after 23 days of steady traffic), and an entry can be ~8.5 times the request body that wrote
 * it (a personal message of control bytes: its text escaped in `data` and again in `leaf`, and its hex), with
 * AIRLOCK_BODY_LIMIT up to 64 MiB. A longer line is refused once that many bytes are buffered, not after
 * buffering all of it and failing at V8's string limit (exit 1, a stack trace).
 */
export const MAX_EXPORT_LINE_BYTES = bufferConstants.MAX_STRING_LENGTH;

/** What exportLines yields for a line past the cap, and then stops. */
const LINE_TOO_LONG = Symbol('line too long');

/**
 * The lines of an export file, streamed: split at LF, as the exporter ends them, and at nothing else. (Not
 * readline: it also ends a line at U+2028 and U+2029, which JSON.stringify writes unescaped, so a string an
 * agent put in an audited request would cut its entry in two and fail every later export.) A CR before the
 * LF is dropped: the file may have passed through a tool that writes CRLF. A line over `maxLineBytes` is
 * LINE_TOO_LONG, and the file is read no further.
 */
async function* exportLines(file: string, maxLineBytes: number): AsyncGenerator<string | typeof LINE_TOO_LONG> {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let lf = chunk.indexOf(0x0a); lf !== -1; lf = chunk.indexOf(0x0a, from)) {
      if (partialBytes + lf - from > maxLineBytes) {
        yield LINE_TOO_LONG;
        return;
      }
      partial.push(chunk.subarray(from, lf));
      yield lineText(partial);
      partial = [];
      partialBytes = 0;
      from = lf + 1;
    }
    partialBytes += chunk.length - from;
    if (partialBytes > maxLineBytes) {
      yield LINE_TOO_LONG;
      return;
    }
    if (from < chunk.length) partial.push(chunk.subarray(from));
  }
  if (partial.length) yield lineText(partial);
}

// The LF byte is never part of another UTF-8 character, so a line's bytes decode on their own.
function lineText(parts: Buffer[]): string {
  const line = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

// The members docs/audit-format.md lists for an export's lines. `hashVersion` and `leafIndex` are absent
// in old exports (airlock-audit-export/v1, version 1 entries before the version was recorded).
const HEADER_MEMBERS = new Set(['format', 'publicKey', 'treeHeads', 'checkpoints']);
const HEAD_MEMBERS = new Set(['treeSize', 'rootHash', 'at', 'publicKey', 'signature']);
const CHECKPOINT_MEMBERS = new Set(['seq', 'headHash', 'at', 'publicKey', 'signature']);
const ENTRY_MEMBERS = ['seq', 'leafIndex', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision', 'data', 'hash', 'hashVersion'];
const V3_MEMBERS = new Set([...ENTRY_MEMBERS, 'leaf']);
const CHAINED_MEMBERS = new Set([...ENTRY_MEMBERS, 'prevHash']);

/**
 * Why a parsed line is not as the exporter writes it (JSON.stringify of the entry: so an honest line is the
 * JSON.stringify of its own parse), or has a member outside `allowed`; undefined when it is.
 */
function notAsExported(line: string, value: Record<string, unknown>, allowed: Set<string>): string | undefined {
  if (JSON.stringify(value) !== line) return 'is not as the exporter writes it (duplicate members, spacing or escapes: edited)';
  const extra = Object.keys(value).find((k) => !allowed.has(k));
  return extra === undefined ? undefined : `has a member the export format does not have: ${JSON.stringify(extra)} (edited)`;
}

function headsProblem(list: unknown[], allowed: Set<string>, what: string): string | undefined {
  for (const item of list) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return `has a ${what} that is not an object (edited)`;
    const extra = Object.keys(item).find((k) => !allowed.has(k));
    if (extra !== undefined) return `has a ${what} with a member it does not have: ${JSON.stringify(extra)} (edited)`;
  }
  return undefined;
}

/** An export line, with the same key and depth checks as a request body (the file is as untrusted). */
function parseLine(line: string): { value?: Record<string, unknown>; refused?: AirlockError } {
  try {
    const v = parseUntrustedJson(line, { subject: 'The line' });
    return v !== null && typeof v === 'object' ? { value: v as Record<string, unknown> } : {};
  } catch (e) {
    if (isAirlockError(e) && e.code !== 'invalid_json') return { refused: e };
    return {};
  }
}
