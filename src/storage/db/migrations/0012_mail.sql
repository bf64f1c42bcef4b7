-- Outgoing mail, queued in the transaction of the change that causes it, so a mail exists iff the
-- change committed, and delivered later by any replica's worker. The recipient and the content
-- (sender, subject, bodies) are personal data, sealed with the tenant's data key: a dump holds
-- them only as ciphertext. `template` names the kind of mail, never its content.
CREATE TABLE mail_queue (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id uuid NOT NULL,
  template text NOT NULL CHECK (template ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  recipient text NOT NULL,
  content text NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  -- A claimed mail is leased to one worker until then; past it another worker may try again.
  locked_until timestamptz,
  -- Why the last attempt failed: an SMTP reply code or a connection error code, never text.
  last_error text,
  created_at timestamptz NOT NULL,
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mail_queue_finished ON mail_queue (finished_at) WHERE status <> 'queued';
SELECT orthid_protect_tenant_table('mail_queue');
