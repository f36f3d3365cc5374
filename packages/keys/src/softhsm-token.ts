/**
 * A throwaway SoftHSM2 token for tests: its own config and token directory in a temp dir, initialised with
 * softhsm2-util, so tests never touch /var/lib/softhsm or another run's token. Tests skip (with the reason
 * below) when Debian's softhsm2 is not installed; .ci/run installs it.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDerivationPath, parseDerivationPath } from './derivation-path.ts';
import { Pkcs11KeyBackend, legacyTokenKeyId, tokenKeyId, tokenKeyLabel } from './pkcs11-backend.ts';

export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * The `skip` option of a SoftHSM test: the reason it cannot run here, or false. Under CI=true (.ci/run, which
 * installs softhsm2) nothing is skipped, so a missing install fails loudly instead of passing silently.
 */
export function softHsmSkip(): string | false {
  const why = softHsmUnavailable();
  return why === undefined || process.env.CI === 'true' ? false : `skipped: ${why}`;
}

/** Why SoftHSM tests cannot run here, or undefined when they can. */
export function softHsmUnavailable(): string | undefined {
  if (!existsSync(SOFTHSM_LIBRARY)) return `SoftHSM2 is not installed (${SOFTHSM_LIBRARY} is absent; apt-get install softhsm2)`;
  if (!Pkcs11KeyBackend.available()) return `the pkcs11js binding does not load: ${Pkcs11KeyBackend.unavailableReason()}`;
  return undefined;
}

export interface SoftHsmToken {
  library: string;
  tokenLabel: string;
  pinFile: string;
  /** The directory holding the config, the token and the PIN file. */
  dir: string;
  remove(): void;
}

/**
 * Creates and initialises a token labelled `label`, and points SOFTHSM2_CONF of this process at its config
 * (SoftHSM reads it at C_Initialize): one token per test process.
 */
export function createSoftHsmToken(label = 'airlock-test', pin = '246810'): SoftHsmToken {
  const why = softHsmUnavailable();
  if (why) throw new Error(`SoftHSM tests cannot run: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'airlock-softhsm-'));
  const tokens = join(dir, 'tokens');
  execFileSync('mkdir', ['-p', tokens]);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `${pin}0`], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' });
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o400 });
  return { library: SOFTHSM_LIBRARY, tokenLabel: label, pinFile, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Destroys the key pair at `path` in the token, as a vendor tool would (a token restored from a backup taken
 * before that key was made): the one of the deployment with vault fingerprint `fingerprint`, or without it every
 * key Airlock made at that path (any deployment's, and one under the legacy id). How many objects went.
 */
export function destroySoftHsmKey(token: SoftHsmToken, path: string, fingerprint?: string): number {
  const spelled = formatDerivationPath(parseDerivationPath(path));
  const names = (label: string) => (fingerprint !== undefined ? label === tokenKeyLabel(fingerprint, path) : label === `airlock:${spelled}` || (label.startsWith('airlock:') && label.endsWith(`:${spelled}`)));
  return withTokenSession(token, (lib, p11, session) => {
    p11.C_FindObjectsInit(session, []);
    const objects = p11.C_FindObjects(session, 100_000);
    p11.C_FindObjectsFinal(session);
    const doomed = objects.filter((handle) => names(String(p11.C_GetAttributeValue(session, handle, [{ type: lib.CKA_LABEL }])[0]?.value ?? '')));
    for (const handle of doomed) p11.C_DestroyObject(session, handle);
    return doomed.length;
  });
}

/**
 * Gives the key pair the deployment `fingerprint` made at `path` the legacy CKA_ID and CKA_LABEL (SHA-256 of the
 * path, `airlock:<path>`): the key as a version before ids named the deployment made it. How many objects changed.
 */
export function makeSoftHsmKeyLegacy(token: SoftHsmToken, path: string, fingerprint: string): number {
  return withTokenSession(token, (lib, p11, session) => {
    p11.C_FindObjectsInit(session, [{ type: lib.CKA_ID, value: tokenKeyId(fingerprint, path) }]);
    const objects = p11.C_FindObjects(session, 8);
    p11.C_FindObjectsFinal(session);
    for (const handle of objects) {
      p11.C_SetAttributeValue(session, handle, [{ type: lib.CKA_ID, value: legacyTokenKeyId(path) }, { type: lib.CKA_LABEL, value: `airlock:${formatDerivationPath(parseDerivationPath(path))}` }]);
    }
    return objects.length;
  });
}

/**
 * `use` with a logged-in read-write session on the token, through a copy of the module of its own (as another
 * process would have it), so a Pkcs11KeyBackend of this process may hold the module meanwhile.
 */
function withTokenSession<T>(token: SoftHsmToken, use: (lib: typeof import('pkcs11js'), p11: InstanceType<typeof import('pkcs11js')['PKCS11']>, session: Buffer) => T): T {
  const lib = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');
  const module = join(token.dir, 'libsofthsm2-tool.so');
  if (!existsSync(module)) copyFileSync(token.library, module);
  const p11 = new lib.PKCS11();
  p11.load(module);
  p11.C_Initialize();
  try {
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === token.tokenLabel);
    if (!slot) throw new Error(`no token labelled ${token.tokenLabel}`);
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    p11.C_Login(session, lib.CKU_USER, readFileSync(token.pinFile, 'utf8').split('\n')[0]!);
    return use(lib, p11, session);
  } finally {
    p11.C_Finalize();
    p11.close();
  }
}
