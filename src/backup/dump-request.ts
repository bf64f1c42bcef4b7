// What an operator asks of a dump (flags, else configuration), resolved to the options a dump
// runs with: destinations default to the configured ones, recipients come from `-r`, a
// recipients file or ORTHID_BACKUP_AGE_RECIPIENTS, and server-side encryption from its two flags.
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/config.js';
import { OrthIdError } from '../core/errors.js';
import { type NamedDestinations, resolveDestinations } from './destination.js';
import type { DumpOptions } from './dump-set.js';

export interface DumpRequest extends NamedDestinations {
  encrypt?: boolean | undefined;
  upload?: boolean | undefined;
  /** age recipients named one by one (`-r`). */
  recipients?: readonly string[] | undefined;
  /** A file of age recipients, one per line, `#` comments (`-R`). */
  recipientsFile?: string | undefined;
  /** `--sse`: aws:kms, aws:kms:dsse or AES256. */
  sse?: string | undefined;
  /** `--sse-kms-key-id`; alone, it means aws:kms. */
  sseKmsKeyId?: string | undefined;
  allowPlaintextUpload?: boolean | undefined;
}

/** Recipients as named (one by one and from a file), else ORTHID_BACKUP_AGE_RECIPIENTS. */
async function resolveRecipients(config: Config, request: DumpRequest): Promise<string[]> {
  const given = [...(request.recipients ?? [])];
  const file = request.recipientsFile;
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((cause: NodeJS.ErrnoException) => {
      throw new OrthIdError(
        'backup.no_recipients',
        `Cannot read the recipients file ${file} (${cause.code}).`,
        {
          cause,
        },
      );
    });
    given.push(
      ...text
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
  }
  return given.length > 0 ? given : config.backup.ageRecipients;
}

/** The dump's options; refusals about destinations and the recipients file come from here. */
export async function resolveDumpOptions(
  config: Config,
  request: DumpRequest,
): Promise<DumpOptions & { recipients: string[] }> {
  const where = resolveDestinations(config, request);
  return {
    encrypt: request.encrypt === true,
    upload: request.upload === true,
    recipients: await resolveRecipients(config, request),
    ...where,
    sse:
      request.sse === undefined
        ? request.sseKmsKeyId === undefined
          ? undefined
          : { type: 'aws:kms', kmsKeyId: request.sseKmsKeyId }
        : { type: request.sse, kmsKeyId: request.sseKmsKeyId },
    allowPlaintextUpload: request.allowPlaintextUpload === true,
  };
}
