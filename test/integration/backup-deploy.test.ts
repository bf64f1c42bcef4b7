import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

interface Container {
  image: string;
  args?: string[];
  envFrom?: { secretRef: { name: string } }[];
}

interface PodSpec {
  restartPolicy?: string;
  securityContext: { runAsNonRoot?: boolean };
  containers: Container[];
}

interface Manifest {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    schedule?: string;
    concurrencyPolicy?: string;
    jobTemplate?: { spec: { template: { spec: PodSpec } } };
    template?: { spec: PodSpec };
  };
}

function manifests(): Map<string, Manifest> {
  const out = new Map<string, Manifest>();
  for (const file of readdirSync(join(DEPLOY, 'kubernetes')).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      out.set(file, doc.toJS() as Manifest);
    }
  }
  return out;
}

function podOf(manifest: Manifest): PodSpec {
  return manifest.kind === 'CronJob'
    ? manifest.spec.jobTemplate!.spec.template.spec
    : manifest.spec.template!.spec;
}

function containersOf(manifest: Manifest): Container[] {
  return podOf(manifest).containers;
}

describe('the deployment files', () => {
  const all = manifests();

  test('the backup CronJob is the page’s: 02:00, Forbid, Never, `dump --encrypt --upload`, env from orthid-backup-env', () => {
    const cron = all.get('backup-cronjob.yaml')!;
    assert.equal(cron.kind, 'CronJob');
    assert.deepEqual([cron.metadata.name, cron.metadata.namespace], ['orthid-backup', 'orthid']);
    assert.equal(cron.spec.schedule, '0 2 * * *');
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    assert.equal(podOf(cron).restartPolicy, 'Never');
    const [backup] = containersOf(cron);
    assert.deepEqual(backup!.args, ['dump', '--encrypt', '--upload']);
    assert.deepEqual(backup!.envFrom, [{ secretRef: { name: 'orthid-backup-env' } }]);
  });

  test('a monthly drill CronJob runs `backup drill` with a secret of its own', () => {
    const cron = all.get('drill-cronjob.yaml')!;
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    assert.match(cron.spec.schedule ?? '', /^\d+ \d+ 1 \* \*$/);
    assert.deepEqual(containersOf(cron)[0]!.args!.slice(0, 2), ['backup', 'drill']);
    // Not the backup job's secret: that one holds the login that reads every tenant.
    assert.deepEqual(containersOf(cron)[0]!.envFrom, [{ secretRef: { name: 'orthid-drill-env' } }]);
  });

  test('the Deployment gives a SIGTERM more time than its drain and grace periods, and probes readiness and liveness apart', () => {
    const deployment = all.get('deployment.yaml')!;
    const pod = podOf(deployment) as PodSpec & { terminationGracePeriodSeconds?: number };
    const [server] = containersOf(deployment) as (Container & {
      env?: { name: string; value: string }[];
      readinessProbe?: { httpGet: { path: string } };
      livenessProbe?: { httpGet: { path: string } };
    })[];
    const env = new Map((server!.env ?? []).map((e) => [e.name, Number(e.value)]));
    const drain = env.get('ORTHID_SHUTDOWN_DRAIN_SECONDS');
    const grace = env.get('ORTHID_SHUTDOWN_GRACE_SECONDS');
    assert.ok(drain !== undefined && drain > 0, 'a drain delay, so the Service stops sending first');
    assert.ok(grace !== undefined && grace > 0);
    assert.ok((pod.terminationGracePeriodSeconds ?? 30) > drain + grace, 'the kubelet waits out the drain');
    assert.equal(server!.readinessProbe?.httpGet.path, '/readyz');
    assert.equal(server!.livenessProbe?.httpGet.path, '/healthz');
  });

  test('every manifest runs the same image as a non-root user in namespace orthid', () => {
    const images = new Set<string>();
    for (const [file, manifest] of all) {
      assert.equal(manifest.metadata.namespace, 'orthid', file);
      if (manifest.kind === 'Service') continue;
      assert.equal(podOf(manifest).securityContext.runAsNonRoot, true, file);
      for (const c of containersOf(manifest)) images.add(c.image);
    }
    assert.equal(images.size, 1, [...images].join(', '));
    assert.deepEqual([...all.keys()].sort(), [
      'backup-cronjob.yaml',
      'deployment.yaml',
      'drill-cronjob.yaml',
      'service.yaml',
    ]);
  });

  test('the image’s entrypoint is the orthid CLI, started by default, listening beyond loopback, not as root', () => {
    const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM \$\{NODE_IMAGE\}$/m);
    assert.match(dockerfile, /ARG NODE_IMAGE=node:22-bookworm-slim/);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "dist\/cli\/main\.js"\]$/m);
    assert.match(dockerfile, /^CMD \["start"\]$/m);
    assert.match(dockerfile, /ORTHID_HOST=0\.0\.0\.0/);
    assert.match(dockerfile, /^USER 10001:10001$/m);
    assert.match(dockerfile, /postgresql-client-\$\{PG_CLIENT_MAJOR\}/);
    assert.match(dockerfile, /npm ci --omit=dev/);
  });
});
