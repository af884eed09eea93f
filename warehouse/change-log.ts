import { ALERTS_TABLE } from './alerts-stream';
import { quoteIdent, sqlString, type Warehouse } from './client';
import { alterTableSql, createTableDefsSql, type Ddl } from './cluster';

/**
 * The change log: every change a sync writes into a warehouse table, in the order it landed, for destinations
 * to read from a checkpoint. One table for the whole warehouse, ordered by (batch, seq): `batch` comes from the
 * catalog (catalog/change-batches.ts), `seq` is the change's place inside its batch. Rows expire after the
 * retention (TRIBUTARY_CHANGE_RETENTION_DAYS, default 7).
 *
 * `row` and `old_row` are the row as ClickHouse renders it in JSONEachRow (its own column names; numbers and
 * booleans stay JSON numbers and booleans, Decimal too; DateTime64 as text; arrays as arrays). `key` is the
 * primary key rendered the same way ('{}' for a table without one). `version` is the `_tributary_version` the
 * change wrote (the LSN for CDC, the event's time and order for webhooks, the run's version for batch syncs).
 */
export const CHANGE_LOG_TABLE = '_tributary_changes';

export type ChangeOp = 'insert' | 'update' | 'delete';

export interface ChangeRow {
  batch: string;
  seq: number;
  source_id: string;
  table: string;
  op: ChangeOp;
  key: string;
  row: string;
  old_row: string | null;
  version: string;
  landed_at: string;
}

/** A position in the change log: after (batch, seq). */
export interface ChangePosition {
  batch: bigint;
  seq: number;
}

const changeLogTtl = (retentionDays: number) => `TTL toDateTime(landed_at) + INTERVAL ${Math.max(1, Math.floor(retentionDays))} DAY DELETE`;

export function changeLogDdl(database: string, retentionDays: number, ddl: Ddl): string {
  const columns = [
    'batch UInt64',
    'seq UInt32',
    'source_id String',
    '`table` LowCardinality(String)',
    "op Enum8('insert' = 1, 'update' = 2, 'delete' = 3)",
    'key String',
    'row String',
    'old_row Nullable(String)',
    'version UInt64',
    "landed_at DateTime64(6, 'UTC') DEFAULT now64(6)",
  ];
  const clauses = `PARTITION BY toYYYYMMDD(landed_at) ORDER BY (batch, seq)\n  ${changeLogTtl(retentionDays)}\n  SETTINGS ttl_only_drop_parts = 1`;
  return createTableDefsSql(database, CHANGE_LOG_TABLE, { columns, engine: 'MergeTree', clauses }, { ...ddl, ifNotExists: true });
}

/** Creates the change log if needed and sets its retention to `retentionDays`. */
export async function ensureChangeLog(wh: Warehouse, retentionDays: number): Promise<void> {
  const ddl = { cluster: wh.cluster };
  await wh.command(changeLogDdl(wh.database, retentionDays, ddl));
  await wh.command(alterTableSql(wh.database, CHANGE_LOG_TABLE, `MODIFY ${changeLogTtl(retentionDays)}`, ddl));
}

/**
 * The SELECT a write path hands to `recordChanges`: it yields, in the order the changes happened, the columns
 * `op` (String: insert | update | delete), `key`, `row`, `old_row` (Nullable(String)) and `version` (UInt64).
 */
export interface ChangeSelect {
  sourceId: string | null;
  /** The warehouse table the changes were written to. */
  table: string;
  sql: string;
  /**
   * Rows the SELECT reads as a table (a CDC batch's changes as the stream sent them): `sql` names the table
   * function as CHANGE_INPUT, the bytes are `data` in `format` (default TabSeparated) with columns `structure`.
   */
  input?: { structure: string; data: Buffer; format?: string };
}

/** Where a ChangeSelect's `sql` reads its `input` rows. */
export const CHANGE_INPUT = '{{change_input}}';

