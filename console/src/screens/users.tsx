// Users of a tenant: the list (paged, found by e-mail through the blind index, filtered by status
// and pending verification and sorted by creation on the server), creating one, and a user's detail
// with the decrypted profile and the avatar (fetched with the token, shown as a blob URL).
import { useEffect, useState } from 'preact/hooks';
import { ApiProblem, api, call, type User } from '../api/client';
import { BASE, currentSession } from '../auth';
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

type UserStatus = 'active' | 'disabled';

/** Marks an account that signed up and has not yet proved its address (it cannot sign in). */
export function AwaitingBadge() {
  return <span class="badge">Awaiting verification</span>;
}

export function UsersScreen({ tenant }: { tenant: string }) {
  // The search applies when submitted: the blind index matches a whole address only.
  const [search, setSearch] = useState<{ email?: string; status?: UserStatus; pending?: boolean }>({});
  const sort = useSort('created');
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/users', {
          params: {
            path: { tenant },
            query: {
              limit: 25,
              ...(after ? { after } : {}),
              ...(search.email ? { email: search.email } : {}),
              ...(search.status ? { status: search.status } : {}),
              ...(search.pending ? { verification: 'pending' as const } : {}),
              sort: sort.value as 'created' | '-created',
            },
          },
        }),
      ),
    [tenant, search.email, search.status, search.pending, sort.value],
  );
  return (
    <>
      <h1>Users</h1>
      <form
        class="filters"
        aria-label="Find users"
        onSubmit={(event) => {
          event.preventDefault();
          const data = new FormData(event.currentTarget);
          const status = text(data, 'search-status') as UserStatus | undefined;
          const pending = text(data, 'search-verification') === 'pending';
          setSearch({ email: text(data, 'search-email'), status, pending });
        }}
      >
        <Field
          label="Find by e-mail"
          id="search-email"
          type="email"
          autocomplete="off"
          hint="The whole address: e-mail is stored encrypted and found by its blind index."
        />
        <div class="field">
          <label for="search-status">Status</label>
          <select id="search-status" name="search-status">
            <option value="">Any</option>
            <option value="active">Active</option>
            <option value="disabled">Disabled</option>
          </select>
        </div>
        <div class="field">
          <label for="search-verification">Verification</label>
          <select id="search-verification" name="search-verification">
            <option value="">Any</option>
            <option value="pending">Awaiting verification</option>
          </select>
        </div>
        <button type="submit">Search</button>
      </form>
      <ActionForm
        label="Create a user"
        submit="Create user"
        action={async (data) => {
          const created = await call(
            api.POST('/api/v1/tenants/{tenant}/users', {
              params: { path: { tenant } },
              body: {
                email: text(data, 'email') ?? '',
                ...(text(data, 'name') ? { name: text(data, 'name')! } : {}),
                ...(text(data, 'password') ? { password: String(data.get('password')) } : {}),
              },
            }),
          );
          navigate(to(tenant, `/users/${created.id}`));
        }}
      >
        <Field label="Email" id="email" type="email" required autocomplete="off" />
        <Field label="Name" id="name" autocomplete="off" />
        <Field label="Password (optional)" id="password" type="password" autocomplete="new-password" />
      </ActionForm>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption="Users"
          sort={sort}
          head={['Email', 'Name', 'Status', { label: 'Created', field: 'created' }, 'Last sign-in']}
        >
          {pager.data.items.map((u) => (
            <tr key={u.id}>
              <td>
                <a href={to(tenant, `/users/${u.id}`)}>{u.email}</a>
                {u.awaitingVerification && <AwaitingBadge />}
              </td>
              <td>{u.name ?? '—'}</td>
              <td>{u.status}</td>
              <td>{when(u.createdAt)}</td>
              <td>{when(u.lastSignInAt)}</td>
            </tr>
          ))}
        </Table>
      )}
      {pager.data && pager.data.items.length === 0 && <p>No user matches.</p>}
      <Pager pager={pager} label="Users" />
    </>
  );
}

/** Writes the user's data-export bundle through the API, then offers it as a download. */
function DataExport({ tenant, userId }: { tenant: string; userId: string }) {
  const [error, setError] = useState<unknown>();
  const [file, setFile] = useState<{ href: string; name: string; size: number }>();
  return (
    <div class="actions">
      <button
        type="button"
        onClick={async () => {
          setError(undefined);
          try {
            const made = await call(
              api.POST('/api/v1/tenants/{tenant}/users/{userId}/export', {
                params: { path: { tenant, userId } },
              }),
            );
            const session = currentSession();
            const response = await fetch(`${BASE}${made.download}`, {
              headers: session ? { authorization: `Bearer ${session.accessToken}` } : {},
            });
            if (!response.ok)
              throw new ApiProblem(response.status, `http.${response.status}`, response.statusText);
            setFile({
              href: URL.createObjectURL(await response.blob()),
              name: `${made.id}.bundle`,
              size: made.size,
            });
          } catch (e) {
            setError(e);
          }
        }}
      >
        Export the user's data
      </button>
      {file && (
        <a href={file.href} download={file.name}>
          Download {file.name} ({Math.ceil(file.size / 1024)} KB; holds personal data in clear)
        </a>
      )}
      <ProblemBox error={error} />
    </div>
  );
}

