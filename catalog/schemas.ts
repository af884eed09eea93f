import crypto from 'node:crypto';
import type { Queryable } from './db';

export interface SchemaRow {
  id: string;
  source_id: string;
  name: string;
  should_sync: boolean;
  sync_type: string | null;
  sync_frequency: string;
  incremental_field: string | null;
  incremental_field_type: string | null;
  primary_key_columns: string[] | null;
  status: string | null;
  last_synced_at: Date | null;
  rows_synced: string | number | null;
  sync_cursor: unknown;
  latest_error: string | null;
  /** CDC: when the table's snapshot completed (NULL: a snapshot is needed). */
  cdc_snapshot_at?: Date | null;
  /** Linked file tables: the columns inferred from the files, and the user's type overrides. */
  linked_columns?: { name: string; type: string }[] | null;
  linked_type_overrides?: Record<string, string> | null;
  created_at: Date;
  updated_at: Date;
}

export type NewSchema = Pick<
  SchemaRow,
  'name' | 'should_sync' | 'sync_type' | 'sync_frequency' | 'incremental_field' | 'incremental_field_type' | 'primary_key_columns'
>;

export async function insertSchema(db: Queryable, sourceId: string, s: NewSchema): Promise<SchemaRow> {
  const r = await db.query<SchemaRow>(
    `INSERT INTO schemas (id, source_id, name, should_sync, sync_type, sync_frequency, incremental_field,
                          incremental_field_type, primary_key_columns)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
    [
      crypto.randomUUID(),
      sourceId,
      s.name,
      s.should_sync,
      s.sync_type,
      s.sync_frequency,
      s.incremental_field,
      s.incremental_field_type,
      s.primary_key_columns ? JSON.stringify(s.primary_key_columns) : null,
    ],
  );
  return r.rows[0];
}

export async function getSchema(db: Queryable, id: string): Promise<SchemaRow | undefined> {
  return (await db.query<SchemaRow>('SELECT * FROM schemas WHERE id = $1', [id])).rows[0];
}

export async function listSchemas(db: Queryable, sourceId: string): Promise<SchemaRow[]> {
  return (await db.query<SchemaRow>('SELECT * FROM schemas WHERE source_id = $1 ORDER BY name', [sourceId])).rows;
}

export async function listSyncingSchemas(db: Queryable): Promise<SchemaRow[]> {
  return (await db.query<SchemaRow>('SELECT * FROM schemas WHERE should_sync ORDER BY created_at')).rows;
}

export async function markSchemaRunning(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE schemas SET status = 'Running', updated_at = now() WHERE id = $1`, [id]);
}

export async function markSchemaCompleted(db: Queryable, id: string, rows: number, cursor?: unknown): Promise<void> {
  await db.query(
    `UPDATE schemas SET status = 'Completed', last_synced_at = now(), rows_synced = $2, latest_error = NULL,
            sync_cursor = COALESCE($3::jsonb, sync_cursor), updated_at = now() WHERE id = $1`,
    [id, rows, cursor === undefined ? null : JSON.stringify(cursor)],
  );
}

export async function markSchemaFailed(db: Queryable, id: string, error: string): Promise<void> {
  await db.query(`UPDATE schemas SET status = 'Failed', latest_error = $2, updated_at = now() WHERE id = $1`, [id, error]);
}

/** The columns a user may change on a schema (PATCH /api/schemas/:id and the bulk actions). */
export type SchemaSettings = Partial<
  Pick<SchemaRow, 'should_sync' | 'sync_type' | 'sync_frequency' | 'incremental_field' | 'incremental_field_type' | 'primary_key_columns'>
>;

export async function updateSchemaSettings(db: Queryable, id: string, s: SchemaSettings): Promise<SchemaRow | undefined> {
  const sets: string[] = [];
  const params: unknown[] = [id];
  for (const [k, v] of Object.entries(s)) {
    if (v === undefined) continue;
    const value = k === 'primary_key_columns' && v !== null ? JSON.stringify(v) : v;
    sets.push(`${k} = $${params.push(value)}`);
  }
  if (!sets.length) return getSchema(db, id);
  const r = await db.query<SchemaRow>(`UPDATE schemas SET ${sets.join(', ')}, updated_at = now() WHERE id = $1 RETURNING *`, params);
  return r.rows[0];
}

/**
 * Forgets what was synced (after the warehouse table is dropped, or the cursor's meaning changed):
 * the next run starts from scratch instead of from a cursor into data that is gone (an imported files
 * table: instead of skipping files whose rows are gone).
 */
export async function resetSchemaSyncState(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM imported_files WHERE schema_id = $1', [id]);
  await db.query(
    `UPDATE schemas SET sync_cursor = NULL, status = NULL, last_synced_at = NULL, rows_synced = NULL, latest_error = NULL,
            updated_at = now() WHERE id = $1`,
    [id],
  );
}

export async function getSchemasByIds(db: Queryable, ids: string[]): Promise<SchemaRow[]> {
  // One text parameter (ids are validated UUIDs): array parameters differ between PGlite and pg.
  const r = await db.query<SchemaRow>(`SELECT * FROM schemas WHERE id::text = ANY(string_to_array($1, ',')) ORDER BY name`, [ids.join(',')]);
  return r.rows;
}

/** Schemas whose last run said it was running: candidates for a liveness check against Temporal. */
export async function listRunningSchemas(db: Queryable, sourceId?: string): Promise<SchemaRow[]> {
  const r = sourceId
    ? await db.query<SchemaRow>(`SELECT * FROM schemas WHERE status = 'Running' AND source_id = $1`, [sourceId])
    : await db.query<SchemaRow>(`SELECT * FROM schemas WHERE status = 'Running'`);
  return r.rows;
}

/** A deletion in progress: nothing of the source syncs again, a restart's reconciliation included. */
export async function disableSourceSchemas(db: Queryable, sourceId: string): Promise<void> {
  await db.query(`UPDATE schemas SET should_sync = false, updated_at = now() WHERE source_id = $1 AND should_sync`, [sourceId]);
}

/** Marks a run that ended unseen (terminated in Temporal) as failed, unless the schema moved on meanwhile. */
export async function failStaleRun(db: Queryable, id: string, error: string): Promise<boolean> {
  const r = await db.query(`UPDATE schemas SET status = 'Failed', latest_error = $2, updated_at = now() WHERE id = $1 AND status = 'Running' RETURNING id`, [id, error]);
  return r.rows.length > 0;
}

/** Linked file tables: the columns inferred (null: keep) and the user's type overrides (null: keep). */
export async function setLinkedColumns(
  db: Queryable,
  id: string,
  columns: { name: string; type: string }[] | null,
  overrides: Record<string, string> | null,
): Promise<SchemaRow | undefined> {
  const r = await db.query<SchemaRow>(
    `UPDATE schemas SET linked_columns = COALESCE($2::jsonb, linked_columns), linked_type_overrides = COALESCE($3::jsonb, linked_type_overrides),
            updated_at = now() WHERE id = $1 RETURNING *`,
    [id, columns ? JSON.stringify(columns) : null, overrides ? JSON.stringify(overrides) : null],
  );
  return r.rows[0];
}

/** Every enabled linked table, for re-creating them at an engine start. */
export async function listLinkedSchemas(db: Queryable): Promise<SchemaRow[]> {
  return (await db.query<SchemaRow>(`SELECT * FROM schemas WHERE should_sync AND sync_type = 'linked' ORDER BY created_at`)).rows;
}
