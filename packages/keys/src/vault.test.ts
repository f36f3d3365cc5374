import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { inspect } from 'node:util';
import { generateMnemonic, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { evmPath } from './derivation-path.ts';
import { createVault, importVault, openVault, readVaultHeader, restoreVault, unsealRecoveryPhrase } from './vault.ts';

const PASSPHRASE = 'correct horse battery staple';
// Small argon2 parameters so the suite runs fast; one test below uses the real defaults.
const FAST = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const OPEN_FAST = { allowWeakKdf: true };

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-vault-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function fastVault(): Promise<{ path: string; mnemonic: string; fingerprint: string }> {
  const path = join(await freshDir(), 'vault.json');
  return { path, ...(await createVault(path, PASSPHRASE, FAST)) };
}

/** Everything an operator or a log could see of an error: message, hints, details, cause chain. */
function visible(error: unknown): string {
  return inspect(error, { depth: 10 });
}

async function rejectsWith(promise: Promise<unknown>, codes: string[], secrets: string[] = [PASSPHRASE]): Promise<string> {
  let caught: unknown;
  await assert.rejects(promise, (e: unknown) => {
    caught = e;
    return true;
  });
  const code = (caught as { code?: string }).code ?? '';
  assert.ok(codes.includes(code), `expected ${codes.join('|')}, got ${code}: ${String(caught)}`);
  for (const secret of secrets) assert.ok(!visible(caught).includes(secret), 'the error shows secret input');
  return code;
}

async function editFile(path: string, edit: (file: Record<string, any>) => void): Promise<void> {
  const file = JSON.parse(await readFile(path, 'utf8'));
  edit(file);
  await writeFile(path, JSON.stringify(file));
}

test('create then open: same root, mnemonic is 24 valid English words', async () => {
  const { path, mnemonic, fingerprint } = await fastVault();
  const words = mnemonic.split(' ');
  assert.equal(words.length, 24);
  assert.ok(validateMnemonic(mnemonic, wordlist));
  const vault = await openVault(path, PASSPHRASE, OPEN_FAST);
  assert.match(vault.fingerprint(), /^[0-9a-f]{8}$/);
  assert.equal(vault.fingerprint(), fingerprint);
  const publicKey = await vault.keyBackend().getPublicKey(evmPath(0, 0));
  assert.equal(publicKey.length, 33);
  // Logging the unsealed vault shows nothing secret: its fingerprint and whether it is wiped, nothing else. (Not
  // checked by looking for the phrase's first word in the output: "sea" (in UnsealedVault), "finger", "print" and
  // "false" are BIP-39 words, so about one phrase in 500 starts with a word the output holds anyway.)
  assert.equal(inspect(vault), `UnsealedVault { fingerprint: '${fingerprint}', wiped: false }`);
  assert.equal(JSON.stringify(vault), JSON.stringify({ fingerprint, wiped: false }));
  vault.wipe();
  assert.throws(() => vault.keyBackend(), { code: 'sealed' });
});

test('two vaults never share a mnemonic', async () => {
  const a = await fastVault();
  const b = await fastVault();
  assert.notEqual(a.mnemonic, b.mnemonic);
  assert.notEqual(a.fingerprint, b.fingerprint);
});

test('default KDF parameters are the strong ones (argon2id m>=64 MiB, t>=3, p>=4)', async () => {
  const path = join(await freshDir(), 'vault.json');
  await createVault(path, PASSPHRASE);
  const header = await readVaultHeader(path);
  assert.equal(header.kdf.alg, 'argon2id');
  assert.ok(header.kdf.memoryKiB >= 65536);
  assert.ok(header.kdf.passes >= 3);
  assert.ok(header.kdf.parallelism >= 4);
  assert.equal(header.kdf.salt.length, 32);
  assert.equal(header.cipher.nonce.length, 48);
  const vault = await openVault(path, PASSPHRASE);
  vault.wipe();
});

test('weak KDF parameters are refused on create and on open unless allowWeakKdf', async () => {
  const path = join(await freshDir(), 'vault.json');
  await rejectsWith(createVault(path, PASSPHRASE, { kdf: { memoryKiB: 1024 } }), ['invalid_request']);
  const { path: weak } = await fastVault();
  await rejectsWith(openVault(weak, PASSPHRASE), ['vault_corrupt']);
});

test('the vault file is private to its owner (mode 0600) and no temp file is left behind', async () => {
  const { path } = await fastVault();
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const dir = join(path, '..');
  assert.deepEqual(await readdir(dir), ['vault.json']);
  // A refused create leaves nothing behind either.
  await rejectsWith(createVault(path, PASSPHRASE, FAST), ['vault_exists']);
  assert.deepEqual(await readdir(dir), ['vault.json']);
});

test('an existing vault is never overwritten', async () => {
  const { path } = await fastVault();
  const before = await readFile(path, 'utf8');
  await rejectsWith(createVault(path, PASSPHRASE, FAST), ['vault_exists']);
  await rejectsWith(importVault(path, PASSPHRASE, 'test test test test test test test test test test test junk', FAST), [
    'vault_exists',
  ]);
  assert.equal(await readFile(path, 'utf8'), before);
});

test('a passphrase shorter than 12 characters is refused with a hint', async () => {
  const path = join(await freshDir(), 'vault.json');
  const code = await rejectsWith(createVault(path, 'short pass', FAST), ['invalid_request'], ['short pass']);
  assert.equal(code, 'invalid_request');
  await assert.rejects(createVault(path, 'short pass', FAST), (e: { hints: string[] }) => e.hints.length > 0);
  assert.deepEqual(await readdir(join(path, '..')), []);
});

test('a wrong passphrase is vault_wrong_passphrase and says the file may have been modified', async () => {
  const { path, mnemonic } = await fastVault();
  await rejectsWith(openVault(path, 'not the right passphrase', OPEN_FAST), ['vault_wrong_passphrase'], [
    'not the right passphrase',
    PASSPHRASE,
    mnemonic,
    mnemonic.split(' ').slice(0, 3).join(' '),
  ]);
  await assert.rejects(openVault(path, 'not the right passphrase', OPEN_FAST), (e: { hints: string[] }) =>
    e.hints.some((h) => h.includes('modified')),
  );
});

test('a flipped ciphertext byte is detected', async () => {
  const { path } = await fastVault();
  await editFile(path, (file) => {
    const first = file.ciphertext.slice(0, 2) === '00' ? '01' : '00';
    file.ciphertext = first + file.ciphertext.slice(2);
  });
  await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_wrong_passphrase']);
});

test('any changed header field is detected (the header is authenticated)', async () => {
  const edits: ((file: Record<string, any>) => void)[] = [
    (f) => (f.kdf.passes += 1),
    (f) => (f.kdf.memoryKiB += 8),
    (f) => (f.kdf.salt = `${f.kdf.salt.slice(0, -2)}${f.kdf.salt.endsWith('00') ? '01' : '00'}`),
    (f) => (f.cipher.nonce = `${f.cipher.nonce.slice(0, -2)}${f.cipher.nonce.endsWith('00') ? '01' : '00'}`),
    (f) => (f.version = 2),
    (f) => (f.cipher.alg = 'aes-256-gcm'),
    (f) => (f.kdf.extra = 1),
  ];
  for (const edit of edits) {
    const { path } = await fastVault();
    await editFile(path, edit);
    await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_wrong_passphrase', 'vault_corrupt']);
  }
  // Lowering the cost below the minimum is refused before any KDF runs.
  const { path } = await fastVault();
  await editFile(path, (f) => (f.kdf.memoryKiB = 8));
  await rejectsWith(openVault(path, PASSPHRASE), ['vault_corrupt']);
});

test('a truncated file, a non-JSON file, bad hex and a missing file are told apart', async () => {
  const { path } = await fastVault();
  const text = await readFile(path, 'utf8');
  await writeFile(path, text.slice(0, text.length / 2));
  await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_corrupt']);

  await writeFile(path, 'this is not a vault');
  await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_corrupt']);

  const shortCiphertext = JSON.parse(text);
  shortCiphertext.ciphertext = shortCiphertext.ciphertext.slice(0, 40);
  await writeFile(path, JSON.stringify(shortCiphertext));
  await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_corrupt']);

  const badHex = JSON.parse(text);
  badHex.ciphertext = `zz${badHex.ciphertext.slice(2)}`;
  await writeFile(path, JSON.stringify(badHex));
  await rejectsWith(openVault(path, PASSPHRASE, OPEN_FAST), ['vault_corrupt']);

  await rejectsWith(openVault(join(path, '..', 'nope.json'), PASSPHRASE, OPEN_FAST), ['vault_missing']);
  await rejectsWith(readVaultHeader(join(path, '..', 'nope.json')), ['vault_missing']);
});

test('import seals a given mnemonic: same keys as the mnemonic, bad checksum refused without echo', async () => {
  const mnemonic = 'test test test test test test test test test test test junk';
  const path = join(await freshDir(), 'vault.json');
  const { fingerprint } = await importVault(path, PASSPHRASE, mnemonic, FAST);
  const vault = await openVault(path, PASSPHRASE, OPEN_FAST);
  assert.equal(vault.fingerprint(), fingerprint);
  const { mnemonicToAccount, publicKeyToAddress } = await import('viem/accounts');
  const { secp256k1 } = await import('@noble/curves/secp256k1.js');
  const publicKey = await vault.keyBackend().getPublicKey(evmPath(0, 0));
  const address = publicKeyToAddress(`0x${Buffer.from(secp256k1.Point.fromBytes(publicKey).toBytes(false)).toString('hex')}`);
  assert.equal(address, mnemonicToAccount(mnemonic).address);
  vault.wipe();

  const other = join(await freshDir(), 'vault.json');
  const badChecksum = 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo';
  await rejectsWith(importVault(other, PASSPHRASE, badChecksum, FAST), ['invalid_request'], [PASSPHRASE, 'zoo']);
  const typo = 'test test test test test test test test test test test junkk';
  await rejectsWith(importVault(other, PASSPHRASE, typo, FAST), ['invalid_request'], [PASSPHRASE, 'junkk', 'test test']);
  assert.deepEqual(await readdir(join(other, '..')), []);
});

test('restoreVault: never replaces a file unless asked, then replaces it whole; unsealRecoveryPhrase derives the same keys without a file', async () => {
  const { path, mnemonic, fingerprint } = await fastVault();
  const before = await readFile(path);
  await assert.rejects(restoreVault(path, 'another passphrase 42', mnemonic, FAST), { code: 'vault_exists' });
  assert.deepEqual(await readFile(path), before);
  await assert.rejects(restoreVault(path, 'short', mnemonic, { ...FAST, replace: true }), { code: 'invalid_request' });
  assert.deepEqual(await readFile(path), before);
  const restored = await restoreVault(path, 'another passphrase 42', mnemonic, { ...FAST, replace: true });
  assert.deepEqual(restored, { fingerprint, replaced: true });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(join(path, '..'))).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  await assert.rejects(openVault(path, PASSPHRASE, OPEN_FAST), { code: 'vault_wrong_passphrase' });
  const reopened = await openVault(path, 'another passphrase 42', OPEN_FAST);
  const inMemory = unsealRecoveryPhrase(mnemonic);
  assert.equal(inMemory.fingerprint(), fingerprint);
  assert.deepEqual(await inMemory.keyBackend().getPublicKey(evmPath(3, 1)), await reopened.keyBackend().getPublicKey(evmPath(3, 1)));
  inMemory.wipe();
  reopened.wipe();
  const fresh = join(await freshDir(), 'vault.json');
  assert.deepEqual(await restoreVault(fresh, PASSPHRASE, mnemonic, { ...FAST, replace: true }), { fingerprint, replaced: false });
});

