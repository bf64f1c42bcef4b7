// The custodies a deployment uses: its own (the managed keystore, or the BYOK token or KMS key
// configuration names) and those of tenants that bring their own key, named by a custody URI.
import { parseAwsKmsUri } from '../../config/awskms-uri.js';
import type { Config } from '../../config/config.js';
import { parsePkcs11Uri } from '../../config/pkcs11-uri.js';
import { OrthIdError } from '../../core/errors.js';
import type { KeyCustody } from '../key-custody.js';
import type { ByokCustody } from './byok-custody.js';
import { type OpenCustodyOptions, openCustody } from './open-custody.js';

/** Opens the deployment's BYOK custody, or undefined when the keystore itself holds the root keys. */
export async function openExternalCustody(
  config: Config,
  options: OpenCustodyOptions = {},
): Promise<ByokCustody | undefined> {
  return config.custody.kind === 'managed' ? undefined : openCustody(config.custody, options);
}

/**
 * A tenant's own custody: an AWS KMS key of its own, or another key object in the deployment's
 * PKCS#11 token (logged in with the deployment's PIN).
 */
export async function openTenantCustody(
  config: Config,
  uri: string,
  options: OpenCustodyOptions = {},
): Promise<KeyCustody> {
  const kms = /^awskms:/i.test(uri) ? parseAwsKmsUri(uri) : undefined;
  if (kms?.ok) return openCustody({ kind: 'awskms', ...kms.value }, options);
  const p11 = /^pkcs11:/i.test(uri) ? parsePkcs11Uri(uri) : undefined;
  if (p11?.ok && config.custody.kind === 'pkcs11') {
    return openCustody({ kind: 'pkcs11', ...p11.value, pin: config.custody.pin }, options);
  }
  throw new OrthIdError(
    'keystore.custody_unavailable',
    `The tenant's key custody ${uri} cannot be opened: use an awskms: URI, or a pkcs11: URI when ORTHID_KEYSTORE is a PKCS#11 token.`,
  );
}

export interface Custodies {
  /** The deployment's custody for no URI; a tenant's own, opened once and kept, for its URI. */
  custodyFor(uri: string | undefined): Promise<KeyCustody>;
  /** Closes every tenant custody opened so far (not the deployment's). */
  close(): Promise<void>;
}

/** Tenant custodies by URI over the deployment's own; `open` is openTenantCustody unless a test gives its own. */
export function createCustodies(
  deployment: KeyCustody,
  open: (uri: string) => Promise<KeyCustody>,
): Custodies {
  const opened = new Map<string, Promise<KeyCustody>>();
  return {
    custodyFor(uri) {
      if (!uri) return Promise.resolve(deployment);
      const known = opened.get(uri);
      if (known) return known;
      const opening = open(uri);
      // A custody that failed to open (token absent) is tried again on the next request.
      opening.catch(() => opened.delete(uri));
      opened.set(uri, opening);
      return opening;
    },
    async close() {
      await Promise.all([...opened.values()].map(async (c) => (await c).close()));
    },
  };
}
