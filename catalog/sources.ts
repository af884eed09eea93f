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
