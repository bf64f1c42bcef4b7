// Builds the admin console (console/, a Vite + Preact single-page app) into dist/console, with a
// brotli and a gzip copy of each text file beside it for the server to send as they are.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'vite';

const OUT = 'dist/console';

await build({
  configFile: false,
  root: 'console',
  base: '/console/',
  logLevel: 'warn',
  // JSX for Preact through Vite's own transformer: no Babel plugin needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../dist/console',
    emptyOutDir: true,
    target: 'es2022',
    // Everything ships as files: an inline asset or module-preload script would need CSP exceptions.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});

function compress(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) compress(path);
    else if (/\.(js|css|html|svg|json|txt)$/.test(entry)) {
      const body = readFileSync(path);
      writeFileSync(
        `${path}.br`,
        brotliCompressSync(body, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
        }),
      );
      writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
    }
  }
}
compress(OUT);
