// The container image's install, replayed without Docker: deploy/Dockerfile is read stage by
// stage, and its COPY steps and `RUN npm …` steps run in a temporary directory per stage (the
// stage's /app), so the test follows the file as it is. What it cannot replay is left to the
// machine: the base image and its apt packages (Node.js is the one running this test; the
// toolchain and SoftHSM2 must be installed). Then `orthid keystore init` runs from the final
// stage's tree with a SoftHSM2 `pkcs11:` custody, as `docker run … keystore init` would.
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exitCodes } from '../../src/core/errors.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCKERFILE = join(ROOT, 'deploy/Dockerfile');
const WORKDIR = '/app';
const MASTER = 'container-install-master-secret-0123456789abcdef';
/** One npm step; `npm ci` from npm's cache takes well under a minute here. */
const NPM_TIMEOUT_MS = 5 * 60_000;
const CLI_TIMEOUT_MS = 60_000;

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name: string | undefined;
  /** An image, or the name of an earlier stage. */
  base: string;
  steps: Instruction[];
}

/** A replayed stage: its /app, and the working directory and ENV it ends with. */
interface Built {
  app: string;
  workdir: string | undefined;
  env: Record<string, string>;
}

/** Instructions with their line continuations joined and comment lines dropped, as Docker reads them. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (current === '' && line.trim() === '') continue;
    if (/\\\s*$/.test(line)) {
      current += `${line.replace(/\\\s*$/, '')} `;
      continue;
    }
    current += line;
    const [, keyword = '', args = ''] = /^\s*(\S+)\s*(.*)$/s.exec(current) ?? [];
    out.push({ keyword: keyword.toUpperCase(), args: args.trim() });
    current = '';
  }
  return out;
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  for (const step of instructions(text)) {
    if (step.keyword === 'FROM') {
      const [base = '', as, name] = step.args.split(/\s+/);
      out.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, base, steps: [] });
    } else {
      out[out.length - 1]?.steps.push(step);
    }
  }
  return out;
}

/** The build context's exclusions: every pattern in this file names top-level entries. */
function contextFilter(): (path: string) => boolean {
  const patterns = readFileSync(join(ROOT, 'deploy/Dockerfile.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`));
  return (path) => {
    const top = path.slice(ROOT.length).replace(/^\/+/, '').split('/')[0]!;
    return top === '' || !patterns.some((p) => p.test(top));
  };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  const result: SpawnSyncReturns<string> = spawnSync(command, args, {
    cwd,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  const shown = `${command} ${args.join(' ')} (in ${cwd})`;
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
    throw new Error(`${shown} did not finish within ${timeoutMs / 1000} s and was killed`);
  }
  if (result.error) throw new Error(`${shown} could not run: ${result.error.message}`);
  return result;
}

/**
 * Replays every stage and returns the final stage's /app. COPY from the context or from an
 * earlier stage's /app, and RUN steps made only of npm commands, are replayed; a RUN without
 * npm is a system step (apt-get, useradd) that the machine stands in for, and a RUN that mixes
 * the two cannot be replayed and fails the test.
 */
function replay(work: string): { image: Built; final: Stage; npmSteps: string[] } {
  const all = stages(readFileSync(DOCKERFILE, 'utf8'));
  assert.ok(all.length > 1, 'deploy/Dockerfile has a build stage and a runtime stage');
  const built = new Map<string, Built>();
  const npmSteps: string[] = [];
  const fromContext = contextFilter();
  const npmEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // The Node running this test runs npm, node-gyp and the built modules.
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  let image: Built | undefined;
  for (const [index, stage] of all.entries()) {
    const app = join(work, `stage-${index}-${stage.name ?? 'final'}`);
    const parent = built.get(stage.base);
    if (parent) cpSync(parent.app, app, { recursive: true, verbatimSymlinks: true });
    else mkdirSync(app, { recursive: true });
    let workdir = parent?.workdir;
    // The image's own paths (PATH above all) mean nothing on this machine.
    const { PATH: _imagePath, ...inherited } = parent?.env ?? {};
    const env: Record<string, string> = inherited;
    const inApp = (path: string) => {
      assert.equal(workdir, WORKDIR, `the replay models the stage's ${WORKDIR} only`);
      const absolute = posix.resolve(workdir!, path);
      assert.ok(absolute === WORKDIR || absolute.startsWith(`${WORKDIR}/`), `${path} is outside ${WORKDIR}`);
      return join(app, absolute.slice(WORKDIR.length));
    };
    for (const step of stage.steps) {
      if (step.keyword === 'WORKDIR') workdir = step.args;
      if (step.keyword === 'ENV') {
        for (const [, key, value] of step.args.matchAll(/(\w+)=(\S+)/g)) {
          if (key !== 'PATH') env[key!] = value!;
        }
      }
      if (step.keyword === 'COPY') {
        const words = step.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop()!;
        for (const source of paths) {
          if (from === undefined) {
            const target = inApp(dest.endsWith('/') ? posix.join(dest, posix.basename(source)) : dest);
            mkdirSync(dirname(target), { recursive: true });
            cpSync(join(ROOT, source), target, { recursive: true, filter: fromContext });
          } else {
            const stageDir = built.get(from)?.app;
            assert.ok(stageDir, `COPY --from=${from} names an earlier stage of this Dockerfile`);
            assert.ok(
              source.startsWith(`${WORKDIR}/`),
              `COPY --from=${from} ${source} reads from ${WORKDIR}`,
            );
            cpSync(join(stageDir, source.slice(WORKDIR.length)), inApp(dest), {
              recursive: true,
              verbatimSymlinks: true,
            });
          }
        }
      }
      if (step.keyword === 'RUN') {
        const commands = step.args.split('&&').map((c) => c.trim());
        const npm = commands.filter((c) => /^npm\s/.test(c));
        if (npm.length === 0) continue;
        assert.equal(
          npm.length,
          commands.length,
          `cannot replay a RUN that mixes npm and other commands: ${step.args}`,
        );
        for (const command of npm) {
          const args = command.split(/\s+/).slice(1);
          // npm's cache belongs to this machine, not to the tree being built.
          if (args[0] === 'cache') continue;
          npmSteps.push(command);
          const result = run('npm', args, inApp('.'), { ...npmEnv, ...env }, NPM_TIMEOUT_MS);
          assert.equal(result.status, 0, `${command} failed:\n${result.stdout}\n${result.stderr}`);
        }
      }
    }
    image = { app, workdir, env };
    if (stage.name) built.set(stage.name, image);
  }
  return { image: image!, final: all[all.length - 1]!, npmSteps };
}

function requireToolchain(): void {
  const missing = ['python3', 'make', 'g++'].filter((tool) => spawnSync(tool, ['--version']).status !== 0);
  if (missing.length > 0) {
    throw new Error(
      `Building pkcs11js as the Dockerfile does needs ${missing.join(', ')}: apt-get install -y python3 make g++`,
    );
  }
}

describe('the container image installs every custody (deploy/Dockerfile, replayed without Docker)', () => {
  let work: string;
  let app: string;
  let image: Built;
  let final: Stage;
  let token: SoftHsmToken;

  before(() => {
    requireToolchain();
    token = createSoftHsmToken({ label: 'orthid-image', object: 'orthid-root' });
    work = mkdtempSync(join(tmpdir(), 'orthid-image-'));
    const replayed = replay(work);
    image = replayed.image;
    app = image.app;
    final = replayed.final;
    assert.ok(
      replayed.npmSteps.some((s) => /^npm (ci|install)\b/.test(s)),
      `the Dockerfile installs the dependencies with npm (replayed: ${replayed.npmSteps.join('; ')})`,
    );
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    token?.cleanup();
  });

  /** `docker run IMAGE ARGS…` from the replayed tree: the final stage's ENV and entrypoint. */
  const orthid = (args: string[], dataDir: string) => {
    const entrypoint = /^\["node",\s*"([^"]+)"\]$/.exec(
      final.steps.find((s) => s.keyword === 'ENTRYPOINT')?.args ?? '',
    );
    assert.ok(entrypoint, 'the image runs `node <entry>`');
    return run(
      process.execPath,
      [entrypoint[1]!, ...args],
      app,
      {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...image.env,
        ...token.env,
        ORTHID_DATA_DIR: dataDir,
        ORTHID_KEYSTORE: token.uri,
        ORTHID_PKCS11_PIN: token.pin,
        ORTHID_MASTER_KEY: MASTER,
        ORTHID_LOG_LEVEL: 'warn',
      },
      CLI_TIMEOUT_MS,
    );
  };

  test('the image ships the built PKCS#11 binding and no build tools or devDependencies', () => {
    assert.ok(
      existsSync(join(app, 'node_modules/pkcs11js/build/Release/pkcs11.node')),
      'pkcs11.node is built',
    );
    assert.ok(existsSync(join(app, 'dist/cli/main.js')), 'the compiled CLI is there');
    for (const dev of ['typescript', 'tsx', '@biomejs']) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} is a devDependency and stays out`);
    }
    assert.ok(!existsSync(join(app, 'src')), 'the sources stay in the build stage');
  });

  test('orthid keystore init generates the root key inside a SoftHSM2 token from the image tree', () => {
    const data = join(work, 'data-init');
    const init = orthid(['keystore', 'init', '--json'], data);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(init.stderr, '', 'nothing on stderr: no runtime warning, no error');
    const result = JSON.parse(init.stdout) as {
      created: boolean;
      custody: { kind: string; created: boolean; rootKeyId: string };
      rootKeyIds: string[];
    };
    assert.equal(result.created, true);
    assert.equal(result.custody.kind, 'pkcs11');
    assert.equal(result.custody.created, true);
    assert.deepEqual(result.rootKeyIds, [result.custody.rootKeyId]);

    const status = orthid(['keystore', 'status', '--json'], data);
    assert.equal(status.status, 0, status.stderr);
    const shown = JSON.parse(status.stdout) as { custody: string; rootKeyIds: string[] };
    assert.equal(shown.custody, 'pkcs11');
    assert.ok(shown.rootKeyIds.includes(result.custody.rootKeyId), status.stdout);
  });

  test('without the built binding (an install with --ignore-scripts) keystore init names what is missing and writes nothing', () => {
    const build = join(app, 'node_modules/pkcs11js/build');
    const aside = join(work, 'pkcs11js-build');
    renameSync(build, aside);
    try {
      const data = join(work, 'data-unbuilt');
      const init = orthid(['keystore', 'init'], data);
      assert.equal(init.status, exitCodes.unavailable, init.stderr);
      assert.match(init.stderr, /^error\[keystore\.custody_unavailable\]: .*pkcs11js.*npm rebuild pkcs11js/m);
      assert.doesNotMatch(init.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(
        existsSync(data) ? readdirSync(data) : [],
        [],
        'no keystore or master secret left behind',
      );
    } finally {
      renameSync(aside, build);
    }
  });
});
