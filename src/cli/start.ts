// `orthid start`: serve OrthID. On the embedded default it creates what it needs on first run
// (data directory, keystore, schema) and opens a control socket for the CLI.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Command } from 'commander';
import { createLogger } from '../core/logger.js';
import { openOrthId } from '../main.js';
import { buildServer } from '../server/app.js';
import { startControlSocket } from '../server/control-socket.js';
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
        const orthid = await openOrthId(config, { initKeystore: embedded, log });
        const server = await buildServer(orthid);
        let control: Server | undefined;
        try {
          await server.listen({ host: config.host, port: config.port });
          if (embedded) control = await startControlSocket(orthid, controlSocketPath(config), log);
        } catch (error) {
          await server.close();
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
            'Next:',
            '  npx orthid tenant create acme          # a tenant with its own issuer',
            `  curl ${config.publicUrl}/readyz`,
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
        // Stop accepting, let in-flight requests finish, then release the database.
        await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
        await server.close();
        await orthid.close();
      }),
    );
}
