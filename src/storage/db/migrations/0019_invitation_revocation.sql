-- Invitations an administrator lists and revokes. A revoked link is refused at once, and told
-- apart from an accepted one (used_at), so revocation has its own column; who created a token is
-- kept for the invitation list (an audit actor such as `user:<id>` or `cli`, never an address).
ALTER TABLE account_tokens ADD COLUMN revoked_at timestamptz;
ALTER TABLE account_tokens ADD COLUMN created_by text;
-- The invitation list pages through one purpose in id (creation) order.
CREATE INDEX account_tokens_purpose ON account_tokens (tenant_id, purpose, id);
