// `orthid client ...`: register OIDC clients. The secret is printed once and stored only hashed.
import type { Command } from 'commander';
import type { RegisteredClient } from '../oidc/clients.js';
import { action, operation, print } from './context.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

type Created = RegisteredClient & { clientSecret?: string };

export function registerClientCommands(program: Command): void {
  const client = program.command('client').description("Manage a tenant's OpenID Connect clients");

  client
    .command('create')
    .description('Register a client; its secret is shown once')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--name <name>', 'name shown on the consent page')
    .requiredOption(
      '--grant <type>',
      'authorization_code, refresh_token or client_credentials (repeatable)',
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
}
