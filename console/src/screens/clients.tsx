// OIDC clients of a tenant, listed in the order the server is asked for: register one (its secret
// shown once), see its metadata, edit its redirect URIs (against the version read), rotate its
// secret (confirmed, the new one shown once), grant it roles, delete it (confirmed).
import { useEffect, useState } from 'preact/hooks';
import { ApiProblem, api, type Client, call, callVersioned, type NewClient } from '../api/client';
import { navigate } from '../router';
import {
  ActionForm,
  ConfirmButton,
  Field,
  Pager,
  ProblemBox,
  Status,
  Table,
  text,
  to,
  useLoad,
  usePaged,
  useSort,
  when,
} from '../ui';

type ClientSort = 'client_id' | '-client_id' | 'created' | '-created';

function lines(value: string | undefined): string[] {
  return (value ?? '')
    .split(/\s+/)
    .map((v) => v.trim())
    .filter(Boolean);
}

export function ClientsScreen({ tenant }: { tenant: string }) {
  const sort = useSort('client_id');
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/clients', {
          params: {
            path: { tenant },
            query: { limit: 25, sort: sort.value as ClientSort, ...(after ? { after } : {}) },
          },
        }),
      ),
    [tenant, sort.value],
  );
  const [created, setCreated] = useState<Client & { clientSecret?: string }>();
  return (
    <>
      <h1>Clients</h1>
      {created && (
        <section class="secret" aria-labelledby="secret-title">
          <h2 id="secret-title">Client {created.name} registered</h2>
          <p>
            Client id: <code data-field="client-id">{created.clientId}</code>
          </p>
          {created.clientSecret ? (
            <p>
              Client secret (shown once, store it now):{' '}
              <code data-field="client-secret">{created.clientSecret}</code>
            </p>
          ) : (
            <p>A public client has no secret; it signs in with PKCE.</p>
          )}
          <button type="button" onClick={() => setCreated(undefined)}>
            I have stored it
          </button>
        </section>
      )}
      <ActionForm
        label="Register a client"
        submit="Register client"
        action={async (data) => {
          const grantTypes = data.getAll('grant') as NewClient['grantTypes'];
          const body: NewClient = {
            name: text(data, 'client-name') ?? '',
            grantTypes,
            ...(data.get('public') ? { public: true } : {}),
            ...(lines(text(data, 'redirect-uris')).length
              ? { redirectUris: lines(text(data, 'redirect-uris')) }
              : {}),
            ...(lines(text(data, 'resources')).length ? { resources: lines(text(data, 'resources')) } : {}),
          };
          const client = await call(
            api.POST('/api/v1/tenants/{tenant}/clients', { params: { path: { tenant } }, body }),
          );
          setCreated(client);
          pager.reload();
        }}
      >
        <Field label="Name" id="client-name" required autocomplete="off" />
        <fieldset>
          <legend>Grant types</legend>
          {(['authorization_code', 'refresh_token', 'client_credentials'] as const).map((g) => (
            <label key={g} class="check">
              <input type="checkbox" name="grant" value={g} defaultChecked={g === 'authorization_code'} /> {g}
            </label>
          ))}
        </fieldset>
        <label class="check">
          <input type="checkbox" name="public" value="1" /> Public client (browser or native app: PKCE, no
          secret)
        </label>
        <div class="field">
          <label for="redirect-uris">Redirect URIs (one a line)</label>
          <textarea id="redirect-uris" name="redirect-uris" rows={2} />
        </div>
        <div class="field">
          <label for="resources">API resources it may request (indicators, one a line)</label>
          <textarea id="resources" name="resources" rows={2} />
        </div>
      </ActionForm>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption="Clients"
          sort={sort}
          head={[
            'Name',
            { label: 'Client id', field: 'client_id' },
            'Type',
            'Grant types',
            'Status',
            { label: 'Created', field: 'created' },
          ]}
        >
          {pager.data.items.map((c) => (
            <tr key={c.clientId}>
              <td>
                <a href={to(tenant, `/clients/${encodeURIComponent(c.clientId)}`)}>{c.name}</a>
              </td>
              <td>
                <code>{c.clientId}</code>
              </td>
              <td>{c.public ? 'public' : 'confidential'}</td>
              <td>{c.grantTypes.join(', ')}</td>
              <td>{c.disabled ? 'disabled' : 'enabled'}</td>
              <td>{when(c.createdAt)}</td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={pager} label="Clients" />
    </>
  );
}

export function ClientScreen({ tenant, clientId }: { tenant: string; clientId: string }) {
  const path = { tenant, clientId };
  const versioned = useLoad(
    () => callVersioned(api.GET('/api/v1/tenants/{tenant}/clients/{clientId}', { params: { path } })),
    [clientId],
  );
  const client = { ...versioned, data: versioned.data?.data };
  const etag = versioned.data?.etag ?? '';
  const [rotated, setRotated] = useState<{ secret: string; until?: string }>();
  const roles = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/clients/{clientId}/roles', {
          params: { path, query: { limit: 200 } },
        }),
      ),
    [clientId],
  );
  const all = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/roles', { params: { path: { tenant }, query: { limit: 200 } } }),
      ),
    [tenant],
  );
  const c = client.data;
  return (
    <>
      <p>
        <a href={to(tenant, '/clients')}>← Clients</a>
      </p>
      <h1>{c?.name ?? 'Client'}</h1>
      <ProblemBox error={client.error} />
      <Status loading={client.loading} />
      {c && (
        <>
          <dl class="facts">
            <dt>Client id</dt>
            <dd>
              <code>{c.clientId}</code>
            </dd>
            <dt>Type</dt>
            <dd>{c.public ? 'public (PKCE)' : `confidential (${c.tokenEndpointAuthMethod})`}</dd>
            <dt>Grant types</dt>
            <dd>{c.grantTypes.join(', ')}</dd>
            <dt>Post-logout redirect URIs</dt>
            <dd>{c.postLogoutRedirectUris.join(', ') || 'none'}</dd>
            <dt>Scope</dt>
            <dd>{c.scope}</dd>
            <dt>API resources</dt>
            <dd>{c.resources.join(', ') || 'none'}</dd>
            <dt>First-party</dt>
            <dd>{c.firstParty ? 'yes (no consent page)' : 'no'}</dd>
            <dt>Status</dt>
            <dd>{c.disabled ? 'disabled' : 'enabled'}</dd>
            <dt>Created</dt>
            <dd>{when(c.createdAt)}</dd>
            {c.previousSecretExpiresAt && (
              <>
                <dt>Previous secret</dt>
                <dd>works until {when(c.previousSecretExpiresAt)}</dd>
              </>
            )}
          </dl>
          <ConfirmButton
            label="Delete client"
            title={`Delete ${c.name}?`}
            message={<p>Its tokens stop working and its users can no longer sign in through it.</p>}
            confirmLabel="Delete"
            onConfirm={async () => {
              await call(api.DELETE('/api/v1/tenants/{tenant}/clients/{clientId}', { params: { path } }));
              navigate(to(tenant, '/clients'));
            }}
          />
          <RedirectUris tenant={tenant} client={c} etag={etag} changed={versioned.reload} />
          {!c.public && (
            <>
              <h2>Client secret</h2>
              {rotated && (
                <section class="secret" aria-labelledby="rotated-title">
                  <h3 id="rotated-title">New secret for {c.name}</h3>
                  <p>
                    Client secret (shown once, store it now):{' '}
                    <code data-field="client-secret">{rotated.secret}</code>{' '}
                    <CopyButton value={rotated.secret} />
                  </p>
                  <p>
                    {rotated.until
                      ? `The old secret works until ${when(rotated.until)}.`
                      : 'The old secret no longer works.'}
                  </p>
                  <button type="button" onClick={() => setRotated(undefined)}>
                    I have stored it
                  </button>
                </section>
              )}
              <RotateSecret
                tenant={tenant}
                client={c}
                rotated={(secret, until) => {
                  setRotated({ secret, ...(until ? { until } : {}) });
                  versioned.reload();
                }}
              />
            </>
          )}
        </>
      )}
      <h2>Roles</h2>
      <ProblemBox error={roles.error} />
      <ul class="chips">
        {roles.data?.items.map((r) => (
          <li key={r.id}>
            {r.name}{' '}
            <ConfirmButton
              label={`Revoke ${r.name}`}
              title={`Revoke ${r.name} from this client?`}
              message={<p>Its next client-credentials token lacks the role's permissions.</p>}
              confirmLabel="Revoke"
              onConfirm={async () => {
                await call(
                  api.DELETE('/api/v1/tenants/{tenant}/clients/{clientId}/roles/{roleId}', {
                    params: { path: { ...path, roleId: r.id } },
                  }),
                );
                roles.reload();
              }}
            />
          </li>
        ))}
        {roles.data?.items.length === 0 && <li>No role.</li>}
      </ul>
      {all.data && (
        <ActionForm
          label="Grant a role to the client"
          submit="Grant role"
          action={async (data) => {
            await call(
              api.PUT('/api/v1/tenants/{tenant}/clients/{clientId}/roles/{roleId}', {
                params: { path: { ...path, roleId: String(data.get('client-role')) } },
              }),
            );
            roles.reload();
          }}
        >
          <div class="field">
            <label for="client-role">Role</label>
            <select id="client-role" name="client-role" required>
              {all.data.items.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name}
                </option>
              ))}
            </select>
          </div>
        </ActionForm>
      )}
    </>
  );
}

