// Tenants: the list and creating one (system administrators), a tenant's settings, the custody
// of its root keys and crypto-shredding it with the slug typed to confirm; and switching the
// tenant the console manages, which a tenant's own administrators use too.
import { useState } from 'preact/hooks';
import { ApiProblem, api, type Body, call, type Ok } from '../api/client';
import { navigate } from '../router';
import {
  ActionForm,
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

const ONE = '/api/v1/tenants/{tenant}';
type Settings = Ok<`${typeof ONE}/settings`, 'get'>;
type SettingsChange = Body<`${typeof ONE}/settings`, 'patch'>;

function Switcher({ tenant }: { tenant: string }) {
  const [slug, setSlug] = useState(tenant);
  return (
    <form
      class="action-form"
      aria-label="Switch tenant"
      onSubmit={(event) => {
        event.preventDefault();
        if (slug.trim()) navigate(to(slug.trim(), '/users'));
      }}
    >
      <div class="field">
        <label for="tenant-slug">Tenant slug</label>
        <input id="tenant-slug" value={slug} onInput={(e) => setSlug(e.currentTarget.value)} required />
      </div>
      <button type="submit">Manage this tenant</button>
    </form>
  );
}

export function TenantsScreen({ tenant }: { tenant: string }) {
  const pager = usePaged(
    (after) =>
      call(api.GET('/api/v1/tenants', { params: { query: { limit: 50, ...(after ? { after } : {}) } } })),
    [],
  );
  // Listing tenants is for system administrators; a tenant's own administrator only switches.
  const refused = pager.error instanceof ApiProblem && pager.error.status === 403;
  return (
    <>
      <h1>Tenants</h1>
      <p>
        You are managing <strong>{tenant}</strong>. Administrators of the system tenant may manage any tenant.
      </p>
      <Switcher tenant={tenant} />
      {!refused && (
        <>
          <h2>Create a tenant</h2>
          <ActionForm
            label="Create a tenant"
            submit="Create tenant"
            action={async (data) => {
              const created = await call(
                api.POST('/api/v1/tenants', {
                  body: {
                    slug: text(data, 'new-slug') ?? '',
                    ...(text(data, 'new-display-name')
                      ? { displayName: text(data, 'new-display-name')! }
                      : {}),
                    ...(text(data, 'new-custody') ? { custody: text(data, 'new-custody')! } : {}),
                  },
                }),
              );
              navigate(to(tenant, `/tenants/${encodeURIComponent(created.slug)}`));
            }}
          >
            <Field
              label="Slug"
              id="new-slug"
              required
              autocomplete="off"
              pattern="[a-z0-9-]{1,63}"
              hint="1-63 lowercase letters, digits and dashes; part of the tenant's issuer URL."
            />
            <Field label="Display name" id="new-display-name" autocomplete="off" />
            <Field
              label="Own key custody (optional)"
              id="new-custody"
              autocomplete="off"
              hint="An awskms: key or pkcs11: object; empty for the deployment's custody."
            />
          </ActionForm>
        </>
      )}
      <ProblemBox error={refused ? undefined : pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <>
          <Table caption="Tenants" head={['Slug', 'Name', 'Status', 'Created', '']}>
            {pager.data.items.map((t) => (
              <tr key={t.id}>
                <td>
                  <a href={to(tenant, `/tenants/${encodeURIComponent(t.slug)}`)}>{t.slug}</a>
                </td>
                <td>{t.displayName}</td>
                <td>{t.status}</td>
                <td>{when(t.createdAt)}</td>
                <td>
                  {t.status !== 'shredded' && (
                    <a href={to(t.slug, '/users')} aria-label={`Manage ${t.slug}`}>
                      Manage
                    </a>
                  )}
                </td>
              </tr>
            ))}
          </Table>
          <Pager pager={pager} label="Tenants" />
        </>
      )}
    </>
  );
}

const yes = (v: 'on' | 'off') => v === 'on';

