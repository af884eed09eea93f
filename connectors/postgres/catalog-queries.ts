import type pg from 'pg';
import type { PgColumn } from './types';

/** Reads of Postgres's system catalogs used by discover and describe. */

export async function listTables(client: pg.Client, schema: string) {
  const r = await client.query<{ name: string; kind: string; estimate: string; comment: string | null }>(
    `SELECT c.relname AS name, c.relkind AS kind, c.reltuples::bigint AS estimate, obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
      ORDER BY c.relname`,
    [schema],
  );
  return r.rows;
}

export async function schemaExists(client: pg.Client, schema: string): Promise<boolean> {
  const r = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return r.rowCount === 1;
}

export async function listColumns(client: pg.Client, schema: string): Promise<Map<string, PgColumn[]>> {
  const r = await client.query<PgColumn & { table: string }>(
    `SELECT c.relname AS table, a.attname AS name, t.typname AS typname,
            format_type(a.atttypid, a.atttypmod) AS formatted, a.atttypmod AS typmod,
            et.typname AS "elemTypname", NOT a.attnotnull AS nullable
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t0 ON t0.oid = a.atttypid
       -- domains behave as their base type
       JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
      WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      ORDER BY c.relname, a.attnum`,
    [schema],
  );
  const byTable = new Map<string, PgColumn[]>();
  for (const { table, ...col } of r.rows) {
    if (!byTable.has(table)) byTable.set(table, []);
    byTable.get(table)!.push(col);
  }
  return byTable;
}

export async function listPrimaryKeys(client: pg.Client, schema: string): Promise<Map<string, string[]>> {
  const r = await client.query<{ table: string; columns: string[] }>(
    `SELECT c.relname AS table, array_agg(a.attname ORDER BY k.ord)::text[] AS columns
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE n.nspname = $1 AND i.indisprimary
      GROUP BY c.relname`,
    [schema],
  );
  return new Map(r.rows.map((row) => [row.table, row.columns]));
}
