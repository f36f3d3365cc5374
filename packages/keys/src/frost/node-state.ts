/**
 * A signer node's secrets at rest: its identity key and, after key generation, its FROST share with the
 * group's public package. Sealed as the vault is (argon2id from the node's passphrase, XChaCha20-Poly1305 with
 * the header as associated data), in its own file, `frost-node.json`:
 *
 *   {format:"airlock-frost-node", version:1, name, identityKey, kdf:{…}, cipher:{alg, nonce}, ciphertext}
 *
 * `name` and `identityKey` are in the clear (the operator copies them into the cluster definition) and are
 * part of the associated data, so neither can be edited. The KDF runs once at start; the derived key stays in
 * memory to re-seal the file when the share arrives.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AirlockError, canonicalJson } from '@airlock/core';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { replaceFileAtomically, writeNewFileAtomically } from '../atomic-write.ts';
import { checkPassphrase, deriveKey } from '../vault.ts';
import { DEFAULT_KDF_PARAMS, checkKdfParams, type KdfParams } from '../vault-format.ts';
import { identityPublicKey } from './dkg.ts';
import type { PublicPackageJson, SecretShareJson } from './key-package.ts';

const FORMAT = 'airlock-frost-node' as const;

export interface NodeKey {
  ceremony: string;
  secret: SecretShareJson;
  publicPackage: PublicPackageJson;
}

interface Plaintext {
  identitySecret: string;
  key?: NodeKey;
}

interface Header {
  format: typeof FORMAT;
  version: 1;
  name: string;
  identityKey: string;
  kdf: { alg: 'argon2id'; salt: string } & KdfParams;
  cipher: { alg: 'xchacha20poly1305'; nonce: string };
}

const aad = (h: Header) => new TextEncoder().encode(canonicalJson({ format: h.format, version: h.version, name: h.name, identityKey: h.identityKey, kdf: h.kdf, cipher: h.cipher }));

function seal(header: Omit<Header, 'cipher'>, key: Uint8Array, plaintext: Plaintext): string {
  const full: Header = { ...header, cipher: { alg: 'xchacha20poly1305', nonce: bytesToHex(randomBytes(24)) } };
  const data = new TextEncoder().encode(JSON.stringify(plaintext));
  const ciphertext = xchacha20poly1305(key, hexToBytes(full.cipher.nonce), aad(full)).encrypt(data);
  data.fill(0);
  return `${JSON.stringify({ ...full, ciphertext: bytesToHex(ciphertext) }, null, 2)}\n`;
}

export interface CreateNodeStateOptions {
  kdf?: Partial<KdfParams>;
  /** Tests only: below-minimum KDF cost. */
  allowWeakKdf?: boolean;
}