/** The fields of the settings form that differ from `was`: only those are sent. */
function changes(data: FormData, was: Settings): SettingsChange {
  const change: SettingsChange = {};
  const nullable = (name: string) => text(data, name) ?? null;
  const displayName = text(data, 's-display-name');
  if (displayName && displayName !== was.displayName) change.displayName = displayName;
  const locale = text(data, 's-locale') as SettingsChange['defaultLocale'];
  if (locale && locale !== was.defaultLocale) change.defaultLocale = locale;
  if ((nullable('s-colour') ?? '') !== was.brandColour) change.brandColour = nullable('s-colour');
  if ((nullable('s-support') ?? '') !== was.supportContact) change.supportContact = nullable('s-support');
  if ((nullable('s-mail-from') ?? '') !== was.mailFrom) change.mailFrom = nullable('s-mail-from');
  const domains = (text(data, 's-domains') ?? '').split(/[\s,]+/).filter(Boolean);
  if (domains.join(',') !== was.signUpDomains.join(',')) change.signUpDomains = domains;
  const flags = [
    ['s-sign-up', 'signUp', was.signUp],
    ['s-self-delete', 'selfDelete', was.selfDelete],
    ['s-id-token-claims', 'idTokenClaims', was.idTokenClaims],
  ] as const;
  for (const [name, key, before] of flags) {
    const on = data.get(name) === 'on';
    if (on !== yes(before)) change[key] = on;
  }
  const mfa = text(data, 's-mfa') as Settings['mfa']['mode'] | undefined;
  if (mfa && mfa !== was.mfa.mode) change.mfa = { ...was.mfa, mode: mfa };
  return change;
}

function SettingsForm({
  slug,
  settings,
  saved,
}: {
  slug: string;
  settings: Settings;
  saved(s: Settings): void;
}) {
  const s = settings;
  return (
    <ActionForm
      label="Tenant settings"
      submit="Save settings"
      action={async (data) => {
        saved(
          await call(
            api.PATCH('/api/v1/tenants/{tenant}/settings', {
              params: { path: { tenant: slug } },
              body: changes(data, s),
            }),
          ),
        );
      }}
    >
      <Field label="Display name" id="s-display-name" defaultValue={s.displayName} autocomplete="off" />
      <div class="field">
        <label for="s-locale">Default language</label>
        <select id="s-locale" name="s-locale" defaultValue={s.defaultLocale}>
          <option value="en">English</option>
          <option value="de">Deutsch</option>
          <option value="fr">Français</option>
        </select>
      </div>
      <Field
        label="Brand colour"
        id="s-colour"
        defaultValue={s.brandColour}
        placeholder="#1f5fbf"
        hint="#rgb or #rrggbb with 4.5:1 contrast against white; empty for OrthID's own."
      />
      <Field
        label="Support contact"
        id="s-support"
        defaultValue={s.supportContact}
        hint="An e-mail address or https URL."
      />
      <Field
        label="Mail sender"
        id="s-mail-from"
        defaultValue={s.mailFrom}
        hint="Empty sends as the deployment's sender."
      />
      <Field
        label="Sign-up domains"
        id="s-domains"
        defaultValue={s.signUpDomains.join(', ')}
        hint="Comma-separated; empty opens sign-up to any address."
      />
      <div class="field">
        <label for="s-mfa">Multi-factor authentication</label>
        <select id="s-mfa" name="s-mfa" defaultValue={s.mfa.mode}>
          <option value="off">Off</option>
          <option value="optional">Optional</option>
          <option value="required">Required</option>
        </select>
      </div>
      <div class="field check">
        <input type="checkbox" id="s-sign-up" name="s-sign-up" defaultChecked={yes(s.signUp)} />
        <label for="s-sign-up">Self sign-up</label>
      </div>
      <div class="field check">
        <input type="checkbox" id="s-self-delete" name="s-self-delete" defaultChecked={yes(s.selfDelete)} />
        <label for="s-self-delete">Users may delete their account</label>
      </div>
      <div class="field check">
        <input
          type="checkbox"
          id="s-id-token-claims"
          name="s-id-token-claims"
          defaultChecked={yes(s.idTokenClaims)}
        />
        <label for="s-id-token-claims">Claims in ID tokens</label>
      </div>
    </ActionForm>
  );
}

