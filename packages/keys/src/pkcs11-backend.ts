/**
 * PKCS#11 key backend: EVM agent keys (BIP-44 coin type 60, `m/44'/60'/account'/0/index`) are generated inside a
 * PKCS#11 token (an HSM, or SoftHSM2 in tests) and never leave it; every other key stays on the software vault.
 *
 * What lives where (docs/custody.md, "HSM (PKCS#11)"):
 * - in the token: one secp256k1 key pair per EVM agent path, CKA_SENSITIVE true, CKA_EXTRACTABLE false, made on
 *   the first getPublicKey of that path (agent provisioning, key rotation), one generation at a time and off the
 *   event loop. Signing is CKM_ECDSA over the digest.
 * - on the vault: the audit checkpoint key (BIP-340 Schnorr over secp256k1, a mechanism PKCS#11 does not define),
 *   the webhook secret key (deriveSecret: an HMAC keyed with a private key, which a token cannot do with an EC key),
 *   Nostr keys (BIP-340, raw ECDH x for NIP-44/NIP-04), Bitcoin keys (xpubs need BIP-32 chain codes; Taproot needs
 *   a tweaked Schnorr key). A token path asked for one of those operations is refused with `hsm_unsupported`.
 *
 * Key mapping: CKA_LABEL = `airlock:<vault fingerprint>:<path>`, for people and HSM tools; CKA_ID = SHA-256 of that
 * label (32 bytes), the lookup key. Both the public and the private object carry them. The path is Airlock's one
 * spelling (derivation-path.ts) and the fingerprint the deployment's (its store's `vault_fingerprint`, which a
 * restore keeps), so a deployment's path always maps to the same object and two deployments on one token never to
 * the same one. Keys made before the id named the deployment carry CKA_ID = SHA-256(path) (the legacy id): they are
 * found, never made, and used only for a deployment whose store records that key at that path (TokenDeployment).
 *
 * Binding: `pkcs11js` (PeculiarVentures, MIT). Chosen because it is the maintained low-level binding (2.1.7,
 * August 2026; the same authors' graphene-pk11 wraps it and had its last release in December 2024), it is a
 * Node-API addon (one build serves every Node version), and it has asynchronous C_Sign, so a slow network HSM
 * does not stall the event loop. It is an optional dependency, built by node-gyp on install (package.json
 * `allowScripts`); `Pkcs11KeyBackend.available()` says whether it loads.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { AirlockError, type EcdsaSignature, type ExtendedPublicKey, type KeyBackend } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { parseDerivationPath, formatDerivationPath } from './derivation-path.ts';
import { NativeKeyBackend, nativeRecoverPublicKey } from './native-backend.ts';

type Pkcs11Module = typeof import('pkcs11js');
type Pkcs11 = InstanceType<Pkcs11Module['PKCS11']>;
type Handle = Buffer;

let loaded: { lib: Pkcs11Module } | { error: string } | undefined;

function load(): { lib: Pkcs11Module } | { error: string } {
  if (!loaded) {
    try {
      loaded = { lib: createRequire(import.meta.url)('pkcs11js') as Pkcs11Module };
    } catch (e) {
      loaded = { error: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
    }
  }
  return loaded;
}

/** DER of the secp256k1 OID 1.3.132.0.10: CKA_EC_PARAMS as a named curve. */
export const SECP256K1_EC_PARAMS = Uint8Array.from([0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]);

const CURVE_ORDER = secp256k1.Point.CURVE().n;

/** An EVM agent path: `m/44'/60'/account'/0/index`, the only keys that live in the token. */
export function isTokenPath(path: string): boolean {
  const indexes = parseDerivationPath(path);
  const H = 0x80000000;
  return indexes.length === 5 && indexes[0] === 44 + H && indexes[1] === 60 + H && indexes[2]! >= H && indexes[3] === 0 && indexes[4]! < H;
}

/** CKA_LABEL of the key at `path` of the deployment whose vault fingerprint is `fingerprint`. */
export function tokenKeyLabel(fingerprint: string, path: string): string {
  return `airlock:${fingerprint}:${formatDerivationPath(parseDerivationPath(path))}`;
}

/**
 * CKA_ID of the key at `path` of the deployment `fingerprint`: SHA-256 of its label. Found by review: the id was
 * the path alone, so a second deployment on the token (a shared HSM partition, a re-init) was handed the first
 * one's agent keys and signed as its agents.
 */
