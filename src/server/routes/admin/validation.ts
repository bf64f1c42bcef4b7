// Request validation for the admin API. Bodies are JSON and are checked strictly: no type
// coercion ({"name": 5} is refused, not stored as "5"), unknown fields refused, every failing
// field reported. Path and query strings are coerced to their types and get defaults.
import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import { deferValidatorCompiler } from '../../lazy-schemas.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const COMMON: Options = { useDefaults: true, addUsedSchema: false, strict: false };

function ajv(options: Options): Ajv {
  const instance = new Ajv({ ...COMMON, ...options });
  addFormats(instance);
  return instance;
}

// Reporting every failing field costs at most one pass over a body of at most 1 MiB, and only
// authenticated callers reach validation (authentication runs first, on request).
const bodies = ajv({ coerceTypes: false, removeAdditional: false, allErrors: true });
const strings = ajv({ coerceTypes: 'array', removeAdditional: true, allErrors: false });

// Each route's validator is compiled on its first request, not at start (lazy-schemas.ts).
export const adminValidatorCompiler = deferValidatorCompiler(
  ({ schema, httpPart }: Parameters<FastifySchemaCompiler<unknown>>[0]) =>
    (httpPart === 'body' ? bodies : strings).compile(schema as object),
) as FastifySchemaCompiler<unknown>;
