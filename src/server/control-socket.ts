// The embedded server's control socket: a Unix socket in the data directory (mode 0600) on
// which the CLI asks the running process to run an operation, since only one process may open PGlite.
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { OrthId } from '../main.js';
import { runOperation } from '../ops/operations.js';
import { explainError } from '../storage/db/database-errors.js';

const MAX_BODY = 1024 * 1024;

async function readJson(req: NodeJS.ReadableStream): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('request too large');
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 0
    ? {}
    : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
}

export async function startControlSocket(app: OrthId, path: string, log: Logger): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer(async (req, res) => {
    const name = decodeURIComponent((req.url ?? '').replace(/^\/ops\//, ''));
    try {
      const result = await runOperation(app, name, await readJson(req));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result }));
    } catch (error) {
      const e = explainError(error);
      if (e.kind === 'internal') log.error({ err: error, operation: name }, 'control operation failed');
      else if (e.code.startsWith('db.')) log.error({ code: e.code, operation: name }, e.message);
      res.writeHead(e.httpStatus, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return server;
}