export function tokenKeyId(fingerprint: string, path: string): Buffer {
  return createHash('sha256').update(tokenKeyLabel(fingerprint, path), 'utf8').digest();
}

/** CKA_ID of a key made before ids named the deployment: SHA-256 of the path's one spelling. Looked up, never made. */
export function legacyTokenKeyId(path: string): Buffer {
  return createHash('sha256').update(formatDerivationPath(parseDerivationPath(path)), 'utf8').digest();
}

/** The deployment a backend makes and finds token keys for. */
export interface TokenDeployment {
  /** The vault fingerprint (8 hex digits) of the deployment: in the CKA_ID and CKA_LABEL of every key it makes. */
  fingerprint: string;
  /**
   * Whether the deployment's store records `publicKey` as its agent key at `path` (the path in its one spelling).
   * Asked only of a key under the legacy id, which any deployment on the token may have made: such a key is used
   * only when this answers yes, and never without it.
   */
  recordsKey?: (path: string, publicKey: Uint8Array) => Promise<boolean>;
}

export interface Pkcs11Options {
  /** The PKCS#11 module (.so), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  library: string;
  /** The token, by label (CKA_LABEL of the token, as set at --init-token). One of tokenLabel, slot. */
  tokenLabel?: string;
  /** The token, by slot id (as the module numbers them). */
  slot?: number;
  /** The user PIN, read from this file (first line). Never passed in the environment or a config file. */
  pinFile: string;
  /** Sessions kept open; up to this many operations run in the token at once. Default 4. */
  sessions?: number;
}

/** One key pair of the token: the private key's handle and its public key (33-byte compressed, as the port returns). */
interface TokenKey {
  privateKey: Handle;
  publicKey: Uint8Array;
}

export class Pkcs11KeyBackend implements KeyBackend {
  readonly kind = 'pkcs11';
  /**
   * CKM_ECDSA draws a random nonce (RFC 6979 is no PKCS#11 mechanism): two signings of one digest differ. The
   * signing service keeps the released bytes durably and answers replays with them (core released-signatures.ts).
   */
  readonly deterministic = false;
  readonly #lib: Pkcs11Module;
  readonly #p11: Pkcs11;
  readonly #vault: KeyBackend;
  readonly #idle: Handle[] = [];
  readonly #waiting: ((session: Handle) => void)[] = [];
  readonly #keys = new Map<string, TokenKey>();
  /** The last key generation queued (#create): the next one starts when it settles. */
  #creating: Promise<void> = Promise.resolve();
  readonly #recover = fastestRecover();
  readonly #tokenLabel: string;
  readonly #slot: Handle;
  readonly #deployment: TokenDeployment;
  /**
   * Kept to log in again when the token drops the login (a network HSM's restart or failover, a session timeout,
   * another application's C_Logout or C_CloseAllSessions): without it only a restart recovered (found by review).
   * The vault's root secret lives in this process too, so the PIN in memory adds no exposure.
   */
  readonly #pin: string;
  #closed = false;

  /** True when the pkcs11js addon loads on this machine. */
  static available(): boolean {
    return !('error' in load());
  }

  static unavailableReason(): string | undefined {
    const state = load();
    return 'error' in state ? state.error : undefined;
  }

