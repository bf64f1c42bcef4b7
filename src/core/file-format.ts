// One way to check a file format: a TypeBox schema compiled once, whose first failure is told as
// the field it concerns (`parts[0].sha256`) so the caller's error names it. Formats own their
// error codes; this module only finds the problem.
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

export interface FileFormat<T extends TSchema> {
  schema: T;
  /** Whether `value` has the format, narrowing its type. */
  is(value: unknown): value is Static<T>;
  /** The first problem with `value`, e.g. `field parts[0].sha256: Expected string to match …`, or undefined. */
  problem(value: unknown): string | undefined;
}

/** `/parts/0/sha256` (JSON pointer) as `parts[0].sha256`. */
function fieldName(pointer: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  for (const part of parts) out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

/**
 * Compiles `schema` into a checker.
 *
 * @example
 * const SHARE = fileFormat(Type.Object({ version: Type.Literal(2) }));
 * const why = SHARE.problem(JSON.parse(text)); // 'field version: Expected 2' or undefined
 */
export function fileFormat<T extends TSchema>(schema: T): FileFormat<T> {
  const checker = TypeCompiler.Compile(schema);
  return {
    schema,
    is: (value): value is Static<T> => checker.Check(value),
    problem(value) {
      if (checker.Check(value)) return undefined;
      const first = checker.Errors(value).First();
      if (first === undefined) return 'it does not have the expected shape';
      const field = fieldName(first.path);
      return field === '' ? first.message : `field ${field}: ${first.message}`;
    },
  };
}

/** Parses JSON text; undefined when it is not JSON (formats report that with their own code). */
export function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}
