// One operator operation as a typed entry: its name, the schema of its input (checked wherever
// the input comes from: CLI flags in this process, JSON over the control socket, a schedule), and
// what it runs. The output is the run's return type; over the control socket it travels as JSON.
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { OrthIdError } from '../core/errors.js';
import type { OrthId } from './orthid.js';

export interface Operation<Name extends string, Input extends TSchema, Output> {
  name: Name;
  input: Input;
  run(app: OrthId, input: Static<Input>): Promise<Output>;
}

/** Any operation, whatever its input and output (what a name looks up). */
export type AnyOperation = Operation<string, TSchema, unknown>;

/** Declares an operation; the input type of `run` is the schema's static type. */
export function defineOperation<const Name extends string, Input extends TSchema, Output>(
  operation: Operation<Name, Input, Output>,
): Operation<Name, Input, Output> {
  return operation;
}

/**
 * Checks `value` against the operation's input schema. A field whose schema carries an
 * `errorMessage` is refused with it (the message names the flag an operator typed); any other
 * mismatch names the field.
 */
export function checkInput<Input extends TSchema>(
  operation: Operation<string, Input, unknown>,
  value: unknown,
): Static<Input> {
  if (Value.Check(operation.input, value)) return value;
  const first = Value.Errors(operation.input, value).First();
  const field = first?.path.replace(/^\//, '').replaceAll('/', '.') ?? '';
  const custom = (first?.schema as { errorMessage?: unknown } | undefined)?.errorMessage;
  const missing = first !== undefined && first.value === undefined;
  const message =
    typeof custom === 'string'
      ? custom
      : missing
        ? `Missing required argument "${field}".`
        : `"${field}" is invalid for ${operation.name}: ${first?.message ?? 'unexpected value'}.`;
  throw new OrthIdError('request.invalid', message, { details: { field } });
}

/** An optional text argument: absent and empty are the same. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
