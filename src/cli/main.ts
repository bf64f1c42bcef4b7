#!/usr/bin/env node
// The `orthid` command: one file per command group; exit codes are documented in the README.
import { Command, CommanderError } from 'commander';
import { exitCodes } from '../core/errors.js';
import { VERSION } from '../version.js';
import { registerAuditCommands } from './audit.js';
import { registerBackupCommands } from './backup.js';
import { registerRestoreCommands } from './backup-restore.js';
import { registerBundleCommands, registerUserExportCommand } from './bundle.js';
import { registerClientCommands } from './client.js';
import { registerDbCommands } from './db.js';
import { registerKeystoreCommands } from './keystore.js';
import { registerMigrateCommand } from './migrate.js';
import { registerStartCommand } from './start.js';
import { registerTenantCommands } from './tenant.js';
import { registerUpgradeCommand } from './upgrade.js';
import { registerUserCommands } from './user.js';

const program = new Command('orthid')
  .description('OrthID: a self-hosted OpenID Connect identity provider')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

registerStartCommand(program);
registerMigrateCommand(program);
registerDbCommands(program);
registerUpgradeCommand(program);
registerTenantCommands(program);
registerUserCommands(program);
registerClientCommands(program);
registerKeystoreCommands(program);
registerAuditCommands(program);
registerBackupCommands(program);
registerRestoreCommands(program.commands.find((c) => c.name() === 'backup')!);
registerBundleCommands(program);
registerUserExportCommand(program.commands.find((c) => c.name() === 'user')!);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; usage errors exit with the documented "invalid" code.
    process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.invalid;
  } else {
    throw error;
  }
}
