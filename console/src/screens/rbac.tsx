// Access control of a tenant: API resources and their permissions, roles and the permissions
// they hold. Every change goes through the admin API (validated and audited there); a role's
// changes name the version they were made against, so a concurrent edit is shown, not overwritten.
import { useState } from 'preact/hooks';
import { ApiProblem, api, call, callVersioned } from '../api/client';
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

export function ResourcesScreen({ tenant }: { tenant: string }) {
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/resources', {
          params: { path: { tenant }, query: { limit: 25, ...(after ? { after } : {}) } },
        }),
      ),
    [tenant],
  );
  return (
    <>
      <h1>API resources</h1>
      <ActionForm
        label="Create an API resource"
        submit="Create resource"
        action={async (data) => {
          const created = await call(
            api.POST('/api/v1/tenants/{tenant}/resources', {
              params: { path: { tenant } },
              body: { name: text(data, 'resource-name') ?? '', indicator: text(data, 'indicator') ?? '' },
            }),
          );
          navigate(to(tenant, `/resources/${created.id}`));
        }}
      >
        <Field label="Name" id="resource-name" required autocomplete="off" />
        <Field
          label="Indicator"
          id="indicator"
          type="url"
          required
          placeholder="https://api.example.com"
          hint="The audience of the resource's tokens (RFC 8707)."
        />
      </ActionForm>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table caption="API resources" head={['Name', 'Indicator', 'Created']}>
          {pager.data.items.map((r) => (
            <tr key={r.id}>
              <td>
                <a href={to(tenant, `/resources/${r.id}`)}>{r.name}</a>
              </td>
              <td>
                <code>{r.indicator}</code>
              </td>
              <td>{when(r.createdAt)}</td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={pager} label="API resources" />
    </>
  );
}

export function ResourceScreen({ tenant, resourceId }: { tenant: string; resourceId: string }) {
  const path = { tenant, resourceId };
  const resource = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/resources/{resourceId}', { params: { path } })),
    [resourceId],
  );
  const permissions = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/resources/{resourceId}/permissions', {
          params: { path, query: { limit: 50, ...(after ? { after } : {}) } },
        }),
      ),
    [resourceId],
  );
  return (
    <>
      <p>
        <a href={to(tenant, '/resources')}>← API resources</a>
      </p>
      <h1>{resource.data?.name ?? 'API resource'}</h1>
      <ProblemBox error={resource.error} />
      {resource.data && (
        <>
          <p>
            Indicator: <code>{resource.data.indicator}</code>
          </p>
          <ConfirmButton
            label="Delete resource"
            title={`Delete ${resource.data.name}?`}
            message={<p>Its permissions are removed from every role.</p>}
            confirmLabel="Delete"
            onConfirm={async () => {
              await call(api.DELETE('/api/v1/tenants/{tenant}/resources/{resourceId}', { params: { path } }));
              navigate(to(tenant, '/resources'));
            }}
          />
        </>
      )}
      <h2>Permissions</h2>
      <ActionForm
        label="Create a permission"
        submit="Create permission"
        action={async (data) => {
          await call(
            api.POST('/api/v1/tenants/{tenant}/resources/{resourceId}/permissions', {
              params: { path },
              body: {
                name: text(data, 'permission-name') ?? '',
                ...(text(data, 'permission-description')
                  ? { description: text(data, 'permission-description')! }
                  : {}),
              },
            }),
          );
          permissions.reload();
        }}
      >
        <Field label="Name" id="permission-name" required placeholder="orders:read" autocomplete="off" />
        <Field label="Description" id="permission-description" autocomplete="off" />
      </ActionForm>
      <ProblemBox error={permissions.error} />
      <Status loading={permissions.loading} />
      {permissions.data && (
        <Table caption="Permissions" head={['Name', 'Description', '']}>
          {permissions.data.items.map((p) => (
            <tr key={p.id}>
              <td>
                <code>{p.name}</code>
              </td>
              <td>{p.description || '—'}</td>
              <td>
                <ConfirmButton
                  label="Delete"
                  title={`Delete the permission ${p.name}?`}
                  message={<p>Every role holding it loses it.</p>}
                  onConfirm={async () => {
                    await call(
                      api.DELETE(
                        '/api/v1/tenants/{tenant}/resources/{resourceId}/permissions/{permissionId}',
                        {
                          params: { path: { ...path, permissionId: p.id } },
                        },
                      ),
                    );
                    permissions.reload();
                  }}
                />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={permissions} label="Permissions" />
    </>
  );
}

export function RolesScreen({ tenant }: { tenant: string }) {
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/roles', {
          params: { path: { tenant }, query: { limit: 25, ...(after ? { after } : {}) } },
        }),
      ),
    [tenant],
  );
  return (
    <>
      <h1>Roles</h1>
      <ActionForm
        label="Create a role"
        submit="Create role"
        action={async (data) => {
          const created = await call(
            api.POST('/api/v1/tenants/{tenant}/roles', {
              params: { path: { tenant } },
              body: {
                name: text(data, 'role-name') ?? '',
                ...(text(data, 'role-description') ? { description: text(data, 'role-description')! } : {}),
              },
            }),
          );
          navigate(to(tenant, `/roles/${created.id}`));
        }}
      >
        <Field label="Name" id="role-name" required autocomplete="off" />
        <Field label="Description" id="role-description" autocomplete="off" />
      </ActionForm>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table caption="Roles" head={['Name', 'Description']}>
          {pager.data.items.map((r) => (
            <tr key={r.id}>
              <td>
                <a href={to(tenant, `/roles/${r.id}`)}>{r.name}</a>
              </td>
              <td>{r.description || '—'}</td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={pager} label="Roles" />
    </>
  );
}

/** Runs a change of a role; when it was changed meanwhile (412) the role is read again, error shown. */
async function guarded<T>(change: Promise<T>, reload: () => void): Promise<T> {
  try {
    return await change;
  } catch (e) {
    if (e instanceof ApiProblem && e.status === 412) reload();
    throw e;
  }
}

function AddPermission({
  tenant,
  roleId,
  etag,
  added,
}: {
  tenant: string;
  roleId: string;
  etag: string;
  added(): void;
}) {
  const resources = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/resources', {
          params: { path: { tenant }, query: { limit: 200 } },
        }),
      ),
    [tenant],
  );
  const [resourceId, setResourceId] = useState<string>();
  const chosen = resourceId ?? resources.data?.items[0]?.id;
  const permissions = useLoad(
    async () =>
      chosen
        ? call(
            api.GET('/api/v1/tenants/{tenant}/resources/{resourceId}/permissions', {
              params: { path: { tenant, resourceId: chosen }, query: { limit: 200 } },
            }),
          )
        : { items: [], next: null },
    [chosen],
  );
  return (
    <ActionForm
      label="Add a permission to the role"
      submit="Add permission"
      action={async (data) => {
        await guarded(
          call(
            api.PUT('/api/v1/tenants/{tenant}/roles/{roleId}/permissions/{permissionId}', {
              params: {
                path: { tenant, roleId, permissionId: String(data.get('add-permission')) },
                header: { 'if-match': etag },
              },
            }),
          ),
          added,
        );
        added();
      }}
    >
      <ProblemBox error={resources.error ?? permissions.error} />
      <div class="field">
        <label for="add-resource">API resource</label>
        <select id="add-resource" value={chosen} onChange={(e) => setResourceId(e.currentTarget.value)}>
          {resources.data?.items.map((r) => (
            <option key={r.id} value={r.id}>
              {r.name}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="add-permission">Permission</label>
        <select id="add-permission" name="add-permission" required>
          {permissions.data?.items.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </div>
    </ActionForm>
  );
}

export function RoleScreen({ tenant, roleId }: { tenant: string; roleId: string }) {
  const path = { tenant, roleId };
  const versioned = useLoad(
    () => callVersioned(api.GET('/api/v1/tenants/{tenant}/roles/{roleId}', { params: { path } })),
    [roleId],
  );
  const role = { ...versioned, data: versioned.data?.data };
  const etag = versioned.data?.etag ?? '';
  const held = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/roles/{roleId}/permissions', {
          params: { path, query: { limit: 200 } },
        }),
      ),
    [roleId],
  );
  return (
    <>
      <p>
        <a href={to(tenant, '/roles')}>← Roles</a>
      </p>
      <h1>{role.data?.name ?? 'Role'}</h1>
      <ProblemBox error={role.error} />
      {role.data && (
        <>
          <p data-field="role-description">{role.data.description || 'No description.'}</p>
          <ActionForm
            label="Change the role"
            submit="Save"
            action={async (data) => {
              const name = text(data, 'edit-name');
              const description = text(data, 'edit-description');
              await guarded(
                call(
                  api.PATCH('/api/v1/tenants/{tenant}/roles/{roleId}', {
                    params: { path, header: { 'if-match': etag } },
                    body: { ...(name ? { name } : {}), ...(description ? { description } : {}) },
                  }),
                ),
                role.reload,
              );
              role.reload();
            }}
          >
            <Field label="New name" id="edit-name" autocomplete="off" />
            <Field label="New description" id="edit-description" autocomplete="off" />
          </ActionForm>
          <ConfirmButton
            label="Delete role"
            title={`Delete ${role.data.name}?`}
            message={<p>Every grant of it, to members and clients, is removed.</p>}
            confirmLabel="Delete"
            onConfirm={async () => {
              await call(api.DELETE('/api/v1/tenants/{tenant}/roles/{roleId}', { params: { path } }));
              navigate(to(tenant, '/roles'));
            }}
          />
        </>
      )}
      <h2>Permissions</h2>
      <ProblemBox error={held.error} />
      {held.data && (
        <Table caption="Permissions of the role" head={['Permission', 'Resource', '']}>
          {held.data.items.map((p) => (
            <tr key={p.id}>
              <td>
                <code>{p.name}</code>
              </td>
              <td>
                <code>{p.resourceIndicator}</code>
              </td>
              <td>
                <ConfirmButton
                  label="Remove"
                  title={`Remove ${p.name} from the role?`}
                  message={<p>Holders of the role lose it at their next token.</p>}
                  onConfirm={async () => {
                    await guarded(
                      call(
                        api.DELETE('/api/v1/tenants/{tenant}/roles/{roleId}/permissions/{permissionId}', {
                          params: { path: { ...path, permissionId: p.id }, header: { 'if-match': etag } },
                        }),
                      ),
                      role.reload,
                    );
                    held.reload();
                    role.reload();
                  }}
                />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <AddPermission
        tenant={tenant}
        roleId={roleId}
        etag={etag}
        added={() => {
          held.reload();
          role.reload();
        }}
      />
    </>
  );
}
