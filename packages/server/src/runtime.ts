import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import {
  AirlockError,
  AuditService,
  type ParallelVerifyOptions,
  OperatorService,
  LifecycleService,
  RevokeAllService,
  type EvmSubmitter,
  ShadowPolicyService, ChildSessionService,
  ApproverService,
  SigningService,
  X402Service,
  NostrService,
  ThresholdBindings,
  LightningService,
  type LightningBackend,
  type NostrServicePort,
  systemClock,
  type BitcoinNetwork,
  type ChainAdapter,
  type ChainReader,
  type Clock,
  type ServiceDeps,
  type Store,
} from '@airlock/core';
import { AUDIT_KEY_PATH, NativeKeyBackend, Pkcs11KeyBackend, type Pkcs11Options, createVault, encodeNpub, nativeRecoverPublicKey, nativeUncompressPublicKey, openVault, type CreateVaultOptions, type UnsealedVault } from '@airlock/keys';

/** Vault options (KDF parameters; `allowWeakKdf` is for tests only). */
export type VaultOptions = CreateVaultOptions;
import { createBitcoinAdapter, createEvmAdapter, createLightningAdapter, createNostrAdapter, eventId, nip04Decrypt, nip04Encrypt, nip44Decrypt, nip44Encrypt, nostrTransportPath, parseUnsignedEvent } from '@airlock/chains';
import { openStore } from '@airlock/store';
import { encodePaymentSignatureHeader } from '@x402/core/http';
import type { AirlockConfig } from './config.ts';
import { rpcChainReader } from './evm-chain-reader.ts';
import { RemoteKeyBackend } from './key-process/remote-key-backend.ts';
import { rpcEvmSubmitter } from './evm-submitter.ts';
import { auditAnchorPath, fileAuditAnchorStore } from './audit-anchor-file.ts';
import { NostrBunker } from './nostr-bunker/bunker.ts';
import { ClusterThresholdSigner } from './threshold/cluster-threshold-signer.ts';
import { NwcWalletService } from './nwc-service/wallet-service.ts';
import { storeSessionSource } from './nostr-bunker/session-source.ts';
import { RefusalTally } from './http/refusal-tally.ts';
import { lightningBackendFrom } from './lightning/backend-from-config.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { WebhookService } from './webhooks/webhook-service.ts';
import { ed25519 } from './ed25519.ts';
import { AdminCredential, newAdminToken } from './admin-credential.ts';
import { storeRecordsAgentKey } from './token-key-records.ts';

export function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * `audit verify` in worker threads, each with its own connection to the store (an in-memory SQLite store
 * cannot be shared: one thread then).
 */
export function auditVerifyOptions(storeUrl: string): ParallelVerifyOptions {
  if (storeUrl === 'sqlite::memory:' || storeUrl === 'sqlite:') return {};
  return { workers: { storeModule: import.meta.resolve('@airlock/store/audit-leaf-reader'), storeUrl } };
}

export function verifySchnorr(publicKeyHex: string, digest: Uint8Array, signatureHex: string): boolean {
  try {
    return schnorr.verify(hexToBytes(signatureHex), digest, hexToBytes(publicKeyHex));
  } catch {
    return false;
  }
}

export interface InitResult {
  /** Shown once to the operator for the paper backup. Never stored in clear, never logged. */
  mnemonic: string;
  /** Shown once. Only its hash is stored. */
  adminToken: string;
  fingerprint: string;
  auditPublicKey: string;
}

/** `airlock init`: creates the sealed vault and binds a (new or empty) store to it. */
export async function initAirlock(config: AirlockConfig, passphrase: string, vaultOptions: VaultOptions = {}): Promise<InitResult> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(config.storeUrl);
  try {
    await store.migrate();
    if (await store.getMeta('vault_fingerprint')) {
      throw new AirlockError('vault_exists', 'This store is already bound to a vault.', { hints: ['Use a new data directory or store, or start with the existing vault.'] });
    }
    const { mnemonic } = await createVault(config.vaultPath, passphrase, vaultOptions);
    const vault = await openVault(config.vaultPath, passphrase, vaultOptions);
    try {
      const fingerprint = vault.fingerprint();
      const keys = vault.keyBackend();
      const auditPublicKey = Buffer.from((await keys.getPublicKey(AUDIT_KEY_PATH)).slice(1)).toString('hex');
      const { token: adminToken, hash: adminTokenHash } = newAdminToken();
      await store.initMeta('vault_fingerprint', fingerprint);
      await store.initMeta('audit_public_key', auditPublicKey);
      await store.setMeta('admin_token_hash', adminTokenHash);
      const now = Date.now();
      await store.transaction((tx) => tx.appendAudit({ at: now, type: 'vault.initialized', actor: 'operator', data: { fingerprint, auditPublicKey } }));
      return { mnemonic, adminToken, fingerprint, auditPublicKey };
    } finally {
      vault.wipe();
    }
  } finally {
    await store.close();
  }
}