  /**
   * Loads the module, finds the token, opens the sessions and logs in. `vault` serves every key that does not
   * live in the token (module comment); `deployment` names whose keys it makes and finds. Throws `hsm_unavailable`
   * (module, token, mechanism) or `hsm_login_failed`.
   */
  static open(options: Pkcs11Options, vault: KeyBackend, deployment: TokenDeployment): Pkcs11KeyBackend {
    if (!/^[0-9a-f]{8}$/.test(deployment.fingerprint)) throw new AirlockError('invalid_request', 'The deployment fingerprint of the PKCS#11 keys must be 8 lowercase hex digits (the vault fingerprint).');
    const state = load();
    if ('error' in state) throw new AirlockError('hsm_unavailable', 'The PKCS#11 binding (pkcs11js) is not installed or did not build.', { hints: [state.error, 'Run `npm install` with a C++ toolchain (python3, make, g++).'] });
    const pin = readPin(options.pinFile);
    const p11 = new state.lib.PKCS11();
    try {
      p11.load(options.library);
    } catch {
      throw new AirlockError('hsm_unavailable', `The PKCS#11 module ${options.library} cannot be loaded.`, { hints: ['Set AIRLOCK_PKCS11_LIBRARY to the vendor module (.so); SoftHSM2: /usr/lib/softhsm/libsofthsm2.so.'] });
    }
    try {
      // OS locking: C_Sign runs on libuv's thread pool, so the module must be safe across threads.
      p11.C_Initialize({ flags: state.lib.CKF_OS_LOCKING_OK });
    } catch (e) {
      p11.close();
      // Already initialised: another backend of this process holds the module. One owner per process keeps the
      // login honest (a second C_Login would be "already logged in", whatever PIN it was given).
      const twice = (e as { code?: number }).code === state.lib.CKR_CRYPTOKI_ALREADY_INITIALIZED;
      throw new AirlockError('hsm_unavailable', twice ? `The PKCS#11 module ${options.library} is already open in this process; close the other backend first.` : `The PKCS#11 module did not initialise (${pkcs11Reason(e)}).`);
    }
    try {
      return new Pkcs11KeyBackend(state.lib, p11, options, pin, vault, deployment);
    } catch (e) {
      try {
        p11.C_Finalize();
      } catch {
        // already failing: the first error is the one to report
      }
      p11.close();
      throw e;
    }
  }

  private constructor(lib: Pkcs11Module, p11: Pkcs11, options: Pkcs11Options, pin: string, vault: KeyBackend, deployment: TokenDeployment) {
    this.#lib = lib;
    this.#p11 = p11;
    this.#vault = vault;
    this.#deployment = deployment;
    const { slot, label } = findToken(lib, p11, options);
    this.#tokenLabel = label;
    this.#slot = slot;
    this.#pin = pin;
    const mechanisms = new Set(p11.C_GetMechanismList(slot));
    for (const [name, mechanism] of [['CKM_EC_KEY_PAIR_GEN', lib.CKM_EC_KEY_PAIR_GEN], ['CKM_ECDSA', lib.CKM_ECDSA]] as const) {
      if (!mechanisms.has(mechanism)) throw new AirlockError('hsm_unavailable', `The token "${label}" does not offer ${name}.`, { hints: ['Airlock needs EC key generation and raw ECDSA on secp256k1.'] });
    }
    const count = options.sessions ?? 4;
    if (!Number.isSafeInteger(count) || count < 1 || count > 64) throw new AirlockError('invalid_request', 'sessions must be an integer 1..64');
    for (let i = 0; i < count; i++) this.#idle.push(p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION));
    this.#login(this.#idle[0]!);
  }