/**
 * The user's avatar: fetched with the token (an <img> cannot send it) and shown from a blob URL,
 * which the console's CSP allows; upload and removal go through the same admin API.
 */
function Avatar({ tenant, userId, name }: { tenant: string; userId: string; name: string }) {
  const path = { tenant, userId };
  const avatar = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/users/{userId}/avatar', { params: { path }, parseAs: 'blob' }),
      ).then(
        (blob) => URL.createObjectURL(blob as Blob),
        (error: unknown) => {
          if (error instanceof ApiProblem && error.code === 'media.not_found') return null;
          throw error;
        },
      ),
    [tenant, userId],
  );
  useEffect(() => () => void (avatar.data && URL.revokeObjectURL(avatar.data)), [avatar.data]);
  const [error, setError] = useState<unknown>();
  return (
    <section aria-label="Avatar" class="actions">
      {avatar.data ? (
        <img class="avatar" src={avatar.data} alt={`Avatar of ${name}`} width={96} height={96} />
      ) : (
        avatar.data === null && <p>No avatar.</p>
      )}
      <ProblemBox error={avatar.error ?? error} />
      <form
        class="action-form"
        aria-label="Upload an avatar"
        onSubmit={async (event) => {
          event.preventDefault();
          const form = event.currentTarget;
          const file = (form.elements.namedItem('avatar-file') as HTMLInputElement).files?.[0];
          setError(undefined);
          if (!file) return;
          try {
            await call(
              api.PUT('/api/v1/tenants/{tenant}/users/{userId}/avatar', {
                params: { path },
                body: file as unknown as string,
                bodySerializer: (body: unknown) => body as BodyInit,
                headers: { 'content-type': file.type || 'application/octet-stream' },
              }),
            );
            form.reset();
            avatar.reload();
          } catch (e) {
            setError(e);
          }
        }}
      >
        <Field
          label="Image (JPEG, PNG, WebP, GIF, AVIF)"
          id="avatar-file"
          type="file"
          accept="image/*"
          required
        />
        <button type="submit">Upload avatar</button>
      </form>
      {avatar.data && (
        <ConfirmButton
          label="Remove avatar"
          title="Remove this avatar?"
          message={<p>The stored image is deleted.</p>}
          confirmLabel="Remove"
          onConfirm={async () => {
            await call(api.DELETE('/api/v1/tenants/{tenant}/users/{userId}/avatar', { params: { path } }));
            avatar.reload();
          }}
        />
      )}
    </section>
  );
}

/** For an account awaiting verification: mail a new link, or delete the account (below). */
function PendingVerification({ tenant, userId }: { tenant: string; userId: string }) {
  const [sent, setSent] = useState<string>();
  const [error, setError] = useState<unknown>();
  return (
    <div class="actions">
      <button
        type="button"
        onClick={async () => {
          setError(undefined);
          setSent(undefined);
          try {
            const result = await call(
              api.POST('/api/v1/tenants/{tenant}/users/{userId}/verification', {
                params: { path: { tenant, userId } },
              }),
            );
            setSent(result.expiresAt);
          } catch (e) {
            setError(e);
          }
        }}
      >
        Resend verification mail
      </button>
      {sent && (
        <p role="status">Sent. The new link and code work until {when(sent)}; earlier ones no longer do.</p>
      )}
      <ProblemBox error={error} />
    </div>
  );
}

