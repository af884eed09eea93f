import { quoteIdent, type Warehouse } from './client';
import { alterTableSql, createRebuildSql, dropTableSql, exchangeTablesSql } from './cluster';
import { rawColumnName, type WarehouseColumn } from './columns';

/**
 * Keeps a live table's columns in step with its source between incremental runs: added columns are
 * added, dropped ones stay (filling with NULL) and are reported, and a changed type is widened when
 * every old value fits the new type — otherwise the run fails saying what changed and how to resync.
 * ClickHouse refuses to retype a sorting-key column (`int → bigint` on an `id`, code 524): such a table is
 * rebuilt in place from its own rows (see rebuildWithTypes).
 */
export interface EvolutionReport {
  added: string[];
  missingAtSource: string[];
  widened: string[];
}

export class IncompatibleSchemaChange extends Error {}

const INT_ORDER = ['Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256'];
const unwrapNullable = (t: string) => /^Nullable\((.*)\)$/.exec(t)?.[1] ?? t;

/** True when every value of `from` is exactly a value of `to`. */
export function isSafeWidening(from: string, to: string): boolean {
  if (from === to) return true;
  const f = unwrapNullable(from);
  const t = unwrapNullable(to);
  if (from.startsWith('Nullable(') && !to.startsWith('Nullable(')) return false;
  if (f === t) return true; // NOT NULL → Nullable
  const fi = INT_ORDER.indexOf(f);
  const ti = INT_ORDER.indexOf(t);
  if (fi >= 0 && ti >= 0) return ti >= fi;
  if (f === 'Float32' && t === 'Float64') return true;
  const fd = /^Decimal\((\d+), (\d+)\)$/.exec(f);
  const td = /^Decimal\((\d+), (\d+)\)$/.exec(t);
  if (fd && td) return Number(td[2]) >= Number(fd[2]) && Number(td[1]) - Number(td[2]) >= Number(fd[1]) - Number(fd[2]);
  return false;
}

export interface ExistingColumn {
  name: string;
  type: string;
  default_kind: string;
  default_expression?: string;
  /** 1 when the column is in the table's ORDER BY, which ClickHouse won't let an ALTER retype. */
  is_in_sorting_key?: number;
}

/** A live table's columns, in order; none when the table does not exist (one query answers both). */
export function tableColumns(wh: Warehouse, table: string): Promise<ExistingColumn[]> {
  return wh.queryRows<ExistingColumn>(
    `SELECT name, type, default_kind, default_expression, toUInt8(is_in_sorting_key) AS is_in_sorting_key
       FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position`,
    { params: { db: wh.database, t: table } },
  );
}

/**
 * Retypes columns ClickHouse can't ALTER (sorting-key ones) by rebuilding the table in place: a new table with
 * the same columns, engine, key and settings but the new types, filled from the live one (every raw row, versions
 * and all, so FINAL reads as before), then swapped in with EXCHANGE and the old one dropped. Rebuilding from the
 * warehouse's own rows rather than reloading from the source keeps what only the warehouse still has (an append
 * table's rows since purged at the source, a CDC table's versions) and needs no new source read. The table's
 * only writer is the caller (the sync or the CDC stream), which waits for this.
 */