  /** Logs the application in (a login applies to every session of this application with the token). */
  #login(session: Handle): void {
    const lib = this.#lib;
    const label = this.#tokenLabel;
    try {
      this.#p11.C_Login(session, lib.CKU_USER, this.#pin);
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code === lib.CKR_USER_ALREADY_LOGGED_IN) return;
      const locked = code === lib.CKR_PIN_LOCKED;
      throw new AirlockError('hsm_login_failed', locked ? `The user PIN of token "${label}" is locked.` : `The PIN in the PIN file does not log in to token "${label}".`, {
        hints: [locked ? 'Unlock it with the security officer PIN (softhsm2-util / the vendor tool).' : 'Check AIRLOCK_PKCS11_PIN_FILE (the first line is the user PIN).'],
      });
    }
  }

  /** Which token this backend signs with (its label): shown at start, never the PIN. */
  get token(): string {
    return this.#tokenLabel;
  }

  /** The key at a token path is created in the token on first use (provisioning), then read back from it. */
  async getPublicKey(path: string): Promise<Uint8Array> {
    if (!isTokenPath(path)) return this.#vault.getPublicKey(path);
    return Uint8Array.from((await this.#retryOnce(() => this.#key(path, { create: true }))).publicKey);
  }

  /**
   * The public key at a token path if the token holds one of this deployment, without making it (`airlock restore`
   * checks every recorded EVM key against the token this way): under its own id, or under the legacy id when the
   * store records it. Two objects for one id are `hsm_key_missing`, as when signing.
   */
  async findPublicKey(path: string): Promise<Uint8Array | undefined> {
    if (!isTokenPath(path)) throw new AirlockError('invalid_request', `${path} is not an EVM agent key path; only those live in the token.`);
    const key = this.#keys.get(path) ?? (await this.#retryOnce(() => this.#lookUp(path)));
    if (!key) return undefined;
    this.#keys.set(path, key);
    return Uint8Array.from(key.publicKey);
  }

  async signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature> {
    if (!isTokenPath(path)) return this.#vault.signDigest(path, digest, scheme);
    if (scheme !== 'ecdsa-secp256k1') throw new AirlockError('invalid_request', 'signDigest only signs ecdsa-secp256k1');
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new AirlockError('invalid_request', 'a digest to sign must be exactly 32 bytes');
    return this.#retryOnce(async () => {
      // A key that is not in the token is not created here: signing for a path nobody provisioned is a fault.
      const key = await this.#key(path, { create: false });
      // A fresh random nonce every time: what makes a replay byte-identical is the signing service, which keeps the
      // released signature durably (`deterministic` above), not this backend.
      const raw = await this.#withSession(async (session) => {
        this.#p11.C_SignInit(session, { mechanism: this.#lib.CKM_ECDSA }, key.privateKey);
        return this.#p11.C_SignAsync(session, Buffer.from(digest), Buffer.alloc(64));
      }, 'sign');
      return normaliseTokenSignature(raw, digest, key.publicKey, this.#recover);
    });
  }

  async getExtendedPublicKey(path: string): Promise<ExtendedPublicKey> {
    if (isTokenPath(path)) throw unsupported('an extended public key (the token keeps no BIP-32 chain code)');
    return this.#vault.getExtendedPublicKey(path);
  }

  async signTaprootKeyPath(path: string, digest: Uint8Array): Promise<Uint8Array> {
    if (isTokenPath(path)) throw unsupported('BIP-340 Taproot signatures');
    return this.#vault.signTaprootKeyPath(path, digest);
  }

  async signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array> {
    if (isTokenPath(path)) throw unsupported('BIP-340 Schnorr signatures');
    return this.#vault.signSchnorr(path, digest);
  }

  async nip44ConversationKey(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    if (isTokenPath(path)) throw unsupported('NIP-44 key agreement');
    return this.#vault.nip44ConversationKey(path, peerXOnly);
  }

  async nip04SharedSecret(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    if (isTokenPath(path)) throw unsupported('NIP-04 key agreement');
    return this.#vault.nip04SharedSecret(path, peerXOnly);
  }

  async deriveSecret(path: string, label: string): Promise<Uint8Array> {
    if (isTokenPath(path)) throw unsupported('derived secrets');
    return this.#vault.deriveSecret(path, label);
  }

  /**
   * The token's attributes of the private key at `path` (tests and `airlock` diagnostics): whether the token
   * says it is sensitive and not extractable, and whether it refuses to hand out CKA_VALUE.
   */
  async inspectPrivateKey(path: string): Promise<{ sensitive: boolean; extractable: boolean; valueReadable: boolean }> {
    const key = await this.#key(path, { create: false });
    return this.#withSession(async (session) => {
      const [sensitive, extractable] = this.#p11.C_GetAttributeValue(session, key.privateKey, [{ type: this.#lib.CKA_SENSITIVE }, { type: this.#lib.CKA_EXTRACTABLE }]);
      let valueReadable = true;
      try {
        const [value] = this.#p11.C_GetAttributeValue(session, key.privateKey, [{ type: this.#lib.CKA_VALUE }]);
        valueReadable = Buffer.isBuffer(value?.value) && value.value.length > 0;
      } catch {
        valueReadable = false; // CKR_ATTRIBUTE_SENSITIVE: what a token must answer
      }
      return { sensitive: isTrue(sensitive?.value), extractable: isTrue(extractable?.value), valueReadable };
    }, 'inspect');
  }

  /** Logs out, closes the sessions and unloads the module; the vault backend is its owner's to wipe. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.clear();
    try {
      this.#p11.C_Finalize(); // closes every session, which logs out
    } catch {
      // the module is going away either way
    }
    this.#p11.close();
  }

  /** The key pair at a token path: from the cache, from the token (#lookUp), or (create) generated in the token. */
  async #key(path: string, { create }: { create: boolean }): Promise<TokenKey> {
    const cached = this.#keys.get(path);
    if (cached) return cached;
    const found = await this.#lookUp(path);
    if (found) {
      this.#keys.set(path, found);
      return found;
    }
    if (!create) {
      throw new AirlockError('hsm_key_missing', `The token "${this.#tokenLabel}" holds no key of this deployment (vault ${this.#deployment.fingerprint}) for ${path}.`, {
        hints: ['The HSM keys are not derived from the recovery phrase: restore the token from its own backup (docs/custody.md).', 'A key another deployment made at this path is never used.'],
      });
    }
    return this.#create(path);
  }

  /**
   * This deployment's key at a token path, if the token holds it: under its own id, else under the legacy id (a key
   * made before ids named the deployment) when the deployment's store records exactly that key at this path. A
   * legacy key the store does not record is another deployment's (or nobody's): not used, and a key is made
   * under the own id instead (#create never looks at legacy ids).
   */
  async #lookUp(path: string): Promise<TokenKey | undefined> {
    const { own, legacy } = await this.#withSession(async (session) => {
      const own = this.#keys.get(path) ?? this.#find(session, this.#id(path), path);
      return { own, legacy: own ? undefined : this.#find(session, legacyTokenKeyId(path), path) };
    }, 'find a key');
    if (own) return own;
    // Asked with no session held: the answer is a store read.
    if (legacy && (await this.#deployment.recordsKey?.(formatDerivationPath(parseDerivationPath(path)), Uint8Array.from(legacy.publicKey)))) return legacy;
    return undefined;
  }

  #id(path: string): Buffer {
    return tokenKeyId(this.#deployment.fingerprint, path);
  }

  /**
   * Generates the key pair of a path the token has none for. Generations run one after another, each looking for
   * the key again first: two callers asking for one new path get one key pair, and a stream of new paths (a
   * provisioning batch, or a caller of the key process's socket asking for path after path) holds one session,
   * never the ones signing needs. C_GenerateKeyPair itself runs on libuv's thread pool: about 170 ms a pair on
   * SoftHSM2, more on a network HSM, during which the event loop keeps serving.
   */
  #create(path: string): Promise<TokenKey> {
    const id = this.#id(path);
    const created = this.#creating.then(() =>
      this.#withSession(async (session) => {
        const key = this.#keys.get(path) ?? this.#find(session, id, path) ?? (await this.#generate(session, id, path));
        this.#keys.set(path, key);
        return key;
      }, 'find or generate a key'),
    );
    this.#creating = created.then(() => undefined, () => undefined);
    return created;
  }

  #find(session: Handle, id: Buffer, path: string): TokenKey | undefined {
    const lib = this.#lib;
    const p11 = this.#p11;
    const objects = (cls: number): Handle[] => {
      p11.C_FindObjectsInit(session, [{ type: lib.CKA_CLASS, value: cls }, { type: lib.CKA_ID, value: id }]);
      try {
        return p11.C_FindObjects(session, 2);
      } finally {
        p11.C_FindObjectsFinal(session);
      }
    };
    const privateKeys = objects(lib.CKO_PRIVATE_KEY);
    if (privateKeys.length === 0) return undefined;
    const publicKeys = objects(lib.CKO_PUBLIC_KEY);
    if (privateKeys.length > 1 || publicKeys.length !== 1) {
      throw new AirlockError('hsm_key_missing', `The token "${this.#tokenLabel}" holds ${privateKeys.length} private and ${publicKeys.length} public objects for ${path}; exactly one of each is expected.`, { hints: ['Remove the duplicate with the HSM tool; nothing was signed.'] });
    }
    return { privateKey: privateKeys[0]!, publicKey: this.#readPublicKey(session, publicKeys[0]!) };
  }

  async #generate(session: Handle, id: Buffer, path: string): Promise<TokenKey> {
    const lib = this.#lib;
    const label = tokenKeyLabel(this.#deployment.fingerprint, path);
    const common = [{ type: lib.CKA_TOKEN, value: true }, { type: lib.CKA_ID, value: id }, { type: lib.CKA_LABEL, value: label }];
    const { publicKey, privateKey } = await this.#p11.C_GenerateKeyPairAsync(
      session,
      { mechanism: lib.CKM_EC_KEY_PAIR_GEN },
      [...common, { type: lib.CKA_EC_PARAMS, value: Buffer.from(SECP256K1_EC_PARAMS) }, { type: lib.CKA_VERIFY, value: true }],
      [
        ...common,
        { type: lib.CKA_PRIVATE, value: true },
        { type: lib.CKA_SENSITIVE, value: true },
        { type: lib.CKA_EXTRACTABLE, value: false },
        { type: lib.CKA_SIGN, value: true },
        { type: lib.CKA_DERIVE, value: false },
      ],
    );
    return { privateKey, publicKey: this.#readPublicKey(session, publicKey) };
  }

  /** CKA_EC_POINT -> 33-byte compressed key; refuses a point that is not on secp256k1. */
  #readPublicKey(session: Handle, handle: Handle): Uint8Array {
    const [point] = this.#p11.C_GetAttributeValue(session, handle, [{ type: this.#lib.CKA_EC_POINT }]);
    return compressEcPoint(point?.value as Buffer | undefined);
  }

  /**
   * Runs `op` again once when its session turned out to be lost (SessionLost): the session was replaced and the
   * key handles forgotten meanwhile, so the second run opens, logs in and finds the key afresh. A failed C_Sign
   * releases nothing, so running it again signs at most once. A second loss is `hsm_unavailable`.
   */
  async #retryOnce<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof SessionLost)) throw e;
      return op();
    }
  }

  /** Runs `use` with a session of its own (PKCS#11 allows one operation per session at a time). */
  async #withSession<T>(use: (session: Handle) => Promise<T>, what: string): Promise<T> {
    if (this.#closed) throw new AirlockError('sealed', 'the PKCS#11 backend was closed');
    let session = this.#idle.pop() ?? (await new Promise<Handle>((resolve) => this.#waiting.push(resolve)));
    try {
      return await use(session);
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      const message = `The token refused to ${what} (${pkcs11Reason(e)}); nothing was signed.`;
      if (!this.#closed && SESSION_LOST.has(pkcs11Reason(e))) {
        session = this.#renew(session);
        throw new SessionLost(message);
      }
      throw new AirlockError('hsm_unavailable', message);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(session);
      else this.#idle.push(session);
    }
  }

  /**
   * A new session (logged in) in place of a lost one, and every key handle forgotten (object handles may be
   * session-bound or invalid after a logout). Failing to open one keeps the old handle: the next use fails again
   * and tries again.
   */
  #renew(lost: Handle): Handle {
    this.#keys.clear();
    try {
      this.#p11.C_CloseSession(lost);
    } catch {
      // already closed by the token: what made it lost
    }
    try {
      const session = this.#p11.C_OpenSession(this.#slot, this.#lib.CKF_SERIAL_SESSION | this.#lib.CKF_RW_SESSION);
      this.#login(session);
      return session;
    } catch {
      return lost;
    }
  }
}