// Two `restore --force` at once (two operators, a retried script): each used to rename its file in and read the
// path back, and the one that read the other's file deleted it, leaving no vault while the other reported success.
test('concurrent restores of one vault: one replaces it, the other is `conflict` and writes nothing; a vault always remains', async () => {
  const dir = await freshDir();
  for (let i = 0; i < 25; i++) {
    const path = join(dir, `vault-${i}.json`);
    const { mnemonic, fingerprint } = await createVault(path, PASSPHRASE, FAST);
    const passphrases = ['new passphrase A 0123', 'new passphrase B 0123'];
    const results = await Promise.allSettled(passphrases.map((p) => restoreVault(path, p, mnemonic, { ...FAST, replace: true })));
    const won = results.flatMap((r, j) => (r.status === 'fulfilled' ? [j] : []));
    assert.equal(won.length, 1, `exactly one restore succeeds: ${results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code)).join(', ')}`);
    const lost = results[1 - won[0]!] as PromiseRejectedResult;
    assert.equal(lost.reason.code, 'conflict');
    assert.match(lost.reason.hints.join(' '), /remove .*vault-\d+\.json\.lock/);
    // The vault is there and opens with the passphrase of the restore that reported success.
    const vault = await openVault(path, passphrases[won[0]!]!, OPEN_FAST);
    assert.equal(vault.fingerprint(), fingerprint);
    vault.wipe();
  }
  assert.deepEqual((await readdir(dir)).filter((f) => !/^vault-\d+\.json$/.test(f)), [], 'no lock, staged or temp file left');
});

