-- oidc_payloads rows are now named by a keyed hash of their id, and their payloads no longer hold
-- the id (src/oidc/stored-secrets.ts). Rows written before held presentable tokens, codes and
-- session cookie values in plain text; none of them could be found any more, and keeping them
-- until they expire would keep those values in every dump for up to 14 days. So they go now:
-- everyone signs in again, and refresh tokens issued before this upgrade are refused.
-- TRUNCATE, not DELETE: row-level security would hide every row from a migration login that
-- does not bypass it. Grants go too: without their sessions and tokens nothing reaches them.
TRUNCATE oidc_payloads;
