// `orthid bundle verify` (offline, against a JWKS file or URL) and `orthid user export` (a user's
// signed data-export bundle, optionally copied to a local file).
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { loadJwks } from '../bundles/jwks-source.js';
import type { UserExportInfo } from '../bundles/user-export.js';
import { type BundleReport, verifyBundle } from '../bundles/verify-bundle.js';
import { exitCodes, isOrthIdError } from '../core/errors.js';
import { openObjectStore } from '../storage/objects/open-object-store.js';
import { action, cliConfig, operation, print, writeFileAtomically } from './context.js';

export function registerBundleCommands(program: Command): void {
  const bundle = program
    .command('bundle')
    .description('Signed document bundles (audit archives, user data exports)');

  bundle
    .command('verify')
    .description(
      "Check a bundle's signature against the tenant's JWKS and every file's SHA-256; exit 1 naming the failing file",
    )
    .argument('<file>', 'the .bundle file')
    .requiredOption(
      '--jwks <url|file>',
      "the tenant's JWKS: a saved file (offline) or its URL, e.g. https://id.example.com/t/acme/jwks",
    )
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, opts: { jwks: string; json?: boolean }) => {
        const jwks = await loadJwks(opts.jwks);
        try {
          const report = await verifyBundle(createReadStream(file), jwks);
          print(report, Boolean(opts.json), (r: BundleReport) =>
            [
              `Bundle is valid: ${r.kind} of tenant ${r.tenant.slug} (${r.issuer}), created ${r.createdAt}, signed by ${r.kid} (${r.alg})`,
              ...r.files.map((f) => `  ${f.sha256}  ${String(f.size).padStart(10)}  ${f.path}`),
            ].join('\n'),
          );
          return exitCodes.ok;
        } catch (error) {
          if (!isOrthIdError(error, 'bundle.invalid')) throw error;
          const failure = {
            valid: false,
            code: error.code,
            file: error.details?.file,
            reason: error.details?.reason,
            message: error.message,
          };
          print(failure, Boolean(opts.json), (f: typeof failure) => `INVALID: ${f.message}`);
          return exitCodes.checkFailed;
        }
      }),
    );
}

/** `orthid user export`, registered on the existing `user` command. */
export function registerUserExportCommand(user: Command): void {
  user
    .command('export')
    .description(
      "Write a user's signed data-export bundle to user-exports/<tenant>/<user id>/ in object storage",
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--id <user-id>', 'user id')
    .option('-o, --output <file>', 'also write the bundle to this local file')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; id: string; output?: string; json?: boolean }) => {
        const info = (await operation('user.export', { tenant: opts.tenant, id: opts.id })) as UserExportInfo;
        if (opts.output) {
          const store = await openObjectStore(cliConfig().objectStore);
          const { body } = await store.get(info.key);
          await writeFileAtomically(opts.output, body);
        }
        print(
          { ...info, ...(opts.output ? { output: opts.output } : {}) },
          Boolean(opts.json),
          (i: UserExportInfo & { output?: string }) =>
            [
              `Wrote ${i.files.join(', ')} for user ${i.userId} to ${i.key}`,
              `sha256 ${i.sha256}, ${i.size} bytes`,
              ...(i.output ? [`Copied to ${i.output}`] : []),
            ].join('\n'),
        );
      }),
    );
}
