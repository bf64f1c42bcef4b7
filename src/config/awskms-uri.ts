// Parses the `awskms:` key custody URI (a KMS key id, ARN or alias, with optional region and
// endpoint). It lives in config (not crypto) because the config loader validates it.

/** Where the AWS KMS root key lives. Credentials are not part of it: they come from the AWS chain. */
export interface AwsKmsUri {
  /** The URI as given, normalised (it holds no secret). */
  uri: string;
  /** Key id, key ARN, alias name (`alias/…`) or alias ARN of the deployment's root key. */
  keyId: string;
  /** Region of the key; from `?region=`, else from an ARN, else the AWS SDK's own chain. */
  region?: string;
  /** Endpoint override, e.g. a VPC endpoint or a KMS-protocol server in tests. */
  endpoint?: string;
  /**
   * Alias prefix of the per-tenant KMS keys OrthID creates (`alias/<prefix>/<tenant id>`), so
   * that a tenant can be crypto-shredded without touching the deployment's key.
   */
  scopeAliasPrefix: string;
}

const ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/;
const KEY_ID = /^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
const ALIAS = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const PREFIX = /^[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})*$/;

/**
 * Parses `awskms:<key id | key ARN | alias/NAME | alias ARN>[?region=…&endpoint=…&scope-alias-prefix=…]`.
 *
 * @example
 * parseAwsKmsUri('awskms:alias/orthid?region=eu-west-1')
 */
export function parseAwsKmsUri(
  text: string,
): { ok: true; value: AwsKmsUri } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  if (!/^awskms:/i.test(text)) return { ok: false, problems: ['An AWS KMS URI starts with "awskms:".'] };
  const body = text.slice('awskms:'.length);
  const queryAt = body.indexOf('?');
  const keyId = queryAt === -1 ? body : body.slice(0, queryAt);
  const params = new URLSearchParams(queryAt === -1 ? '' : body.slice(queryAt + 1));

  const arn = ARN.exec(keyId);
  if (!arn && !KEY_ID.test(keyId) && !ALIAS.test(keyId)) {
    problems.push(
      'The awskms: URI must name a KMS key: awskms:<key id>, awskms:arn:aws:kms:<region>:<account>:key/<id>, or awskms:alias/<name>.',
    );
  }
  for (const name of params.keys()) {
    if (!['region', 'endpoint', 'scope-alias-prefix'].includes(name)) {
      problems.push(
        `The awskms: URI parameter "${name}" is not supported (use region, endpoint, scope-alias-prefix).`,
      );
    }
  }
  const region = params.get('region') ?? arn?.[1];
  if (region !== undefined && !REGION.test(region)) {
    problems.push('The awskms: URI region must be an AWS region name, e.g. eu-west-1.');
  }
  if (params.get('region') && arn && params.get('region') !== arn[1]) {
    problems.push(
      `The awskms: URI region (${params.get('region')}) differs from the key ARN's region (${arn[1]}).`,
    );
  }
  const endpoint = params.get('endpoint') ?? undefined;
  if (endpoint !== undefined) {
    try {
      const url = new URL(endpoint);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
    } catch {
      problems.push('The awskms: URI endpoint must be an http:// or https:// URL.');
    }
  }
  const scopeAliasPrefix = params.get('scope-alias-prefix') ?? 'orthid';
  if (!PREFIX.test(scopeAliasPrefix) || scopeAliasPrefix.startsWith('aws')) {
    problems.push(
      'The awskms: URI scope-alias-prefix must be letters, digits, "_", "-" and "/" and must not start with "aws".',
    );
  }
  if (problems.length > 0) return { ok: false, problems };

  const query = new URLSearchParams();
  if (region !== undefined) query.set('region', region);
  if (endpoint !== undefined) query.set('endpoint', endpoint);
  if (params.has('scope-alias-prefix')) query.set('scope-alias-prefix', scopeAliasPrefix);
  const queryText = query.toString();
  return {
    ok: true,
    value: {
      uri: `awskms:${keyId}${queryText === '' ? '' : `?${queryText}`}`,
      keyId,
      scopeAliasPrefix,
      ...(region === undefined ? {} : { region }),
      ...(endpoint === undefined ? {} : { endpoint }),
    },
  };
}
