/**
 * The sealed root secret: BIP-39 entropy encrypted at rest with a passphrase.
 * argon2id (Node's built-in crypto.argon2) derives a 32-byte key; XChaCha20-Poly1305 seals the
 * entropy with the header as associated data. File layout: see vault-format.ts.
 */
import { argon2, randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AirlockError } from '@airlock/core';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { exists, fsyncDirectory, publishWithoutReplacing, writeNewFileAtomically } from './atomic-write.ts';
import { entropyFromMnemonic, mnemonicFromEntropy } from './seed.ts';
import { UnsealedVault } from './unsealed-vault.ts';
import {
  DEFAULT_KDF_PARAMS,
  MAX_VAULT_FILE_BYTES,
  NONCE_BYTES,
  SALT_BYTES,
  VAULT_FORMAT,
  VAULT_VERSION,
  checkKdfParams,
  corrupt,
  headerAad,
  parseVaultFile,
  serializeVaultFile,
  type KdfParams,
  type VaultFile,
  type VaultHeader,
} from './vault-format.ts';

export interface CreateVaultOptions {
  kdf?: Partial<KdfParams>;
  /** Test-only: allow KDF parameters below MIN_KDF_PARAMS so tests run fast. */
  allowWeakKdf?: boolean;
}

export interface OpenVaultOptions {
  /** Test-only: open vaults whose KDF parameters are below MIN_KDF_PARAMS. */
  allowWeakKdf?: boolean;
}

export const MIN_PASSPHRASE_LENGTH = 12;
const KEY_BYTES = 32;
const ENTROPY_BYTES = 32; // 256 bits -> 24 words

/**
 * Creates a new vault from 32 bytes of CSPRNG entropy. Returns the 24-word mnemonic: the caller
 * shows it once for the offline backup; it is never retrievable again.
 */
export async function createVault(
  path: string,
  passphrase: string,
  options: CreateVaultOptions = {},
): Promise<{ mnemonic: string; fingerprint: string }> {
  const entropy = randomBytes(ENTROPY_BYTES);
  try {
    const fingerprint = await sealNewVault(path, passphrase, entropy, options);
    return { mnemonic: mnemonicFromEntropy(entropy), fingerprint };
  } finally {
    entropy.fill(0);
  }
}

/** Seals an existing BIP-39 mnemonic (12-24 English words, checksum checked) into a new vault. */
export async function importVault(
  path: string,
  passphrase: string,
  mnemonic: string,
  options: CreateVaultOptions = {},
): Promise<{ fingerprint: string }> {
  const entropy = entropyFromMnemonic(mnemonic);
  try {
    return { fingerprint: await sealNewVault(path, passphrase, entropy, options) };
  } finally {
    entropy.fill(0);
  }
}

/**
 * `airlock restore`: seals a recovery phrase under a new passphrase at `path`. Unlike importVault it may
 * replace an existing file, but only when asked (`replace`), and then atomically (rename over it): a crash
 * leaves the old vault or the new one. The caller checks the phrase against the store first (restore.ts).
 *
 * Restores of one path run one at a time: `<path>.lock`, created exclusively, is held from before the KDF to
 * after the rename; a second restore meanwhile is `conflict` and writes nothing. A restore killed while it holds
 * the lock leaves the file behind, and the next one is refused until an operator removes it.
 */
export async function restoreVault(
  path: string,
  passphrase: string,
  mnemonic: string,
  options: CreateVaultOptions & { replace?: boolean } = {},
): Promise<{ fingerprint: string; replaced: boolean }> {
  const { replace = false, ...vaultOptions } = options;
  checkPassphrase(passphrase);
  const entropy = entropyFromMnemonic(mnemonic);
  try {
    const release = await lockVaultPath(path);
    try {
      const replaced = replace && (await exists(path));
      return { fingerprint: await sealNewVault(path, passphrase, entropy, vaultOptions, replace), replaced };
    } finally {
      await release();
    }
  } finally {
    entropy.fill(0);
  }
}

