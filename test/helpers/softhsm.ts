// Initialises a fresh SoftHSM2 token in a temporary directory for the PKCS#11 custody tests; its
// remove() deletes the token directory, as pulling an HSM would. Missing SoftHSM2 fails, never skips.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian (and Ubuntu) install the SoftHSM2 module. */
export const SOFTHSM_MODULE = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
];

export interface SoftHsmToken {
  /** `pkcs11:token=<label>;object=<object>?module-path=…` without a PIN. */
  uri: string;
  modulePath: string;
  label: string;
  object: string;
  /** The user PIN. */
  pin: string;
  soPin: string;
  /** Variables the module reads: SOFTHSM2_CONF, pointing at this token's config. */
  env: { SOFTHSM2_CONF: string };
  /** Initialises another token in the same token directory (same SOFTHSM2_CONF). */
  addToken(label: string, pin?: string): void;
  /** Deletes the token directory: the module then no longer sees the token. */
  remove(): void;
  /** Deletes everything this helper created. */
  cleanup(): void;
}

/** Throws with the install command when SoftHSM2 is absent, so the suite fails loudly. */
export function softHsmModule(): string {
  const probe = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' });
  const modulePath = SOFTHSM_MODULE.find((path) => existsSync(path));
  if (probe.error || probe.status !== 0 || modulePath === undefined) {
    throw new Error(
      `SoftHSM2 is required for the PKCS#11 custody tests but is not installed (softhsm2-util ${probe.error || probe.status !== 0 ? 'missing' : 'found'}, libsofthsm2.so ${modulePath ?? 'missing'}). Install it: apt-get install -y softhsm2`,
    );
  }
  return modulePath;
}

export function createSoftHsmToken(options: { label?: string; object?: string } = {}): SoftHsmToken {
  const modulePath = softHsmModule();
  const dir = mkdtempSync(join(tmpdir(), 'orthid-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf };
  const label = options.label ?? 'orthid';
  const object = options.object ?? 'orthid-root';
  const pin = randomBytes(6).toString('hex');
  const soPin = randomBytes(6).toString('hex');

  const addToken = (tokenLabel: string, tokenPin = pin): void => {
    const result = spawnSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', tokenPin],
      { encoding: 'utf8', env: { ...process.env, ...env } },
    );
    if (result.status !== 0) {
      throw new Error(`softhsm2-util --init-token failed: ${result.stderr || result.stdout}`);
    }
  };
  addToken(label);

  return {
    uri: `pkcs11:token=${encodeURIComponent(label)};object=${encodeURIComponent(object)}?module-path=${modulePath}`,
    modulePath,
    label,
    object,
    pin,
    soPin,
    env,
    addToken,
    remove: () => rmSync(tokenDir, { recursive: true, force: true }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