/** A new node: a fresh identity key, sealed; refuses to overwrite an existing file. Returns the identity key. */
export async function createNodeState(path: string, name: string, passphrase: string, options: CreateNodeStateOptions = {}): Promise<string> {
  checkPassphrase(passphrase);
  const params: KdfParams = { ...DEFAULT_KDF_PARAMS, ...options.kdf };
  checkKdfParams(params, options.allowWeakKdf === true, (message) => new AirlockError('invalid_request', message));
  const identitySecret = schnorr.utils.randomSecretKey();
  const identityKey = identityPublicKey(identitySecret);
  const header: Omit<Header, 'cipher'> = { format: FORMAT, version: 1, name, identityKey, kdf: { alg: 'argon2id' as const, ...params, salt: bytesToHex(randomBytes(16)) } };
  const key = await deriveKey(passphrase, header.kdf);
  try {
    await writeNewFileAtomically(path, seal(header, key, { identitySecret: bytesToHex(identitySecret) }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new AirlockError('invalid_request', 'a signer node state file already exists there; a node is initialised once');
    throw new AirlockError('internal', 'could not write the node state file', { cause: error });
  } finally {
    key.fill(0);
    identitySecret.fill(0);
  }
  return identityKey;
}

/** The unsealed node: its identity secret, its key share once generated, and a way to seal a new share. */
export class NodeState {
  readonly name: string;
  readonly identityKey: string;
  private readonly header: Omit<Header, 'cipher'>;
  private readonly sealingKey: Uint8Array;
  private plaintext: Plaintext;
  private readonly path: string;

  constructor(path: string, header: Omit<Header, 'cipher'>, sealingKey: Uint8Array, plaintext: Plaintext) {
    this.path = path;
    this.header = header;
    this.name = header.name;
    this.identityKey = header.identityKey;
    this.sealingKey = sealingKey;
    this.plaintext = plaintext;
  }

  identitySecret(): Uint8Array {
    return hexToBytes(this.plaintext.identitySecret);
  }

  get key(): NodeKey | undefined {
    return this.plaintext.key;
  }

  /** Seals the confirmed share; written before the node ever uses it. */
  async saveKey(key: NodeKey): Promise<void> {
    const next = { ...this.plaintext, key };
    await replaceFileAtomically(this.path, seal(this.header, this.sealingKey, next));
    this.plaintext = next;
  }

  wipe(): void {
    this.sealingKey.fill(0);
  }
}

const HEX = /^(?:[0-9a-f]{2})+$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The header's fields have the types the code below reads: a file missing `kdf` or `cipher`, or with a salt or
 * nonce that is not hex, was a TypeError (an `internal` error) instead of `vault_corrupt` (found by review).
 */
function checkHeaderShape(parsed: unknown): asserts parsed is Header & { ciphertext: string } {
  const bad = (what: string) => new AirlockError('vault_corrupt', `not a signer node state file (${what})`);
  if (!isObject(parsed) || parsed.format !== FORMAT || parsed.version !== 1) throw bad('format');
  if (typeof parsed.name !== 'string' || typeof parsed.identityKey !== 'string') throw bad('name or identity key');
  const { kdf, cipher, ciphertext } = parsed;
  // A 16-byte salt, as createNodeState writes: argon2 refuses one under 8 bytes with a RangeError (found by review).
  if (!isObject(kdf) || kdf.alg !== 'argon2id' || typeof kdf.salt !== 'string' || !/^[0-9a-f]{32}$/.test(kdf.salt)) throw bad('kdf');
  if (!isObject(cipher) || cipher.alg !== 'xchacha20poly1305' || typeof cipher.nonce !== 'string' || !/^[0-9a-f]{48}$/.test(cipher.nonce)) throw bad('cipher');
  if (typeof ciphertext !== 'string' || !HEX.test(ciphertext)) throw bad('ciphertext');
}

export async function openNodeState(path: string, passphrase: string): Promise<NodeState> {
  let parsed: Header & { ciphertext: string };
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Header & { ciphertext: string };
  } catch (cause) {
    throw new AirlockError('invalid_request', 'cannot read the node state file (run `airlock frost init` first)', { cause });
  }
  checkHeaderShape(parsed);
  checkKdfParams(parsed.kdf, true, (message) => new AirlockError('vault_corrupt', message));
  const { ciphertext, cipher, ...header } = parsed;
  const key = await deriveKey(passphrase, parsed.kdf);
  let plaintext: Plaintext;
  try {
    const bytes = xchacha20poly1305(key, hexToBytes(cipher.nonce), aad(parsed)).decrypt(hexToBytes(ciphertext));
    plaintext = JSON.parse(new TextDecoder().decode(bytes)) as Plaintext;
    bytes.fill(0);
  } catch {
    key.fill(0);
    throw new AirlockError('vault_wrong_passphrase', 'the passphrase does not open this node state file', { hints: ['check the passphrase', 'or the file was modified: restore it from a backup'] });
  }
  if (identityPublicKey(hexToBytes(plaintext.identitySecret)) !== header.identityKey) {
    key.fill(0);
    throw new AirlockError('vault_corrupt', 'the sealed identity key does not match the file header');
  }
  return new NodeState(path, header, key, plaintext);
}
