// The SQL of auditing the deployment binding: whether the system tenant's log already records it.
import type { Queryable } from '../core/sql.js';

/** Whether the entered tenant's audit log holds an event `action` on `target`. */
export async function hasAuditEvent(tx: Queryable, action: string, target: string): Promise<boolean> {
  const { rows } = await tx.query('SELECT 1 FROM audit_events WHERE action = $1 AND target = $2 LIMIT 1', [
    action,
    target,
  ]);
  return rows.length > 0;
}
