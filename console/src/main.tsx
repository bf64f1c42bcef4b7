// The console's entry: finishes a sign-in at /console/callback, asks to sign in without a token,
// and otherwise renders the screen the path names for the tenant it names.
import { render } from 'preact';
import { useState } from 'preact/hooks';
import {
  completeSignIn,
  currentSession,
  expiredIssuer,
  here,
  lastIssuer,
  type Session,
  SYSTEM_TENANT,
  signIn,
  signOut,
} from './auth';
import { interceptLinks, match, useLocation } from './router';
import { SCREENS } from './screens';
import { ProblemBox, ROOT, to } from './ui';

function SignInScreen({ error }: { error?: unknown }) {
  const [issuer, setIssuer] = useState(lastIssuer());
  return (
    <main class="sign-in">
      <h1>OrthID console</h1>
      <ProblemBox error={error} />
      <form
        onSubmit={(event) => {
          event.preventDefault();
          const back = location.pathname.startsWith(`${ROOT}/t/`) ? here() : `${ROOT}/`;
          void signIn(issuer.trim() || SYSTEM_TENANT, back);
        }}
      >
        <div class="field">
          <label for="issuer">Tenant to sign in at</label>
          <input
            id="issuer"
            value={issuer}
            onInput={(e) => setIssuer(e.currentTarget.value)}
            aria-describedby="issuer-hint"
          />
          <small id="issuer-hint" class="hint">
            Administrators of the system tenant manage every tenant; a tenant's own administrators, theirs.
          </small>
        </div>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function Shell({
  session,
  tenant,
  children,
}: {
  session: Session;
  tenant: string;
  children: preact.ComponentChildren;
}) {
  const url = useLocation();
  const [menu, setMenu] = useState(false);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="bar">
        <span class="brand">OrthID console</span>
        <span class="tenant">
          Tenant: <strong>{tenant}</strong>
        </span>
        <button
          type="button"
          class="menu"
          aria-expanded={menu}
          aria-controls="nav"
          onClick={() => setMenu(!menu)}
        >
          Menu
        </button>
        <button type="button" onClick={() => signOut(session)}>
          Sign out
        </button>
      </header>
      <div class="layout">
        <nav id="nav" aria-label="Screens" class={menu ? 'open' : ''}>
          <ul>
            {SCREENS.filter(
              (s) => s.nav && ((s.path !== '/tenants' && !s.system) || session.issuer === SYSTEM_TENANT),
            ).map((s) => {
              const href = to(tenant, s.path);
              const current = url.pathname === href || url.pathname.startsWith(`${href}/`);
              return (
                <li key={s.path}>
                  <a href={href} aria-current={current ? 'page' : undefined} onClick={() => setMenu(false)}>
                    {s.title}
                  </a>
                </li>
              );
            })}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {children}
        </main>
      </div>
    </>
  );
}

function App() {
  const url = useLocation();
  const session = currentSession();
  if (!session) {
    // The token ran out while the console was open: straight back through the same sign-in.
    const expired = expiredIssuer();
    if (expired) void signIn(expired, here());
    return <SignInScreen />;
  }
  let rest = url.pathname.slice(ROOT.length);
  if (!/^\/t\/[^/]+/.test(rest)) {
    // The console's own address: the signed-in tenant's users.
    history.replaceState(null, '', to(session.issuer, '/users'));
    rest = `/t/${encodeURIComponent(session.issuer)}/users`;
  }
  const scoped = /^\/t\/([^/]+)(\/.*)?$/.exec(rest)!;
  const tenant = decodeURIComponent(scoped[1]!);
  const sub = scoped[2] ?? '/users';
  for (const screen of SCREENS) {
    const params = match(screen.path, sub);
    if (params) {
      document.title = `${screen.title} · ${tenant} · OrthID console`;
      const Component = screen.component;
      return (
        <Shell session={session} tenant={tenant}>
          <Component key={`${tenant}${sub}`} tenant={tenant} {...params} />
        </Shell>
      );
    }
  }
  return (
    <Shell session={session} tenant={tenant}>
      <h1>Not found</h1>
      <p>No screen is at this address.</p>
    </Shell>
  );
}

async function start(): Promise<void> {
  const root = document.getElementById('app')!;
  if (location.pathname === `${ROOT}/callback`) {
    try {
      const back = await completeSignIn(new URLSearchParams(location.search));
      history.replaceState(null, '', back);
    } catch (error) {
      history.replaceState(null, '', `${ROOT}/`);
      render(<SignInScreen error={error} />, root);
      return;
    }
  }
  interceptLinks();
  render(<App />, root);
}

void start();
