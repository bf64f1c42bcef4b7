// The tenant's audit log, newest first, paged by the API; the filters narrow the events loaded
// so far by actor, action and time (the API pages by sequence only).
import { useState } from 'preact/hooks';
import { api, call } from '../api/client';
import { Field, Pager, ProblemBox, Status, Table, usePaged, when } from '../ui';

export function AuditScreen({ tenant }: { tenant: string }) {
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/audit-events', {
          params: { path: { tenant }, query: { limit: 50, ...(after ? { after } : {}) } },
        }),
      ),
    [tenant],
  );
  const [filter, setFilter] = useState({ actor: '', action: '', from: '', until: '' });
  const from = filter.from ? new Date(filter.from).getTime() : -Infinity;
  const until = filter.until ? new Date(filter.until).getTime() : Infinity;
  const shown = (pager.data?.items ?? []).filter((e) => {
    const at = new Date(e.occurredAt).getTime();
    return e.actor.includes(filter.actor) && e.action.includes(filter.action) && at >= from && at <= until;
  });
  const set = (key: keyof typeof filter) => (event: Event) =>
    setFilter({ ...filter, [key]: (event.currentTarget as HTMLInputElement).value });
  return (
    <>
      <h1>Audit log</h1>
      <form class="filters" aria-label="Filter audit events" onSubmit={(e) => e.preventDefault()}>
        <Field label="Actor contains" id="f-actor" value={filter.actor} onInput={set('actor')} />
        <Field label="Action contains" id="f-action" value={filter.action} onInput={set('action')} />
        <Field label="From" id="f-from" type="datetime-local" value={filter.from} onInput={set('from')} />
        <Field label="Until" id="f-until" type="datetime-local" value={filter.until} onInput={set('until')} />
      </form>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption="Audit events, newest first"
          head={['#', 'When', 'Actor', 'Action', 'Target', 'Outcome']}
        >
          {shown.map((e) => (
            <tr key={e.id}>
              <td>{e.seq}</td>
              <td>{when(e.occurredAt)}</td>
              <td>
                <code>{e.actor}</code>
              </td>
              <td data-field="action">{e.action}</td>
              <td>
                <code>{e.target ?? '—'}</code>
              </td>
              <td>{e.outcome}</td>
            </tr>
          ))}
        </Table>
      )}
      {pager.data && shown.length === 0 && <p>No event on this page matches.</p>}
      <Pager pager={pager} label="Audit events" />
    </>
  );
}