test('a stale restore lock refuses the restore (`conflict`, the vault unchanged) until it is removed', async () => {
  const { path, mnemonic, fingerprint } = await fastVault();
  const before = await readFile(path);
  await writeFile(`${path}.lock`, '12345\n');
  await rejectsWith(restoreVault(path, 'another passphrase 42', mnemonic, { ...FAST, replace: true }), ['conflict'], [PASSPHRASE, 'another passphrase 42']);
  assert.deepEqual(await readFile(path), before);
  assert.ok(await stat(`${path}.lock`), 'someone else\'s lock is left alone');
  await rm(`${path}.lock`);
  assert.deepEqual(await restoreVault(path, 'another passphrase 42', mnemonic, { ...FAST, replace: true }), { fingerprint, replaced: true });
  assert.deepEqual(await readdir(join(path, '..')), ['vault.json']);
});

// A create and a forced restore racing on a missing path: the create's read-back used to run on the published
// path and, finding the restore's file there, delete it. Now each checks its own staged file before publishing.
test('a create racing a forced restore never deletes the file the other published', async () => {
  const dir = await freshDir();
  for (let i = 0; i < 40; i++) {
    const path = join(dir, `vault-${i}.json`);
    const mnemonic = generateMnemonic(wordlist, 256);
    const results = await Promise.allSettled([
      createVault(path, PASSPHRASE, FAST),
      restoreVault(path, 'another passphrase 42', mnemonic, { ...FAST, replace: true }),
    ]);
    for (const r of results) if (r.status === 'rejected') assert.equal(r.reason.code, 'vault_exists', String(r.reason));
    assert.ok(results.some((r) => r.status === 'fulfilled'));
    // Whichever published last is there and opens with its passphrase.
    const opened = await Promise.any([openVault(path, PASSPHRASE, OPEN_FAST), openVault(path, 'another passphrase 42', OPEN_FAST)]);
    opened.wipe();
  }
});
