// The OrthID version, recorded in backup manifests and shown by `orthid --version`.
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };

export const VERSION: string = pkg.version;
