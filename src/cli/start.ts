// `orthid start`: serve OrthID. On the embedded default it creates what it needs on first run
// (data directory, keystore, schema) and opens a control socket for the CLI.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../core/logger.js';
import { composeOrthId, openOrthId } from '../main.js';
import { ADMIN_CREDENTIALS_FILE, bootstrap } from '../ops/bootstrap.js';
import { auditDeploymentBinding } from '../ops/deployment-binding.js';
import { resumeRotations } from '../ops/key-rotation.js';
import { startSchedules } from '../ops/schedules.js';
import { action, cliConfig, controlSocketPath } from './context.js';

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('Start the identity provider (embedded defaults when ORTHID_DATABASE_URL is unset)')
    .action(
      action(async () => {
        const config = cliConfig();
        const embedded = config.database.kind === 'embedded';
        const log = createLogger(config.logLevel);
        await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
        // The HTTP layer loads while the database opens (PGlite compiles its WebAssembly off
        // the main thread): start-up is the longer of the two, not their sum.
        const [orthid, { buildServer }, { startControlSocket }, { createHttpDrain }] = await Promise.all([
          openOrthId(config, { initKeystore: embedded, log }),
          import('../server/app.js'),
          import('../server/control-socket.js'),
          import('../server/http-drain.js'),
        ]);
        const boot = await bootstrap(orthid, join(config.dataDir, ADMIN_CREDENTIALS_FILE));
        if (await auditDeploymentBinding(orthid)) {
          log.info({ deploymentId: orthid.keystore.deploymentId }, 'audited the deployment binding');
        }
        const unsubscribe = await orthid.oidc.subscribe();
        const schedules = startSchedules(orthid, { compose: composeOrthId });
        await orthid.mailWorker.start();
        if (!orthid.mailTransport) {
          log.warn(
            'No ORTHID_SMTP_URL or ORTHID_MAIL_OUTBOX is set: mail is kept queued (see /metrics) and goes out once one is configured.',
          );
        }
        resumeRotations(orthid).then(
          (resumed) => resumed.length > 0 && log.info({ resumed }, 'finished interrupted key rotations'),
          (err) =>
            log.error(
              { err },
              'could not finish interrupted key rotations; run orthid keystore rotate again',
            ),
        );
        const drain = createHttpDrain();
        const server = await buildServer(orthid, { drain, compose: composeOrthId });
        let control: Awaited<ReturnType<typeof startControlSocket>> | undefined;
        try {
          await server.listen({ host: config.host, port: config.port });
          if (embedded) control = await startControlSocket(orthid, controlSocketPath(config), log);
        } catch (error) {
          await schedules.stop();
          await server.close();
          await unsubscribe();
          await orthid.close();
          throw error;
        }
        const address = server.server.address();
        const port = typeof address === 'object' && address ? address.port : config.port;
        process.stdout.write(
          [
            '',
            `OrthID is running at ${config.publicUrl} (listening on ${config.host}:${port}).`,
            embedded
              ? `Embedded mode: data in ${config.dataDir} (database, objects, keystore). Back up the keystore and master.key there.`
              : 'Using PostgreSQL from ORTHID_DATABASE_URL.',
            orthid.mailTransport
              ? `Mail goes to ${orthid.mailTransport.describe}.`
              : 'Mail is kept queued: set ORTHID_SMTP_URL (or ORTHID_MAIL_OUTBOX) to send it.',
            ...(boot.created
              ? [
                  `Created the system tenant (issuer ${boot.issuer}) and an admin API client.`,
                  `Its secret is in ${boot.credentialsFile} (mode 0600, written once). Get an admin token with:`,
                  `  curl -s -u ${boot.clientId}:CLIENT_SECRET -d grant_type=client_credentials -d scope=orthid:admin \\`,
                  `    -d resource=${config.publicUrl}/api ${boot.issuer}/token`,
                ]
              : []),
            'Next:',
            '  npx orthid tenant create acme                  # a tenant with its own issuer',
            '  echo "$PASSWORD" | npx orthid user create --tenant acme --email you@example.com --password-stdin',
            '  npx orthid client create --tenant acme --name "My app" --grant authorization_code --grant refresh_token \\',
            '      --redirect-uri http://localhost:8080/callback',
            '',
          ].join('\n'),
        );

        const signal = await new Promise<string>((resolve) => {
          const onSignal = (name: string) => {
            // A second signal (Ctrl-C again) ends the wait: connections still open are cut now.
            if (drain.draining) {
              log.warn({ signal: name }, 'shutting down now: cutting open connections');
              drain.hurry();
            } else resolve(name);
          };
          process.on('SIGTERM', () => onSignal('SIGTERM'));
          process.on('SIGINT', () => onSignal('SIGINT'));
        });
        const { drainMs, graceMs } = config.shutdown;
        log.info(
          { signal, drainSeconds: drainMs / 1000, graceSeconds: graceMs / 1000 },
          'shutting down: /readyz answers 503',
        );
        // Order: unready, no new scheduled runs, stop accepting, requests in flight finish (or are
        // cut at the grace period's end), scheduled runs in progress finish, then the database closes.
        let controlClosed: Promise<unknown> | undefined;
        const drained = drain.drain({
          drainMs,
          graceMs,
          close: async () => {
            // The CLI's socket closes with the listener; an operation it runs (a dump) is waited
            // for below, like a scheduled one, and never holds the HTTP listener open.
            controlClosed = control?.close();
            await server.close();
          },
          onClosing: (inFlight) => log.info({ inFlight }, 'stopped accepting connections'),
        });
        const scheduled = schedules.stop();
        const { cut } = await drained;
        if (cut > 0) {
          log.warn({ cut }, `grace period over: cut ${cut} connection(s) still open`);
        } else log.info({ cut }, 'every request in flight finished');
        if (schedules.running().length > 0) {
          log.info({ running: schedules.running() }, 'waiting for scheduled runs in progress');
        }
        await Promise.all([scheduled, controlClosed]);
        await unsubscribe();
        await orthid.close();
      }),
    );
}
