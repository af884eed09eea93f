import { query, type RunningPlatform } from './platform';

/** A row of the change log (`_tributary_changes`) with its JSON parsed, as read through POST /api/query. */
export interface Change {
  op: string;
  key: Record<string, unknown>;
  row: Record<string, unknown>;
  old_row: Record<string, unknown> | null;
  version: string;
}

/** The change log of a warehouse table, in order. */
export async function tableChanges(platform: RunningPlatform, table: string): Promise<Change[]> {
  const rows = await query(
    platform,
    `SELECT toString(op) AS op, key, row, old_row, toString(version) AS version FROM _tributary_changes WHERE \`table\` = '${table}' ORDER BY batch, seq`,
  );
  return rows.map((r) => ({ op: r.op, key: JSON.parse(r.key), row: JSON.parse(r.row), old_row: r.old_row === null ? null : JSON.parse(r.old_row), version: r.version }));
}

/** Waits (up to `timeoutMs`) until the table's change log holds at least `n` changes, and returns them. */
export async function tableChangesWhen(platform: RunningPlatform, table: string, n: number, timeoutMs = 60_000): Promise<Change[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await tableChanges(platform, table);
    if (c.length >= n) return c;
    if (Date.now() > deadline) throw new Error(`${table}: ${c.length}/${n} changes: ${JSON.stringify(c).slice(0, 3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