/**
 * The store holds no Airlock data. What to do depends on the vault file: with none, this is a first run;
 * with one, the operator has most likely pointed an existing deployment at a new store (SQLite to
 * PostgreSQL), and `init` would refuse (the vault exists) while a new vault would orphan every agent key.
 */
function unboundStore(config: AirlockConfig): AirlockError {
  if (!existsSync(config.vaultPath)) return new AirlockError('vault_missing', 'This store has no vault yet.', { hints: ['Run `airlock init` first (or `airlock start` in a terminal).'] });
  return new AirlockError('vault_missing', `This store is empty, but the vault at ${config.vaultPath} belongs to another store.`, {
    hints: [
      'Moving from SQLite to PostgreSQL? Stop the daemon and copy the data: `airlock store migrate --from sqlite:<old airlock.db> --to <this store URL>` (docs/operations.md).',
      'Or start with the store this vault was created with (--store / AIRLOCK_STORE).',
    ],
  });
}

export interface Airlock {
  config: AirlockConfig;
  store: Store;
  deps: ServiceDeps;
  signing: SigningService;
  operator: OperatorService;
  /** Shadow policies: candidates evaluated beside the active ones (docs/policy.md). */
  shadows: ShadowPolicyService;
  /** Child sessions agents derive for their sub-agents (docs/api.md, "Child sessions"). */
  childSessions: ChildSessionService;
  /** Approvers and their signed votes on quorum approvals. */
  approvers: ApproverService;
  audit: AuditService;
  x402: X402Service;
  /** Nostr identities, events, NIP-44 and the NIP-46 transport key (docs/nostr.md). */
  nostr: NostrServicePort;
  /** Agents' keys bound to a threshold cluster (docs/custody.md, "Threshold cluster (FROST)"). */
  thresholdBindings: ThresholdBindings;
  /** Lightning payments and L402 (docs/lightning.md); refuses with lightning_not_configured without a backend. */
  lightning: LightningService;
  /** The admin token's hash, re-read from the store within a bound so a rotation elsewhere takes effect (admin-credential.ts). */
  admin: AdminCredential;
  /** The operator-only lifecycle path: sweeps, revocation calls, retire with sweep, orphans, hot-balance caps. */
  lifecycle: LifecycleService;
  /** `airlock agent revoke-all`: freeze, sessions, approvals, then the on-chain revocations of everything the agent's keys granted. */
  revokeAll: RevokeAllService;
  /** Which secp256k1 implementation signs and checks signatures, and why. */
  keyBackend: { kind: KeyBackendChoice; reason: string };
  /** The key process holding the keys, when there is one (health asks it). */
  keyProcess?: RemoteKeyBackend;
  /** The NIP-46 remote signer, when relays are configured (AIRLOCK_NOSTR_RELAYS) and a Nostr port is wired. */
  bunker?: NostrBunker;
  /** The NIP-47 wallet service for agents, when relays and a Lightning backend are configured (nwc-service/wallet-service.ts). */
  nwc?: NwcWalletService;
  /** Webhook endpoints (the operator's API) and, with timers, the dispatcher that delivers to them (webhooks/). */
  webhooks: WebhookService;
  webhookDispatcher?: WebhookDispatcher;
  /** Reads chain state over the configured EVM RPCs (x402 reconciler, dependency map); absent without RPCs. */
  chainReader?: ChainReader;
  /** Stops timers, writes a last checkpoint, wipes key material and closes the store. */
  close(): Promise<void>;
}

