// The tenant's keys, read-only: the custody of its root keys, root and data key versions, the
// newest rotations with their progress, and the signing keys with their ages.
import { api, call } from '../api/client';
import { ProblemBox, Status, Table, useLoad, when } from '../ui';

/** A duration in seconds as the largest whole unit, e.g. "3 d". */
export function age(seconds: number): string {
  const units: [number, string][] = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
  ];
  for (const [size, unit] of units) if (seconds >= size) return `${Math.floor(seconds / size)} ${unit}`;
  return `${Math.max(0, Math.floor(seconds))} s`;
}

export function KeysScreen({ tenant }: { tenant: string }) {
  const keys = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/keys', { params: { path: { tenant } } })),
    [tenant],
  );
  const k = keys.data;
  return (
    <>
      <h1>Keys</h1>
      <ProblemBox error={keys.error} />
      <Status loading={keys.loading} />
      {k && (
        <>
          {k.shredded && (
            <p class="problem" role="alert">
              This tenant is crypto-shredded: its keys are destroyed.
            </p>
          )}
          <h2>Custody</h2>
          <dl class="facts">
            <dt>Custody</dt>
            <dd data-field="custody">
              {k.custody.kind}
              {k.custody.ownCustody ? " (the tenant's own key)" : " (the deployment's)"}
            </dd>
            <dt>Reference</dt>
            <dd>
              <code>{k.custody.reference}</code>
            </dd>
          </dl>
          <Table caption="Root key versions" head={['Id', 'Scope', 'Status', 'Created']}>
            {k.custody.rootKeys.map((r) => (
              <tr key={r.id}>
                <td>
                  <code>{r.id}</code>
                </td>
                <td>{r.scope}</td>
                <td>{r.status}</td>
                <td>{when(r.createdAt)}</td>
              </tr>
            ))}
          </Table>
          <Table caption="Data key versions" head={['Purpose', 'Version', 'Status', 'Wrapped by', 'Custody']}>
            {k.dataKeys.map((d) => (
              <tr key={d.id}>
                <td>{d.purpose}</td>
                <td>{d.version}</td>
                <td>{d.status}</td>
                <td>
                  <code>{d.rootKeyId}</code>
                </td>
                <td>{d.custody}</td>
              </tr>
            ))}
          </Table>
          <h2>Rotations</h2>
          {k.rotations.length === 0 && <p>No rotation yet.</p>}
          {k.rotations.map((r) => (
            <div key={`${r.kind}-${r.targetKeyId}`} class="field">
              <label for={`rotation-${r.kind}`}>
                {r.kind === 'root' ? 'Root key' : 'Data key'} rotation: {r.status}, {r.done} of {r.total}{' '}
                re-wrapped (started {when(r.startedAt)}
                {r.finishedAt ? `, finished ${when(r.finishedAt)}` : ''})
              </label>
              <progress id={`rotation-${r.kind}`} max={Math.max(r.total, 1)} value={r.total ? r.done : 1} />
            </div>
          ))}
          <Table caption="Signing keys" head={['Key id', 'Algorithm', 'Status', 'Age', 'Retires after']}>
            {k.signingKeys.map((s) => (
              <tr key={s.kid}>
                <td>
                  <code>{s.kid}</code>
                </td>
                <td>{s.alg}</td>
                <td>{s.status}</td>
                <td data-field="signing-age">{age(s.ageSeconds)}</td>
                <td>{when(s.retireAfter)}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </>
  );
}