/** Copies a value to the clipboard and says so. */
function CopyButton({ value }: { value: string }) {
  const [done, setDone] = useState<'copied' | 'failed'>();
  return (
    <>
      <button
        type="button"
        onClick={() =>
          navigator.clipboard.writeText(value).then(
            () => setDone('copied'),
            () => setDone('failed'),
          )
        }
      >
        Copy secret
      </button>{' '}
      <span aria-live="polite">
        {done === 'copied' ? 'Copied.' : done === 'failed' ? 'Copy failed: select it and copy by hand.' : ''}
      </span>
    </>
  );
}

/**
 * The client's redirect URIs, edited as a list (add, remove) and saved in one PATCH against the
 * version read; when another change came first (412) the API's error is shown and the client read again.
 */
function RedirectUris({
  tenant,
  client,
  etag,
  changed,
}: {
  tenant: string;
  client: Client;
  etag: string;
  changed(): void;
}) {
  const [draft, setDraft] = useState<string[]>();
  // The draft stays shown until the client is read again (after a save or a 412), never the old list.
  useEffect(() => setDraft(undefined), [client]);
  const uris = draft ?? client.redirectUris;
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await call(
        api.PATCH('/api/v1/tenants/{tenant}/clients/{clientId}', {
          params: { path: { tenant, clientId: client.clientId }, header: { 'if-match': etag } },
          body: { redirectUris: uris },
        }),
      );
      changed();
    } catch (e) {
      setError(e);
      if (e instanceof ApiProblem && e.status === 412) changed();
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="redirect-title">
      <h2 id="redirect-title">Redirect URIs</h2>
      <ul class="uris">
        {uris.map((u) => (
          <li key={u}>
            <code>{u}</code>{' '}
            <button
              type="button"
              aria-label={`Remove ${u}`}
              onClick={() => setDraft(uris.filter((v) => v !== u))}
            >
              Remove
            </button>
          </li>
        ))}
        {uris.length === 0 && <li>none</li>}
      </ul>
      <form
        class="action-form"
        aria-label="Add a redirect URI"
        onSubmit={(event) => {
          event.preventDefault();
          const form = event.currentTarget;
          const value = text(new FormData(form), 'new-redirect-uri');
          if (value && !uris.includes(value)) setDraft([...uris, value]);
          form.reset();
        }}
      >
        <Field
          label="Redirect URI to add"
          id="new-redirect-uri"
          type="url"
          autocomplete="off"
          placeholder="https://app.example/callback"
        />
        <button type="submit">Add to the list</button>
      </form>
      <ProblemBox error={error} />
      <p>
        <button type="button" disabled={busy || draft === undefined} onClick={save}>
          Save redirect URIs
        </button>{' '}
        {draft !== undefined && (
          <button type="button" onClick={() => setDraft(undefined)}>
            Discard changes
          </button>
        )}
      </p>
    </section>
  );
}

