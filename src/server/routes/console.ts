// Serves the admin console (the single-page app built into dist/console) at /console: its files
// with a strict CSP, hashed assets cached for a year, the page itself never cached.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OrthIdError } from '../../core/errors.js';
import { CONSOLE_PATH } from '../../oidc/console-client.js';

/**
 * No inline script or style, nothing from elsewhere: the app talks only to this origin (the
 * admin API and the system tenant's token endpoint), shows avatars it fetched as blobs, and is
 * never framed.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Compressed copies the build wrote beside each file (scripts/build-console.mjs). */
const ENCODINGS = [
  { name: 'br', suffix: '.br' },
  { name: 'gzip', suffix: '.gz' },
] as const;

interface ConsoleFile {
  type: string;
  /** By encoding (`identity` always). */
  bodies: Map<string, Buffer>;
  immutable: boolean;
}

/** dist/console beside the compiled server, or the built one when the server runs from src/. */
function defaultRoot(): string | undefined {
  for (const candidate of ['../../console/', '../../../dist/console/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Reads the built console once (it is small), on the first request for it. */
async function loadConsole(root: string): Promise<Map<string, ConsoleFile>> {
  const files = new Map<string, ConsoleFile>();
  const paths = await listFiles(root);
  const present = new Set(paths);
  for (const path of paths) {
    if (ENCODINGS.some((e) => path.endsWith(e.suffix))) continue;
    const name = relative(root, path).split(sep).join('/');
    const bodies = new Map<string, Buffer>([['identity', await readFile(path)]]);
    for (const encoding of ENCODINGS) {
      if (present.has(path + encoding.suffix))
        bodies.set(encoding.name, await readFile(path + encoding.suffix));
    }
    files.set(name, {
      type: TYPES[extname(path)] ?? 'application/octet-stream',
      bodies,
      // Vite names what it emits under assets/ by content hash.
      immutable: name.startsWith('assets/'),
    });
  }
  return files;
}

function accepted(request: FastifyRequest, file: ConsoleFile): string {
  const header = String(request.headers['accept-encoding'] ?? '');
  for (const encoding of ENCODINGS) {
    if (
      file.bodies.has(encoding.name) &&
      new RegExp(`\\b${encoding.name}\\b(?!;q=0(\\.0+)?\\b)`).test(header)
    )
      return encoding.name;
  }
  return 'identity';
}

function send(request: FastifyRequest, reply: FastifyReply, file: ConsoleFile): FastifyReply {
  const encoding = accepted(request, file);
  void reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header('vary', 'accept-encoding')
    .type(file.type);
  if (encoding !== 'identity') void reply.header('content-encoding', encoding);
  return reply.send(file.bodies.get(encoding));
}

export interface ConsoleRouteOptions {
  /** The built console; default dist/console. */
  root?: string;
}

export async function consoleRoutes(app: FastifyInstance, options: ConsoleRouteOptions): Promise<void> {
  const given = options.root ?? defaultRoot();
  const root = given && existsSync(join(given, 'index.html')) ? given : undefined;
  let loaded: Promise<Map<string, ConsoleFile>> | undefined;
  const files = () => {
    if (!root) {
      throw new OrthIdError(
        'console.not_built',
        'The admin console was not built with this installation: run `npm run build` (npm ci does).',
      );
    }
    loaded ??= loadConsole(root).catch((error: unknown) => {
      loaded = undefined;
      throw error;
    });
    return loaded;
  };

  app.get(CONSOLE_PATH, (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`));
  app.get<{ Params: { '*': string } }>(`${CONSOLE_PATH}/*`, async (request, reply) => {
    const all = await files();
    const path = request.params['*'];
    const file = all.get(path);
    if (file) return send(request, reply, file);
    // A missing asset is a 404; any other path is a screen of the app, which routes it itself.
    if (path.startsWith('assets/') || extname(path) !== '') {
      throw new OrthIdError('request.not_found', `Nothing is served at ${CONSOLE_PATH}/${path}.`);
    }
    return send(request, reply, all.get('index.html')!);
  });
}