/**
 * The engine renders `cols` of a table as one JSONEachRow object (the names as they are in the table).
 * `alias` qualifies each column (a join's side). `toJSONString` of the columns as a named tuple (its type spelt
 * from each column's own, so callers pass names only) gives the same text as `formatRowNoNewline('JSONEachRow',
 * …)` for every type the connectors write (the same JSON serialisation and settings), about 1.3× faster (BENCHMARKS.md).
 */
export function rowJsonExpr(cols: string[], alias?: string): string {
  if (!cols.length) return `'{}'`;
  const ref = (c: string) => (alias ? `${alias}.${quoteIdent(c)}` : quoteIdent(c));
  const type = cols.map((c, i) => `${sqlString(`${i ? ', ' : 'Tuple('}${quoteIdent(c)} `)}, toTypeName(${ref(c)})`).join(', ');
  return `toJSONString(CAST(tuple(${cols.map(ref).join(', ')}), concat(${type}, ')')))`;
}

/**
 * The change log's insert blocks: 128 Ki rows or 32 MiB of rendered JSON, whichever comes first. The default
 * (about a million rows, 256 MiB, per thread) held a 2M-row first load's JSON twice over (engine peak 1.6–1.8 GB
 * while it was recorded); 128 Ki: ~840 MB, the recording ~0.5 s slower; 64 Ki: ~780 MB but ~1–2 s slower; 256 Ki:
 * ~1.06 GB at the default's speed (npm run bench, 2M rows; BENCHMARKS.md).
 */
export const CHANGE_INSERT_SETTINGS = 'min_insert_block_size_rows = 131072, min_insert_block_size_bytes = 33554432, max_insert_block_size = 131072';

/** The INSERT … SELECT that puts a ChangeSelect's rows into the change log under `batch`. */
export function changeInsertSql(database: string, batch: bigint, select: ChangeSelect): string {
  return `INSERT INTO ${quoteIdent(database)}.${CHANGE_LOG_TABLE} (batch, seq, source_id, \`table\`, op, key, row, old_row, version)
    SELECT ${batch.toString()}, toUInt32(rowNumberInAllBlocks() + 1), ${sqlString(select.sourceId ?? '')}, ${sqlString(select.table)}, op, key, row, old_row, version
      FROM (${select.sql})
    SETTINGS ${CHANGE_INSERT_SETTINGS}`;
}

/** Changes after `after`, up to batch `upTo` inclusive, in order. */
export async function readChanges(
  wh: Warehouse,
  opts: { after: ChangePosition; upTo: bigint; limit: number; tables?: string[]; ops?: ChangeOp[] },
): Promise<ChangeRow[]> {
  const where = [
    '(c.batch, c.seq) > ({ab:UInt64}, {as:UInt32})',
    'c.batch <= {upTo:UInt64}',
    // Alerts (warehouse/alerts-stream.ts) are read only by a destination that names their table.
    opts.tables?.length ? 'c.\`table\` IN {tables:Array(String)}' : `c.\`table\` != '${ALERTS_TABLE}'`,
    ...(opts.ops?.length ? ['toString(c.op) IN {ops:Array(String)}'] : []),
  ];
  return wh.queryRows<ChangeRow>(
    `SELECT toString(c.batch) AS batch, c.seq AS seq, c.source_id AS source_id, c.\`table\` AS \`table\`, toString(c.op) AS op, c.key AS key, c.row AS row, c.old_row AS old_row, toString(c.version) AS version, toString(c.landed_at) AS landed_at
       FROM ${quoteIdent(wh.database)}.${CHANGE_LOG_TABLE} AS c WHERE ${where.join(' AND ')} ORDER BY c.batch, c.seq LIMIT {limit:UInt32}`,
    { params: { ab: opts.after.batch.toString(), as: opts.after.seq, upTo: opts.upTo.toString(), tables: opts.tables ?? [], ops: opts.ops ?? [], limit: opts.limit } },
  );
}
