// Opens the BYOK custody named by configuration (a PKCS#11 token or an AWS KMS key). The managed
// keystore is opened by the wiring itself; this module knows only the external providers.
import { readFile } from 'node:fs/promises';
import type { AwsKmsCustodyConfig, Pkcs11CustodyConfig, SecretSource } from '../../config/config.js';
import type { Clock } from '../../core/clock.js';
import { OrthIdError } from '../../core/errors.js';
import type { AwsKmsCustodyOptions } from './awskms.js';
import type { ByokCustody } from './byok-custody.js';

export interface OpenCustodyOptions {
  /** AWS only: credentials instead of the standard chain (tests); production leaves it unset. */
  awsCredentials?: AwsKmsCustodyOptions['credentials'];
  /** PKCS#11 only: dates the root keys generated in the token (the system clock by default). */
  clock?: Clock;
}

/** Reads the PIN from its source; a PIN file may end in one newline, as `echo` writes it. */
export async function resolvePin(source: SecretSource): Promise<string> {
  if (source.kind === 'value') return source.value;
  let text: string;
  try {
    text = await readFile(source.path, 'utf8');
  } catch (error) {
    throw new OrthIdError(
      'config.invalid',
      `ORTHID_PKCS11_PIN_FILE (${source.path}) cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}).`,
      { cause: error },
    );
  }
  const pin = text.replace(/\r?\n$/, '');
  if (pin === '')
    throw new OrthIdError('config.invalid', `ORTHID_PKCS11_PIN_FILE (${source.path}) is empty.`);
  return pin;
}

/**
 * Opens and checks the configured external custody: a wrong PIN, a missing token or an
 * unreachable KMS fails here with `keystore.custody_unavailable`.
 *
 * @example
 * if (config.custody.kind !== 'managed') custody = await openCustody(config.custody);
 */
export async function openCustody(
  spec: Pkcs11CustodyConfig | AwsKmsCustodyConfig,
  options: OpenCustodyOptions = {},
): Promise<ByokCustody> {
  switch (spec.kind) {
    // Loaded on demand: the native PKCS#11 binding and the AWS SDK cost start-up time, and a
    // deployment on the managed keystore needs neither.
    case 'pkcs11': {
      const { openPkcs11Custody } = await loadDriver(
        () => import('./pkcs11.js'),
        'The PKCS#11 binding (the native module of pkcs11js) is missing or was not built for this Node.js',
        'Install the dependencies with their install scripts (`npm ci`, or `npm rebuild pkcs11js`; the build needs python3, make and g++).',
      );
      const { token, object, modulePath, serial, manufacturer, model, uri } = spec;
      return openPkcs11Custody({
        uri: { uri, token, object, modulePath, serial, manufacturer, model },
        pin: await resolvePin(spec.pin),
        ...(options.clock === undefined ? {} : { clock: options.clock }),
      });
    }
    case 'awskms': {
      const { openAwsKmsCustody } = await loadDriver(
        () => import('./awskms.js'),
        'The AWS SDK for KMS (@aws-sdk/client-kms) is missing',
        'Install the dependencies: npm ci.',
      );
      return openAwsKmsCustody({
        uri: {
          uri: spec.uri,
          keyId: spec.keyId,
          region: spec.region,
          endpoint: spec.endpoint,
          scopeAliasPrefix: spec.scopeAliasPrefix,
        },
        ...(options.awsCredentials === undefined ? {} : { credentials: options.awsCredentials }),
      });
    }
  }
}

// A driver whose package or native binding is absent (installed with --ignore-scripts, built for
// another Node.js) is an environment problem with a fix, not a bug; any other failure is a bug.
const MISSING = new Set(['MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND', 'ERR_DLOPEN_FAILED']);

async function loadDriver<T>(load: () => Promise<T>, what: string, fix: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    if (code === undefined || !MISSING.has(code)) throw error;
    throw new OrthIdError('keystore.custody_unavailable', `${what} (${message.split('\n')[0]}). ${fix}`, {
      cause: error,
    });
  }
}