/** Takes `<path>.lock` (O_EXCL) or refuses with `conflict`; returns its release. */
async function lockVaultPath(path: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  try {
    const handle = await open(lockPath, 'wx', 0o600);
    try {
      await handle.writeFile(`${process.pid}\n`); // for the operator who finds a stale one
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new AirlockError('conflict', `Another restore of this vault is running (${lockPath} exists); nothing was written.`, {
        hints: [`Wait for it to finish. If none is running (a restore was killed), remove ${lockPath} and run the restore again.`],
      });
    }
    if (code === 'ENOENT') throw new AirlockError('invalid_request', 'the directory for the vault does not exist', { cause: error });
    throw new AirlockError('internal', 'could not create the vault lock file', { cause: error });
  }
  return () => unlink(lockPath).catch(() => {});
}

/**
 * The keys a recovery phrase derives, in memory only (no file is read or written): for checking a phrase
 * against what a store recorded before anything is sealed. The caller wipes it.
 */
export function unsealRecoveryPhrase(mnemonic: string): UnsealedVault {
  const entropy = entropyFromMnemonic(mnemonic);
  try {
    return new UnsealedVault(entropy);
  } catch (error) {
    entropy.fill(0);
    throw error;
  }
}

/** Decrypts the vault. On any failure nothing stays in memory and nothing is returned. */
export async function openVault(path: string, passphrase: string, options: OpenVaultOptions = {}): Promise<UnsealedVault> {
  const file = parseVaultFile(await readVaultText(path));
  checkKdfParams(file.kdf, options.allowWeakKdf === true, (message) =>
    corrupt(message, { hints: ['the KDF parameters were weakened; restore the vault from a backup'] }),
  );
  const key = await deriveKey(passphrase, file.kdf);
  let entropy: Uint8Array;
  try {
    entropy = decryptEntropy(file, key);
  } finally {
    key.fill(0);
  }
  try {
    return new UnsealedVault(entropy);
  } catch (error) {
    entropy.fill(0);
    throw error;
  }
}

/** Header only (KDF parameters, algorithms), for `airlock status`. Runs no KDF, needs no passphrase. */
export async function readVaultHeader(path: string): Promise<VaultHeader> {
  const { format, version, kdf, cipher } = parseVaultFile(await readVaultText(path));
  return { format, version, kdf, cipher };
}

async function sealNewVault(path: string, passphrase: string, entropy: Uint8Array, options: CreateVaultOptions, replace = false): Promise<string> {
  checkPassphrase(passphrase);
  const params: KdfParams = { ...DEFAULT_KDF_PARAMS, ...options.kdf };
  checkKdfParams(params, options.allowWeakKdf === true, (message) => new AirlockError('invalid_request', message));
  // Fail before the slow KDF; the exclusive publish (link in publishCheckedVault) closes the race.
  if (!replace && (await exists(path))) throw vaultExists();

  const header: VaultHeader = {
    format: VAULT_FORMAT,
    version: VAULT_VERSION,
    kdf: { alg: 'argon2id', ...params, salt: hex(randomBytes(SALT_BYTES)) },
    cipher: { alg: 'xchacha20poly1305', nonce: hex(randomBytes(NONCE_BYTES)) },
  };
  const key = await deriveKey(passphrase, header.kdf);
  try {
    const ciphertext = xchacha20poly1305(key, bytes(header.cipher.nonce), headerAad(header)).encrypt(entropy);
    const text = serializeVaultFile({ ...header, ciphertext: hex(ciphertext) });
    await publishCheckedVault(path, text, replace, (staged) => checkWrittenVault(staged, key, entropy));
  } finally {
    key.fill(0);
  }
  const unsealed = new UnsealedVault(Uint8Array.from(entropy));
  const fingerprint = unsealed.fingerprint();
  unsealed.wipe();
  return fingerprint;
}

/**
 * Writes the vault to a staged file beside `path` (0600, fsynced), checks that file, then publishes that very
 * file under `path`: rename(2) over it (`replace`), else link(2), which refuses an existing name. The check runs
 * before anything is at `path`, so a failed check removes only the staged file, never what is at `path` (which
 * may be another writer's vault by then).
 */
