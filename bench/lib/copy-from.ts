// COPY … FROM STDIN through node-postgres without another package: a "submittable" (the hook
// pg-cursor and pg-copy-streams use) that answers PostgreSQL's CopyInResponse with the chunks
// of an async iterable, honouring the socket's back-pressure. Text format helpers included.
import type pg from 'pg';

interface CopyConnection {
  stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

class CopyFromStdin {
  rows = 0;
  #failed: Error | undefined;

  constructor(
    readonly text: string,
    readonly source: AsyncIterable<Buffer | string>,
    readonly done: (error: Error | null, rows: number) => void,
  ) {}

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    (async () => {
      for await (const chunk of this.source) {
        connection.sendCopyFromChunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
        if (connection.stream.writableNeedDrain) {
          await new Promise((resolve) => connection.stream.once('drain', resolve));
        }
      }
      connection.endCopyFrom();
    })().catch((error: Error) => {
      this.#failed = error;
      connection.sendCopyFail(String(error.message));
    });
  }

  handleCommandComplete(message: { text?: string; rowCount?: number }): void {
    this.rows = message.rowCount ?? Number(/(\d+)$/.exec(message.text ?? '')?.[1] ?? 0);
  }

  handleError(error: Error): void {
    this.#failed ??= error;
  }

  handleReadyForQuery(): void {
    this.done(this.#failed ?? null, this.rows);
  }

  // Not sent during COPY FROM; present because the client may call them on any query.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY table (columns) FROM STDIN` with the chunks `source` yields; resolves to the row count. */
export function copyFrom(
  client: pg.Client | pg.PoolClient,
  sql: string,
  source: AsyncIterable<Buffer | string>,
) {
  return new Promise<number>((resolve, reject) => {
    const copy = new CopyFromStdin(sql, source, (error, rows) => (error ? reject(error) : resolve(rows)));
    client.query(copy as unknown as pg.QueryConfig);
  });
}

/** One value in COPY's text format: \N for null, backslash escapes for the special characters. */
export function copyValue(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  const text = String(value);
  return /[\\\t\n\r]/.test(text)
    ? text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : text;
}

export function copyLine(values: (string | number | boolean | null | undefined)[]): string {
  return `${values.map(copyValue).join('\t')}\n`;
}
