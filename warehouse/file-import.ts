import { settingsClause } from '../connectors/files/sql';
import type { FileTableReader } from '../connectors/types';
import { quoteIdent, sqlString } from './client';
import { rawColumnName, type WarehouseColumn } from './columns';

/**
 * Imported files tables (a files source's table with sync_type full_refresh or append): the engine copies the
 * files into a MergeTree itself. Every row carries the path of the file it came from, so that a rewritten file's
 * old rows can be deleted before it is loaded again.
 */
export const FILE_COLUMN: WarehouseColumn = { name: '_tributary_file', sourceName: '_path', type: 'LowCardinality(String)', sourceType: 'path', nullable: false };

/** A file the table's pattern matches now; `version` tells a rewrite apart (the ETag, else size and mtime). */
export interface ListedFile {
  path: string;
  version: string;
  size: number;
}

/**
 * The files and their versions, without reading them (format `One`: a row per file). An object store's listing
 * gives each file's ETag; where there is none (a local folder, a store that lists none) size and mtime stand in,
 * which can miss a rewrite that keeps both within the same second.
 */
export function listFilesSql(reader: FileTableReader): string {
  const etag = reader.hasEtag ? '_etag' : "''";
  return `SELECT _path AS path, ${etag} AS etag, toString(_size) AS size, toString(toUnixTimestamp(_time)) AS mtime FROM ${reader.from('One')} ORDER BY _path${settingsClause(reader.settings ?? {})}`;
}

export function fileVersion(row: { etag: string; size: string; mtime: string }): string {
  const etag = row.etag.replace(/^"|"$/g, '');
  return etag ? `etag:${etag}` : `size:${row.size};mtime:${row.mtime}`;
}

/**
 * Copies the table's files (only `paths`, when given) into `table`: source columns by their source names, the
 * file's path, and the run's version. `insert_deduplicate = 0`: a file loaded again after its rows were deleted
 * (a crashed attempt, a rewrite back to an earlier content) must not be dropped as a repeat of the earlier insert.
 */
export function importFilesSql(database: string, table: string, columns: WarehouseColumn[], reader: FileTableReader, version: bigint, paths?: string[]): string {
  const cols = [...columns.filter((c) => c.name !== FILE_COLUMN.name), FILE_COLUMN];
  const targets = cols.map((c) => quoteIdent(c.viaRaw ? rawColumnName(c.name) : c.name));
  const values = cols.map((c) => quoteIdent(c.sourceName));
  const where = paths ? ` WHERE _path IN (${paths.map(sqlString).join(', ')})` : '';
  const settings = { ...(reader.settings ?? {}), insert_deduplicate: 0 };
  return (
    `INSERT INTO ${quoteIdent(database)}.${quoteIdent(table)} (${targets.join(', ')}, _tributary_version) ` +
    `SELECT ${values.join(', ')}, ${version.toString()} FROM ${reader.from()}${where}${settingsClause(settings)}`
  );
}

/** The rows of these files, gone at once for readers (a lightweight delete), before the files are loaded again. */
export function deleteFilesSql(database: string, table: string, paths: string[]): string {
  return `DELETE FROM ${quoteIdent(database)}.${quoteIdent(table)} WHERE ${quoteIdent(FILE_COLUMN.name)} IN (${paths.map(sqlString).join(', ')}) SETTINGS lightweight_deletes_sync = 2`;
}

/** The pending files in slices of at most `maxFiles` files and about `maxBytes`: each slice is one insert and one record. */
export function slices(files: ListedFile[], maxFiles: number, maxBytes: number): ListedFile[][] {
  const out: ListedFile[][] = [];
  let cur: ListedFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (cur.length && (cur.length >= maxFiles || bytes + f.size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length) out.push(cur);
  return out;
}
