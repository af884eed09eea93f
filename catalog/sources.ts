import crypto from 'node:crypto';
import type { Queryable } from './db';

export interface SourceRow {
  id: string;
  source_type: string;
  prefix: string;
  config: Record<string, unknown>;
  secrets: string | null;
  status: string;
  latest_error: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function insertSource(
  db: Queryable,
  s: { source_type: string; prefix: string; config: Record<string, unknown>; secrets: string | null },
): Promise<SourceRow> {
  const r = await db.query<SourceRow>(
    `INSERT INTO sources (id, source_type, prefix, config, secrets) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
    [crypto.randomUUID(), s.source_type, s.prefix, JSON.stringify(s.config), s.secrets],
  );
  return r.rows[0];
}

export async function getSource(db: Queryable, id: string): Promise<SourceRow | undefined> {
  return (await db.query<SourceRow>('SELECT * FROM sources WHERE id = $1', [id])).rows[0];
}

export async function getSourceByPrefix(db: Queryable, prefix: string): Promise<SourceRow | undefined> {
  return (await db.query<SourceRow>('SELECT * FROM sources WHERE prefix = $1', [prefix])).rows[0];
}

export async function listSources(db: Queryable): Promise<SourceRow[]> {
  return (await db.query<SourceRow>('SELECT * FROM sources ORDER BY created_at')).rows;
}

export async function updateSource(
  db: Queryable,
  id: string,
  s: { prefix?: string; config?: Record<string, unknown>; secrets?: string | null },
): Promise<SourceRow | undefined> {
  const r = await db.query<SourceRow>(
    `UPDATE sources SET prefix = COALESCE($2, prefix), config = COALESCE($3::jsonb, config),
            secrets = CASE WHEN $4::boolean THEN $5 ELSE secrets END, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [id, s.prefix ?? null, s.config ? JSON.stringify(s.config) : null, s.secrets !== undefined, s.secrets ?? null],
  );
  return r.rows[0];
}

/** Deletes the source; its schemas and jobs go with it (ON DELETE CASCADE). */
export async function deleteSource(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM sources WHERE id = $1', [id]);
}

/** Per source: the newest successful run and how many of its schemas are in each state. */
export interface SourceSummary {
  source_id: string;
  last_successful_run: Date | null;
  total: number;
  enabled: number;
  running: number;
  failed: number;
}

export async function sourceSummaries(db: Queryable): Promise<Map<string, SourceSummary>> {
  const r = await db.query<SourceSummary>(
    `SELECT s.id AS source_id,
            (SELECT max(j.finished_at) FROM jobs j WHERE j.source_id = s.id AND j.status = 'Completed') AS last_successful_run,
            count(sc.id)::int AS total,
            (count(sc.id) FILTER (WHERE sc.should_sync))::int AS enabled,
            (count(sc.id) FILTER (WHERE sc.should_sync AND sc.status = 'Running'))::int AS running,
            (count(sc.id) FILTER (WHERE sc.should_sync AND sc.status = 'Failed'))::int AS failed
       FROM sources s LEFT JOIN schemas sc ON sc.source_id = s.id
      GROUP BY s.id`,
  );
  return new Map(r.rows.map((row) => [row.source_id, row]));
}