export function UserScreen({ tenant, userId }: { tenant: string; userId: string }) {
  const path = { tenant, userId };
  const user = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/users/{userId}', { params: { path } })),
    [tenant, userId],
  );
  const sessions = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/users/{userId}/sessions', {
          params: { path, query: { limit: 50 } },
        }),
      ),
    [tenant, userId],
  );
  const memberships = useLoad(
    () =>
      call(
        api.GET('/api/v1/tenants/{tenant}/users/{userId}/memberships', {
          params: { path, query: { limit: 50 } },
        }),
      ),
    [tenant, userId],
  );
  const [changed, setChanged] = useState<User>();
  const [error, setError] = useState<unknown>();
  const shown = changed ?? user.data;
  const act = async (action: 'disable' | 'enable' | 'unlock') => {
    setError(undefined);
    try {
      setChanged(
        await call(api.POST(`/api/v1/tenants/{tenant}/users/{userId}/${action}`, { params: { path } })),
      );
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <p>
        <a href={to(tenant, '/users')}>← Users</a>
      </p>
      <h1>{shown ? (shown.name ?? shown.email) : 'User'}</h1>
      <ProblemBox error={user.error ?? error} />
      <Status loading={user.loading} />
      {shown && (
        <>
          <dl class="facts">
            <dt>Name</dt>
            <dd data-field="name">{shown.name ?? '—'}</dd>
            <dt>Email</dt>
            <dd data-field="email">
              {shown.email} {shown.emailVerified ? '(verified)' : '(not verified)'}
              {shown.awaitingVerification && <AwaitingBadge />}
            </dd>
            <dt>Phone</dt>
            <dd>{shown.phone ?? '—'}</dd>
            <dt>Status</dt>
            <dd data-field="status">{shown.status}</dd>
            <dt>Locked</dt>
            <dd>{shown.lockedAt ? when(shown.lockedAt) : 'no'}</dd>
            <dt>Last sign-in</dt>
            <dd>{when(shown.lastSignInAt)}</dd>
            <dt>Created</dt>
            <dd>{when(shown.createdAt)}</dd>
            <dt>Id</dt>
            <dd>
              <code>{shown.id}</code>
            </dd>
          </dl>
          {shown.awaitingVerification && (
            <>
              <p>
                This account signed up and has not yet verified its address: it cannot sign in until it does.
                Mail a new link, or delete the account if it is not wanted.
              </p>
              <PendingVerification tenant={tenant} userId={userId} />
            </>
          )}
          <h2>Avatar</h2>
          <Avatar tenant={tenant} userId={userId} name={shown.name ?? shown.email} />
          <h2>Account</h2>
          <div class="actions">
            {shown.status === 'active' ? (
              <ConfirmButton
                label="Disable user"
                title="Disable this user?"
                message={<p>{shown.email} can no longer sign in until enabled again.</p>}
                confirmLabel="Disable"
                onConfirm={() => act('disable')}
              />
            ) : (
              <button type="button" onClick={() => act('enable')}>
                Enable user
              </button>
            )}
            {shown.lockedAt && (
              <button type="button" onClick={() => act('unlock')}>
                Unlock
              </button>
            )}
            <ConfirmButton
              label="Delete user"
              title="Delete this user?"
              message={
                <p>
                  Their personal data, avatar and data exports are deleted; the audit log keeps the id only.
                </p>
              }
              confirmLabel="Delete"
              onConfirm={async () => {
                await call(api.DELETE('/api/v1/tenants/{tenant}/users/{userId}', { params: { path } }));
                navigate(to(tenant, '/users'));
              }}
            />
          </div>
        </>
      )}
      {shown && (
        <>
          <h2>Password</h2>
          <ActionForm
            label="Set the user's password"
            submit="Set password"
            action={async (data) => {
              setChanged(
                await call(
                  api.PUT('/api/v1/tenants/{tenant}/users/{userId}/password', {
                    params: { path },
                    body: { password: String(data.get('new-password') ?? '') },
                  }),
                ),
              );
            }}
          >
            <Field
              label="New password"
              id="new-password"
              type="password"
              required
              autocomplete="new-password"
              hint="Checked against the tenant's password policy; also lifts a sign-in lock."
            />
          </ActionForm>
          <h2>Data export</h2>
          <DataExport tenant={tenant} userId={userId} />
        </>
      )}
      <h2>Sessions</h2>
      <ProblemBox error={sessions.error} />
      {sessions.data && (
        <>
          <Table caption="Active sessions" head={['Signed in', 'Expires', 'Clients', 'Methods', '']}>
            {sessions.data.items.map((s) => (
              <tr key={s.uid}>
                <td>{when(s.signedInAt)}</td>
                <td>{when(s.expiresAt)}</td>
                <td>{s.clientIds.join(', ') || '—'}</td>
                <td>{s.amr.join(', ') || '—'}</td>
                <td>
                  <ConfirmButton
                    label="Revoke"
                    title="Revoke this session?"
                    message={<p>The session and the tokens its sign-ins created stop working.</p>}
                    onConfirm={async () => {
                      await call(
                        api.DELETE('/api/v1/tenants/{tenant}/users/{userId}/sessions/{sessionUid}', {
                          params: { path: { ...path, sessionUid: s.uid } },
                        }),
                      );
                      sessions.reload();
                    }}
                  />
                </td>
              </tr>
            ))}
          </Table>
          {sessions.data.items.length === 0 && <p>No active session.</p>}
          <ConfirmButton
            label="Sign out everywhere"
            title="Sign this user out everywhere?"
            message={<p>Every session, grant, code and token of this user ends now.</p>}
            confirmLabel="Sign out everywhere"
            onConfirm={async () => {
              await call(
                api.DELETE('/api/v1/tenants/{tenant}/users/{userId}/sessions', { params: { path } }),
              );
              sessions.reload();
            }}
          />
        </>
      )}
      <h2>Memberships</h2>
      <ProblemBox error={memberships.error} />
      {memberships.data && (
        <ul>
          {memberships.data.items.map((m) => (
            <li key={m.id}>
              <a href={to(tenant, `/organisations/${m.organisationId}`)}>Organisation {m.organisationId}</a>
            </li>
          ))}
          {memberships.data.items.length === 0 && <li>No organisation.</li>}
        </ul>
      )}
    </>
  );
}
