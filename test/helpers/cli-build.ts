// The `orthid` command the tests run as a child process, compiled from src/ once per test run.
// Each child started through tsx transpiles or re-reads its ~900 modules and their source maps
// on its own: about half of a command's start-up CPU time, in hundreds of children a run. The
// runner compiles src/ once (TypeScript's own emit, as the release build does, without the type
// check the run's typecheck step already made) into its scratch directory, and the children
// start from there. A file run without the runner starts them from src/ through tsx.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What the runtime reads beside its modules (scripts/build.mjs copies the same into dist/). */
const ASSET = /\.(sql|html|css|txt|svg|cjs|json)$|\.browser\.js$/;

/**
 * Compiles src/ into `outDir`/src. `outDir` also gets the repository's package.json (the
 * version), node_modules and dist/ (the built console), as links, so that every path the code
 * resolves from its own location lands where it does in the repository.
 */
export function buildCliForTests(outDir: string): void {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ESNext,
    verbatimModuleSyntax: true,
    sourceMap: false,
  };
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const target = join(outDir, relative(ROOT, path));
      if (entry.isDirectory()) {
        walk(path);
      } else if (
        entry.name.endsWith('.ts') &&
        !entry.name.endsWith('.test.ts') &&
        !entry.name.endsWith('.d.ts')
      ) {
        const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
          compilerOptions: options,
          fileName: path,
        });
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target.replace(/\.ts$/, '.js'), outputText);
      } else if (ASSET.test(entry.name)) {
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(path, target);
      }
    }
  };
  walk(join(ROOT, 'src'));
  for (const name of ['package.json', 'node_modules', 'dist']) {
    symlinkSync(join(ROOT, name), join(outDir, name));
  }
}

/** The compiled entry point when the runner built one (ORTHID_TEST_CLI_BUILD), else undefined. */
export function builtCliEntry(): string | undefined {
  const dir = process.env.ORTHID_TEST_CLI_BUILD;
  return dir ? join(dir, 'src/cli/main.js') : undefined;
}
