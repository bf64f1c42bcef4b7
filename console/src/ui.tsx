// The console's few shared pieces: loading data, showing an API error, paging, confirming a
// destructive action, labelled form fields and scrollable tables.
import type { ComponentChildren, InputHTMLAttributes } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiProblem } from './api/client';
import { CONSOLE } from './auth';

export const ROOT = new URL(CONSOLE).pathname;

/** The path of a screen of `tenant`. */
export function to(tenant: string, sub = ''): string {
  return `${ROOT}/t/${encodeURIComponent(tenant)}${sub}`;
}

export function ProblemBox({ error }: { error: unknown }) {
  if (!error) return null;
  const other = error as { code?: unknown; message?: unknown };
  const problem =
    error instanceof ApiProblem
      ? error
      : new ApiProblem(
          0,
          typeof other.code === 'string' ? other.code : 'console.error',
          String(other.message ?? error),
        );
  const fields = (problem.errors as { fields?: { path: string; message: string }[] } | undefined)?.fields;
  return (
    <div class="problem" role="alert">
      <p>
        <strong>{problem.message}</strong>
      </p>
      <p class="code">
        Error code: <code>{problem.code}</code>
        {problem.status ? ` (HTTP ${problem.status})` : ''}
      </p>
      {problem.status === 403 && problem.missingPermission && (
        <p>
          Missing permission: <code>{problem.missingPermission}</code>
        </p>
      )}
      {fields && (
        <ul>
          {fields.map((f) => (
            <li key={f.path}>
              <code>{f.path || '(body)'}</code> {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** Runs `load` whenever `deps` change (and on reload()); the latest call wins. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => current && setState({ data, loading: false }),
      (error: unknown) => current && setState({ error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  return {
    ...state,
    data: state.data,
    error: state.error,
    reload: useCallback(() => setTick((t) => t + 1), []),
  };
}

export interface PageData<T> {
  items: T[];
  next: string | null;
}

/** Cursor paging: the API gives `next`; going back pops the cursors seen so far. */
export function usePaged<T>(load: (after: string | undefined) => Promise<PageData<T>>, deps: unknown[]) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  useEffect(() => setCursors([undefined]), deps);
  const after = cursors[cursors.length - 1];
  const page = useLoad(() => load(after), [...deps, after]);
  return {
    ...page,
    pageNumber: cursors.length,
    hasPrevious: cursors.length > 1,
    previous: () => setCursors((c) => c.slice(0, -1)),
    next: () => page.data?.next && setCursors((c) => [...c, page.data!.next!]),
  };
}

export function Pager({ pager, label }: { pager: ReturnType<typeof usePaged<unknown>>; label: string }) {
  return (
    <nav class="pager" aria-label={`${label} pages`}>
      <button type="button" disabled={!pager.hasPrevious} onClick={pager.previous}>
        Previous
      </button>
      <span aria-live="polite">Page {pager.pageNumber}</span>
      <button type="button" disabled={!pager.data?.next} onClick={pager.next}>
        Next
      </button>
    </nav>
  );
}

/** A column the server can sort by: `field` ascending, `-field` descending. */
export interface SortColumn {
  label: string;
  field: string;
}

/** The list's order as the API's `sort` takes it, and how a header click changes it. */
export interface SortState {
  value: string;
  onChange(next: string): void;
}

/** The order a list is read in, kept while the screen is shown. */
export function useSort(initial: string): SortState {
  const [value, onChange] = useState(initial);
  return { value, onChange };
}

function SortHeader({ column, sort }: { column: SortColumn; sort: SortState }) {
  const direction =
    sort.value === column.field ? 'ascending' : sort.value === `-${column.field}` ? 'descending' : 'none';
  // A first click sorts ascending; a second on the same column reverses the order.
  const next = direction === 'ascending' ? `-${column.field}` : column.field;
  return (
    <th scope="col" aria-sort={direction}>
      <button type="button" class="sort" onClick={() => sort.onChange(next)}>
        {column.label}
        <span aria-hidden="true">
          {direction === 'ascending' ? ' ▲' : direction === 'descending' ? ' ▼' : ' ↕'}
        </span>
      </button>
    </th>
  );
}

/**
 * A table that scrolls sideways on a narrow screen, reachable by keyboard. Columns given as a
 * SortColumn are buttons that ask the server for the list in that order (aria-sort says which).
 */
export function Table({
  caption,
  head,
  sort,
  children,
}: {
  caption: string;
  head: (string | SortColumn)[];
  sort?: SortState;
  children: ComponentChildren;
}) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be focusable to scroll by keyboard
    <section class="table" tabIndex={0} aria-label={caption}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {head.map((h) =>
              typeof h === 'string' || !sort ? (
                <th key={typeof h === 'string' ? h : h.label} scope="col">
                  {typeof h === 'string' ? h : h.label}
                </th>
              ) : (
                <SortHeader key={h.field} column={h} sort={sort} />
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </section>
  );
}

export function Field(
  props: { label: string; id: string; hint?: string } & InputHTMLAttributes<HTMLInputElement>,
) {
  const { label, id, hint, ...input } = props;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} name={id} {...input} aria-describedby={hint ? `${id}-hint` : undefined} />
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

/** A button whose action runs only after the operator confirms in a modal dialog. */
export function ConfirmButton(props: {
  label: string;
  title: string;
  message: ComponentChildren;
  confirmLabel?: string;
  onConfirm(): Promise<unknown> | unknown;
  danger?: boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const id = useRef(`confirm-${Math.random().toString(36).slice(2)}`).current;
  return (
    <>
      <button
        type="button"
        class={props.danger === false ? '' : 'danger'}
        onClick={() => {
          setError(undefined);
          dialog.current?.showModal();
        }}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`}>{props.title}</h2>
        <div>{props.message}</div>
        <ProblemBox error={error} />
        <div class="actions">
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button
            type="button"
            class="danger"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              try {
                await props.onConfirm();
                dialog.current?.close();
              } catch (e) {
                setError(e);
              } finally {
                setBusy(false);
              }
            }}
          >
            {props.confirmLabel ?? props.label}
          </button>
        </div>
      </dialog>
    </>
  );
}

/** A form that submits through `action`, shows its error, and resets on success. */
export function ActionForm(props: {
  label: string;
  submit: string;
  action(data: FormData): Promise<unknown>;
  children: ComponentChildren;
  /** Submitting stays off while true (e.g. until a confirmation is typed). */
  disabled?: boolean;
  danger?: boolean;
}) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="action-form"
      aria-label={props.label}
      onSubmit={async (event) => {
        event.preventDefault();
        const form = event.currentTarget;
        setBusy(true);
        setError(undefined);
        try {
          await props.action(new FormData(form));
          form.reset();
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    >
      {props.children}
      <ProblemBox error={error} />
      <button type="submit" class={props.danger ? 'danger' : undefined} disabled={busy || props.disabled}>
        {props.submit}
      </button>
    </form>
  );
}

export function Status({ loading }: { loading: boolean }) {
  return loading ? (
    <p class="loading" aria-live="polite">
      Loading…
    </p>
  ) : null;
}

export function text(data: FormData, name: string): string | undefined {
  const value = String(data.get(name) ?? '').trim();
  return value === '' ? undefined : value;
}

export function when(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleString() : '—';
}
