// What a wired OrthID is: the services the composition root (src/main.ts) builds once from
// configuration and hands to the commands, the schedules and the server. Only the type lives
// here, so that nothing but the CLI needs to import the wiring itself.
import type { Config } from '../config/config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { KeyCustody } from '../crypto/key-custody.js';
import type { ManagedKeystore } from '../crypto/managed-keystore.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { AccountTokens } from '../identity/account-tokens.js';
import type { AvatarLimits, Avatars } from '../identity/avatars.js';
import type { Invitations } from '../identity/invitations.js';
import type { Mfa } from '../identity/mfa.js';
import type { Passkeys } from '../identity/passkeys.js';
import type { PasswordReset } from '../identity/password-reset.js';
import type { PasswordSignInInput, SignInResult } from '../identity/password-sign-in.js';
import type { SelfService } from '../identity/self-service.js';
import type { SignInThrottle } from '../identity/sign-in-throttle.js';
import type { SignUp } from '../identity/sign-up.js';
import type { Users } from '../identity/users.js';
import type { DeliveryWorker } from '../mail/delivery-worker.js';
import type { Mail } from '../mail/mail.js';
import type { MailTransport } from '../mail/transport.js';
import type { Clients } from '../oidc/clients.js';
import type { OidcProviders } from '../oidc/providers.js';
import type { Database } from '../storage/db/database.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import type { Rbac } from '../tenancy/rbac.js';
import type { Tenants } from '../tenancy/tenants.js';

export interface OrthId {
  config: Config;
  /** Blobs: profile media, audit archives, document bundles, the backup canary. */
  objects: ObjectStore;
  clock: Clock;
  log: Logger;
  db: Database;
  /** The keystore file: deployment id, small secrets and, under managed custody, the root keys. */
  keystore: ManagedKeystore;
  /** Where the deployment's root keys live: the keystore itself, a PKCS#11 token or a KMS. */
  custody: KeyCustody;
  /** The custody of a tenant that brings its own key (a custody URI), opened once and kept. */
  custodyFor(uri: string | undefined): Promise<KeyCustody>;
  tenantKeys: TenantKeys;
  tenants: Tenants;
  users: Users;
  /** Profile media: one per process, so its bound on concurrent image decodes holds per process. */
  avatars: Avatars;
  /** Email-and-password sign-in with throttling, lockout and audit (src/identity/password-sign-in.ts). */
  signInWithPassword(input: PasswordSignInInput): Promise<SignInResult>;
  /** The sign-in throttling policy and its counters (housekeeping deletes the stale ones). */
  signInThrottle: SignInThrottle;
  /** Second factors: TOTP, recovery codes, the tenant's MFA policy (src/identity/mfa.ts). */
  mfa: Mfa;
  /** Passkey (WebAuthn) ceremonies, credentials and their removal (src/identity/passkeys.ts). */
  passkeys: Passkeys;
  /** Mailed single-use links and codes: reset, verification, invitation (src/identity/account-tokens.ts). */
  accountTokens: AccountTokens;
  /** "Forgot password?": mailed reset links and their use (src/identity/password-reset.ts). */
  passwordReset: PasswordReset;
  /** Self sign-up with e-mail verification, and invitations (src/identity/sign-up.ts). */
  signUp: SignUp;
  /** Invitations listed and revoked by administrators (src/identity/invitations.ts). */
  invitations: Invitations;
  /** What a signed-in user changes about themself on the account pages (src/identity/self-service.ts). */
  selfService: SelfService;
  /** Organisations, memberships, API resources, permissions, roles, client roles, user sessions. */
  rbac: Rbac;
  clients: Clients;
  /** One OpenID Connect provider per tenant. */
  oidc: OidcProviders;
  /** Outgoing mail: `mail.enqueue(tx, tenantId, message)` queues a mail in the caller's transaction. */
  mail: Mail;
  /** Where delivered mail goes (SMTP or the outbox); undefined: none configured, mail stays queued. */
  mailTransport: MailTransport | undefined;
  /** Delivers queued mail; `orthid start` starts it on every replica. */
  mailWorker: DeliveryWorker;
  close(): Promise<void>;
}

/** What the services are composed over: an opened database, keystore, object store and custody. */
export type OrthIdParts = Pick<OrthId, 'config' | 'clock' | 'log' | 'db' | 'keystore' | 'objects'> & {
  custody?: KeyCustody;
  /** Upload limits other than the defaults (tests). */
  media?: AvatarLimits;
};

/**
 * Builds the domain services over opened parts (the wiring's composeOrthId). Code below the CLI
 * that must compose a deployment of its own, such as a restored copy to check, is handed one.
 */
export type ComposeOrthId = (parts: OrthIdParts) => OrthId;
