// `orthid start`: serve OrthID. On the embedded default it creates what it needs on first run
// (data directory, keystore, schema) and opens a control socket for the CLI.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../core/logger.js';
import { composeOrthId, openOrthId } from '../main.js';
import { ADMIN_CREDENTIALS_FILE, bootstrap } from '../ops/bootstrap.js';
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
        const [orthid, { buildServer }, { startControlSocket }] = await Promise.all([
          openOrthId(config, { initKeystore: embedded, log }),
          import('../server/app.js'),
          import('../server/control-socket.js'),
        ]);
        const boot = await bootstrap(orthid, join(config.dataDir, ADMIN_CREDENTIALS_FILE));
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
        const server = await buildServer(orthid);
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

        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            log.info({ signal }, 'shutting down');
            resolve();
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        // Stop accepting, let in-flight requests and scheduled runs finish, then release the database.
        const scheduled = schedules.stop();
        await control?.close();
        await server.close();
        await scheduled;
        await unsubscribe();
        await orthid.close();
      }),
    );
}
