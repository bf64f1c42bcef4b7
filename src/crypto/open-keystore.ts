// Opens the configured keystore file, sealed with the master secret, or creates it on request.
import type { Config } from '../config/config.js';
import { type Clock, systemClock } from '../core/clock.js';
import { ManagedKeystore } from './managed-keystore.js';
import { resolveMasterSecret } from './master-secret.js';

/**
 * Opens (or on request creates) the keystore file; says whether a master secret was generated.
 * Under BYOK the file holds no root keys, only where they are.
 */
export async function openKeystore(
  config: Config,
  create: boolean,
  clock: Clock = systemClock,
): Promise<{ keystore: ManagedKeystore; created: boolean; masterGenerated: boolean }> {
  const master = await resolveMasterSecret(config.masterKey);
  if (!create) {
    return {
      keystore: await ManagedKeystore.open(config.keystorePath, master.value, clock),
      created: false,
      masterGenerated: false,
    };
  }
  const external =
    config.custody.kind === 'managed'
      ? undefined
      : { kind: config.custody.kind, reference: config.custody.uri };
  const { keystore, created } = await ManagedKeystore.init(
    config.keystorePath,
    master.value,
    external,
    clock,
  );
  return { keystore, created, masterGenerated: master.generated };
}
