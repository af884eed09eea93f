import type { Warehouse } from './client';
import { renameTablesSql } from './cluster';
import { dropTable } from './tables';

/** Warehouse table housekeeping for the management API: renames, and dropping a schema's tables. */

/** Renames tables, all in one statement, e.g. when a source's prefix changes. */
export async function renameTables(wh: Warehouse, renames: { from: string; to: string }[]): Promise<void> {
  if (!renames.length) return;
  await wh.command(renameTablesSql(wh.database, renames, { cluster: wh.cluster }));
}

/** Which of `tables` exist in the warehouse. */
export async function existingTables(wh: Warehouse, tables: string[]): Promise<Set<string>> {
  if (!tables.length) return new Set();
  const rows = await wh.queryRows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)', {
    params: { db: wh.database, names: tables },
  });
  return new Set(rows.map((r) => r.name));
}

/** The warehouse's tables whose name starts with `prefix` (e.g. all the staging tables of one job, any attempt). */
export async function tablesStartingWith(wh: Warehouse, prefix: string): Promise<string[]> {
  const rows = await wh.queryRows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {p:String})', {
    params: { db: wh.database, p: prefix },
  });
  return rows.map((r) => r.name);
}

/** Drops every table whose name starts with `prefix`. */
export async function dropTablesStartingWith(wh: Warehouse, prefix: string): Promise<void> {
  for (const name of await tablesStartingWith(wh, prefix)) await dropTable(wh, name);
}

/**
 * Drops a schema's table (unless `keepLive`) and any staging tables a stopped full refresh left behind
 * (`<table>__loading_<job>_<attempt>`, see activities/context.ts).
 */
export async function dropSchemaTables(wh: Warehouse, table: string, opts: { keepLive: boolean }): Promise<void> {
  await dropTablesStartingWith(wh, `${table}__loading_`);
  if (!opts.keepLive) await dropTable(wh, table);
}
