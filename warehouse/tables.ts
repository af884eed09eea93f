import { quoteIdent, sqlString, type Warehouse } from './client';
import { onCluster, replicatedEngine } from './cluster';
import { BOOKKEEPING_COLUMNS, rawColumnName, snakeCase, type WarehouseColumn } from './columns';

/** `{prefix}_{table}` in lowercase snake case, so `SELECT * FROM stripe_charge FINAL` just works. */
export function warehouseTableName(prefix: string, table: string): string {
  return `${snakeCase(prefix)}_${snakeCase(table) || 'table'}`;
}

export type TableEngine =
  | { kind: 'ReplacingMergeTree'; orderBy: string[] }
  | { kind: 'MergeTree'; orderBy: string[] };

function engineClause(engine: TableEngine, cluster?: string): string {
  const keys = engine.orderBy.map(quoteIdent);
  const orderBy = keys.length === 0 ? 'tuple()' : keys.length === 1 ? keys[0] : `(${keys.join(', ')})`;
  const name = engine.kind === 'ReplacingMergeTree' ? 'ReplacingMergeTree(_tributary_version, _tributary_is_deleted)' : 'MergeTree';
  return `ENGINE = ${cluster ? replicatedEngine(name) : name} ORDER BY ${orderBy}`;
}

export function createTableSql(database: string, table: string, columns: WarehouseColumn[], engine: TableEngine, opts: { ifNotExists?: boolean; cluster?: string } = {}): string {
  const defs: string[] = [];
  for (const c of columns) {
    if (c.viaRaw) {
      const raw = rawColumnName(c.name);
      defs.push(`${quoteIdent(raw)} ${c.viaRaw.rawType} EPHEMERAL`);
      defs.push(`${quoteIdent(c.name)} ${c.type} DEFAULT ${c.viaRaw.convert(quoteIdent(raw))}`);
    } else {
      defs.push(`${quoteIdent(c.name)} ${c.type}`);
    }
  }
  for (const b of BOOKKEEPING_COLUMNS) defs.push(`${b.name} ${b.type} DEFAULT ${b.default}`);
  // Deduplication of repeated insert blocks (by insert_deduplication_token) makes a retried batch
  // harmless even in a plain MergeTree. Nullable sort keys are refused by default; allow them.
  // (Replicated tables deduplicate by replicated_deduplication_window, on by default.)
  const list = [...(opts.cluster ? [] : ['non_replicated_deduplication_window = 1000']), ...(engine.orderBy.length ? ['allow_nullable_key = 1'] : [])];
  const settings = list.length ? ` SETTINGS ${list.join(', ')}` : '';
  return `CREATE TABLE ${opts.ifNotExists ? 'IF NOT EXISTS ' : ''}${quoteIdent(database)}.${quoteIdent(table)}${onCluster(opts.cluster)} (\n  ${defs.join(',\n  ')}\n) ${engineClause(engine, opts.cluster)}${settings}`;
}

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
  await wh.command(`DROP TABLE IF EXISTS ${quoteIdent(wh.database)}.${quoteIdent(table)}${onCluster(wh.cluster)}${wh.cluster ? ' SYNC' : ''}`);
}

/**
 * Makes `fresh` the live `target` atomically: EXCHANGE when the target exists (readers never see
 * a half-loaded table), RENAME on the first load. The previous data ends up in `fresh`, then dropped.
 */
export async function swapIn(wh: Warehouse, fresh: string, target: string): Promise<void> {
  const db = quoteIdent(wh.database);
  if (await tableExists(wh, target)) {
    await wh.command(`EXCHANGE TABLES ${db}.${quoteIdent(fresh)} AND ${db}.${quoteIdent(target)}${onCluster(wh.cluster)}`);
    await dropTable(wh, fresh);
  } else {
    await wh.command(`RENAME TABLE ${db}.${quoteIdent(fresh)} TO ${db}.${quoteIdent(target)}${onCluster(wh.cluster)}`);
  }
}

/**
 * Makes `fresh` the live `target` as swapIn does, but keeps the table it replaces under the name `fresh` (a full
 * refresh records its changes from the two after publishing; the caller drops it then). `marker` (the job's own,
 * set as `fresh`'s table comment, which EXCHANGE carries along) makes a retry after the swap a no-op instead of a
 * second EXCHANGE that would put the old table back. Returns whether there was a previous table (now `fresh`).
 */
export async function swapInKeepingPrevious(wh: Warehouse, fresh: string, target: string, marker: string): Promise<{ previous: boolean }> {
  const db = quoteIdent(wh.database);
  const rows = await wh.queryRows<{ name: string; comment: string }>(
    'SELECT name, comment FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)',
    { params: { db: wh.database, names: [fresh, target] } },
  );
  const live = rows.find((r) => r.name === target);
  const hasFresh = rows.some((r) => r.name === fresh);
  if (live?.comment === marker) return { previous: hasFresh };
  if (!hasFresh) throw new Error(`cannot publish: ${fresh} does not exist`);
  const c = onCluster(wh.cluster);
  await wh.command(`ALTER TABLE ${db}.${quoteIdent(fresh)}${c} MODIFY COMMENT ${sqlString(marker)}`);
  if (live) await wh.command(`EXCHANGE TABLES ${db}.${quoteIdent(fresh)} AND ${db}.${quoteIdent(target)}${c}`);
  else await wh.command(`RENAME TABLE ${db}.${quoteIdent(fresh)} TO ${db}.${quoteIdent(target)}${c}`);
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
