/**
 * A throwaway SoftHSM2 token for tests: its own config and token directory in a temp dir, initialised with
 * softhsm2-util, so tests never touch /var/lib/softhsm or another run's token. Tests skip (with the reason
 * below) when Debian's softhsm2 is not installed; .ci/run installs it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pkcs11KeyBackend, tokenKeyId } from './pkcs11-backend.ts';

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
 * before that key was made). Opens the module on its own: no Pkcs11KeyBackend of this process may be open.
 */
export function destroySoftHsmKey(token: SoftHsmToken, path: string): number {
  const lib = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');
  const p11 = new lib.PKCS11();
  p11.load(token.library);
  p11.C_Initialize();
  try {
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === token.tokenLabel);
    if (!slot) throw new Error(`no token labelled ${token.tokenLabel}`);
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    p11.C_Login(session, lib.CKU_USER, readFileSync(token.pinFile, 'utf8').split('\n')[0]!);
    p11.C_FindObjectsInit(session, [{ type: lib.CKA_ID, value: tokenKeyId(path) }]);
    const objects = p11.C_FindObjects(session, 8);
    p11.C_FindObjectsFinal(session);
    for (const handle of objects) p11.C_DestroyObject(session, handle);
    return objects.length;
  } finally {
    p11.C_Finalize();
    p11.close();
  }
}
