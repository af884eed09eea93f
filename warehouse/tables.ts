import { quoteIdent, sqlString, type Warehouse } from './client';
import { alterTableSql, dropTableSql, exchangeTablesSql, renameTablesSql } from './cluster';
import { snakeCase } from './columns';

/** `{prefix}_{table}` in lowercase snake case, so `SELECT * FROM stripe_charge FINAL` just works. */
export function warehouseTableName(prefix: string, table: string): string {
  return `${snakeCase(prefix)}_${snakeCase(table) || 'table'}`;
}

export { createTableSql, type TableEngine } from './cluster';

export async function tableExists(wh: Warehouse, table: string): Promise<boolean> {
  const rows = await wh.queryRows<{ n: string | number }>(
    'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}',
    { params: { db: wh.database, t: table } },
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

/** A table's sorting key (the primary key it was created with), as column names; none for `tuple()`. */
export async function sortingKey(wh: Warehouse, table: string): Promise<string[]> {
  const r = await wh.queryRows<{ k: string }>('SELECT sorting_key AS k FROM system.tables WHERE database = {db:String} AND name = {t:String}', { params: { db: wh.database, t: table } });
  const k = r[0]?.k ?? '';
  return k ? k.split(',').map((x) => x.trim().replace(/^`(.*)`$/, '$1')) : [];
}

export async function dropTable(wh: Warehouse, table: string): Promise<void> {
  await wh.command(dropTableSql(wh.database, table, { cluster: wh.cluster }));
}

/**
 * Makes `fresh` the live `target` atomically: EXCHANGE when the target exists (readers never see
 * a half-loaded table), RENAME on the first load. The previous data ends up in `fresh`, then dropped.
 */
export async function swapIn(wh: Warehouse, fresh: string, target: string): Promise<void> {
  const ddl = { cluster: wh.cluster };
  if (await tableExists(wh, target)) {
    await wh.command(exchangeTablesSql(wh.database, fresh, target, ddl));
    await dropTable(wh, fresh);
  } else {
    await wh.command(renameTablesSql(wh.database, [{ from: fresh, to: target }], ddl));
  }
}

/**
 * Makes `fresh` the live `target` as swapIn does, but keeps the table it replaces under the name `fresh` (a full
 * refresh records its changes from the two after publishing; the caller drops it then). `marker` (the job's own,
 * set as `fresh`'s table comment, which EXCHANGE carries along) makes a retry after the swap a no-op instead of a
 * second EXCHANGE that would put the old table back. Returns whether there was a previous table (now `fresh`).
 */
export async function swapInKeepingPrevious(wh: Warehouse, fresh: string, target: string, marker: string): Promise<{ previous: boolean }> {
  const rows = await wh.queryRows<{ name: string; comment: string }>(
    'SELECT name, comment FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)',
    { params: { db: wh.database, names: [fresh, target] } },
  );
  const live = rows.find((r) => r.name === target);
  const hasFresh = rows.some((r) => r.name === fresh);
  if (live?.comment === marker) return { previous: hasFresh };
  if (!hasFresh) throw new Error(`cannot publish: ${fresh} does not exist`);
  const ddl = { cluster: wh.cluster };
  await wh.command(alterTableSql(wh.database, fresh, `MODIFY COMMENT ${sqlString(marker)}`, ddl));
  if (live) await wh.command(exchangeTablesSql(wh.database, fresh, target, ddl));
  else await wh.command(renameTablesSql(wh.database, [{ from: fresh, to: target }], ddl));
  return { previous: !!live };
}

/**
 * After a refresh in place wrote every row the source still has at `version`: the live rows below it are
 * gone at the source, so each gets a deletion row at `version` (FINAL then hides it). A row a webhook wrote
 * meanwhile has a newer version and is left alone.
 */
export async function markMissingDeleted(wh: Warehouse, table: string, version: bigint): Promise<void> {
  const columns = await wh.queryRows<{ name: string }>(
    `SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}
        AND default_kind NOT IN ('EPHEMERAL', 'ALIAS', 'MATERIALIZED') AND NOT startsWith(name, '_tributary_') ORDER BY position`,
    { params: { db: wh.database, t: table } },
  );
  const list = columns.map((c) => quoteIdent(c.name)).join(', ');
  const target = `${quoteIdent(wh.database)}.${quoteIdent(table)}`;
  await wh.command(
    `INSERT INTO ${target} (${list}, _tributary_version, _tributary_is_deleted) SELECT ${list}, ${version.toString()}, 1 FROM ${target} FINAL WHERE _tributary_version < ${version.toString()}`,
  );
}
