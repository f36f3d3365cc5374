/**
 * The operator's admin token: only its SHA-256 is stored (meta `admin_token_hash`), and it can be rotated
 * while instances run (`airlock admin rotate-token`, docs/operations.md "Rotate the admin token").
 *
 * Every instance on one store keeps the hash in memory and trusts it for at most ADMIN_TOKEN_STALENESS_MS
 * (real elapsed time, whatever clock the services use): after that it reads the store again before it
 * admits anyone. So an instance that did not perform a rotation accepts the replaced token for at most that
 * long after the rotation committed; the instance that performed it refuses it from the next request. A
 * presented token that does not match may be one another instance just issued: it triggers a read of the
 * store too, at most once per ADMIN_TOKEN_REREAD_MS whatever the traffic, so wrong guesses cannot turn into
 * a load on the store. A store that cannot be read when the hash is due refuses (fail closed, 503).
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, constantTimeEqual, hashSecret, type AuditEntry, type Store } from '@airlock/core';
import { openVault } from '@airlock/keys';
import { openStore } from '@airlock/store';
import type { AirlockConfig } from './config.ts';
import { refuseMissingSqliteFile } from './restore.ts';
import type { VaultOptions } from './runtime.ts';

/** Longest an instance goes on accepting an admin token another instance replaced (documented bound). */
export const ADMIN_TOKEN_STALENESS_MS = 5_000;
/** A token that does not match the cached hash is looked up in the store at most this often. */
export const ADMIN_TOKEN_REREAD_MS = 1_000;
const META_KEY = 'admin_token_hash';

export interface AdminCredentialOptions {
  stalenessMs?: number;
  rereadMs?: number;
  /** Monotonic milliseconds; default performance.now(). */
  elapsed?: () => number;
  /** When the read of `hash` started (on `elapsed`'s scale); default: now, which is only right for a hash just read. */
  readAt?: number;
}

/** A new admin token and the hash that is stored for it. The token itself is never stored. */
export function newAdminToken(): { token: string; hash: string } {
  const token = `adm_${randomBytes(32).toString('base64url')}`;
  return { token, hash: adminTokenHash(token) };
}

/** The stored form of an admin token (`adm_<secret>`): the SHA-256 of its secret part, hex. */
export function adminTokenHash(token: string): string {
  return hashSecret(token.slice(4));
}

export class AdminCredential {
  readonly #store: Store;
  readonly #stalenessMs: number;
  readonly #rereadMs: number;
  readonly #elapsed: () => number;
  #hash: string;
  /** When the read that produced #hash started (or the rotation that set it committed). */
  #asOf: number;
  #lastMismatchRead = Number.NEGATIVE_INFINITY;
  #reading: Promise<string> | undefined;

  constructor(store: Store, hash: string, options: AdminCredentialOptions = {}) {
    this.#store = store;
    this.#stalenessMs = options.stalenessMs ?? ADMIN_TOKEN_STALENESS_MS;
    this.#rereadMs = options.rereadMs ?? ADMIN_TOKEN_REREAD_MS;
    this.#elapsed = options.elapsed ?? (() => performance.now());
    this.#hash = hash;
    this.#asOf = options.readAt ?? this.#elapsed();
  }

