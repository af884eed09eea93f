import { rowJsonExpr } from './change-log';
import { quoteIdent, type Warehouse } from './client';
import { createScratchTableAsSql, dropScratchTableSql } from './cluster';
import type { ExistingColumn } from './evolution';

/**
 * The SELECTs batch write paths hand to `recordChanges` (activities/change-recorder.ts), all computed inside the
 * engine from the tables themselves: a full refresh compares its new live table with the one the swap replaced;
 * an incremental run (or a webhook batch) compares the rows it wrote with the rows of the same keys before them;
 * an append run's rows are inserts. Each yields op, key, row, old_row, version (warehouse/change-log.ts). A delete's
 * `row` is its key and its `old_row` the row as it was.
 */

/** A table's own columns: what a change's row holds (no bookkeeping, no raw load columns). */
export function dataColumns(columns: ExistingColumn[]): ExistingColumn[] {
  return columns.filter((c) => !c.name.startsWith('_tributary_') && !['EPHEMERAL', 'ALIAS', 'MATERIALIZED'].includes(c.default_kind));
}

const ref = (alias: string, c: string) => `${alias}.${quoteIdent(c)}`;

/**
 * What a refresh compares rows by: a hash over the new table's columns, each side read alike. A column whose type
 * differs between the two is compared as text on both sides (an `int → bigint` widening alone changes no row); one
 * the old table lacks makes every row differ (a column appeared).
 */
function hashes(columns: ExistingColumn[], old: ExistingColumn[]): { fresh: string; old: string } {
  const liveTypes = new Map(old.map((c) => [c.name, c.type]));
  const asText = new Set(columns.filter((c) => liveTypes.has(c.name) && liveTypes.get(c.name) !== c.type).map((c) => c.name));
  const freshParts = columns.map((c) => (asText.has(c.name) ? `toString(${quoteIdent(c.name)})` : quoteIdent(c.name)));
  const oldParts = columns.map((c) => (!liveTypes.has(c.name) ? `'\\0absent'` : asText.has(c.name) ? `toString(${quoteIdent(c.name)})` : quoteIdent(c.name)));
  const h = (parts: string[]) => (parts.length ? `sipHash64(tuple(${parts.join(', ')}))` : 'toUInt64(0)');
  return { fresh: h(freshParts), old: h(oldParts) };
}

export interface RefreshDiff {
  database: string;
  /** The table the refresh loaded: live once published (the changes are recorded after the swap). */
  fresh: string;
  /** The table it replaced, which the swap leaves under the staging name until the changes are recorded. */
  old: string;
  key: string[];
  freshColumns: ExistingColumn[];
  /** The replaced table's columns; none: a first load. */
  oldColumns: ExistingColumn[];
  version: bigint;
  /** The scratch table the changed keys are put in (dropped by the caller). */
  diffTable: string;
  /**
   * The fresh table may hold a key twice (a resumed load wrote a batch again): read it with FINAL. A load that
   * starts over (Postgres COPY of a keyed table) cannot, and skipping FINAL halves a first load's recording.
   */
  freshFinal: boolean;
}

const freshRef = (d: Pick<RefreshDiff, 'database' | 'fresh' | 'freshFinal'>) => `${quoteIdent(d.database)}.${quoteIdent(d.fresh)}${d.freshFinal ? ' FINAL' : ''}`;

/** A first load: every row is an insert. */
export function firstLoadChangesSql(d: Omit<RefreshDiff, 'old' | 'oldColumns' | 'diffTable'>): string {
  // A row a resumed load deleted is no change.
  const cols = dataColumns(d.freshColumns).map((c) => c.name);
  return `SELECT 'insert' AS op, ${rowJsonExpr(d.key)} AS key, ${rowJsonExpr(cols)} AS row, CAST(NULL, 'Nullable(String)') AS old_row, toUInt64(${d.version}) AS version
    FROM ${freshRef(d)} WHERE _tributary_is_deleted = 0`;
}

/**
 * Step 1 of a refresh's diff: the keys that appeared, changed or vanished, with their op, into `diffTable`. Only
 * the keys and a hash of each row take part in the join (the old side's are what the join holds in memory).
 */
