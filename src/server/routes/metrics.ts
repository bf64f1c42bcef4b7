// Prometheus metrics at /metrics. The backup gauges are read from the backup destination itself
// (cached for a minute), so silence is an alarm: a dump or drill that stopped happening shows as
// an ageing timestamp whichever process ran it.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { openBackupStores } from '../../backup/destination.js';
import { type BackupSet, listBackupSets } from '../../backup/sets.js';
import type { Config } from '../../config/config.js';
import type { Clock } from '../../core/clock.js';

const CACHE_MS = 60_000;

function seconds(iso: string | undefined): number {
  return iso ? Math.floor(new Date(iso).getTime() / 1000) : 0;
}

/** What the metrics read: where the backup sets are, and the time (for the cache). */
export interface MetricsDeps {
  config: Pick<Config, 'backup'>;
  clock: Clock;
}

export async function registerMetricsRoute(app: FastifyInstance, deps: MetricsDeps): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'orthid_' });
  const { backup } = deps.config;
  const now = () => deps.clock.now().getTime();
  let cached: { at: number; sets: Promise<BackupSet[]> } | undefined;
  const sets = (): Promise<BackupSet[]> => {
    if (!cached || now() - cached.at > CACHE_MS) {
      cached = {
        at: now(),
        sets: openBackupStores(backup.dest, backup.keystoreDest).then((s) =>
          listBackupSets(s.dest, s.keystoreDest),
        ),
      };
      cached.sets.catch(() => {
        cached = undefined;
      });
    }
    return cached.sets;
  };

  new Gauge({
    name: 'orthid_backup_last_success_timestamp_seconds',
    help: 'Start time of the newest complete backup set (0 when there is none).',
    registers: [registry],
    async collect() {
      const newest = (await sets().catch(() => [])).find((s) => s.status === 'complete');
      this.set(seconds(newest?.time));
    },
  });
  new Gauge({
    name: 'orthid_backup_last_drill_success_timestamp_seconds',
    help: 'Finish time of the newest drill that passed every check (0 when there is none).',
    registers: [registry],
    async collect() {
      const drills = (await sets().catch(() => [])).flatMap((s) => (s.drill?.ok ? [s.drill.at] : []));
      this.set(seconds(drills.sort().at(-1)));
    },
  });
  new Gauge({
    name: 'orthid_backup_sets',
    help: 'Backup sets in the destination, by status.',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const all = await sets().catch(() => []);
      this.reset();
      for (const status of ['complete', 'incomplete', 'damaged'] as const) {
        this.set({ status }, all.filter((s) => s.status === status).length);
      }
    },
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
