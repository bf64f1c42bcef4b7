// The tenant's audit log, newest or oldest first, paged and filtered by the API (actor, action, time), and
// the verification of its hash chain: intact, or the first broken link named.
import { useState } from 'preact/hooks';
import { api, call } from '../api/client';
import { Field, Pager, ProblemBox, Status, Table, text, useLoad, usePaged, useSort, when } from '../ui';

interface Filter {
  actor?: string;
  action?: string;
  from?: string;
  to?: string;
}

/** A datetime-local value as the instant the API takes. */
function instant(value: string | undefined): string | undefined {
  return value ? new Date(value).toISOString() : undefined;
}

function ChainStatus({ tenant }: { tenant: string }) {
  const chain = useLoad(
    () => call(api.GET('/api/v1/tenants/{tenant}/audit/chain', { params: { path: { tenant } } })),
    [tenant],
  );
  return (
    <section aria-label="Audit chain verification" class="chain">
      <h2>Chain verification</h2>
      <ProblemBox error={chain.error} />
      <Status loading={chain.loading} />
      {chain.data &&
        (chain.data.ok ? (
          <p data-field="chain" class="ok">
            Intact: {chain.data.events} events up to #{chain.data.headSeq}, {chain.data.checkpoints} signed
            checkpoints.
          </p>
        ) : (
          <div data-field="chain" class="problem" role="alert">
            <p>
              <strong>Broken</strong>
              {chain.data.broken
                ? ` at event #${chain.data.broken.seq}: ${chain.data.broken.reason}`
                : chain.data.message
                  ? `: ${chain.data.message}`
                  : ''}
            </p>
          </div>
        ))}
      <button type="button" onClick={chain.reload}>
        Verify again
      </button>
    </section>
  );
}

export function AuditScreen({ tenant }: { tenant: string }) {
  const [filter, setFilter] = useState<Filter>({});
  const sort = useSort('-occurred');
  const pager = usePaged(
    (after) =>
      call(
        api.GET('/api/v1/tenants/{tenant}/audit-events', {
          params: {
            path: { tenant },
            query: {
              limit: 50,
              sort: sort.value as 'occurred' | '-occurred',
              ...(after ? { after } : {}),
              ...(filter.actor ? { actor: filter.actor } : {}),
              ...(filter.action ? { action: filter.action } : {}),
              ...(filter.from ? { from: instant(filter.from) } : {}),
              ...(filter.to ? { to: instant(filter.to) } : {}),
            },
          },
        }),
      ),
    [tenant, filter.actor, filter.action, filter.from, filter.to, sort.value],
  );
  return (
    <>
      <h1>Audit log</h1>
      <ChainStatus tenant={tenant} />
      <h2>Events</h2>
      <form
        class="filters"
        aria-label="Filter audit events"
        onSubmit={(event) => {
          event.preventDefault();
          const data = new FormData(event.currentTarget);
          setFilter({
            actor: text(data, 'f-actor'),
            action: text(data, 'f-action'),
            from: text(data, 'f-from'),
            to: text(data, 'f-to'),
          });
        }}
      >
        <Field label="Actor" id="f-actor" autocomplete="off" placeholder="user:<id>@<tenant>" />
        <Field
          label="Action"
          id="f-action"
          autocomplete="off"
          placeholder="user.created or user.*"
          hint="An action, or a prefix ending in .*"
        />
        <Field label="From" id="f-from" type="datetime-local" />
        <Field label="Before" id="f-to" type="datetime-local" />
        <button type="submit">Filter</button>
      </form>
      <ProblemBox error={pager.error} />
      <Status loading={pager.loading} />
      {pager.data && (
        <Table
          caption={sort.value === 'occurred' ? 'Audit events, oldest first' : 'Audit events, newest first'}
          sort={sort}
          head={['#', { label: 'When', field: 'occurred' }, 'Actor', 'Action', 'Target', 'Outcome']}
        >
          {pager.data.items.map((e) => (
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
      {pager.data && pager.data.items.length === 0 && <p>No event matches.</p>}
      <Pager pager={pager} label="Audit events" />
    </>
  );
}