/** `pkcs11`: EVM agent keys in a PKCS#11 token, everything else on the vault with `native` or `js` (docs/custody.md). */
export type KeyBackendChoice = 'native' | 'js' | 'pkcs11' | 'key-process';

/** The chain adapters, by CAIP-2 namespace; `native`: EVM signatures are checked with libsecp256k1. */
export function chainAdapters(native: boolean, bitcoinNetworks: readonly BitcoinNetwork[]): Map<string, ChainAdapter> {
  return new Map<string, ChainAdapter>([
    ['eip155', createEvmAdapter(native ? { recoverPublicKey: nativeRecoverPublicKey, uncompressPublicKey: nativeUncompressPublicKey } : {})],
    ['nostr', createNostrAdapter()],
    ['lightning', createLightningAdapter()],
    ['bitcoin', createBitcoinAdapter({ networks: bitcoinNetworks })],
  ]);
}

/**
 * AIRLOCK_FAULT (crash tests only): the process kills itself with SIGKILL in a window where a crash must not lose
 * or repeat a sweep. `lifecycle_before_broadcast`: after a job's signed bytes committed, before their first
 * broadcast; `lifecycle_before_sign`: after a job's plan committed, before it is signed.
 */
function lifecycleFaultPoints(fault: string | undefined): { beforeBroadcast?: () => void; beforeSign?: () => void } {
  const die = () => process.kill(process.pid, 'SIGKILL');
  if (fault === 'lifecycle_before_broadcast') return { beforeBroadcast: die };
  if (fault === 'lifecycle_before_sign') return { beforeSign: die };
  return {};
}

/**
 * libsecp256k1 (native) when its addon loads, unless AIRLOCK_KEY_BACKEND=js; pure JS (noble) otherwise.
 * The same choice covers signing and the public-key recovery that checks each signature before release.
 * AIRLOCK_KEY_BACKEND=pkcs11 puts the EVM agent keys in a PKCS#11 token (AIRLOCK_PKCS11_*); the vault's keys
 * (audit, webhook secrets, Nostr, Bitcoin) and the recovery check still use native when it loads, else js.
 */
export function chooseKeyBackend(env: NodeJS.ProcessEnv = process.env): { kind: KeyBackendChoice; reason: string; pkcs11?: Pkcs11Options } {
  const wanted = env.AIRLOCK_KEY_BACKEND;
  if (wanted !== undefined && wanted !== 'js' && wanted !== 'native' && wanted !== 'pkcs11') {
    throw new AirlockError('invalid_request', 'AIRLOCK_KEY_BACKEND must be `js`, `native` or `pkcs11`');
  }
  if (wanted === 'pkcs11') {
    const pkcs11 = pkcs11OptionsFrom(env);
    return { kind: 'pkcs11', reason: `AIRLOCK_KEY_BACKEND=pkcs11: agent keys in token ${pkcs11.tokenLabel !== undefined ? `"${pkcs11.tokenLabel}"` : `slot ${pkcs11.slot}`} via ${pkcs11.library}`, pkcs11 };
  }
  if (wanted === 'js') return { kind: 'js', reason: 'AIRLOCK_KEY_BACKEND=js' };
  if (NativeKeyBackend.available()) return { kind: 'native', reason: 'libsecp256k1 addon loaded' };
  const why = `native secp256k1 not available: ${NativeKeyBackend.unavailableReason()}`;
  if (wanted === 'native') throw new AirlockError('internal', 'AIRLOCK_KEY_BACKEND=native but the native secp256k1 module does not load', { hints: [why] });
  return { kind: 'js', reason: why };
}

