// Prometheus metrics at /metrics. The backup gauges are read from the backup destination itself
// (cached for a minute), so silence is an alarm: a dump or drill that stopped happening shows as
// an ageing timestamp whichever process ran it.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { openBackupStores } from '../../backup/destination.js';
import { type BackupSet, listBackupSets } from '../../backup/sets.js';
import type { Config } from '../../config/config.js';
import type { Clock } from '../../core/clock.js';
import type { Mail } from '../../mail/mail.js';

const CACHE_MS = 60_000;

function seconds(iso: string | undefined): number {
  return iso ? Math.floor(new Date(iso).getTime() / 1000) : 0;
}

/** What the metrics read: where the backup sets are, the mail queue, and the time. */
export interface MetricsDeps {
  config: Pick<Config, 'backup'>;
  clock: Clock;
  mail: Pick<Mail, 'counts'>;
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

  // Mail counts are read from the queue itself at each scrape (one query per tenant), so every
  // replica reports the same figures and an outage shows as it happens.
  let mailScrape: ReturnType<Mail['counts']> | undefined;
  const mailCounts = () => {
    mailScrape ??= deps.mail.counts().finally(() => {
      mailScrape = undefined;
    });
    return mailScrape;
  };
  new Gauge({
    name: 'orthid_mail_messages',
    help: 'Mail in the queue by state: queued (not tried yet), retrying (a delivery failed; tried again later), sent, failed (gave up).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await mailCounts().catch(() => undefined);
      this.reset();
      if (!counts) return;
      for (const state of ['queued', 'retrying', 'sent', 'failed'] as const)
        this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: 'orthid_mail_oldest_queued_age_seconds',
    help: 'Age of the oldest mail not yet delivered (0 when none is waiting).',
    registers: [registry],
    async collect() {
      const oldest = (await mailCounts().catch(() => undefined))?.oldest_queued_at;
      this.set(oldest ? Math.max(0, Math.floor((deps.clock.now().getTime() - oldest.getTime()) / 1000)) : 0);
    },
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