/** Errors after which the session or the login is gone while the token itself may be fine (PKCS#11 v2.40 §5.1). */
const SESSION_LOST = new Set(['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID', 'CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT']);

/** `hsm_unavailable` from a lost session, which `#retryOnce` runs again once on a renewed one. */
class SessionLost extends AirlockError {
  constructor(message: string) {
    super('hsm_unavailable', message);
  }
}

/**
 * The user PIN from the first line of `path`, a regular file only its owner may use (as `airlock restore` and
 * `airlock unseal` take share and phrase files): a PIN that other local users can read, or replace with one of
 * their own, is refused before the module is loaded. The mode is read from the open file, so the file checked is
 * the file read. Errors name the file, never its content.
 */
function readPin(path: string): string {
  const hint = 'Set AIRLOCK_PKCS11_PIN_FILE to a 0400 file holding the user PIN.';
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new AirlockError('hsm_login_failed', `The PKCS#11 PIN file ${path} cannot be read.`, { hints: [hint] });
  }
  let text: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AirlockError('hsm_login_failed', `The PKCS#11 PIN file ${path} is not a regular file.`, { hints: [hint] });
    if ((stat.mode & 0o077) !== 0) {
      throw new AirlockError('hsm_login_failed', `The PKCS#11 PIN file ${path} is open to other users (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}); the token was not opened.`, {
        hints: [`Make it readable by its owner (the service user) only: chmod 400 ${path}`],
      });
    }
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const pin = text.split(/\r?\n/)[0] ?? '';
  if (pin.length === 0) throw new AirlockError('hsm_login_failed', `The PKCS#11 PIN file ${path} is empty.`);
  return pin;
}

