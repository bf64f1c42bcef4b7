-- Clients now choose the algorithm of their ID tokens, RS256 unless they say otherwise. A client
-- registered before had its tokens signed with its tenant's algorithm and its relying party may
-- expect exactly that, so it keeps it, written into its metadata. Row-level security shows a
-- migration only the rows of the tenant it has entered, so each tenant is entered in turn.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT id, coalesce(settings ->> 'signingAlg', 'EdDSA') AS alg FROM tenants LOOP
    PERFORM set_config('orthid.tenant_id', t.id::text, true);
    UPDATE oidc_clients
       SET metadata = metadata || jsonb_build_object('id_token_signed_response_alg', t.alg)
     WHERE tenant_id = t.id AND NOT metadata ? 'id_token_signed_response_alg';
  END LOOP;
  PERFORM set_config('orthid.tenant_id', '', true);
END
$$;

-- An API may ask for its access tokens to be signed with another of the tenant's algorithms
-- (NULL: the tenant's default).
ALTER TABLE api_resources ADD COLUMN IF NOT EXISTS access_token_alg text
  CHECK (access_token_alg IN ('EdDSA', 'ES256', 'RS256'));
