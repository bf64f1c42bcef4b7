// Invitations of a tenant: inviting an address (optionally into an organisation), the list with
// each invitation's state, newest first, and revoking one that is still open after a confirmation.
import { useState } from 'preact/hooks';
import { api, call, type Invitation } from '../api/client';
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

const STATUS_LABEL: Record<Invitation['status'], string> = {
  pending: 'Pending',
  accepted: 'Accepted',
  expired: 'Expired',
  revoked: 'Revoked',
};

export function InvitationsScreen({ tenant }: { tenant: string }) {
  const sort = useSort('-created');
  const [notice, setNotice] = useState<string>();
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/invitations', {
          params: {
            path: { tenant },
            query: { limit: 25, sort: sort.value as 'created' | '-created', ...(after ? { after } : {}) },
          },
        }),
      ),
    [tenant, sort.value],
  );
  const organisations = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/organisations', {
          params: { path: { tenant }, query: { limit: 200 } },
        }),
      ),
    [tenant],
  );
  return (
    <>
      <h1>Invitations</h1>
      <p>
        An invitation mails a link that works once, for 7 days; accepting it creates a verified account (and
        the membership of the organisation it names). Sign-up need not be on.
      </p>
      <ActionForm
        label="Invite an address"
        submit="Send invitation"
        action={async (data) => {
          setNotice(undefined);
          const organisationId = text(data, 'invite-organisation');
          const email = text(data, 'invite-email') ?? '';
          const created = await call(
            api.POST('/api/v1/tenants/{tenant}/invitations', {
              params: { path: { tenant } },
              body: { email, ...(organisationId ? { organisationId } : {}) },
            }),
          );
          setNotice(`Invitation mailed to ${email}; its link works until ${when(created.expiresAt)}.`);
          pager.reload();
        }}
      >
        <Field label="Email" id="invite-email" type="email" required autocomplete="off" />
        <div class="field">
          <label for="invite-organisation">Organisation</label>
          <select id="invite-organisation" name="invite-organisation">
            <option value="">None</option>
            {organisations.data?.items.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </div>
      </ActionForm>
      {notice && <p role="status">{notice}</p>}
      <ProblemBox error={organisations.error} />
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption="Invitations"
          sort={sort}
          head={[
            'Email',
            'Organisation',
            'Status',
            'Created by',
            { label: 'Created', field: 'created' },
            'Expires',
            'Actions',
          ]}
        >
          {pager.data.items.map((i) => (
            <tr key={i.id} data-invitation={i.id}>
              <td>{i.email}</td>
              <td>
                {i.organisationId ? (
                  <a href={to(tenant, `/organisations/${i.organisationId}`)}>
                    {i.organisationName ?? i.organisationId}
                  </a>
                ) : (
                  '—'
                )}
              </td>
              <td data-field="status">
                {STATUS_LABEL[i.status]}
                {i.endedAt ? ` (${when(i.endedAt)})` : ''}
              </td>
              <td>
                <code>{i.createdBy ?? '—'}</code>
              </td>
              <td>{when(i.createdAt)}</td>
              <td>{when(i.expiresAt)}</td>
              <td>
                {i.status === 'pending' && (
                  <ConfirmButton
                    label="Revoke"
                    title="Revoke this invitation?"
                    message={
                      <p>The link mailed to {i.email} stops working at once. This cannot be undone.</p>
                    }
                    confirmLabel="Revoke invitation"
                    onConfirm={async () => {
                      await call(
                        api.DELETE('/api/v1/tenants/{tenant}/invitations/{invitationId}', {
                          params: { path: { tenant, invitationId: i.id } },
                        }),
                      );
                      pager.reload();
                    }}
                  />
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
      {pager.data && pager.data.items.length === 0 && <p>No invitation yet.</p>}
      <Pager pager={pager} label="Invitations" />
    </>
  );
}
