// The baseline of row 1: a bare `oidc-provider` with its default in-memory adapter, one
// confidential client-credentials client, one API resource issuing JWT access tokens signed
// with an Ed25519 key (EdDSA, OrthID's default), and one relying party (`${CLIENT_ID}-rp`, same
// secret) for refresh-token grants, rotated as OrthID rotates them. `node --import tsx
// bench/lib/bare-provider.ts PORT CLIENT_ID SECRET RESOURCE SCOPE` listens on 127.0.0.1:PORT and
// prints "ready"; `POST /bench/refresh-tokens?count=N` mints N refresh tokens for the RP.
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { mintRefreshTokens } from './mint-refresh-tokens.js';

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
    {
      client_id: `${clientId}-rp`,
      client_secret: secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['https://rp.bench.example/cb'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'EdDSA',
    },
  ],
  rotateRefreshToken: true,
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
const handle = provider.callback();
createServer((req, res) => {
  const url = new URL(req.url ?? '/', issuer);
  if (req.method === 'POST' && url.pathname === '/bench/refresh-tokens') {
    const count = Number(url.searchParams.get('count') ?? 1);
    mintRefreshTokens(provider, {
      clientId: `${clientId}-rp`,
      accountId: 'bench-user',
      resource,
      scope,
      count,
    })
      .then((tokens) => res.end(JSON.stringify(tokens)))
      .catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    return;
  }
  handle(req, res);
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
