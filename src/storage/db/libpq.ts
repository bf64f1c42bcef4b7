// How a child process of the PostgreSQL client tools (pg_dump, pg_restore, psql) is told where to
// connect: its argv is readable by every local user (`ps`, /proc/<pid>/cmdline), its environment
// only by the same user, so the password goes into the environment.

export interface LibpqConnection {
  /** The connection URL without its password, for `--dbname`. */
  dbname: string;
  /** The parent's environment plus PGPASSWORD (when the URL has one) and PGAPPNAME. */
  env: NodeJS.ProcessEnv;
}

/** Splits `url` into a password-free `--dbname` and the environment that carries the password. */
export function libpqConnection(url: string, applicationName: string): LibpqConnection {
  const parsed = new URL(url);
  // libpq also reads a password from the query string (`?password=`).
  const inQuery = parsed.searchParams.get('password');
  const password = parsed.password !== '' ? decodeURIComponent(parsed.password) : (inQuery ?? undefined);
  parsed.password = '';
  parsed.searchParams.delete('password');
  return {
    dbname: parsed.toString(),
    env: {
      ...process.env,
      PGAPPNAME: applicationName,
      ...(password === undefined ? {} : { PGPASSWORD: password }),
    },
  };
}