export function refreshDiffKeysSql(d: RefreshDiff): string {
  const db = quoteIdent(d.database);
  const fresh = dataColumns(d.freshColumns);
  const { fresh: hs, old: hl } = hashes(fresh, dataColumns(d.oldColumns));
  const keys = d.key.map(quoteIdent);
  const on = d.key.map((k) => `${ref('s', k)} = ${ref('l', k)}`).join(' AND ');
  return createScratchTableAsSql(d.database, d.diffTable, `SELECT multiIf(l._tributary_p = 0, 'insert', s._tributary_p = 0, 'delete', 'update') AS _tributary_op,
           ${d.key.map((k) => `if(s._tributary_p = 1, ${ref('s', k)}, ${ref('l', k)}) AS ${quoteIdent(k)}`).join(', ')}
      FROM (SELECT ${keys.join(', ')}, toUInt8(1) AS _tributary_p, ${hs} AS _tributary_h FROM ${freshRef(d)} WHERE _tributary_is_deleted = 0) AS s
      FULL OUTER JOIN (SELECT ${keys.join(', ')}, toUInt8(1) AS _tributary_p, ${hl} AS _tributary_h FROM ${db}.${quoteIdent(d.old)} FINAL WHERE _tributary_is_deleted = 0) AS l
        ON ${on}
     WHERE s._tributary_p = 0 OR l._tributary_p = 0 OR s._tributary_h != l._tributary_h
    SETTINGS join_use_nulls = 0`);
}

/**
 * Step 2: the changes of the keys step 1 found, rendered from the fresh table (new) and the replaced one (old).
 * The joined sides hold rendered rows: a hash join keeps them all in memory (2M rows all changed: ~2.9 GB engine
 * peak), a sorting merge join streams them (~1.9 GB, about as fast on this machine; BENCHMARKS.md).
 */
export function refreshChangesSql(d: RefreshDiff): string {
  const db = quoteIdent(d.database);
  const diff = `${db}.${quoteIdent(d.diffTable)}`;
  const keys = d.key.map(quoteIdent).join(', ');
  const on = (alias: string) => d.key.map((k) => `${ref('d', k)} = ${ref(alias, k)}`).join(' AND ');
  const side = (from: string, cols: ExistingColumn[], ops: string) =>
    `SELECT ${keys}, ${rowJsonExpr(d.key)} AS _tributary_key, ${rowJsonExpr(dataColumns(cols).map((c) => c.name))} AS _tributary_row
       FROM ${from}
      WHERE _tributary_is_deleted = 0 AND (${keys}) IN (SELECT ${keys} FROM ${diff} WHERE _tributary_op IN (${ops}))`;
  return `SELECT d._tributary_op AS op,
         if(d._tributary_op = 'delete', o._tributary_key, n._tributary_key) AS key,
         if(d._tributary_op = 'delete', o._tributary_key, n._tributary_row) AS row,
         if(d._tributary_op = 'insert', CAST(NULL, 'Nullable(String)'), toNullable(o._tributary_row)) AS old_row,
         toUInt64(${d.version}) AS version
    FROM ${diff} AS d
    LEFT JOIN (${side(freshRef(d), d.freshColumns, `'insert', 'update'`)}) AS n ON ${on('n')}
    LEFT JOIN (${side(`${db}.${quoteIdent(d.old)} FINAL`, d.oldColumns, `'update', 'delete'`)}) AS o ON ${on('o')}
    SETTINGS join_use_nulls = 0, join_algorithm = 'full_sorting_merge'`;
}

/** An append run (or a keyless table's): every row it wrote (`where`) is an insert. */
export function appendChangesSql(database: string, table: string, columns: ExistingColumn[], key: string[], where: string): string {
  return `SELECT 'insert' AS op, ${rowJsonExpr(key)} AS key, ${rowJsonExpr(dataColumns(columns).map((c) => c.name))} AS row, CAST(NULL, 'Nullable(String)') AS old_row, _tributary_version AS version
    FROM ${quoteIdent(database)}.${quoteIdent(table)} WHERE ${where} AND _tributary_is_deleted = 0`;
}

/**
 * Rows about to be deleted from a table (`where`: an append-by-files run's rewritten files, whose old rows go
 * before the files load again) as deletes, recorded before the rows go: the change log then shows delete, then
 * the reload's inserts. A delete's `row` is its key ('{}' in a keyless table) and `old_row` the row as it was;
 * `version` is the run's, the write that deletes it.
 */
export function deletedRowsChangesSql(database: string, table: string, columns: ExistingColumn[], key: string[], where: string, version: bigint): string {
  return `SELECT 'delete' AS op, ${rowJsonExpr(key)} AS key, ${rowJsonExpr(key)} AS row, toNullable(${rowJsonExpr(dataColumns(columns).map((c) => c.name))}) AS old_row, toUInt64(${version}) AS version
    FROM ${quoteIdent(database)}.${quoteIdent(table)} WHERE ${where} AND _tributary_is_deleted = 0`;
}