function findToken(lib: Pkcs11Module, p11: Pkcs11, options: Pkcs11Options): { slot: Handle; label: string } {
  if ((options.tokenLabel === undefined) === (options.slot === undefined)) {
    throw new AirlockError('config_invalid', 'Name the PKCS#11 token by exactly one of AIRLOCK_PKCS11_TOKEN_LABEL and AIRLOCK_PKCS11_SLOT.');
  }
  const seen: string[] = [];
  for (const slot of p11.C_GetSlotList(true)) {
    const label = p11.C_GetTokenInfo(slot).label.trimEnd();
    const slotId = slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
    seen.push(`${label} (slot ${slotId})`);
    if (options.tokenLabel !== undefined ? label === options.tokenLabel : slotId === options.slot) return { slot, label };
  }
  void lib;
  throw new AirlockError('hsm_unavailable', `No initialised PKCS#11 token ${options.tokenLabel !== undefined ? `labelled "${options.tokenLabel}"` : `in slot ${options.slot}`}.`, {
    hints: [seen.length ? `Tokens present: ${seen.join(', ')}.` : 'The module reports no token; initialise one (softhsm2-util --init-token, or the vendor tool).'],
  });
}

/**
 * CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11 2.40 §2.3.3); some modules return
 * the bare point. Either way the result is the 33-byte compressed key, checked to be on the curve.
 */
