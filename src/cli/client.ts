// `orthid client ...`: register, list and edit OIDC clients, rotate their secrets. A secret is
// printed once and stored only hashed.
import type { Command } from 'commander';
import type { RegisteredClient } from '../oidc/clients.js';
import { action, operation, print } from './context.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

type Created = RegisteredClient & { clientSecret?: string };

/** A repeatable option that stays undefined unless given, so "not given" and "empty" differ. */
function collectGiven(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerClientCommands(program: Command): void {
  const client = program.command('client').description("Manage a tenant's OpenID Connect clients");

  client
    .command('create')
    .description('Register a client; its secret is shown once')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--name <name>', 'name shown on the consent page')
    .requiredOption(
      '--grant <type>',
      'authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code (repeatable)',
      collect,
      [],
    )
    .option('--redirect-uri <uri>', 'redirect URI (repeatable; required for authorization_code)', collect, [])
    .option('--post-logout-redirect-uri <uri>', 'where to return after sign-out (repeatable)', collect, [])
    .option(
      '--scope <scopes>',
      'OpenID scopes the client may request, from openid, profile, email, phone, offline_access (default all); API permissions come from --resource and client roles',
    )
    .option(
      '--resource <uri>',
      'API resource indicator the client may request tokens for (repeatable)',
      collect,
      [],
    )
    .option('--public', 'a public client (SPA, native app): no secret, PKCE required')
    .option(
      '--response-type <type>',
      'code (default), id_token or "code id_token" (repeatable); the last two for relying parties that sign in with an ID token posted back (form_post)',
      collect,
      [],
    )
    .option('--id-token-alg <alg>', 'RS256 (default), ES256 or EdDSA')
    .option('--token-auth-method <method>', 'client_secret_basic (default) or client_secret_post')
    .option('--first-party', "the tenant's own application: users are not asked to consent to it")
    .option(
      '--introspect <uri>',
      'API resource indicator this client serves: it may introspect tokens for that audience (repeatable)',
      collect,
      [],
    )
    // Opt-in flows.
    .option(
      '--require-par',
      'accept authorization requests only through pushed authorization requests (RFC 9126)',
    )
    .option('--dpop-bound', 'issue access tokens only bound to a DPoP key (RFC 9449)')
    .option('--backchannel-logout-uri <uri>', 'where a logout token is posted when a session ends')
    .option(
      '--request-object-jwks <json>',
      'public JWK Set that signs request objects (RFC 9101); the client must then sign every authorization request',
    )
    .option(
      '--request-object-alg <alg>',
      'request object signing algorithm: RS256, PS256, ES256, EdDSA or Ed25519',
    )
    .option('--json', 'print JSON')
    .action(
      action(
        async (opts: {
          tenant: string;
          name: string;
          grant: string[];
          redirectUri: string[];
          postLogoutRedirectUri: string[];
          scope?: string;
          resource: string[];
          public?: boolean;
          responseType: string[];
          idTokenAlg?: string;
          tokenAuthMethod?: string;
          firstParty?: boolean;
          introspect: string[];
          requirePar?: boolean;
          dpopBound?: boolean;
          backchannelLogoutUri?: string;
          requestObjectJwks?: string;
          requestObjectAlg?: string;
          json?: boolean;
        }) => {
          const created = (await operation('client.create', {
            tenant: opts.tenant,
            name: opts.name,
            grantTypes: opts.grant,
            redirectUris: opts.redirectUri,
            postLogoutRedirectUris: opts.postLogoutRedirectUri,
            scope: opts.scope,
            resources: opts.resource,
            public: Boolean(opts.public),
            responseTypes: opts.responseType.length > 0 ? opts.responseType : undefined,
            idTokenSignedResponseAlg: opts.idTokenAlg,
            tokenEndpointAuthMethod: opts.tokenAuthMethod,
            firstParty: Boolean(opts.firstParty),
            introspects: opts.introspect,
            requirePushedAuthorizationRequests: Boolean(opts.requirePar),
            dpopBoundAccessTokens: Boolean(opts.dpopBound),
            backchannelLogoutUri: opts.backchannelLogoutUri,
            requestObjectJwks: opts.requestObjectJwks,
            requestObjectSigningAlg: opts.requestObjectAlg,
          })) as Created;
          print(
            { ...created, client_id: created.clientId, client_secret: created.clientSecret },
            Boolean(opts.json),
            (c: Created) =>
              [
                `Created client ${c.clientId} (${c.name}) in ${opts.tenant}`,
                c.clientSecret
                  ? `Client secret (shown once, store it now): ${c.clientSecret}`
                  : 'Public client: no secret.',
              ].join('\n'),
          );
        },
      ),
    );

  client
    .command('list')
    .description('List clients (never secrets)')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; json?: boolean }) => {
        const clients = (await operation('client.list', { tenant: opts.tenant })) as RegisteredClient[];
        print(clients, Boolean(opts.json), (list: RegisteredClient[]) =>
          list.map((c) => `${c.clientId}  ${c.name.padEnd(24)} ${c.grantTypes.join(',')}`).join('\n'),
        );
      }),
    );

  client
    .command('update')
    .description(
      "Change a client's name, grant types or redirect URIs (each given list replaces the old one)",
    )
    .argument('<clientId>', 'the client')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--name <name>', 'name shown on the consent page')
    .option('--grant <type>', 'grant type (repeatable; replaces the grant types)', collectGiven)
    .option('--redirect-uri <uri>', 'redirect URI (repeatable; replaces the redirect URIs)', collectGiven)
    .option(
      '--post-logout-redirect-uri <uri>',
      'where to return after sign-out (repeatable; replaces the post-logout redirect URIs)',
      collectGiven,
    )
    .option('--no-post-logout-redirect-uris', 'remove every post-logout redirect URI')
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          clientId: string,
          opts: {
            tenant: string;
            name?: string;
            grant?: string[];
            redirectUri?: string[];
            postLogoutRedirectUri?: string[];
            postLogoutRedirectUris: boolean;
            json?: boolean;
          },
        ) => {
          const updated = (await operation('client.update', {
            tenant: opts.tenant,
            clientId,
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(opts.grant ? { grantTypes: opts.grant } : {}),
            ...(opts.redirectUri ? { redirectUris: opts.redirectUri } : {}),
            ...(opts.postLogoutRedirectUris === false
              ? { postLogoutRedirectUris: [] }
              : opts.postLogoutRedirectUri
                ? { postLogoutRedirectUris: opts.postLogoutRedirectUri }
                : {}),
          })) as RegisteredClient;
          print(updated, Boolean(opts.json), (c: RegisteredClient) =>
            [
              `Updated client ${c.clientId} (${c.name}) in ${opts.tenant}`,
              `Grant types: ${c.grantTypes.join(', ')}`,
              `Redirect URIs: ${c.redirectUris.join(' ') || 'none'}`,
              `Post-logout redirect URIs: ${c.postLogoutRedirectUris.join(' ') || 'none'}`,
            ].join('\n'),
          );
        },
      ),
    );

  client
    .command('rotate-secret')
    .description('Give a confidential client a new secret, shown once; the old one stops working')
    .argument('<clientId>', 'the client')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option(
      '--grace-period <seconds>',
      'keep the old secret working this long (at most 604800, a week) while deployments are updated; default 0',
    )
    .option('--json', 'print JSON')
    .action(
      action(async (clientId: string, opts: { tenant: string; gracePeriod?: string; json?: boolean }) => {
        const grace = opts.gracePeriod === undefined ? 0 : Number(opts.gracePeriod);
        const rotated = (await operation('client.rotateSecret', {
          tenant: opts.tenant,
          clientId,
          // Not a number: the client registry refuses it with the API's message.
          gracePeriodSeconds: Number.isNaN(grace) ? -1 : grace,
        })) as RegisteredClient & { clientSecret: string };
        print(
          { ...rotated, client_id: rotated.clientId, client_secret: rotated.clientSecret },
          Boolean(opts.json),
          (c: RegisteredClient & { clientSecret: string }) =>
            [
              `Rotated the secret of client ${c.clientId} (${c.name}) in ${opts.tenant}`,
              `Client secret (shown once, store it now): ${c.clientSecret}`,
              c.previousSecretExpiresAt
                ? `The old secret works until ${c.previousSecretExpiresAt}.`
                : 'The old secret no longer works.',
            ].join('\n'),
        );
      }),
    );
}
