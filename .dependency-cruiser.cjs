// Dependency direction of OrthID (ARCHITECTURE.md), checked on every test run over src/ and test/:
// cli -> main.ts (the wiring) -> server -> ops -> bundles -> backup -> oidc -> identity, tenancy -> audit
// -> crypto, storage -> config -> core; web (page templates) and verify (the token verifier) stand alone.
const domain = [
  'core',
  'config',
  'crypto',
  'storage',
  'audit',
  'mail',
  'tenancy',
  'identity',
  'oidc',
  'backup',
  'bundles',
];
const layers = {
  core: ['core'],
  verify: ['verify'],
  config: ['core', 'config'],
  crypto: ['core', 'config', 'crypto'],
  storage: ['core', 'config', 'storage'],
  audit: ['core', 'config', 'crypto', 'storage', 'audit'],
  tenancy: ['core', 'config', 'crypto', 'storage', 'audit', 'tenancy'],
  // Outgoing mail sits beside tenancy: the features above it (sign-up, password reset, notices)
  // queue mail in their own transactions; mail itself knows no feature.
  mail: ['core', 'config', 'crypto', 'storage', 'audit', 'mail'],
  identity: ['core', 'config', 'crypto', 'storage', 'audit', 'tenancy', 'mail', 'identity'],
  oidc: ['core', 'config', 'crypto', 'storage', 'audit', 'tenancy', 'mail', 'identity', 'oidc'],
  backup: ['core', 'config', 'crypto', 'storage', 'audit', 'tenancy', 'mail', 'identity', 'oidc', 'backup'],
  // bundles reuse backup's pax tar writer (src/backup/tar-writer.ts); backup never imports bundles.
  bundles: domain,
  web: ['core', 'web'],
  ops: [...domain, 'ops'],
  server: [...domain, 'ops', 'web', 'server'],
  cli: [...domain, 'ops', 'web', 'server', 'cli'],
};

/** Files at the top of src/ a layer may import besides its folders. */
const topLevel = {
  // The CLI is the one caller of the wiring (src/main.ts): it builds OrthID for each command.
  cli: ['version', 'main'],
};

const layerRules = Object.entries(layers).map(([layer, allowed]) => ({
  name: `${layer}-depends-downwards`,
  comment: `src/${layer} may import only ${allowed.join(', ')}`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/(${allowed.join('|')})/`, `^src/(${(topLevel[layer] ?? ['version']).join('|')})\\.ts$`],
  },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'domain-without-frameworks',
      comment: 'Domain modules, the operations and the page templates never import Fastify or commander',
      severity: 'error',
      from: {
        path: '^src/(core|config|crypto|storage|audit|mail|tenancy|identity|oidc|backup|bundles|ops|web|verify)/',
      },
      to: { path: 'node_modules/(fastify|@fastify|commander)/' },
    },
    {
      name: 'only-cli-imports-the-wiring',
      comment:
        'src/main.ts builds the drivers and services; below the CLI, modules receive what they use (tests compose their own)',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/main\\.ts$'] },
      to: { path: '^src/main\\.ts$' },
    },
    {
      name: 'routes-take-narrow-dependencies',
      comment:
        'A route module receives the services it uses; only the admin API composition point (routes/admin/index.ts) builds them from the wired OrthID',
      severity: 'error',
      from: { path: '^src/server/routes/', pathNot: ['^src/server/routes/admin/index\\.ts$'] },
      to: { path: '^src/ops/orthid\\.ts$' },
    },
    {
      name: 'operations-run-from-the-cli-socket-and-schedules',
      comment:
        'The typed operations are dispatched by the CLI, the control socket and the schedules (and the wiring, for the dump it takes in this process; and the admin API composition point, which hands its routes the few they share with the CLI); nothing else in src runs them by name',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: [
          '^src/cli/',
          '^src/main\\.ts$',
          '^src/server/control-socket\\.ts$',
          '^src/server/routes/admin/index\\.ts$',
          '^src/ops/',
        ],
      },
      to: { path: '^src/ops/operations\\.ts$' },
    },
    {
      name: 'only-storage-knows-drivers',
      comment:
        'Only storage/db knows which database driver is in use: neither the driver packages nor its driver files are imported elsewhere in src (tests open their own databases)',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: ['^src/storage/db/'],
      },
      to: {
        path: [
          'node_modules/(pg|pg-[a-z-]+|@electric-sql/pglite[a-z-]*)/',
          '^src/storage/db/(pglite|postgres)-driver\\.ts$',
        ],
      },
    },
    {
      name: 'backup-blind-to-drivers',
      comment:
        'backup/ reaches the database only through the driver-blind parts of storage/db (a Database, its migrations, its deployment binding, a dump source, a restore target, pg_restore --list), never a driver or one kind of dump or target',
      severity: 'error',
      from: { path: '^src/backup/' },
      to: {
        path: '^src/storage/db/',
        pathNot: [
          '^src/storage/db/(database|migrate|deployment-binding|dump-source|open-dump-source|restore-target|pg-restore-list)\\.ts$',
        ],
      },
    },
    {
      name: 'restore-targets-and-dumps-by-interface',
      comment:
        'Outside storage/db, dump sources and restore targets are opened through open-dump-source.ts and open-restore-target.ts, never by their kind',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/storage/db/'] },
      to: { path: '^src/storage/db/(pglite|postgres)-(dump|restore-target)\\.ts$' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
