import type { Queryable } from './db';

/** A file an imported table holds, at the version it was loaded (migrations/007). */
export interface ImportedFile {
  path: string;
  version: string;
  size: number;
}

export async function importedFiles(db: Queryable, schemaId: string): Promise<Map<string, string>> {
  const r = await db.query<{ path: string; version: string }>('SELECT path, version FROM imported_files WHERE schema_id = $1', [schemaId]);
  return new Map(r.rows.map((row) => [row.path, row.version]));
}

/** Records files as loaded (their rows are in the warehouse), replacing an older version's record. */
export async function recordImportedFiles(db: Queryable, schemaId: string, files: ImportedFile[]): Promise<void> {
  if (!files.length) return;
  await db.query(
    `INSERT INTO imported_files (schema_id, path, version, size)
       SELECT $1, f.path, f.version, f.size FROM jsonb_to_recordset($2::jsonb) AS f(path text, version text, size bigint)
     ON CONFLICT (schema_id, path) DO UPDATE SET version = EXCLUDED.version, size = EXCLUDED.size, loaded_at = now()`,
    [schemaId, JSON.stringify(files)],
  );
}

/** A full refresh replaces the whole table: what an append run had loaded no longer says anything. */
export async function forgetImportedFiles(db: Queryable, schemaId: string): Promise<void> {
  await db.query('DELETE FROM imported_files WHERE schema_id = $1', [schemaId]);
}