/** AIRLOCK_PKCS11_LIBRARY, _TOKEN_LABEL or _SLOT, _PIN_FILE. The PIN itself is never read from the environment. */
export function pkcs11OptionsFrom(env: NodeJS.ProcessEnv): Pkcs11Options {
  const library = env.AIRLOCK_PKCS11_LIBRARY;
  const pinFile = env.AIRLOCK_PKCS11_PIN_FILE;
  const tokenLabel = env.AIRLOCK_PKCS11_TOKEN_LABEL || undefined;
  const slotText = env.AIRLOCK_PKCS11_SLOT || undefined;
  const hints = ['docs/custody.md, "HSM (PKCS#11)", lists the settings.'];
  if (!library) throw new AirlockError('config_invalid', 'AIRLOCK_KEY_BACKEND=pkcs11 needs AIRLOCK_PKCS11_LIBRARY (the PKCS#11 module, a .so).', { hints });
  if (!pinFile) throw new AirlockError('config_invalid', 'AIRLOCK_KEY_BACKEND=pkcs11 needs AIRLOCK_PKCS11_PIN_FILE (a 0400 file holding the user PIN).', { hints });
  if (env.AIRLOCK_PKCS11_PIN !== undefined) throw new AirlockError('config_invalid', 'AIRLOCK_PKCS11_PIN is not read: put the PIN in a file and name it with AIRLOCK_PKCS11_PIN_FILE.', { hints });
  if ((tokenLabel === undefined) === (slotText === undefined)) throw new AirlockError('config_invalid', 'Name the PKCS#11 token by exactly one of AIRLOCK_PKCS11_TOKEN_LABEL and AIRLOCK_PKCS11_SLOT.', { hints });
  if (slotText !== undefined && !/^(0|[1-9]\d{0,15})$/.test(slotText)) throw new AirlockError('config_invalid', 'AIRLOCK_PKCS11_SLOT must be a slot number.', { hints });
  return { library, pinFile, ...(tokenLabel !== undefined ? { tokenLabel } : { slot: Number(slotText) }) };
}
/**
 * What opens the vault: its passphrase (the vault file is decrypted), or a vault already rebuilt from SLIP-39
 * shares with the public facts of the set for the audit entry (no share: they never leave the holder).
 */
export type VaultUnlock = string | { vault: UnsealedVault; shares: { identifier: number; groupThreshold: number; groupsUsed: number[] } } | KeyProcessUnlock;

/** No vault in this process: the keys are in the key process on `socket` (config.keyProcessSocket). */
export interface KeyProcessUnlock {
  keyProcess: string;
}

export interface OpenOptions {
  /** Signing and recovery implementation. Default: chooseKeyBackend(process.env). `pkcs11` reads AIRLOCK_PKCS11_* unless `pkcs11` is given. */
  keyBackend?: KeyBackendChoice;
  /** EVM agent keys in this PKCS#11 token (implies keyBackend `pkcs11`); tests and embedders. */
  pkcs11?: Pkcs11Options;
  clock?: Clock;
  vault?: VaultOptions;
  /** Chain access for the x402 reconciler. Default: JSON-RPC per config.evmRpc (none configured: no reader). */
  chainReader?: ChainReader;
  /** The Lightning backend. Default: the one config.lightning names (none: Lightning is off). */
  lightningBackend?: LightningBackend;
  /** Chain access of the lifecycle path. Default: JSON-RPC per config.evmRpc (none configured: sweeps refuse with lifecycle_no_rpc). */
  evmSubmitter?: EvmSubmitter;
  /** Start background timers (checkpoints, approval expiry, x402 reconciliation). Default true. */
  timers?: boolean;
  /** Run the webhook dispatcher (timers of its own). Default: as `timers`. */
  webhookDispatcher?: boolean;
}

/**
 * The composition root: the only place that picks concrete adapters.
 * Unseals the vault, checks it belongs to the store, wires the services.
 */
