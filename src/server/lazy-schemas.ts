// Route schemas compiled on a route's first request instead of at `ready()`. Compiling every
// validator (ajv) and response serializer (fast-json-stringify) of the admin API cost ~0.35 s of
// each start, for routes most processes serve late or never. Behaviour is unchanged: the same
// compilers build the same functions, only later; a schema that cannot compile now fails its
// route's first request (a 500) instead of the start. One difference in Fastify: with a compiler
// factory of our own it no longer lower-cases the keys of `headers` schemas; no route declares
// one, and one that does should name its headers in lower case.
import ajvCompiler from '@fastify/ajv-compiler';
import serializerCompiler from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

/** What Fastify calls a validator: Ajv's functions also carry `errors` and `schemaEnv`. */
type Validate = ((data: unknown, context?: unknown) => unknown) & {
  errors?: unknown;
  schemaEnv?: unknown;
};

/**
 * Wraps a validator compiler so each route's validator is compiled on its first call. Generic
 * over the route definition because Fastify and its compiler packages each type it their own way.
 */
export function deferValidatorCompiler<Route>(
  compile: (route: Route) => unknown,
): (route: Route) => Validate {
  return (route) => {
    let compiled: Validate | undefined;
    const validate: Validate = (data, context) => {
      compiled ??= compile(route) as Validate;
      // Ajv changes a root value (defaults, coercion) only when told its parent; Fastify passes
      // that context only to functions that look like Ajv's, as this wrapper does (below).
      const result = compiled.schemaEnv ? compiled(data, context) : compiled(data);
      validate.errors = compiled.errors;
      return result;
    };
    validate.schemaEnv = true;
    return validate;
  };
}

/** Wraps a serializer compiler so each response serializer is compiled on its first call. */
export function deferSerializerCompiler<Route>(
  compile: (route: Route) => (data: unknown) => string,
): (route: Route) => (data: unknown) => string {
  return (route) => {
    let compiled: ((data: unknown) => string) | undefined;
    return (data) => {
      compiled ??= compile(route);
      return compiled(data);
    };
  };
}

type SchemaController = NonNullable<FastifyServerOptions['schemaController']>;
type Factories = NonNullable<SchemaController['compilersFactory']>;

/** Fastify's `schemaController` option: its own default compilers, deferred. */
export function deferredSchemaController(): SchemaController {
  const buildValidator = ajvCompiler();
  const buildSerializer = serializerCompiler();
  const factories = {
    buildValidator: (
      external: Parameters<typeof buildValidator>[0],
      options: Parameters<typeof buildValidator>[1],
    ) => deferValidatorCompiler(buildValidator(external, options)),
    buildSerializer: (
      external: Parameters<typeof buildSerializer>[0],
      options: Parameters<typeof buildSerializer>[1],
    ) => deferSerializerCompiler(buildSerializer(external, options)),
  };
  return { compilersFactory: factories as unknown as Factories };
}
