import type { Queryable } from './db';

/** The engine time up to which a schema's batch-written rows are in the change log (migrations/005). */
export async function changesRecordedTo(db: Queryable, schemaId: string): Promise<string | null> {
  const r = await db.query<{ t: string | null }>('SELECT changes_recorded_to AS t FROM schemas WHERE id = $1', [schemaId]);
  return r.rows[0]?.t ?? null;
}

export async function setChangesRecordedTo(db: Queryable, schemaId: string, to: string): Promise<void> {
  await db.query('UPDATE schemas SET changes_recorded_to = $2 WHERE id = $1', [schemaId, to]);
}
