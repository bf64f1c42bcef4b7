// `orthid audit export`: write a tenant's audit events as a signed archive into object storage,
// or list the archives already there.
import type { Command } from 'commander';
import type { AuditArchiveInfo, StoredAuditArchive } from '../bundles/audit-archive.js';
import { action, operation, print } from './context.js';

export function registerAuditExportCommand(audit: Command): void {
  audit
    .command('export')
    .description(
      'Write the events of a time range as a signed bundle to audit-archives/<tenant>/ in object storage',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--from <date>', 'first instant included (ISO date or date-time); default: the first event')
    .option('--to <date>', 'first instant excluded (ISO date or date-time); default: now')
    .option('--list', 'list the stored archives instead of writing one')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; from?: string; to?: string; list?: boolean; json?: boolean }) => {
        if (opts.list) {
          const archives = (await operation('audit.exports', {
            tenant: opts.tenant,
          })) as StoredAuditArchive[];
          print(archives, Boolean(opts.json), (list: StoredAuditArchive[]) =>
            list.length === 0
              ? `No audit archives for ${opts.tenant} yet. Write one with: orthid audit export --tenant ${opts.tenant}`
              : list.map((a) => `${a.storedAt}  ${String(a.size).padStart(10)}  ${a.key}`).join('\n'),
          );
          return;
        }
        const info = (await operation('audit.export', {
          tenant: opts.tenant,
          from: opts.from,
          to: opts.to,
        })) as AuditArchiveInfo;
        print(info, Boolean(opts.json), (i: AuditArchiveInfo) =>
          [
            `Wrote ${i.events} events (${i.from ?? 'start'} to ${i.to}) to ${i.key}`,
            `sha256 ${i.sha256}, ${i.size} bytes`,
            i.chain.ok
              ? `Audit chain intact: ${i.chain.events} events, head ${i.chain.headHash}`
              : `WARNING: the audit chain is broken (see chain.json in the archive; run: orthid audit verify --tenant ${opts.tenant})`,
          ].join('\n'),
        );
      }),
    );
}
