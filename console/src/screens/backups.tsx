// The deployment's backup sets with status, size, age and their verify and drill outcomes, the
// freshness warnings `orthid backup list` gives; and starting a verify or a drill, followed to
// its end through the job the API answers with.
import { useEffect, useState } from 'preact/hooks';
import { api, call, type Ok } from '../api/client';
import { Pager, ProblemBox, Status, Table, usePaged, when } from '../ui';
import { age } from './keys';

type Job = Ok<'/api/v1/backups/jobs/{jobId}', 'get'>;
type BackupList = Ok<'/api/v1/backups', 'get'>;
type Outcome = { at: string; ok: boolean } | null;

/** A check as both reports carry it: a drill's checks, a verify's per part. */
interface ReportCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** The checks of a finished job's report, one line each: what an operator reads to trust the set. */
function reportChecks(report: unknown): { name: string; ok: boolean; detail?: string }[] {
  const r = report as {
    checks?: ReportCheck[];
    parts?: { part: string; ok: boolean; checks: ReportCheck[] }[];
  };
  if (Array.isArray(r?.checks)) return r.checks;
  return (r?.parts ?? []).flatMap((p) => p.checks.map((c) => ({ ...c, name: `${p.part}: ${c.name}` })));
}

/** How often a running job is asked for its progress. */
const POLL_MS = 1000;

function size(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.ceil(bytes / 1024)} KB`;
}

function outcome(o: Outcome): string {
  return o ? `${o.ok ? 'passed' : 'FAILED'} ${when(o.at)}` : 'never';
}

/** A job's progress, asked for again until it has finished. */
function JobProgress({ jobId, finished }: { jobId: string; finished(): void }) {
  const [job, setJob] = useState<Job>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let current = true;
    const poll = async () => {
      try {
        const got = await call(api.GET('/api/v1/backups/jobs/{jobId}', { params: { path: { jobId } } }));
        if (!current) return;
        setJob(got);
        if (got.status === 'running') timer = setTimeout(poll, POLL_MS);
        else finished();
      } catch (e) {
        if (current) setError(e);
      }
    };
    void poll();
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [jobId]);
  return (
    <section aria-label="Backup job" aria-live="polite">
      <ProblemBox
        error={error ?? (job?.error ? { code: job.error.code, message: job.error.message } : undefined)}
      />
      {job && (
        <>
          <p data-field="job-status">
            {job.kind === 'verify' ? 'Verify' : 'Drill'} of <code>{job.set}</code>:{' '}
            <strong>{job.status}</strong>
            {job.result ? (job.result.ok ? ' (passed)' : ' (FAILED)') : ''}
          </p>
          <ol data-field="job-steps">
            {job.steps.map((s) => (
              <li key={s.step}>
                {s.title}
                {s.detail ? `: ${s.detail}` : ''}
              </li>
            ))}
          </ol>
          {job.result && (
            <ul aria-label="Checks" data-field="job-checks">
              {reportChecks(job.result.report).map((c) => (
                <li key={c.name} data-ok={c.ok}>
                  <strong>{c.ok ? 'passed' : 'FAILED'}</strong> {c.name}
                  {c.detail ? `: ${c.detail}` : ''}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

export function BackupsScreen() {
  const pager = usePaged(
    (after) =>
      call(api.GET('/api/v1/backups', { params: { query: { limit: 50, ...(after ? { after } : {}) } } })),
    [],
  );
  const [jobId, setJobId] = useState<string>();
  const [error, setError] = useState<unknown>();
  const start = async (kind: 'verify' | 'drill', set: string) => {
    setError(undefined);
    try {
      const job = await call(api.POST('/api/v1/backups/jobs', { body: { kind, set } }));
      setJobId(job.id);
    } catch (e) {
      setError(e);
    }
  };
  // The page carries the listing's warnings and destination beside its items.
  const data = pager.data as BackupList | undefined;
  return (
    <>
      <h1>Backups</h1>
      <ProblemBox error={pager.error ?? error} />
      <Status loading={pager.loading} />
      {data && (
        <>
          <p>
            Sets in <code>{data.dest}</code>
            {data.temporaryFiles.count > 0 &&
              `; ${data.temporaryFiles.count} temporary files (${size(data.temporaryFiles.bytes)}) left by interrupted runs`}
            .
          </p>
          {data.warnings.length > 0 && (
            <div class="problem" role="alert" data-field="backup-warnings">
              {data.warnings.map((w) => (
                <p key={w}>{w}</p>
              ))}
            </div>
          )}
        </>
      )}
      {jobId && <JobProgress key={jobId} jobId={jobId} finished={pager.reload} />}
      {data && (
        <Table
          caption="Backup sets, newest first"
          head={['Set', 'Status', 'Size', 'Age', 'Verified', 'Drill', '']}
        >
          {data.items.map((b) => (
            <tr key={b.id}>
              <td>
                <code>{b.id}</code>
                {b.encrypted === false ? ' (not encrypted)' : ''}
              </td>
              <td>
                {b.status}
                {b.problem ? `: ${b.problem}` : ''}
              </td>
              <td>{size(b.size)}</td>
              <td>{age(b.ageSeconds)}</td>
              <td>{outcome(b.verified)}</td>
              <td>{outcome(b.drill)}</td>
              <td>
                <div class="actions">
                  <button type="button" aria-label={`Verify ${b.id}`} onClick={() => start('verify', b.id)}>
                    Verify
                  </button>
                  <button type="button" aria-label={`Drill ${b.id}`} onClick={() => start('drill', b.id)}>
                    Drill
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {data && data.items.length === 0 && <p>No backup set yet (orthid backup create makes one).</p>}
      <Pager pager={pager} label="Backup sets" />
    </>
  );
}
