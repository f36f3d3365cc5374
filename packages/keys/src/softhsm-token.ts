/**
 * A throwaway SoftHSM2 token for tests: its own config and token directory in a temp dir, initialised with
 * softhsm2-util, so tests never touch /var/lib/softhsm or another run's token. Tests skip (with the reason
 * below) when Debian's softhsm2 is not installed; .ci/run installs it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pkcs11KeyBackend } from './pkcs11-backend.ts';

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