async function publishCheckedVault(path: string, text: string, replace: boolean, check: (staged: string) => Promise<void>): Promise<void> {
  const dir = dirname(path);
  const staged = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.staged.tmp`);
  try {
    try {
      await writeNewFileAtomically(staged, text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AirlockError('invalid_request', 'the directory for the vault does not exist', { cause: error });
      }
      throw new AirlockError('internal', 'could not write the vault file', { cause: error });
    }
    await check(staged);
    try {
      if (replace) await rename(staged, path);
      else await publishWithoutReplacing(staged, path);
      await fsyncDirectory(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw vaultExists();
      throw new AirlockError('internal', 'could not write the vault file', { cause: error });
    }
  } finally {
    await unlink(staged).catch(() => {}); // gone already after a rename
  }
}

/**
 * Reads the staged file back and decrypts it with the same key before it is published and the mnemonic shown, so
 * a vault that cannot be opened is never reported as created (the key is reused: no second KDF).
 */
async function checkWrittenVault(staged: string, key: Uint8Array, entropy: Uint8Array): Promise<void> {
  let ok = false;
  try {
    const decrypted = decryptEntropy(parseVaultFile(await readFile(staged, 'utf8')), key);
    ok = decrypted.length === entropy.length && decrypted.every((b, i) => b === entropy[i]);
    decrypted.fill(0);
  } catch {
    ok = false;
  }
  if (!ok) throw new AirlockError('internal', 'the vault file did not read back correctly; nothing was written');
}

function decryptEntropy(file: VaultFile, key: Uint8Array): Uint8Array {
  try {
    return xchacha20poly1305(key, bytes(file.cipher.nonce), headerAad(file)).decrypt(bytes(file.ciphertext));
  } catch {
    // Poly1305 cannot tell a wrong key from modified bytes; say both.
    throw new AirlockError('vault_wrong_passphrase', 'the passphrase does not open this vault', {
      hints: ['check the passphrase', 'or the file was modified: restore it from a backup'],
    });
  }
}

/** argon2id -> 32-byte key. The passphrase is NFKC-normalised so the same visible text works on any OS. */
export function deriveKey(passphrase: string, kdf: VaultHeader['kdf']): Promise<Uint8Array> {
  if (typeof passphrase !== 'string') return Promise.reject(new AirlockError('invalid_request', 'the passphrase must be a string'));
  const message = Buffer.from(passphrase.normalize('NFKC'), 'utf8');
  return new Promise<Uint8Array>((resolve, reject) => {
    argon2(
      'argon2id',
      {
        message,
        nonce: bytes(kdf.salt),
        memory: kdf.memoryKiB,
        passes: kdf.passes,
        parallelism: kdf.parallelism,
        tagLength: KEY_BYTES,
      },
      (error, derivedKey) => {
        message.fill(0);
        if (error) reject(new AirlockError('internal', 'key derivation failed', { cause: error }));
        else resolve(derivedKey);
      },
    );
  });
}

/** A new vault passphrase must be long enough; checked before anything slow or anything written. */
export function checkPassphrase(passphrase: string): void {
  if (typeof passphrase !== 'string' || [...passphrase.normalize('NFKC')].length < MIN_PASSPHRASE_LENGTH) {
    throw new AirlockError('invalid_request', `the passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`, {
      hints: ['a few random words are long enough and easier to type than symbols'],
    });
  }
}

async function readVaultText(path: string): Promise<string> {
  try {
    // A vault is about 500 bytes; do not read an arbitrary large file into memory.
    if ((await stat(path)).size > MAX_VAULT_FILE_BYTES) throw corrupt('the file is too large to be a vault');
    return await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof AirlockError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AirlockError('vault_missing', undefined, { hints: ['run `airlock init` to create one'] });
    if (code === 'EISDIR') throw corrupt('the vault path is a directory');
    throw new AirlockError('internal', 'could not read the vault file', { cause: error });
  }
}

function vaultExists(): AirlockError {
  return new AirlockError('vault_exists', undefined, {
    hints: ['Airlock never overwrites a vault; move the old one away first if you really mean to replace it'],
  });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
