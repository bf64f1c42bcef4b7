// Compiles src/ to dist/ and copies the assets (SQL migrations, templates, the plain-JavaScript
// password hashing task, the hosted pages' browser scripts) the runtime reads, then builds the admin
// console (scripts/build-console.mjs).
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});

const ASSET = /\.(sql|html|css|txt|svg|cjs)$|\.browser\.js$/;
function copyAssets(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) copyAssets(path);
    else if (ASSET.test(entry)) cpSync(path, join('dist', relative('src', path)));
  }
}
copyAssets('src');
await import('./build-console.mjs');