  /** The admin token's hash, as the store held it no longer than the staleness bound ago. */
  async currentHash(): Promise<string> {
    if (this.#elapsed() - this.#asOf > this.#stalenessMs) await this.#read();
    return this.#hash;
  }

  /** Resolves if `token` is the admin token; throws `unauthenticated` otherwise. */
  async verify(token: string): Promise<void> {
    const presented = adminTokenHash(token);
    const due = this.#elapsed() - this.#asOf > this.#stalenessMs;
    if (constantTimeEqual(presented, await this.currentHash())) return;
    const now = this.#elapsed();
    // Not when the hash was just read for being due: a second read would learn nothing new.
    if (!due && now - this.#lastMismatchRead >= this.#rereadMs) {
      this.#lastMismatchRead = now;
      if (constantTimeEqual(presented, await this.#read())) return;
    }
    throw new AirlockError('unauthenticated', 'Unknown admin token.');
  }

  /**
   * Replaces the admin token that was presented (`presentedToken`) by a new one, shown once to the caller.
   * The store's hash must still be the presented token's when the transaction runs: a token another
   * instance already replaced cannot rotate, even while a stale instance still admits it.
   */
  async rotate(presentedToken: string, now: number, source: string): Promise<AdminTokenRotation> {
    const rotation = await rotateAdminToken(this.#store, { expectedHash: adminTokenHash(presentedToken), now, data: { via: 'api', source } });
    this.#apply(adminTokenHash(rotation.token), this.#elapsed());
    return rotation;
  }

  /** One read at a time; its answer counts from when it started (a rotation may commit while it runs). */
  #read(): Promise<string> {
    this.#reading ??= (async () => {
      const startedAt = this.#elapsed();
      try {
        const hash = await this.#store.getMeta(META_KEY);
        if (!hash) throw new AirlockError('store_unavailable', 'The store holds no admin credential.');
        this.#apply(hash, startedAt);
        return this.#hash;
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }

  /** Older knowledge never replaces newer: a read that started before our own rotation committed is dropped. */
  #apply(hash: string, asOf: number): void {
    if (asOf < this.#asOf) return;
    this.#hash = hash;
    this.#asOf = asOf;
  }
}

export interface AdminTokenRotation {
  /** `adm_…`, shown once; only its hash is stored. */
  token: string;
  rotatedAt: number;
  /** The `admin.token_rotated` audit entry. */
  auditSeq: number;
}

/**
 * Stores the hash of a new admin token and its `admin.token_rotated` audit entry in one transaction. With
 * `expectedHash` the replacement happens only if the store still holds that hash (else `unauthenticated`).
 * The entry names how (`via`), never the token or its hash.
 */
export async function rotateAdminToken(store: Store, options: { expectedHash: string; now: number; data: Record<string, unknown> }): Promise<AdminTokenRotation> {
  const { token, hash } = newAdminToken();
  const entry: AuditEntry = await store.transaction(async (tx) => {
    if (!(await tx.compareAndSetMeta(META_KEY, options.expectedHash, hash))) {
      throw new AirlockError('unauthenticated', 'Unknown admin token.', { hints: ['The admin token was rotated meanwhile; use the new one.'] });
    }
    return tx.appendAudit({ at: options.now, type: 'admin.token_rotated', actor: 'operator', data: options.data });
  });
  return { token, rotatedAt: options.now, auditSeq: entry.seq };
}

/** The hash of the admin token the store holds now (offline rotation reads it to replace it). */
export async function storedAdminTokenHash(store: Store): Promise<string> {
  const hash = await store.getMeta(META_KEY);
  if (!hash) throw new AirlockError('vault_missing', 'This store has no admin credential.', { hints: ['Run `airlock init` first.'] });
  return hash;
}

/**
 * `airlock admin rotate-token --offline`: for an operator who lost the admin token. Possession of the vault
 * (its file and passphrase, checked against the store's fingerprint) stands in for the token. Instances
 * running on the store pick the new token up within ADMIN_TOKEN_STALENESS_MS.
 */
export async function rotateAdminTokenOffline(config: AirlockConfig, passphrase: string, vaultOptions: VaultOptions = {}): Promise<AdminTokenRotation & { fingerprint: string }> {
  refuseMissingSqliteFile(config.storeUrl);
  const store = await openStore(config.storeUrl);
  try {
    const bound = await store.getMeta('vault_fingerprint');
    if (!bound) throw new AirlockError('vault_missing', 'This store is bound to no vault.', { hints: ['Run `airlock init` first.'] });
    const vault = await openVault(config.vaultPath, passphrase, vaultOptions);
    const fingerprint = vault.fingerprint();
    vault.wipe();
    if (fingerprint !== bound) throw new AirlockError('vault_mismatch', 'The vault file does not belong to this store.');
    const rotation = await rotateAdminToken(store, { expectedHash: await storedAdminTokenHash(store), now: Date.now(), data: { via: 'offline', fingerprint } });
    return { ...rotation, fingerprint };
  } finally {
    await store.close();
  }
}
