// A minimal user agent for driving hosted pages over real HTTP without JavaScript: it keeps
// cookies, follows nothing by itself, and reads forms out of the HTML it is served.

export class CookieBrowser {
  /** By path, then name: cookies of one name on different paths are different cookies, as in a browser. */
  private readonly cookies = new Map<string, { name: string; path: string; value: string }>();

  /** `headers` go with every request (e.g. X-Forwarded-For, as a proxy would add it). */
  constructor(private readonly headers: Record<string, string> = {}) {}

  private store(url: string, response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const pathAttribute = attributes.map((a) => /^\s*path=(.*)$/i.exec(a)?.[1]?.trim()).find(Boolean);
      // RFC 6265 5.1.4: without a Path, the request path up to its last slash.
      const requestPath = new URL(url).pathname;
      const path = pathAttribute ?? (requestPath.slice(0, requestPath.lastIndexOf('/')) || '/');
      const expired = attributes.some(
        (a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a),
      );
      const key = `${path}\n${name}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, path, value });
    }
  }

  /** The cookies held now, as [name, value] pairs on every path (signatures included). */
  cookieValues(): ReadonlyArray<readonly [string, string]> {
    return [...this.cookies.values()].map((c) => [c.name, c.value] as const);
  }

  /** The cookies a browser sends to `url`: those whose path matches, the longest paths first. */
  private cookieHeader(url: string): string {
    const requestPath = new URL(url).pathname;
    const matches = (path: string) =>
      requestPath === path ||
      (requestPath.startsWith(path) && (path.endsWith('/') || requestPath[path.length] === '/'));
    return [...this.cookies.values()]
      .filter((c) => matches(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  async get(url: string): Promise<Response> {
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { ...this.headers, cookie: this.cookieHeader(url) },
    });
    this.store(url, response);
    return response;
  }

  async post(url: string, form: Record<string, string>): Promise<Response> {
    const response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        ...this.headers,
        cookie: this.cookieHeader(url),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(form),
    });
    this.store(url, response);
    return response;
  }

  /** Follows redirects until one points at `stopAt` (not fetched) or a page is served. */
  async follow(
    response: Response,
    base: string,
    stopAt?: string,
  ): Promise<{ response: Response; url: string }> {
    let current = response;
    let url = base;
    while (current.status >= 300 && current.status < 400) {
      url = new URL(current.headers.get('location')!, url).href;
      if (stopAt && url.startsWith(stopAt)) return { response: current, url };
      current = await this.get(url);
    }
    return { response: current, url };
  }
}

/** The hidden inputs and action of the first form in `html`. */
export function readForm(html: string, id?: string): { action: string; fields: Record<string, string> } {
  const formMatch = id
    ? new RegExp(`<form[^>]*id="${id.replace('.', '\\.')}"[^>]*>([\\s\\S]*?)</form>`).exec(html)
    : /<form[^>]*>([\s\S]*?)<\/form>/.exec(html);
  if (!formMatch) throw new Error(`no form in page:\n${html.slice(0, 500)}`);
  const action = /action="([^"]*)"/.exec(formMatch[0])![1]!.replace(/&amp;/g, '&');
  const fields: Record<string, string> = {};
  for (const input of formMatch[1]!.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1];
    if (name) fields[name] = value ?? '';
  }
  return { action, fields };
}