export async function rebuildWithTypes(wh: Warehouse, table: string, types: Map<string, string>): Promise<void> {
  const db = quoteIdent(wh.database);
  const live = `${db}.${quoteIdent(table)}`;
  // A deterministic name: a rebuild cut short by a crash is dropped and done again by the next attempt.
  const rebuilt = `${table}__rebuild`;
  const fresh = `${db}.${quoteIdent(rebuilt)}`;
  const [columns, [info]] = await Promise.all([
    tableColumns(wh, table),
    wh.queryRows<{ engine_full: string }>('SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}', {
      params: { db: wh.database, t: table },
    }),
  ]);
  if (!info) throw new Error(`table ${table} does not exist`);
  const defs = columns.map((c) => {
    const clause = c.default_kind ? ` ${c.default_kind}${c.default_expression ? ` ${c.default_expression}` : ''}` : '';
    return `${quoteIdent(c.name)} ${types.get(c.name) ?? c.type}${clause}`;
  });
  const stored = columns.filter((c) => c.default_kind === '' || c.default_kind === 'DEFAULT');
  const list = stored.map((c) => quoteIdent(c.name)).join(', ');
  const select = stored.map((c) => (types.has(c.name) ? `CAST(${quoteIdent(c.name)} AS ${types.get(c.name)})` : quoteIdent(c.name))).join(', ');
  const ddl = { cluster: wh.cluster };
  await wh.command(dropTableSql(wh.database, rebuilt, ddl));
  await wh.command(createRebuildSql(wh.database, rebuilt, defs, info.engine_full, ddl));
  // Every row is copied as it is: identical blocks of the old table are data, not retried inserts.
  await wh.command(`INSERT INTO ${fresh} (${list}) SELECT ${select} FROM ${live}`, { insert_deduplicate: 0 });
  await wh.command(exchangeTablesSql(wh.database, rebuilt, table, ddl));
  await wh.command(dropTableSql(wh.database, rebuilt, ddl));
}

export async function evolveTable(wh: Warehouse, table: string, columns: WarehouseColumn[], existing?: ExistingColumn[]): Promise<EvolutionReport> {
  existing ??= await tableColumns(wh, table);
  const current = new Map(existing.filter((c) => c.default_kind !== 'EPHEMERAL').map((c) => [c.name, c.type]));
  const report: EvolutionReport = { added: [], missingAtSource: [], widened: [] };
  const alter = (action: string) => wh.command(alterTableSql(wh.database, table, action, { cluster: wh.cluster }));
  const inKey = new Set(existing.filter((c) => Number(c.is_in_sorting_key) === 1).map((c) => c.name));
  /** Retypes the sorting-key columns need: done together by one rebuild. */
  const rebuild = new Map<string, string>();
  const retype = async (name: string, type: string) => {
    if (inKey.has(name)) rebuild.set(name, type);
    else await alter(`MODIFY COLUMN ${quoteIdent(name)} ${type}`);
  };

  for (const col of columns) {
    const had = current.get(col.name);
    if (had === undefined) {
      // Rows already loaded predate the column: it must be able to hold NULL for them.
      const type = col.type.startsWith('Nullable(') || col.type.startsWith('Array(') ? col.type : `Nullable(${col.type})`;
      if (col.viaRaw) {
        await alter(`ADD COLUMN ${quoteIdent(rawColumnName(col.name))} ${col.viaRaw.rawType} EPHEMERAL`);
        await alter(`ADD COLUMN ${quoteIdent(col.name)} ${type} DEFAULT ${col.viaRaw.convert(quoteIdent(rawColumnName(col.name)))}`);
      } else {
        await alter(`ADD COLUMN ${quoteIdent(col.name)} ${type}`);
      }
      report.added.push(col.name);
    } else if (had !== col.type && !isSafeWidening(col.type, had)) {
      if (!isSafeWidening(had, col.type)) {
        throw new IncompatibleSchemaChange(
          `Column "${col.sourceName}" changed type at the source (${col.sourceType}: warehouse ${had} → ${col.type}), ` +
            `which cannot be widened without changing values. Resync the table from scratch (delete its data and sync again).`,
        );
      }
      await retype(col.name, col.type);
      report.widened.push(`${col.name}: ${had} → ${col.type}`);
    }
    current.delete(col.name);
  }
  for (const [name, type] of current) {
    if (name.startsWith('_tributary_')) continue;
    report.missingAtSource.push(name);
    if (!type.startsWith('Nullable(') && !type.startsWith('Array(')) await retype(name, `Nullable(${type})`);
  }
  if (rebuild.size) await rebuildWithTypes(wh, table, rebuild);
  return report;
}

export function evolutionWarnings(r: EvolutionReport): string[] {
  return [
    ...r.added.map((c) => `column ${c} was added at the source and to the warehouse table`),
    ...r.widened.map((c) => `column type widened: ${c}`),
    ...r.missingAtSource.map((c) => `column ${c} is no longer in the source; new rows have NULL in it`),
  ];
}