/** Rotates the secret after a confirmation that says what happens to the old one. */
function RotateSecret({
  tenant,
  client,
  rotated,
}: {
  tenant: string;
  client: Client;
  rotated(secret: string, until?: string): void;
}) {
  const [grace, setGrace] = useState(0);
  return (
    <ConfirmButton
      label="Rotate secret"
      title={`Rotate the secret of ${client.name}?`}
      message={
        <>
          <p>A new secret is made and shown once. Deployments still using the old one must be updated.</p>
          <div class="field">
            <label for="grace-period">The old secret stops working</label>
            <select
              id="grace-period"
              value={String(grace)}
              onChange={(e) => setGrace(Number(e.currentTarget.value))}
            >
              <option value="0">at once</option>
              <option value="3600">in an hour</option>
              <option value="86400">in a day</option>
              <option value="604800">in a week</option>
            </select>
          </div>
        </>
      }
      confirmLabel="Rotate"
      onConfirm={async () => {
        const result = await call(
          api.POST('/api/v1/tenants/{tenant}/clients/{clientId}/secret', {
            params: { path: { tenant, clientId: client.clientId } },
            body: { gracePeriodSeconds: grace },
          }),
        );
        rotated(result.clientSecret, result.previousSecretExpiresAt);
      }}
    />
  );
}
