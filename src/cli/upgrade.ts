// `orthid upgrade`: take a backup before every upgrade, as the page says, then migrate. A complete
// set newer than --max-backup-age counts as that backup; otherwise one is taken now, encrypted.
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { type UpgradeReport, upgradeDeployment } from '../ops/schema-upgrade.js';
import { dump } from './backup.js';
import { action, cliConfig, print } from './context.js';

export function registerUpgradeCommand(program: Command): void {
  program
    .command('upgrade')
    .description('Back up (unless a recent complete set exists), then apply pending migrations')
    .option(
      '--max-backup-age <hours>',
      'a complete set at most this old counts as the pre-upgrade backup',
      '24',
    )
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { maxBackupAge: string; json?: boolean }) => {
        const config = cliConfig();
        const report = await upgradeDeployment(config, systemClock, {
          maxAgeHours: Number(opts.maxBackupAge),
          takeBackup: async () => {
            process.stderr.write('Taking a backup before the upgrade.\n');
            return (await dump({ encrypt: true, upload: config.backup.destConfigured })).setId;
          },
          onApply: (m) => process.stderr.write(`applying ${m.version} ${m.name}\n`),
        });
        print(report, Boolean(opts.json), (r: UpgradeReport) =>
          r.backup === null
            ? 'The database schema is current; nothing to upgrade.'
            : `Backed up (${r.backup}); applied migrations ${r.applied.join(', ')}.`,
        );
      }),
    );
}