export async function openAirlock(config: AirlockConfig, unlock: VaultUnlock, options: OpenOptions = {}): Promise<Airlock> {
  // A vault unsealed elsewhere (from SLIP-39 shares) is ours from here: wiped on any failure below.
  let vault: UnsealedVault | undefined = typeof unlock === 'string' || 'keyProcess' in unlock ? undefined : unlock.vault;
  const remote = typeof unlock !== 'string' && 'keyProcess' in unlock ? new RemoteKeyBackend(unlock.keyProcess) : undefined;
  // SQLite: WAL checkpoints in a worker thread, so no signing request waits for one on the event loop.
  const store = await openStore(config.storeUrl, { sqlite: { backgroundCheckpoints: true, syncOffLoop: true } }).catch((e: unknown) => {
    vault?.wipe();
    throw e;
  });
  let hsm: Pkcs11KeyBackend | undefined;
  try {
    await store.migrate();
    const bound = await store.getMeta('vault_fingerprint');
    if (!bound) throw unboundStore(config);
    if (typeof unlock === 'string' && !existsSync(config.vaultPath)) {
      // `init` would refuse here (the store is bound): the vault file is what is missing, not a new vault.
      throw new AirlockError('vault_missing', `This store belongs to a vault, but there is no vault file at ${config.vaultPath}.`, {
        hints: ['Point --data-dir / AIRLOCK_DATA_DIR (or AIRLOCK_VAULT) at the vault this store was created with, restore it from its backup, or rebuild it from the recovery phrase with `airlock restore` (docs/operations.md, Restore).'],
      });
    }
    if (remote) {
      // The key process holds the vault: it must be this store's (it checked too, against its read-only view).
      if ((await remote.hello()).fingerprint !== bound) throw new AirlockError('vault_mismatch', 'The key process holds the vault of another store.');
    } else if (typeof unlock === 'string') vault = await openVault(config.vaultPath, unlock, options.vault ?? {});
    if (!remote && vault!.fingerprint() !== bound) {
      throw typeof unlock === 'string'
        ? new AirlockError('vault_mismatch', 'The vault file does not belong to this store.')
        : new AirlockError('vault_mismatch', 'These shares are of another vault: they do not recover the vault this store belongs to.', { hints: ['The entered shares were cleared; enter shares of this deployment\'s set.'] });
    }
    if (typeof unlock !== 'string' && !('keyProcess' in unlock)) {
      // Who unsealed is not known (shares carry no identity); which set and how much of it is.
      await store.transaction((tx) => tx.appendAudit({ at: Date.now(), type: 'vault.unsealed_by_shares', actor: 'operator', data: { fingerprint: bound, ...unlock.shares } }));
    }
    const adminTokenReadAt = performance.now();
    const adminTokenHash = await store.getMeta('admin_token_hash');
    if (!adminTokenHash) throw new AirlockError('vault_missing', 'This store has no admin credential.');
    const chosen = remote
      ? { kind: 'key-process' as const, reason: `keys in the key process on ${remote.socketPath}` }
      : options.pkcs11
      ? { kind: 'pkcs11' as const, reason: `agent keys in PKCS#11 token ${options.pkcs11.tokenLabel ?? `slot ${options.pkcs11.slot}`} (chosen by the caller)`, pkcs11: options.pkcs11 }
      : options.keyBackend && options.keyBackend !== 'pkcs11' ? { kind: options.keyBackend, reason: 'chosen by the caller' } : chooseKeyBackend(options.keyBackend === 'pkcs11' ? { ...process.env, AIRLOCK_KEY_BACKEND: 'pkcs11' } : process.env);
    const keyBackend = { kind: chosen.kind, reason: chosen.reason };
    // pkcs11: the token holds the agent keys; the vault keys and the recovery check use native when it loads.
    const native = keyBackend.kind === 'native' || ((keyBackend.kind === 'pkcs11' || keyBackend.kind === 'key-process') && NativeKeyBackend.available());
    const vaultKeys = remote ?? vault!.keyBackend(native ? 'native' : 'hd');
    // Keys of this deployment only (its vault fingerprint), and legacy-id keys only where this store records them.
    hsm = 'pkcs11' in chosen && chosen.pkcs11 ? Pkcs11KeyBackend.open(chosen.pkcs11, vaultKeys, { fingerprint: bound, recordsKey: storeRecordsAgentKey(store) }) : undefined;
    const deps: ServiceDeps = {
      store,
      keys: hsm ?? vaultKeys,
      adapters: chainAdapters(native, config.bitcoinNetworks),
      clock: options.clock ?? systemClock,
      randomId,
      randomSecret,
      auditKeyPath: AUDIT_KEY_PATH,
      approvalTtlMs: config.approvalTtlMs,
      verifySchnorr,
      ed25519,
      auditAnchor: fileAuditAnchorStore(auditAnchorPath(config.vaultPath)),
      auditIntegrity: {},
      auditVerify: auditVerifyOptions(config.storeUrl),
    };
    // Agents whose Nostr key a FROST cluster holds: the daemon coordinates the cluster after its own decision.
    deps.threshold = new ClusterThresholdSigner(deps.keys);
    const signing = new SigningService(deps);
    const lightningBackend = options.lightningBackend ?? (config.lightning ? await lightningBackendFrom(config.lightning) : undefined);
    const lightning = new LightningService(deps, signing, {
      ...(lightningBackend ? { backend: lightningBackend } : {}),
      ...(config.lightning ? { payTimeoutSeconds: config.lightning.payTimeoutSeconds, notFoundGraceSeconds: config.lightning.notFoundGraceSeconds, defaultFeePercent: config.lightning.defaultFeePercent, ...(config.lightning.reconcileBatch !== undefined ? { reconcileBatch: config.lightning.reconcileBatch } : {}), ...(config.lightning.maxInFlightPerAgent !== undefined ? { maxInFlightPerAgent: config.lightning.maxInFlightPerAgent } : {}) } : {}),
    });
    const operator = new OperatorService(deps, signing, lightning);
    const shadows = new ShadowPolicyService(deps, operator, signing);
    const childSessions = new ChildSessionService(deps, signing);
    const approvers = new ApproverService(deps, operator);
    const audit = new AuditService(deps);
    const nostr = new NostrService(deps, signing, { transportPath: nostrTransportPath, npub: (pubkeyHex: string) => encodeNpub(hexToBytes(pubkeyHex)), parseUnsignedEvent, eventId, nip44Encrypt: (text, key) => nip44Encrypt(text, key), nip44Decrypt, nip04Encrypt: (text, key) => nip04Encrypt(text, key), nip04Decrypt });
    // A chain that no longer extends the anchor halts signing from the start; the daemon still serves
    // verify and acknowledge so the operator can act.
    await audit.checkIntegrity().catch((e: unknown) => console.error(`[airlock] audit integrity: ${e instanceof Error ? e.message : String(e)}`));
    const { blockTag, logLookbackBlocks, ...reconcile } = config.reconcile;
    const chain = options.chainReader ?? (Object.keys(config.evmRpc).length > 0 ? rpcChainReader(config.evmRpc, { blockTag, logLookbackBlocks }) : undefined);
    const x402 = new X402Service(deps, signing, {
      encodePaymentHeader: (payload) => encodePaymentSignatureHeader(payload as never),
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
      ...(chain ? { chain } : {}),
      reconcile,
    });
    const submitter = options.evmSubmitter ?? (Object.keys(config.evmRpc).length > 0 ? rpcEvmSubmitter(config.evmRpc) : undefined);
    const lifecycle = new LifecycleService(deps, operator, submitter, lifecycleFaultPoints(process.env.AIRLOCK_FAULT));
    const revokeAll = new RevokeAllService(deps, lifecycle, { credentials: signing.credentials, ...(chain ? { chainReader: chain } : {}) });
    const timers: NodeJS.Timeout[] = [];
    if (options.timers !== false) {
      const background = (fn: () => Promise<unknown>, ms: number) => {
        // A failing background job is reported, never silent: a checkpoint that cannot be signed is an incident.
        const t = setInterval(() => void fn().catch((e: unknown) => console.error(`[airlock] background job failed: ${e instanceof Error ? e.message : String(e)}`)), ms);
        t.unref();
        timers.push(t);
      };
      // Ticks may overlap (a checkpoint slower than the interval): the key process reads and folds the log one
      // request at a time, so two heads asked at once cost a refused older head at worst. A guard that skipped ticks
      // while one ran was tried (2026-12-03) and reverted: on a full disk a checkpoint never settled, every later
      // tick was skipped, and signing stayed halted after space was freed (torture store-faults).
      background(() => audit.checkpoint(), config.checkpointIntervalMs);
      background(() => operator.expireOverdue(), config.approvalExpiryIntervalMs);
      background(() => x402.reconcile(), config.reconcileIntervalMs);
      if (lightningBackend) background(() => lightning.reconcile(), config.reconcileIntervalMs);
      if (submitter) {
        // Open jobs first (re-broadcast the committed bytes, read receipts), right away after a restart.
        void lifecycle.track().catch((e: unknown) => console.error(`[airlock] lifecycle tracker failed: ${e instanceof Error ? e.message : String(e)}`));
        let pass = 0;
        let running = false;
        background(async () => {
          // A slow RPC must not stack passes: the next tick waits for this one.
          if (running) return;
          running = true;
          try {
            await lifecycle.track();
            const full = pass++ % 20 === 0;
            await lifecycle.hotBalancePass({ full });
            if (full) await lifecycle.orphanPass();
          } finally {
            running = false;
          }
        }, config.lifecycleIntervalMs);
      }
      // Scheduled key rotation (`lifecycle.rotate_every`): keys age in days, so a pass every 20 lifecycle
      // intervals is soon enough; it needs no RPC (without one, the old address is reported unswept).
      background(() => lifecycle.rotationPass(), config.lifecycleIntervalMs * 20);
    }
    // NIP-46 bunker: listens on the configured relays; no relays, no bunker (and no outbound connection).
    const clock = deps.clock;
    const bunker = config.nostrRelays.length > 0
      ? new NostrBunker({
          port: nostr, relays: config.nostrRelays, sessions: storeSessionSource(store, clock), clock, clientRate: config.nostrBunkerRate,
          audit: (entry) => audit.append(entry),
          log: (m) => console.error(`[airlock] ${m}`),
          // A failed write is reported, not thrown: it must not stop the bunker answering.
          refusals: new RefusalTally((entry) => audit.append(entry).catch((e: unknown) => console.error(`[airlock] could not write a ${entry.type} audit entry: ${e instanceof Error ? e.message : String(e)}`))),
        })
      : undefined;
    await bunker?.start();
    if (bunker && options.timers !== false) {
      const t = setInterval(() => void bunker.flushRefusals(), 10_000);
      t.unref();
      timers.push(t);
    }
    // NIP-47 wallet service: on the same relays, only with a Lightning backend to pay through.
    const nwc = config.nostrRelays.length > 0 && lightningBackend
      ? new NwcWalletService({
          relays: config.nostrRelays, store, keys: deps.keys, lightning, sessions: storeSessionSource(store, clock), clock, clientRate: config.nostrBunkerRate,
          log: (m) => console.error(`[airlock] ${m}`),
          refusals: new RefusalTally((entry) => audit.append(entry).catch((e: unknown) => console.error(`[airlock] could not write a ${entry.type} audit entry: ${e instanceof Error ? e.message : String(e)}`))),
        })
      : undefined;
    await nwc?.start();
    if (nwc && options.timers !== false) {
      const flush = setInterval(() => void nwc.flushRefusals(), 10_000);
      // Connections another instance issued are read from the audit log.
      const sync = setInterval(() => void nwc.sync().catch((e: unknown) => console.error(`[airlock] nwc sync failed: ${e instanceof Error ? e.message : String(e)}`)), 30_000);
      flush.unref();
      sync.unref();
      timers.push(flush, sync);
    }
    const webhooks = new WebhookService({ store, keys: deps.keys, clock: deps.clock, randomId });
    const webhookDispatcher = (options.webhookDispatcher ?? options.timers !== false)
      ? new WebhookDispatcher({ store, keys: deps.keys, clock: deps.clock, log: (m) => console.error(`[airlock] ${m}`) }, config.webhooks)
      : undefined;
    webhookDispatcher?.start();
    const openedVault = vault;
    let closed = false;
    return {
      config,
      store,
      deps,
      signing,
      operator,
      shadows, childSessions,
      approvers,
      audit,
      x402,
      nostr,
      thresholdBindings: new ThresholdBindings(deps),
      lightning,
      admin: new AdminCredential(store, adminTokenHash, { readAt: adminTokenReadAt }),
      lifecycle,
      revokeAll,
      keyBackend,
      ...(remote ? { keyProcess: remote } : {}),
      ...(bunker ? { bunker } : {}),
      ...(nwc ? { nwc } : {}),
      webhooks,
      ...(webhookDispatcher ? { webhookDispatcher } : {}),
      ...(chain ? { chainReader: chain } : {}),
      async close() {
        if (closed) return;
        closed = true;
        // First: its requests are aborted and recorded (sent again on the next start) while the store is open.
        await webhookDispatcher?.stop();
        bunker?.close();
        await bunker?.flushRefusals(true);
        nwc?.close();
        await nwc?.flushRefusals(true);
        for (const t of timers) clearInterval(t);
        await lightningBackend?.close?.().catch(() => undefined);
        await audit.checkpoint().catch(() => undefined);
        hsm?.close();
        openedVault?.wipe();
        remote?.close();
        await store.close();
      },
    };
  } catch (e) {
    hsm?.close();
    vault?.wipe();
    remote?.close();
    await store.close().catch(() => undefined);
    throw e;
  }
}
