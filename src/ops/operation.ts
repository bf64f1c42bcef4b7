// One operator operation as a typed entry: its name, the schema of its input (checked wherever
// the input comes from: CLI flags in this process, JSON over the control socket, a schedule), the
// schema of its output (what its run returns; checked where a result crosses the control socket,
// as JSON), and what it runs.
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { OrthIdError } from '../core/errors.js';
import type { OrthId } from './orthid.js';

/**
 * Who runs an operation: the audit actor of what it changes. `cli` when the CLI runs it in its own
 * process, `cli:control` when a running server runs it for the CLI over its control socket, the
 * admin API's caller (`client:…`, `user:…`) when the API runs it.
 */
export interface OperationContext {
  actor: string;
}

/**
 * The actor of an operation a running server ran for the CLI over its control socket. The socket
 * (mode 0600) answers only the server's own OS user and root, and carries no identity of its own:
 * the audit says which way the command came, not who typed it. Like `cli`, it is kept in clear in
 * the chain (the actor column), so audit verify reads it as it reads any other actor.
 */
export const CONTROL_SOCKET_ACTOR = 'cli:control';

export interface Operation<Name extends string, Input extends TSchema, Output extends TSchema> {
  name: Name;
  input: Input;
  output: Output;
  run(app: OrthId, input: Static<Input>, context?: OperationContext): Promise<Static<Output>>;
}

/** The audit actor of an operation's run. */
export function actorOf(context: OperationContext | undefined): string {
  return context?.actor ?? 'cli';
}

/** Any operation, whatever its input and output (what a name looks up). */
export type AnyOperation = Operation<string, TSchema, TSchema>;

/** Declares an operation; `run` takes its input schema's static type and returns its output schema's. */
export function defineOperation<const Name extends string, Input extends TSchema, Output extends TSchema>(
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
  operation: Operation<string, Input, TSchema>,
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

/** Where a result was found not to match its operation's output schema. */
export type OutputBoundary = 'sent' | 'received';

/**
 * Checks a result against the operation's output schema where it crosses the control socket: a
 * running server checks what it sends (a mismatch is a fault in that server: `internal.unexpected`),
 * the CLI what it receives (a server of another version: `control.unavailable`). Names the field.
 */
export function checkOutput<Output extends TSchema>(
  operation: Operation<string, TSchema, Output>,
  value: unknown,
  boundary: OutputBoundary,
): Static<Output> {
  if (Value.Check(operation.output, value)) return value;
  const first = Value.Errors(operation.output, value).First();
  const field = first?.path.replace(/^\//, '').replaceAll('/', '.') || '(the result)';
  if (boundary === 'sent') {
    throw new OrthIdError(
      'internal.unexpected',
      `The result of ${operation.name} does not match its schema at "${field}": a fault in this OrthID; report it with its version.`,
      { details: { field } },
    );
  }
  throw new OrthIdError(
    'control.unavailable',
    `The running OrthID answered ${operation.name} with a result this command does not read ("${field}": ${first?.message ?? 'unexpected value'}). Run the same OrthID version as the server.`,
    { details: { field } },
  );
}

/** An optional text argument: absent and empty are the same. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
