// `orthid audit ...`: verify a tenant's keyed chain against its checkpoints and read its newest events.
import type { Command } from 'commander';
import type { AnchoredReport, CheckpointRef } from '../audit/audit-checkpoints.js';
import type { AuditEvent } from '../audit/audit-log.js';
import { exitCodes } from '../core/errors.js';
import { registerAuditExportCommand } from './audit-export.js';
import { action, operation, print } from './context.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description("Read and verify a tenant's tamper-evident audit log");
  registerAuditExportCommand(audit);

  audit
    .command('verify')
    .description(
      "Walk the keyed chain and hold it against the tenant's checkpoints; exit 1 and name the first broken link and the newest checkpoint before it. An intact chain is checkpointed again",
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; json?: boolean }) => {
        const report = (await operation('audit.verify', { tenant: opts.tenant })) as AnchoredReport & {
          tenant: string;
          written?: CheckpointRef;
        };
        print(report, Boolean(opts.json), (r: typeof report) =>
          r.ok
            ? [
                `Audit chain of ${r.tenant} is intact: ${r.events} events, head ${r.headHash}`,
                r.checkpoint
                  ? `It holds against ${r.checkpoints} checkpoint(s), the newest of ${r.checkpoint.at} (event #${r.checkpoint.seq}).`
                  : 'No earlier checkpoint to hold it against.',
                ...(r.written ? [`Checkpointed event #${r.written.seq} to ${r.written.key}.`] : []),
              ].join('\n')
            : `${r.code}: audit chain of ${r.tenant} is BROKEN at event #${r.broken!.seq}: ${r.broken!.reason} (${r.events} events before it verified)`,
        );
        return report.ok ? exitCodes.ok : exitCodes.checkFailed;
      }),
    );

  audit
    .command('tail')
    .description('Show the newest events, newest first')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('-n, --limit <n>', 'how many events', '20')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; limit: string; json?: boolean }) => {
        const events = (await operation('audit.tail', {
          tenant: opts.tenant,
          limit: Number(opts.limit),
        })) as AuditEvent[];
        print(events, Boolean(opts.json), (list: AuditEvent[]) =>
          list
            .map(
              (e) =>
                `#${String(e.seq).padEnd(6)} ${e.occurredAt}  ${e.outcome.padEnd(7)} ${e.action.padEnd(24)} ${e.actor}${e.target ? ` -> ${e.target}` : ''}`,
            )
            .join('\n'),
        );
      }),
    );
}
