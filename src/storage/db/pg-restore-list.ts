// `pg_restore --list` over a custom-format archive: how `backup verify` reads a dump back without
// restoring it.
import { OrthIdError } from '../../core/errors.js';
import { feedClientTool, startClientTool } from './client-tool.js';

/**
 * Feeds a custom-format archive to `pg_restore --list` and returns how many TOC entries it read;
 * `backup.dump_unreadable` when pg_restore cannot read it. The input is read to its end even
 * after pg_restore has what it needs, so a caller decrypting it still authenticates every byte.
 */
export async function pgRestoreList(
  archive: AsyncIterable<Buffer>,
  binary = 'pg_restore',
): Promise<{ entries: number }> {
  const tool = startClientTool('pg_restore', ['--list'], { binary, stdin: true, stdout: true });
  let entries = 0;
  let partial = '';
  const stdout = tool.stdout!;
  stdout.setEncoding('utf8');
  stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    entries += lines.filter((line) => line !== '' && !line.startsWith(';')).length;
  });
  // pg_restore stops reading once it has the table of contents; the rest is still read.
  await feedClientTool(tool, archive, { readToEnd: true });
  const { code, signal } = await tool.exit;
  if (code !== 0) {
    throw new OrthIdError(
      'backup.dump_unreadable',
      `pg_restore --list cannot read the dump: ${tool.stderr() || (signal ?? `exit ${code}`)}`,
    );
  }
  return { entries };
}