function Shred({ slug, done }: { slug: string; done(): void }) {
  const [typed, setTyped] = useState('');
  return (
    <ActionForm
      label="Shred the tenant"
      submit="Shred this tenant for good"
      danger
      disabled={typed !== slug}
      action={async () => {
        await call(
          api.POST('/api/v1/tenants/{tenant}/shred', {
            params: { path: { tenant: slug } },
            body: { confirm: typed },
          }),
        );
        setTyped('');
        done();
      }}
    >
      <p>
        Destroys the tenant's keys, in every backup too: its sealed data can never be read again. Type{' '}
        <code>{slug}</code> to confirm.
      </p>
      <div class="field">
        <label for="shred-confirm">Tenant slug, to confirm</label>
        <input
          id="shred-confirm"
          value={typed}
          autocomplete="off"
          onInput={(e) => setTyped(e.currentTarget.value)}
          required
        />
      </div>
    </ActionForm>
  );
}

export function TenantScreen({ tenant, slug }: { tenant: string; slug: string }) {
  const path = { tenant: slug };
  const info = useLoad(() => call(api.GET('/api/v1/tenants/{tenant}', { params: { path } })), [slug]);
  const settings = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/settings', { params: { path } })),
    [slug],
  );
  const custody = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/custody', { params: { path } })),
    [slug],
  );
  const [saved, setSaved] = useState<Settings>();
  const shown = saved ?? settings.data;
  return (
    <>
      <p>
        <a href={to(tenant, '/tenants')}>← Tenants</a>
      </p>
      <h1>{info.data?.displayName ?? slug}</h1>
      <ProblemBox error={info.error} />
      {info.data && (
        <dl class="facts">
          <dt>Slug</dt>
          <dd>
            <code>{info.data.slug}</code>
          </dd>
          <dt>Status</dt>
          <dd data-field="tenant-status">{info.data.status}</dd>
          <dt>Issuer</dt>
          <dd>
            <code>{info.data.issuer}</code>
          </dd>
          <dt>Created</dt>
          <dd>{when(info.data.createdAt)}</dd>
        </dl>
      )}
      {info.data && info.data.status !== 'shredded' && (
        <p>
          <a href={to(slug, '/users')}>Manage {slug}'s users, roles and clients</a>
        </p>
      )}
      <h2>Settings</h2>
      <ProblemBox error={settings.error} />
      <Status loading={settings.loading} />
      {shown && <SettingsForm key={JSON.stringify(shown)} slug={slug} settings={shown} saved={setSaved} />}
      {saved && <p aria-live="polite">Settings saved.</p>}
      <h2>Key custody</h2>
      <ProblemBox error={custody.error} />
      {custody.data && (
        <>
          <dl class="facts">
            <dt>Custody</dt>
            <dd data-field="custody">
              {custody.data.kind}
              {custody.data.ownCustody ? " (the tenant's own key)" : " (the deployment's)"}
            </dd>
            <dt>Reference</dt>
            <dd>
              <code>{custody.data.reference}</code>
            </dd>
          </dl>
          <Table caption="Root key versions" head={['Id', 'Scope', 'Status', 'Created']}>
            {custody.data.rootKeys.map((k) => (
              <tr key={k.id}>
                <td>
                  <code>{k.id}</code>
                </td>
                <td>{k.scope}</td>
                <td>{k.status}</td>
                <td>{when(k.createdAt)}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
      {info.data && info.data.status !== 'shredded' && slug !== 'system' && (
        <>
          <h2>Crypto-shred</h2>
          <Shred
            slug={slug}
            done={() => {
              info.reload();
              custody.reload();
            }}
          />
        </>
      )}
    </>
  );
}
