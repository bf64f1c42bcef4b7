// Admin API: backup sets with their status, size, age, verify and drill outcome and the freshness
// warnings of `orthid backup list`; verify and drill runs started as jobs whose progress is read
// back from the database by any replica (src/ops/backup-jobs.ts). The system tenant's administrators only.
import { Type } from '@sinclair/typebox';
import type { BackupJobs } from '../../../ops/backup-jobs.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { type AdminApi, requireSystemAdmin } from './context.js';
import { PageQuery, PROBLEMS, Text, Timestamp, Uuid } from './schemas.js';

const tags = ['backups'];
const SetStatus = Type.Union([Type.Literal('complete'), Type.Literal('incomplete'), Type.Literal('damaged')]);
const SetReport = Type.Union([Type.Object({ ok: Type.Boolean(), at: Type.String() }), Type.Null()], {
  description: 'The outcome recorded beside the set; null when never run.',
});

const BackupSet = Type.Object({
  id: Type.String(),
  path: Type.String(),
  time: Type.String({ description: 'When the dump started.' }),
  ageSeconds: Type.Integer(),
  status: SetStatus,
  problem: Type.Optional(Type.String({ description: 'Why a set is not complete.' })),
  size: Type.Number({ description: 'Bytes of the parts present.' }),
  encrypted: Type.Union([Type.Boolean(), Type.Null()]),
  database: Type.Union([Type.String(), Type.Null()]),
  source: Type.Unknown({ description: 'What the dump read (primary or standby), when the manifest says.' }),
  verified: SetReport,
  drill: SetReport,
});

const SetsPage = Type.Object({
  dest: Type.String({ description: 'Where the sets are, described without credentials.' }),
  items: Type.Array(BackupSet),
  next: Type.Union([Type.String(), Type.Null()]),
  warnings: Type.Array(Type.String(), {
    description:
      'The freshness warnings of `orthid backup list`, at the same thresholds (ORTHID_BACKUP_MAX_AGE_HOURS, ORTHID_BACKUP_MAX_DRILL_AGE_DAYS).',
  }),
  temporaryFiles: Type.Object({ count: Type.Integer(), bytes: Type.Number() }),
});

const SetsQuery = Type.Object({
  ...PageQuery(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9._:-]+$' })).properties,
  status: Type.Optional(SetStatus),
});

const Job = Type.Object({
  id: Uuid,
  kind: Type.Union([Type.Literal('verify'), Type.Literal('drill')]),
  set: Type.String(),
  status: Type.Union(
    [Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('interrupted')],
    {
      description:
        'interrupted: the server running the job stopped (or lost the database) before it finished; error.code is backup.job_interrupted.',
    },
  ),
  startedBy: Type.String(),
  startedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  steps: Type.Array(
    Type.Object({
      step: Type.Integer(),
      title: Type.String(),
      detail: Type.Optional(Type.String()),
      at: Timestamp,
    }),
    { description: 'Progress: the steps announced so far.' },
  ),
  result: Type.Union([
    Type.Object({
      ok: Type.Boolean(),
      report: Type.Unknown({ description: 'The verify report (parts and checks) or the drill report.' }),
    }),
    Type.Null(),
  ]),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
});

const JobInput = Type.Object(
  {
    kind: Type.Union([Type.Literal('verify'), Type.Literal('drill')]),
    set: Type.Optional(
      Text({
        minLength: 1,
        maxLength: 200,
        pattern: '^[A-Za-z0-9._:-]+$',
        default: 'latest',
        description: 'A set id, or latest.',
      }),
    ),
  },
  { additionalProperties: false },
);

export function registerBackupRoutes(api: AdminApi, jobs: BackupJobs): void {
  api.get(
    '/backups',
    {
      schema: {
        tags,
        summary: 'Backup sets, newest first, with the freshness warnings of `orthid backup list`',
        querystring: SetsQuery,
        response: { 200: SetsPage, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Listing backup sets');
      const { limit, after, status } = request.query;
      return jobs.listSets({ limit, ...(after ? { after } : {}), ...(status ? { status } : {}) });
    },
  );

  api.post(
    '/backups/jobs',
    {
      schema: {
        tags,
        summary: 'Start a verify or a restore drill of a set; answers 202 with the job to follow',
        body: JobInput,
        response: { 202: Job, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      requireSystemAdmin(request, 'Verifying or drilling a backup');
      const { actor, principal } = adminContextOf(request);
      const job = await jobs.start(
        request.body.kind,
        request.body.set ?? 'latest',
        `${actor}@${principal.issuer.slug}`,
      );
      return reply.code(202).header('location', `/api/v1/backups/jobs/${job.id}`).send(job);
    },
  );

  api.get(
    '/backups/jobs',
    {
      schema: {
        tags,
        summary: 'The verify and drill jobs of the deployment (every replica), newest first',
        response: { 200: Type.Object({ items: Type.Array(Job) }), ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Reading backup jobs');
      return { items: await jobs.list() };
    },
  );

  api.get(
    '/backups/jobs/:jobId',
    {
      schema: {
        tags,
        summary: "A verify or drill job's progress and, once finished, its report",
        params: Type.Object({ jobId: Uuid }),
        response: { 200: Job, ...PROBLEMS },
      },
    },
    async (request) => {
      requireSystemAdmin(request, 'Reading a backup job');
      return jobs.get(request.params.jobId);
    },
  );
}
