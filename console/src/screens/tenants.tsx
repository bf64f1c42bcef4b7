// Choosing the tenant to manage. A system-tenant administrator manages any tenant by its slug;
// the list of tenants comes from the API when it offers one.
import { useState } from 'preact/hooks';
import { navigate } from '../router';
import { to } from '../ui';

export function TenantsScreen({ tenant }: { tenant: string }) {
  const [slug, setSlug] = useState(tenant);
  return (
    <>
      <h1>Tenants</h1>
      <p>
        You are managing <strong>{tenant}</strong>. Administrators of the system tenant may manage any tenant.
      </p>
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
    </>
  );
}
