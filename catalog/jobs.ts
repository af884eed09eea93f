import crypto from 'node:crypto';
import type { Queryable } from './db';

export interface JobRow {
  id: string;
  schema_id: string;
  source_id: string;
  status: 'Running' | 'Completed' | 'Failed';
  rows_synced: string | number;
  started_at: Date;
  finished_at: Date | null;
  latest_error: string | null;
  warnings: string[];
  workflow_id: string | null;
  workflow_run_id: string | null;
  sync_version: string | number;
}

export async function startJob(
  db: Queryable,
  j: { schemaId: string; sourceId: string; workflowId: string; runId: string },
): Promise<JobRow> {
  // A retried activity must not open a second job for the same run.
  const existing = await db.query<JobRow>(
    `SELECT * FROM jobs WHERE workflow_id = $1 AND workflow_run_id = $2`,
    [j.workflowId, j.runId],
  );
  if (existing.rows[0]) return existing.rows[0];
  const r = await db.query<JobRow>(
    `INSERT INTO jobs (id, schema_id, source_id, status, workflow_id, workflow_run_id)
     VALUES ($1, $2, $3, 'Running', $4, $5) RETURNING *`,
    [crypto.randomUUID(), j.schemaId, j.sourceId, j.workflowId, j.runId],
  );
  return r.rows[0];
}

export async function finishJob(
  db: Queryable,
  id: string,
  outcome: { status: 'Completed' | 'Failed'; rows: number; error?: string; warnings?: string[] },
): Promise<JobRow | undefined> {
  const r = await db.query<JobRow>(
    `UPDATE jobs SET status = $2, rows_synced = $3, latest_error = $4, warnings = $5, finished_at = now()
      WHERE id = $1 RETURNING *`,
    [id, outcome.status, outcome.rows, outcome.error ?? null, JSON.stringify(outcome.warnings ?? [])],
  );
  return r.rows[0];
}

export async function listJobs(
  db: Queryable,
  filter: { schemaId?: string; sourceId?: string; status?: string; limit: number },
): Promise<JobRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.schemaId) where.push(`schema_id = $${params.push(filter.schemaId)}`);
  if (filter.sourceId) where.push(`source_id = $${params.push(filter.sourceId)}`);
  if (filter.status) where.push(`status = $${params.push(filter.status)}`);
  const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
               ORDER BY started_at DESC LIMIT $${params.push(filter.limit)}`;
  return (await db.query<JobRow>(sql, params)).rows;
}

/** Runs stopped from outside (terminated workflows) never finish by themselves: close their job rows. */
export async function cancelRunningJobs(db: Queryable, schemaId: string, reason: string): Promise<number> {
  const r = await db.query(
    `UPDATE jobs SET status = 'Failed', latest_error = $2, finished_at = now() WHERE schema_id = $1 AND status = 'Running' RETURNING id`,
    [schemaId, reason],
  );
  return r.rows.length;
}

export async function hasCompletedJob(db: Queryable, schemaId: string): Promise<boolean> {
  const r = await db.query(`SELECT 1 FROM jobs WHERE schema_id = $1 AND status = 'Completed' LIMIT 1`, [schemaId]);
  return r.rows.length > 0;
}

/** The schema's jobs still open in the catalog, with the Temporal run each belongs to. */
export async function openJobs(db: Queryable, schemaId: string): Promise<{ id: string; workflow_id: string | null; workflow_run_id: string | null }[]> {
  const r = await db.query<JobRow>(`SELECT id, workflow_id, workflow_run_id FROM jobs WHERE schema_id = $1 AND status = 'Running'`, [schemaId]);
  return r.rows;
}

/** Closes the given jobs as failed (their runs ended without recording an outcome). */
export async function failJobs(db: Queryable, ids: string[], reason: string): Promise<void> {
  if (!ids.length) return;
  await db.query(`UPDATE jobs SET status = 'Failed', latest_error = $2, finished_at = now() WHERE id::text = ANY(string_to_array($1, ',')) AND status = 'Running'`, [
    ids.join(','),
    reason,
  ]);
}