export function compressEcPoint(value: Uint8Array | undefined): Uint8Array {
  let point = value;
  if (point && point.length === 67 && point[0] === 0x04 && point[1] === 0x41) point = point.subarray(2);
  try {
    if (!point || point.length !== 65 || point[0] !== 0x04) throw new Error('not an uncompressed point');
    return secp256k1.Point.fromBytes(point).toBytes(true);
  } catch {
    throw new AirlockError('hsm_unavailable', 'The token returned a public key that is not a secp256k1 point.');
  }
}

/**
 * A token's raw r || s -> low-S compact signature with its recovery id. Tokens return neither: s is moved to the
 * low half (n - s, the same signature for ECDSA), and the recovery id is the one of 0, 1 whose recovered key is
 * the token's public key. None matching means the token signed with another key or returned garbage.
 */
export function normaliseTokenSignature(raw: Uint8Array, digest: Uint8Array, publicKey: Uint8Array, recover: RecoverPublicKey = nobleRecover): EcdsaSignature {
  if (raw.length !== 64) throw new AirlockError('signature_check_failed');
  let signature: ReturnType<typeof secp256k1.Signature.fromBytes>;
  try {
    signature = secp256k1.Signature.fromBytes(raw, 'compact');
  } catch {
    throw new AirlockError('signature_check_failed');
  }
  if (signature.s > CURVE_ORDER >> 1n) signature = new secp256k1.Signature(signature.r, CURVE_ORDER - signature.s);
  const expected = Buffer.from(secp256k1.Point.fromBytes(publicKey).toBytes(false));
  const compact = signature.toBytes('compact');
  for (const recovery of [0, 1]) {
    try {
      if (expected.equals(recover(digest, compact, recovery))) return { compact, recovery };
    } catch {
      // this recovery id gives no point: try the other
    }
  }
  throw new AirlockError('signature_check_failed');
}

/** 65-byte uncompressed public key from a compact signature and recovery id; throws when there is none. */
export type RecoverPublicKey = (digest: Uint8Array, compact: Uint8Array, recovery: number) => Uint8Array;

const nobleRecover: RecoverPublicKey = (digest, compact, recovery) => secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(false);

/** libsecp256k1 when it loads (about 20x faster than noble, and up to two recoveries per signature), else noble. */
const fastestRecover = (): RecoverPublicKey => (NativeKeyBackend.available() ? nativeRecoverPublicKey : nobleRecover);

function unsupported(what: string): AirlockError {
  return new AirlockError('hsm_unsupported', `EVM agent keys live in the PKCS#11 token, which does not provide ${what}.`);
}

function isTrue(value: unknown): boolean {
  return value === true || (Buffer.isBuffer(value) && value.length > 0 && value[0] !== 0);
}

/** A PKCS#11 error by its CKR_ name (pkcs11js puts it in the message); never a PIN or key material. */
function pkcs11Reason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return /^CKR_\w+/.exec(message)?.[0] ?? 'PKCS#11 error';
}
