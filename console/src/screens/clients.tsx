// OIDC clients of a tenant: register one (its secret shown once), see its metadata and redirect
// URIs, grant it roles, delete it (confirmed).
import { useState } from 'preact/hooks';
import { api, type Client, call, type NewClient } from '../api/client';
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
  when,
} from '../ui';

function lines(value: string | undefined): string[] {
  return (value ?? '')
    .split(/\s+/)
    .map((v) => v.trim())
    .filter(Boolean);
}

export function ClientsScreen({ tenant }: { tenant: string }) {
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/clients', {
          params: { path: { tenant }, query: { limit: 25, ...(after ? { after } : {}) } },
        }),
      ),
    [tenant],
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
        <Table caption="Clients" head={['Name', 'Client id', 'Type', 'Grant types', 'Status']}>
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
  const client = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/clients/{clientId}', { params: { path } })),
    [clientId],
  );
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
            <dt>Redirect URIs</dt>
            <dd>
              <ul>
                {c.redirectUris.map((u) => (
                  <li key={u}>
                    <code>{u}</code>
                  </li>
                ))}
                {c.redirectUris.length === 0 && <li>none</li>}
              </ul>
            </dd>
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