/**
 * Rows a write put into a keyed (ReplacingMergeTree) table, as changes against the rows of the same keys before
 * them. `written` is a table expression of the rows written — with the table's data columns, `_tributary_version`
 * and `_tributary_is_deleted` — or null: the table's own rows at `version` (an incremental run). Each written row
 * is compared with the state before it (the key's previous row by version, written by this write or earlier):
 * none or deleted → insert; changed → update (old_row: the previous row); unchanged → nothing; a deletion of a
 * live row → delete; of a missing one → nothing. A written row older than one the table already had from another
 * write (a late webhook delivery) changed nothing the table shows: nothing either.
 */
export function writtenChangesSql(opts: {
  database: string;
  table: string;
  columns: ExistingColumn[];
  key: string[];
  /** The written rows: a table expression, or a condition on the table's own rows. */
  written: { source: string } | { where: string };
}): string {
  const db = quoteIdent(opts.database);
  const target = `${db}.${quoteIdent(opts.table)}`;
  const cols = dataColumns(opts.columns).map((c) => c.name);
  const keys = opts.key.map(quoteIdent).join(', ');
  const list = cols.map(quoteIdent).join(', ');
  const hash = cols.length ? `sipHash64(tuple(${list}))` : 'toUInt64(0)';
  const rendered = `${rowJsonExpr(opts.key)} AS _tributary_key, ${rowJsonExpr(cols)} AS _tributary_row, ${hash} AS _tributary_h`;
  let mine: string;
  let others: string;
  if ('where' in opts.written) {
    const w = opts.written.where;
    // A batch repeated by a retry is the same (key, version): once.
    mine = `SELECT ${list}, _tributary_version, _tributary_is_deleted FROM ${target} WHERE ${w} LIMIT 1 BY ${keys}, _tributary_version`;
    others = `SELECT ${list}, _tributary_version, _tributary_is_deleted FROM ${target}
       WHERE NOT (${w}) AND (${keys}) IN (SELECT ${keys} FROM ${target} WHERE ${w})`;
  } else {
    mine = `SELECT ${list}, _tributary_version, _tributary_is_deleted FROM ${opts.written.source}`;
    // The table has the written rows too (as far as inserting kept them): they are the same (key, version).
    others = `SELECT ${list}, _tributary_version, _tributary_is_deleted FROM ${target}
       WHERE (${keys}) IN (SELECT ${keys} FROM _tributary_mine) AND (${keys}, _tributary_version) NOT IN (SELECT ${keys}, _tributary_version FROM _tributary_mine)`;
  }
  return `WITH _tributary_mine AS (${mine})
    SELECT op, key, row, old_row, version FROM (
      SELECT multiIf(
               _tributary_is_deleted = 1, if(_tributary_prev_live = 1, 'delete', ''),
               _tributary_prev_live = 0, 'insert',
               _tributary_prev_h != _tributary_h, 'update', '') AS op,
             _tributary_key AS key,
             if(_tributary_is_deleted = 1, _tributary_key, _tributary_row) AS row,
             if(_tributary_prev_live = 1, toNullable(_tributary_prev_row), CAST(NULL, 'Nullable(String)')) AS old_row,
             _tributary_version AS version, _tributary_mine_row, _tributary_newest_other, ${keys}
        FROM (
          SELECT *,
                 lagInFrame(toUInt8(_tributary_is_deleted = 0)) OVER w AS _tributary_prev_live,
                 lagInFrame(_tributary_h) OVER w AS _tributary_prev_h,
                 lagInFrame(_tributary_row) OVER w AS _tributary_prev_row,
                 max(if(_tributary_mine_row = 0, _tributary_version, 0)) OVER (PARTITION BY ${keys}) AS _tributary_newest_other
            FROM (
              SELECT ${list}, _tributary_version, _tributary_is_deleted, toUInt8(1) AS _tributary_mine_row, ${rendered} FROM _tributary_mine
              UNION ALL
              SELECT ${list}, _tributary_version, _tributary_is_deleted, toUInt8(0), ${rendered} FROM (${others})
            )
          WINDOW w AS (PARTITION BY ${keys} ORDER BY _tributary_version, _tributary_mine_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
    )
    WHERE _tributary_mine_row = 1 AND op != '' AND version > _tributary_newest_other
    ORDER BY version, ${keys}`;
}

/** Drops the scratch table of a diff (also one a failed attempt left). */
export async function dropDiffTable(wh: Warehouse, table: string): Promise<void> {
  await wh.command(dropScratchTableSql(wh.database, table));
}

export const diffTableName = (staging: string) => `${staging}__changes`;
