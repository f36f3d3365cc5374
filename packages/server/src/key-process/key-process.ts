import { chmodSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { AirlockError, BoundSigningGuard, DEFAULT_HEAD_DEADLINE_MS, TreeHeadGuard, VerifiedAuditLog, bindingRefused, isDuration, isWellFormedTreeHead, parseDuration, treeHeadDigest, type BitcoinNetwork, type BoundSigningRequest, type KeyBackend, type LifecycleFeeCeilings, type Store, type TreeHeadToSign } from '@airlock/core';
import { AUDIT_KEY_PATH, NativeKeyBackend, Pkcs11KeyBackend, WEBHOOK_SECRET_KEY_PATH, isTokenPath, openVault, type UnsealedVault } from '@airlock/keys';
import { openStore } from '@airlock/store';
import { chainAdapters, chooseKeyBackend, verifySchnorr, type VaultOptions } from '../runtime.ts';
import { parseBitcoinNetworks } from '../config.ts';
import { SessionRateLimiter } from '../http/session-rate-limiter.ts';
import type { Logger } from '../http/request-log.ts';
import { assertHeadRecordDirectoryOwned, defaultHeadRecordPath, readSignedHeadRecord, SignedHeadRecorder, type SignedHeadRecord } from './signed-head-record.ts';
import { decodeWire, encodeWire, isKeyProcessMethod, wireError, type KeyProcessMethod } from './wire.ts';
import { THRESHOLD_NODE_TOKENS_LABEL } from '../threshold/node-tokens.ts';
import { claimSocketPath } from '../socket-path.ts';
import { storeRecordsAgentKey } from '../token-key-records.ts';

/** Signatures (and key-path operations) per second and burst, per agent and for the whole process. */
export interface KeyProcessRates {
  agent: { perSecond: number; burst: number };
  global: { perSecond: number; burst: number };
  /** New key pairs made in a PKCS#11 token (a public key asked for at a token path that has none). */
  keygen: { perSecond: number; burst: number };
}

export const DEFAULT_KEY_PROCESS_RATES: KeyProcessRates = { agent: { perSecond: 50, burst: 100 }, global: { perSecond: 500, burst: 1000 }, keygen: { perSecond: 1, burst: 100 } };

/** AIRLOCK_KEY_PROCESS_AGENT_RATE / _AGENT_BURST / _GLOBAL_RATE / _GLOBAL_BURST / _KEYGEN_RATE / _KEYGEN_BURST (per second; burst at once). */
export function keyProcessRatesFrom(env: NodeJS.ProcessEnv): KeyProcessRates {
  const read = (name: string, fallback: number): number => {
    const value = env[`AIRLOCK_KEY_PROCESS_${name}`]?.trim();
    if (value === undefined || value === '') return fallback;
    if (!/^[1-9]\d{0,8}$/.test(value)) throw new AirlockError('config_invalid', `AIRLOCK_KEY_PROCESS_${name} must be a whole number of at least 1.`);
    return Number(value);
  };
  const d = DEFAULT_KEY_PROCESS_RATES;
  return {
    agent: { perSecond: read('AGENT_RATE', d.agent.perSecond), burst: read('AGENT_BURST', d.agent.burst) },
    global: { perSecond: read('GLOBAL_RATE', d.global.perSecond), burst: read('GLOBAL_BURST', d.global.burst) },
    keygen: { perSecond: read('KEYGEN_RATE', d.keygen.perSecond), burst: read('KEYGEN_BURST', d.keygen.burst) },
  };
}

export interface KeyProcessOptions {
  storeUrl: string;
  vaultPath: string;
  passphrase: string;
  socketPath: string;
  /** 0o600 (default): only this OS user connects. 0o660: the daemon's user, in the socket's group, too. */
  socketMode?: number;
  rates?: KeyProcessRates;
  logger: Logger;
  vault?: VaultOptions;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Its record of the last tree head it signed (signed-head-record.ts); default beside the vault file. */
  headRecordPath?: string;
  /** Start without holding the log to the heads signed before (a log restored from a backup, after checking it). */
  forgetSignedHead?: boolean;
  /** How long leaves may stay under no tree head it signed before it stops signing (keyProcessHeadDeadlineFrom). */
  headDeadlineMs?: number;
  /** Its own ceiling per chain on a lifecycle transaction's worst-case fee (keyProcessLifecycleMaxFeeFrom). */
  lifecycleMaxFee?: LifecycleFeeCeilings;
  /** Its own treasury per chain, the only one a sweep may pay when set (keyProcessTreasuryFrom). */
  lifecycleTreasury?: ReadonlyMap<string, string>;
  /** The Bitcoin networks it signs for; default AIRLOCK_BITCOIN_NETWORKS of its own environment (`bitcoin` when unset). */
  bitcoinNetworks?: BitcoinNetwork[];
}

/** AIRLOCK_KEY_PROCESS_HEAD_DEADLINE: a duration (`2m`, default), at least 10 s. */
export function keyProcessHeadDeadlineFrom(env: NodeJS.ProcessEnv): number {
  const text = env.AIRLOCK_KEY_PROCESS_HEAD_DEADLINE?.trim();
  if (text === undefined || text === '') return DEFAULT_HEAD_DEADLINE_MS;
  if (!isDuration(text) || parseDuration(text) < 10_000) throw new AirlockError('config_invalid', 'AIRLOCK_KEY_PROCESS_HEAD_DEADLINE must be a duration of at least 10s (e.g. 2m).');
  return parseDuration(text);
}

/**
 * AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: the key process's own ceiling on one lifecycle transaction's worst-case fee
 * (gas x gas price, in wei), per CAIP-2 EVM chain, as `chain=wei` pairs separated by commas; `*=wei` is the ceiling
 * of every chain not named (`eip155:1=5000000000000000,eip155:8453=100000000000000,*=1000000000000000`). Unset or
 * empty: no ceiling of its own. It is read here, from the key process's environment, because the fleet policy's
 * `lifecycle.max_gas_price` is in the store, which a compromised daemon can rewrite (docs/custody.md).
 */
export function keyProcessLifecycleMaxFeeFrom(env: NodeJS.ProcessEnv): LifecycleFeeCeilings {
  const text = env.AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE?.trim();
  const ceilings = new Map<string, bigint>();
  if (text === undefined || text === '') return ceilings;
  for (const part of text.split(',')) {
    const match = /^\s*(\*|eip155:[1-9]\d{0,19})\s*=\s*(\d{1,40})\s*$/.exec(part);
    if (!match) throw new AirlockError('config_invalid', `AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE: "${part.trim()}" is not chain=wei (a CAIP-2 EVM chain such as eip155:8453, or *, and a whole number of wei).`);
    if (ceilings.has(match[1]!)) throw new AirlockError('config_invalid', `AIRLOCK_KEY_PROCESS_LIFECYCLE_MAX_FEE names ${match[1]} twice.`);
    ceilings.set(match[1]!, BigInt(match[2]!));
  }
  return ceilings;
}

/**
 * AIRLOCK_KEY_PROCESS_TREASURY: the treasury a lifecycle sweep may pay, per CAIP-2 EVM chain, as `chain=address`
 * pairs separated by commas; `*=address` for every chain not named (`eip155:8453=0xabc…,*=0xdef…`). Set, it replaces
 * the fleet policy's `lifecycle.treasury` in the key process's check of a sweep: the policy is in the store, which a
 * compromised daemon can rewrite to its own address before it forges sweeps of every agent's old keys
 * (docs/custody.md). A chain it does not name (and no `*`) has no treasury: sweeps there go to the agent's current
 * key only. Unset or empty: the fleet policy's treasury, as before.
 */
export function keyProcessTreasuryFrom(env: NodeJS.ProcessEnv): Map<string, string> {
  const text = env.AIRLOCK_KEY_PROCESS_TREASURY?.trim();
  const treasury = new Map<string, string>();
  if (text === undefined || text === '') return treasury;
  for (const part of text.split(',')) {
    const match = /^\s*(\*|eip155:[1-9]\d{0,19})\s*=\s*(0x[0-9a-fA-F]{40})\s*$/.exec(part);
    if (!match) throw new AirlockError('config_invalid', `AIRLOCK_KEY_PROCESS_TREASURY: "${part.trim()}" is not chain=address (a CAIP-2 EVM chain such as eip155:8453, or *, and a 0x address of 40 hex digits).`);
    if (treasury.has(match[1]!)) throw new AirlockError('config_invalid', `AIRLOCK_KEY_PROCESS_TREASURY names ${match[1]} twice.`);
    treasury.set(match[1]!, match[2]!.toLowerCase());
  }
  return treasury;
}

export interface RunningKeyProcess {
  socketPath: string;
  fingerprint: string;
  close(): Promise<void>;
}

/** Nostr keys a key-path operation may use without a bound request: NIP-46 transport (1/0), NWC wallet service (2/n), and ECDH on the identity (0/0). */
const NOSTR_PATH = /^m\/44'\/1237'\/(\d{1,10})'\/(0\/0|1\/0|2\/\d{1,10})$/;
const SIGNING_NOSTR_PATH = /^m\/44'\/1237'\/(\d{1,10})'\/(1\/0|2\/\d{1,10})$/;
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * `airlock key-process`: the vault (or the PKCS#11 session) in a process of its own, reached over a Unix socket.
 * It opens the store read-only and signs for an agent key only what a committed decision allowed, or what a
 * committed lifecycle plan recorded when it is a sweep to the agent's own key or treasury or a revocation
 * (BoundSigningGuard), signs tree heads only over the root it computes from the log (TreeHeadGuard), serves
 * the key-path operations that have no decision to bind to only on their own paths, and rate-limits all of it
 * per agent and overall. Every refusal is logged with its reason. docs/custody.md, "Separate key process".
 */
export async function startKeyProcess(options: KeyProcessOptions): Promise<RunningKeyProcess> {
  const { logger } = options;
  await claimSocketPath(options.socketPath, 'AIRLOCK_KEY_PROCESS_SOCKET / --socket');
  const store = await openStore(options.storeUrl, { readOnly: true });
  let vault: UnsealedVault | undefined;
  let hsm: Pkcs11KeyBackend | undefined;
  try {
    const bound = await store.getMeta('vault_fingerprint');
    if (!bound) throw new AirlockError('vault_missing', 'This store is bound to no vault yet: run `airlock init` (or a first `airlock start` without a key process) first.');
    vault = await openVault(options.vaultPath, options.passphrase, options.vault ?? {});
    if (vault.fingerprint() !== bound) throw new AirlockError('vault_mismatch', 'The vault file does not belong to this store.');
    const chosen = chooseKeyBackend(options.env ?? process.env);
    const native = chosen.kind === 'native' || (chosen.kind === 'pkcs11' && NativeKeyBackend.available());
    const vaultKeys = vault.keyBackend(native ? 'native' : 'hd');
    hsm = chosen.pkcs11 ? Pkcs11KeyBackend.open(chosen.pkcs11, vaultKeys, { fingerprint: bound, recordsKey: storeRecordsAgentKey(store) }) : undefined;
    const keys: KeyBackend = hsm ?? vaultKeys;
    const headPath = options.headRecordPath ?? defaultHeadRecordPath(options.vaultPath);
    await assertHeadRecordDirectoryOwned(headPath);
    const record = options.forgetSignedHead ? undefined : await readSignedHeadRecord(headPath, bound);
    const heads = new SignedHeadRecorder(headPath, bound, record);
    const bitcoinNetworks = options.bitcoinNetworks ?? parseBitcoinNetworks((options.env ?? process.env).AIRLOCK_BITCOIN_NETWORKS);
    const handler = new KeyProcessHandler({ bitcoinNetworks, store, keys, ...(hsm ? { hsm } : {}), fingerprint: bound, rates: options.rates ?? DEFAULT_KEY_PROCESS_RATES, logger, native, now: options.now ?? Date.now, heads, headDeadlineMs: options.headDeadlineMs ?? DEFAULT_HEAD_DEADLINE_MS, lifecycleMaxFee: options.lifecycleMaxFee ?? new Map(), lifecycleTreasury: options.lifecycleTreasury ?? new Map() });
    // The whole log is read (and every leaf hashed) before the socket exists: a daemon waiting for the key process
    // is told it is there only once a request will not wait for that read.
    // First up to the heads signed before (checked as it goes), then the rest: held to a head before its leaves
    // can be folded away unchecked (a long log is folded as it is read, VerifiedAuditLog's MAX_AHEAD).
    const started = Date.now();
    if (options.forgetSignedHead) logger.log('warn', 'signed-head record forgotten: the log is taken as it is now', { headFile: headPath });
    else await handler.holdToSignedHeads(record);
    const leaves = handler.logSize + (await handler.catchUp());
    logger.log('info', 'audit log read', { leaves, ms: Date.now() - started });
    const server = createServer((req, res) => void handler.serve(req, res));
    await claimSocketPath(options.socketPath, 'AIRLOCK_KEY_PROCESS_SOCKET / --socket');
    // Created owner-only before anyone can connect (umask), then opened to the group if asked.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.socketPath, () => resolve());
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(options.socketPath, options.socketMode ?? 0o600);
    logger.log('info', 'key process listening', {
      socket: options.socketPath, backend: chosen.kind, reason: chosen.reason, fingerprint: bound,
      lifecycleMaxFee: options.lifecycleMaxFee?.size ? Object.fromEntries([...options.lifecycleMaxFee].map(([chain, wei]) => [chain, wei.toString()])) : 'none',
      lifecycleTreasury: options.lifecycleTreasury?.size ? Object.fromEntries(options.lifecycleTreasury) : 'fleet policy',
      bitcoinNetworks,
    });
    const openedVault = vault;
    const openedHsm = hsm;
    return {
      socketPath: options.socketPath,
      fingerprint: bound,
      async close() {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        openedHsm?.close();
        openedVault.wipe();
        await store.close();
      },
    };
  } catch (e) {
    hsm?.close();
    vault?.wipe();
    await store.close().catch(() => undefined);
    throw e;
  }
}

interface HandlerDeps {
  store: Store;
  keys: KeyBackend;
  /** The PKCS#11 backend when keys live in a token: a public key asked for at a token path it has not got creates one. */
  hsm?: Pkcs11KeyBackend;
  fingerprint: string;
  rates: KeyProcessRates;
  logger: Logger;
  native: boolean;
  now: () => number;
  heads: SignedHeadRecorder;
  headDeadlineMs: number;
  lifecycleMaxFee: LifecycleFeeCeilings;
  lifecycleTreasury: ReadonlyMap<string, string>;
  bitcoinNetworks: readonly BitcoinNetwork[];
}

/** One request: method from the URL path, params as the body (wire.ts), `{result}` or `{error}` back. */
class KeyProcessHandler {
  private readonly deps: HandlerDeps;
  private readonly bound: BoundSigningGuard;
  private readonly treeHeads: TreeHeadGuard;
  private readonly perAgent: SessionRateLimiter;
  private readonly global: SessionRateLimiter;
  private readonly keygen: SessionRateLimiter;

  private readonly log: VerifiedAuditLog;

  constructor(deps: HandlerDeps) {
    this.deps = deps;
    // One reading of the log for both: an entry an agent key signs from is the leaf the next tree head covers.
    const log = new VerifiedAuditLog(deps.store, { now: deps.now });
    this.log = log;
    this.bound = new BoundSigningGuard({ log, reader: deps.store, keys: deps.keys, adapters: chainAdapters(deps.native, deps.bitcoinNetworks), headDeadlineMs: deps.headDeadlineMs, lifecycleMaxFee: deps.lifecycleMaxFee, lifecycleTreasury: deps.lifecycleTreasury, now: deps.now });
    this.treeHeads = new TreeHeadGuard({ log, keys: deps.keys, now: deps.now });
    this.perAgent = new SessionRateLimiter(deps.rates.agent);
    this.global = new SessionRateLimiter(deps.rates.global);
    this.keygen = new SessionRateLimiter(deps.rates.keygen);
  }

  /** Leaves of the log read so far. */
  get logSize(): number {
    return this.log.size;
  }

  /** Reads the log as it is now (VerifiedAuditLog.catchUp); how many leaves. */
  catchUp(): Promise<number> {
    return this.log.catchUp();
  }

  /**
   * At start, after reading the log: it must still hold the heads signed before, so a log rewritten while the key
   * process was down (leaves, hash columns and tree nodes laundered to agree) is refused before anything is signed
   * from it. The heads: its own record (a file the daemon cannot write), and the newest head in the store if the
   * audit key really signed it (the daemon can delete stored heads, not forge one). Each is folded in size order;
   * a root that differs, or a log shorter than a head, is `key_process_log_rewritten`.
   */
  async holdToSignedHeads(record: SignedHeadRecord | undefined): Promise<void> {
    const { store, keys, logger } = this.deps;
    const heads: { treeSize: number; rootHash: string; at: number; from: string }[] = [];
    if (record) heads.push({ ...record, from: 'its record' });
    const stored = await store.lastTreeHead();
    if (stored) {
      const ours = Buffer.from((await keys.getPublicKey(AUDIT_KEY_PATH)).subarray(1)).toString('hex');
      // A malformed head row (the daemon can write one) vouches for nothing: it is not held to, and start goes on.
      if (stored.publicKey === ours && isWellFormedTreeHead(stored) && verifySchnorr(stored.publicKey, treeHeadDigest(stored), stored.signature)) heads.push({ ...stored, from: 'the store' });
      else logger.log('warn', "the store's newest tree head is not signed by this key process's audit key: not held to it", { treeSize: stored.treeSize });
    }
    heads.sort((a, b) => a.treeSize - b.treeSize);
    for (const head of heads) {
      try {
        await this.log.foldTo(head.treeSize, head.rootHash);
      } catch (e) {
        const why = e instanceof AirlockError ? e.message : String(e);
        throw new AirlockError('key_process_log_rewritten', `The audit log is not the log under the tree head of size ${head.treeSize} this key process signed at ${new Date(head.at).toISOString()} (from ${head.from}): ${why} Nothing was signed.`, {
          details: { treeSize: head.treeSize, rootHash: head.rootHash, logSize: this.log.size },
          hints: ['Run `airlock audit verify` against your exported signed heads: a rewritten log is an incident (docs/operations.md).', 'A store restored from an older backup: check it, then start the key process once with --forget-signed-head.'],
        });
      }
      logger.log('info', 'held to a signed head', { treeSize: head.treeSize, from: head.from });
    }
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.url ?? '').slice(1);
    let params: Record<string, unknown> = {};
    try {
      if (req.method !== 'POST' || !isKeyProcessMethod(method)) throw new AirlockError('not_found', 'No such key process method.');
      const decoded = decodeWire(await readBody(req));
      if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) throw new AirlockError('invalid_request', 'The parameters must be an object.');
      params = decoded as Record<string, unknown>;
      const result = await this.dispatch(method, params);
      respond(res, 200, { result });
    } catch (e) {
      const error = wireError(e);
      if (error.code === 'internal') this.deps.logger.log('error', 'key process error', { method, cause: e instanceof Error ? e.message : String(e) });
      else this.deps.logger.log('warn', 'refused', { method, code: error.code, ...(error.details?.reason !== undefined ? { reason: error.details.reason } : {}), ...subjectOf(params) });
      respond(res, statusOf(error.code), { error });
    }
  }

  private async dispatch(method: KeyProcessMethod, p: Record<string, unknown>): Promise<unknown> {
    const { keys } = this.deps;
    switch (method) {
      // Public: what the daemon checks it is talking to, and public keys (free, not rate limited).
      case 'hello': {
        // The lines its log has lost (a stalled or closed stderr reader), when its logger counts them: the
        // daemon's metrics show them (airlock_key_process_log_lines_dropped_total).
        const dropped = this.deps.logger.droppedLines?.();
        return { fingerprint: this.deps.fingerprint, deterministic: keys.deterministic, ...(dropped !== undefined ? { logLinesDropped: dropped } : {}) };
      }
      case 'getPublicKey': {
        const path = text(p.path);
        // At a token path with no key this makes a persistent key pair in the HSM (found by review: 200 calls, 200
        // pairs, unmetered). Reading existing keys stays free; a creation is metered, globally and on its own
        // bucket, and logged.
        if (this.deps.hsm && isTokenPath(path) && (await this.deps.hsm.findPublicKey(path)) === undefined) {
          const now = this.deps.now();
          const globalWait = this.global.take('global', now);
          if (globalWait > 0) throw new AirlockError('key_process_rate_limited', 'The key process is over its global signing rate.', { details: { reason: 'global_rate', retryAfterSeconds: Math.ceil(globalWait / 1000) } });
          const wait = this.keygen.take('keygen', now);
          if (wait > 0) {
            // As in `admit`: a creation its own bucket refuses spends nothing of the global budget.
            this.global.giveBack('global', now);
            throw new AirlockError('key_process_rate_limited', 'The key process is over its key-creation rate.', { details: { reason: 'keygen_rate', retryAfterSeconds: Math.ceil(wait / 1000) } });
          }
          this.deps.logger.log('info', 'key created', { method, path });
        }
        return keys.getPublicKey(path);
      }
      case 'getExtendedPublicKey':
        return keys.getExtendedPublicKey(text(p.path));
      case 'signBound': {
        const request = p as unknown as BoundSigningRequest;
        this.admit(typeof request.agentId === 'string' ? `agent:${request.agentId}` : 'agent:?');
        const { signatures, leafHash } = await this.bound.sign(request);
        // The leaf hash names the entry's leaf as the key process read it: compare with the log's (`airlock audit verify`).
        this.deps.logger.log('info', 'signed', { method, kind: request.kind === 'lifecycle' ? 'lifecycle' : 'decision', agentId: request.agentId, action: request.action, auditSeq: request.auditSeq, leafHash, signatures: signatures.length });
        return signatures;
      }
      case 'signTreeHead': {
        if (text(p.path) !== AUDIT_KEY_PATH) throw bindingRefused('path_not_allowed', 'tree heads are signed with the audit key only.');
        this.admit('audit');
        const head = p.head as TreeHeadToSign;
        const signature = await this.treeHeads.sign(AUDIT_KEY_PATH, head);
        // Recorded before the signature leaves: the daemon never holds a head the next start does not hold the log to.
        await this.deps.heads.record(head);
        this.deps.logger.log('info', 'signed', { method, treeSize: head.treeSize });
        return signature;
      }
      case 'signDigest':
      case 'signTaprootKeyPath':
        throw bindingRefused('unbound_digest', 'agent keys sign only requests bound to a committed decision (signBound); a bare digest is refused.');
      case 'signSchnorr': {
        // NIP-46 envelopes and NWC responses: keys that hold no funds and sign no agent identity.
        const account = this.nostrAccount(text(p.path), SIGNING_NOSTR_PATH, 'unbound_digest');
        this.admit(`account:${account}`);
        return keys.signSchnorr(text(p.path), bytes(p.digest));
      }
      case 'nip44ConversationKey':
      case 'nip04SharedSecret': {
        const account = this.nostrAccount(text(p.path), NOSTR_PATH, 'path_not_allowed');
        this.admit(`account:${account}`);
        return method === 'nip44ConversationKey' ? keys.nip44ConversationKey(text(p.path), bytes(p.peer)) : keys.nip04SharedSecret(text(p.path), bytes(p.peer));
      }
      case 'deriveSecret': {
        // Webhook secrets, and the key threshold node tokens are sealed under: it was refused here, so binding a
        // FROST cluster failed with the key process in use (found by review).
        const label = text(p.label);
        if (text(p.path) !== WEBHOOK_SECRET_KEY_PATH || (!label.startsWith('webhook/') && label !== THRESHOLD_NODE_TOKENS_LABEL)) throw bindingRefused('path_not_allowed', 'secrets are derived for webhooks and threshold node tokens only.');
        this.admit(label === THRESHOLD_NODE_TOKENS_LABEL ? 'threshold-tokens' : 'webhooks');
        return keys.deriveSecret(WEBHOOK_SECRET_KEY_PATH, label);
      }
    }
  }

  private nostrAccount(path: string, allowed: RegExp, reason: 'unbound_digest' | 'path_not_allowed'): string {
    const match = allowed.exec(path);
    if (!match) throw bindingRefused(reason, reason === 'unbound_digest' ? 'this key signs only requests bound to a committed decision.' : 'the key process does not serve this key path for this operation.');
    return match[1]!;
  }

  /**
   * The process-wide bucket first (what an attacker spreading over agents meets), then the key's own. A call the
   * key's own bucket refuses gives its global token back: found by review, one agent far over its own rate (NWC and
   * bunker envelopes cost 1-3 calls each) spent the global budget on calls refused anyway, and every other agent's
   * signing was refused `global_rate`.
   */
  private admit(key: string): void {
    const now = this.deps.now();
    const globalWait = this.global.take('global', now);
    if (globalWait > 0) throw new AirlockError('key_process_rate_limited', 'The key process is over its global signing rate.', { details: { reason: 'global_rate', retryAfterSeconds: Math.ceil(globalWait / 1000) } });
    const wait = this.perAgent.take(key, now);
    if (wait > 0) {
      this.global.giveBack('global', now);
      throw new AirlockError('key_process_rate_limited', 'The key process is over its per-agent signing rate.', { details: { reason: 'agent_rate', retryAfterSeconds: Math.ceil(wait / 1000) } });
    }
  }
}

/** What a log line names about a request: who and which decision, never a payload or a key. */
function subjectOf(p: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof p.agentId === 'string') out.agentId = p.agentId.slice(0, 64);
  if (typeof p.auditSeq === 'number') out.auditSeq = p.auditSeq;
  if (typeof p.action === 'string') out.action = p.action.slice(0, 40);
  if (typeof p.path === 'string') out.path = p.path.slice(0, 64);
  return out;
}

function text(value: unknown): string {
  if (typeof value !== 'string') throw new AirlockError('invalid_request', 'A key process parameter must be a string.');
  return value;
}

function bytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new AirlockError('invalid_request', 'A key process parameter must be bytes.');
  return value;
}

function statusOf(code: string): number {
  if (code === 'key_process_refused') return 403;
  if (code === 'key_process_rate_limited') return 429;
  if (code === 'not_found') return 404;
  if (code === 'internal') return 500;
  return 400;
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  const text = encodeWire(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AirlockError('body_too_large', 'The key process message is too large.');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

