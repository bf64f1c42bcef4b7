// Parses the RFC 7512 PKCS#11 URI that names OrthID's root-key token and object. It lives in
// config (not crypto) because the config loader validates it, and config imports only core.

/** What a `pkcs11:` URI says about where the root keys live. Never holds a PIN. */
export interface Pkcs11Uri {
  /** The URI re-rendered from the parsed attributes (canonical order, percent-encoded). */
  uri: string;
  /** Token label; the slot is found by it at every connect, since slot ids change after init. */
  token: string;
  /** Label of the deployment root key; other root keys are labelled `<object>/<scope>/<stamp>`. */
  object: string;
  /** Shared library of the PKCS#11 module (the `module-path` query attribute). */
  modulePath: string;
  /** Optional extra filters on the token, for modules exposing several tokens with one label. */
  serial?: string;
  manufacturer?: string;
  model?: string;
}

const PATH_ATTRIBUTES = ['token', 'object', 'type', 'serial', 'manufacturer', 'model'] as const;
const QUERY_ATTRIBUTES = ['module-path'] as const;

/** Characters RFC 7512 lets a path attribute value carry unescaped (besides unreserved ones). */
const encodeValue = (value: string, query: boolean): string =>
  encodeURIComponent(value).replace(/%(2F|3A|40|5B|5D|21|24|27|28|29|2A|2B|2C)/gi, (m, hex: string) =>
    hex.toUpperCase() === '2F' && !query ? m : decodeURIComponent(m),
  );

/**
 * Parses `pkcs11:token=…;object=…?module-path=…`. Returns the parsed URI, or a list of problems
 * (each a sentence naming the fix). A PIN in the URI (`pin-value`, `pin-source`) is refused:
 * the PIN comes from ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE, so it never sits in a URL
 * that is logged, shown by `ps` or written into a backup manifest.
 *
 * @example
 * parsePkcs11Uri('pkcs11:token=orthid;object=orthid-root?module-path=/usr/lib/softhsm/libsofthsm2.so')
 */
export function parsePkcs11Uri(
  text: string,
): { ok: true; value: Pkcs11Uri } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  if (!/^pkcs11:/i.test(text)) return { ok: false, problems: ['A PKCS#11 URI starts with "pkcs11:".'] };
  const body = text.slice('pkcs11:'.length);
  const queryAt = body.indexOf('?');
  const pathPart = queryAt === -1 ? body : body.slice(0, queryAt);
  const queryPart = queryAt === -1 ? '' : body.slice(queryAt + 1);

  const read = (part: string, separator: string, where: string): Map<string, string> => {
    const attributes = new Map<string, string>();
    for (const item of part.split(separator)) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      const name = (eq === -1 ? item : item.slice(0, eq)).toLowerCase();
      let value: string;
      try {
        value = eq === -1 ? '' : decodeURIComponent(item.slice(eq + 1));
      } catch {
        problems.push(`The PKCS#11 URI ${where} attribute "${name}" has a malformed percent-encoding.`);
        continue;
      }
      if (name === 'pin-value' || name === 'pin-source') {
        problems.push(
          `The PKCS#11 URI must not carry the PIN (${name}); remove it and set ORTHID_PKCS11_PIN or ORTHID_PKCS11_PIN_FILE instead.`,
        );
        continue;
      }
      if (attributes.has(name)) problems.push(`The PKCS#11 URI names "${name}" twice.`);
      attributes.set(name, value);
    }
    return attributes;
  };
  const path = read(pathPart, ';', 'path');
  const query = read(queryPart, '&', 'query');

  for (const name of path.keys()) {
    if (name.startsWith('x-')) continue; // vendor attributes: RFC 7512 lets consumers ignore them
    if (name === 'id') {
      problems.push(
        'The PKCS#11 URI attribute "id" is not used: OrthID finds its root keys by label (object=…).',
      );
    } else if (!(PATH_ATTRIBUTES as readonly string[]).includes(name)) {
      problems.push(
        `The PKCS#11 URI attribute "${name}" is not supported here (use ${PATH_ATTRIBUTES.join(', ')}).`,
      );
    }
  }
  for (const name of query.keys()) {
    if (name.startsWith('x-')) continue;
    if (name === 'module-name') {
      problems.push('Give the PKCS#11 module as module-path=/absolute/path/to/module.so, not module-name.');
    } else if (!(QUERY_ATTRIBUTES as readonly string[]).includes(name)) {
      problems.push(`The PKCS#11 URI query attribute "${name}" is not supported here (use module-path).`);
    }
  }

  const token = path.get('token');
  const object = path.get('object');
  const modulePath = query.get('module-path');
  const type = path.get('type');
  if (!token) problems.push('The PKCS#11 URI needs the token label: token=<label>.');
  if (!object) problems.push('The PKCS#11 URI needs the root key label: object=<label>.');
  if (!modulePath) {
    problems.push(
      'The PKCS#11 URI needs the module library: ?module-path=/usr/lib/softhsm/libsofthsm2.so (or your HSM vendor’s).',
    );
  } else if (!modulePath.startsWith('/')) {
    problems.push('The PKCS#11 URI module-path must be an absolute path.');
  }
  if (type !== undefined && type !== 'secret-key') {
    problems.push('The PKCS#11 URI type must be secret-key (root keys are AES secret keys), or be left out.');
  }
  if (problems.length > 0) return { ok: false, problems };

  const value: Pkcs11Uri = { uri: '', token: token!, object: object!, modulePath: modulePath! };
  for (const name of ['serial', 'manufacturer', 'model'] as const) {
    const v = path.get(name);
    if (v !== undefined) value[name] = v;
  }
  const pathText = (['token', 'manufacturer', 'model', 'serial', 'object'] as const)
    .filter((name) => value[name] !== undefined)
    .map((name) => `${name}=${encodeValue(value[name]!, false)}`)
    .join(';');
  value.uri = `pkcs11:${pathText}?module-path=${encodeValue(value.modulePath, true)}`;
  return { ok: true, value };
}
