// The contract for running SQL, shared by the storage drivers that implement it and the domain
// modules (*.queries.ts) that use it; defined here so neither side imports the other.

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** Anything SQL can be sent to: a connection inside a transaction. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations, restores). */
  exec(sql: string): Promise<void>;
}
