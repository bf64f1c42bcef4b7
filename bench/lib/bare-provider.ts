// The baseline of row 1: a bare `oidc-provider` with its default in-memory adapter, one
// confidential client-credentials client, one API resource issuing JWT access tokens signed
// with an Ed25519 key (EdDSA, OrthID's default). `node --import tsx bench/lib/bare-provider.ts
// PORT CLIENT_ID SECRET RESOURCE SCOPE` listens on 127.0.0.1:PORT and prints "ready".
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, secret, resource, scope] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'bare-ed25519', alg: 'EdDSA', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk as never] },
  clients: [
    {
      client_id: clientId,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'EdDSA',
    },
  ],
  enabledJWA: { idTokenSigningAlgValues: ['EdDSA'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        audience: resource,
        scope,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'EdDSA' } },
      }),
    },
  },
});
createServer(provider.callback()).listen(Number(port), '127.0.0.1', () => console.log('ready'));
