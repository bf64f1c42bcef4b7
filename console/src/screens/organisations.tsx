// Organisations of a tenant and their memberships: create, rename, delete (confirmed), add a
// member by e-mail from the tenant's users, grant and revoke a membership's roles.
import { ApiProblem, api, call, type Membership } from '../api/client';
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The user with this e-mail address, looked for through the pages of the tenant's users. */
async function userIdByEmail(tenant: string, email: string): Promise<string> {
  let after: string | undefined;
  for (;;) {
    const page = await call(
      api.GET('/api/v1/tenants/{tenant}/users', {
        params: { path: { tenant }, query: { limit: 200, ...(after ? { after } : {}) } },
      }),
    );
    const found = page.items.find((u) => u.email.toLowerCase() === email.toLowerCase());
    if (found) return found.id;
    if (!page.next)
      throw new ApiProblem(404, 'user.not_found', `No user of ${tenant} has the email ${email}.`);
    after = page.next;
  }
}

type OrganisationSort = 'created' | '-created' | 'name' | '-name';

export function OrganisationsScreen({ tenant }: { tenant: string }) {
  const sort = useSort('created');
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/organisations', {
          params: {
            path: { tenant },
            query: { limit: 25, sort: sort.value as OrganisationSort, ...(after ? { after } : {}) },
          },
        }),
      ),
    [tenant, sort.value],
  );
  return (
    <>
      <h1>Organisations</h1>
      <ActionForm
        label="Create an organisation"
        submit="Create organisation"
        action={async (data) => {
          const created = await call(
            api.POST('/api/v1/tenants/{tenant}/organisations', {
              params: { path: { tenant } },
              body: { name: text(data, 'org-name') ?? '' },
            }),
          );
          navigate(to(tenant, `/organisations/${created.id}`));
        }}
      >
        <Field label="Name" id="org-name" required autocomplete="off" />
      </ActionForm>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption="Organisations"
          sort={sort}
          head={[
            { label: 'Name', field: 'name' },
            { label: 'Created', field: 'created' },
          ]}
        >
          {pager.data.items.map((o) => (
            <tr key={o.id}>
              <td>
                <a href={to(tenant, `/organisations/${o.id}`)}>{o.name}</a>
              </td>
              <td>{when(o.createdAt)}</td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={pager} label="Organisations" />
    </>
  );
}

function MembershipRoles({ tenant, membership }: { tenant: string; membership: Membership }) {
  const path = { tenant, membershipId: membership.id };
  const roles = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/memberships/{membershipId}/roles', {
          params: { path, query: { limit: 100 } },
        }),
      ),
    [membership.id],
  );
  const all = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/roles', { params: { path: { tenant }, query: { limit: 200 } } }),
      ),
    [tenant],
  );
  const selectId = `grant-${membership.id}`;
  return (
    <>
      <ProblemBox error={roles.error} />
      <ul class="chips">
        {roles.data?.items.map((r) => (
          <li key={r.id}>
            {r.name}{' '}
            <ConfirmButton
              label={`Revoke ${r.name}`}
              title={`Revoke the role ${r.name}?`}
              message={<p>The member loses its permissions at their next token.</p>}
              confirmLabel="Revoke"
              onConfirm={async () => {
                await call(
                  api.DELETE('/api/v1/tenants/{tenant}/memberships/{membershipId}/roles/{roleId}', {
                    params: { path: { ...path, roleId: r.id } },
                  }),
                );
                roles.reload();
              }}
            />
          </li>
        ))}
      </ul>
      {all.data && (
        <ActionForm
          label={`Grant a role to membership ${membership.id}`}
          submit="Grant role"
          action={async (data) => {
            await call(
              api.PUT('/api/v1/tenants/{tenant}/memberships/{membershipId}/roles/{roleId}', {
                params: { path: { ...path, roleId: String(data.get(selectId)) } },
              }),
            );
            roles.reload();
          }}
        >
          <div class="field">
            <label for={selectId}>Role</label>
            <select id={selectId} name={selectId} required>
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

export function OrganisationScreen({ tenant, organisationId }: { tenant: string; organisationId: string }) {
  const path = { tenant, organisationId };
  const org = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/organisations/{organisationId}', { params: { path } })),
    [organisationId],
  );
  const members = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/organisations/{organisationId}/memberships', {
          params: { path, query: { limit: 25, ...(after ? { after } : {}) } },
        }),
      ),
    [organisationId],
  );
  const users = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/users', { params: { path: { tenant }, query: { limit: 200 } } }),
      ),
    [tenant],
  );
  const emailOf = (id: string) => users.data?.items.find((u) => u.id === id)?.email ?? id;
  return (
    <>
      <p>
        <a href={to(tenant, '/organisations')}>← Organisations</a>
      </p>
      <h1>{org.data?.name ?? 'Organisation'}</h1>
      <ProblemBox error={org.error} />
      <Status loading={org.loading} />
      {org.data && (
        <>
          <ActionForm
            label="Rename the organisation"
            submit="Rename"
            action={async (data) => {
              await call(
                api.PATCH('/api/v1/tenants/{tenant}/organisations/{organisationId}', {
                  params: { path },
                  body: { name: text(data, 'rename') ?? '' },
                }),
              );
              org.reload();
            }}
          >
            <Field label="New name" id="rename" required autocomplete="off" />
          </ActionForm>
          <ConfirmButton
            label="Delete organisation"
            title={`Delete ${org.data.name}?`}
            message={<p>Its memberships and their roles are removed.</p>}
            confirmLabel="Delete"
            onConfirm={async () => {
              await call(
                api.DELETE('/api/v1/tenants/{tenant}/organisations/{organisationId}', { params: { path } }),
              );
              navigate(to(tenant, '/organisations'));
            }}
          />
        </>
      )}
      <h2>Members</h2>
      <ActionForm
        label="Add a member"
        submit="Add member"
        action={async (data) => {
          const given = text(data, 'member') ?? '';
          await call(
            api.POST('/api/v1/tenants/{tenant}/organisations/{organisationId}/memberships', {
              params: { path },
              body: { userId: UUID.test(given) ? given : await userIdByEmail(tenant, given) },
            }),
          );
          members.reload();
        }}
      >
        <Field label="User (email or id)" id="member" list="member-options" required autocomplete="off" />
        <datalist id="member-options">
          {users.data?.items.map((u) => (
            <option key={u.id} value={u.email} />
          ))}
        </datalist>
      </ActionForm>
      <ProblemBox error={members.error} />
      {members.data && (
        <Table caption="Members" head={['User', 'Since', 'Roles', '']}>
          {members.data.items.map((m) => (
            <tr key={m.id}>
              <td>
                <a href={to(tenant, `/users/${m.userId}`)}>{emailOf(m.userId)}</a>
              </td>
              <td>{when(m.createdAt)}</td>
              <td>
                <MembershipRoles tenant={tenant} membership={m} />
              </td>
              <td>
                <ConfirmButton
                  label="Remove"
                  title="Remove this member?"
                  message={<p>{emailOf(m.userId)} leaves the organisation and its roles.</p>}
                  onConfirm={async () => {
                    await call(
                      api.DELETE('/api/v1/tenants/{tenant}/memberships/{membershipId}', {
                        params: { path: { tenant, membershipId: m.id } },
                      }),
                    );
                    members.reload();
                  }}
                />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <Pager pager={members} label="Members" />
    </>
  );
}
