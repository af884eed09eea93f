import { quoteIdent } from './client';
import { BOOKKEEPING_COLUMNS, rawColumnName, type WarehouseColumn } from './columns';

/**
 * Every warehouse DDL statement Tributary sends is built here, so CLICKHOUSE_CLUSTER applies to all of them: each
 * statement that creates, alters, renames, swaps, truncates or drops a table runs `ON CLUSTER`, on every replica
 * through the distributed DDL queue, and tables are `Replicated*MergeTree` so each replica holds every row (one
 * shard, N replicas: the shape Tributary's FINAL reads are correct on). Each builder takes `{ cluster }` as a
 * required option (undefined for a single server), so a new call site cannot forget it; test/cluster-ddl.test.ts
 * checks the statements in both modes and fails on DDL written anywhere else.
 *
 * Two kinds are node-local by design and say so by name: scratch tables (a batch's rows or a diff's keys, written
 * and read by the next statements over the same connection, then dropped: on every replica they would only be
 * created, filled on one, and read from whichever) and the linked-files Memory tables (connectors/files/sql.ts).
 *
 * Generated and unit-tested only: no ClickHouse cluster runs on the CI machine.
 */

/** Whether DDL runs ON CLUSTER: the deployment's CLICKHOUSE_CLUSTER, or undefined for one server. Always passed. */
export interface Ddl {
  cluster: string | undefined;
}

/** ` ON CLUSTER `c`` when a cluster is set, else nothing. */
export function onCluster(cluster: string | undefined): string {
  return cluster ? ` ON CLUSTER ${quoteIdent(cluster)}` : '';
}

const ref = (database: string, table: string) => `${quoteIdent(database)}.${quoteIdent(table)}`;

/**
 * The replicated form of a MergeTree-family engine: `ReplacingMergeTree(v, d)` → `ReplicatedReplacingMergeTree(
 * '/clickhouse/tables/{uuid}/{shard}', '{replica}', v, d)`. The path is ClickHouse's default_replica_path: `{uuid}`
 * is fixed by the initiator of an ON CLUSTER CREATE, so every replica of one table shares it, and a table
 * created later under the same name (the next full refresh's staging table) never meets the old one's path.
 */
export function replicatedEngine(engine: string): string {
  const m = /^(\w*MergeTree)\s*(?:\((.*)\))?$/s.exec(engine.trim());
  if (!m) throw new Error(`not a MergeTree engine: ${engine}`);
  const [, name, args] = m;
  if (name.startsWith('Replicated')) return engine;
  const rest = args?.trim() ? `, ${args.trim()}` : '';
  return `Replicated${name}('/clickhouse/tables/{uuid}/{shard}', '{replica}'${rest})`;
}

/** `engine` for this deployment: replicated on a cluster, as given on one server. */
const engineFor = (engine: string, ddl: Ddl) => (ddl.cluster ? replicatedEngine(engine) : engine);

export type TableEngine =
  | { kind: 'ReplacingMergeTree'; orderBy: string[] }
  | { kind: 'MergeTree'; orderBy: string[] };

/** A synced table (live or staging): its columns, the bookkeeping ones, the engine its sync type needs. */
export function createTableSql(database: string, table: string, columns: WarehouseColumn[], engine: TableEngine, opts: Ddl & { ifNotExists?: boolean }): string {
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
  const keys = engine.orderBy.map(quoteIdent);
  const orderBy = keys.length === 0 ? 'tuple()' : keys.length === 1 ? keys[0] : `(${keys.join(', ')})`;
  // Deduplication of repeated insert blocks (by insert_deduplication_token) makes a retried batch
  // harmless even in a plain MergeTree. Nullable sort keys are refused by default; allow them.
  // (Replicated tables deduplicate by replicated_deduplication_window, on by default.)
  const list = [...(opts.cluster ? [] : ['non_replicated_deduplication_window = 1000']), ...(engine.orderBy.length ? ['allow_nullable_key = 1'] : [])];
  const settings = list.length ? ` SETTINGS ${list.join(', ')}` : '';
  const name = engine.kind === 'ReplacingMergeTree' ? 'ReplacingMergeTree(_tributary_version, _tributary_is_deleted)' : 'MergeTree';
  return createTableDefsSql(database, table, { columns: defs, engine: name, clauses: `ORDER BY ${orderBy}${settings}` }, opts);
}

/**
 * A table of Tributary's own (change log, destination logs, alerts, webhook raw events…): column definitions as
 * written, a MergeTree-family `engine` (made Replicated on a cluster), and what follows it (ORDER BY, PARTITION BY,
 * TTL, SETTINGS).
 */
export function createTableDefsSql(database: string, table: string, spec: { columns: string[]; engine: string; clauses: string }, opts: Ddl & { ifNotExists?: boolean }): string {
  return `CREATE TABLE ${opts.ifNotExists ? 'IF NOT EXISTS ' : ''}${ref(database, table)}${onCluster(opts.cluster)} (\n  ${spec.columns.join(',\n  ')}\n) ENGINE = ${engineFor(spec.engine, opts)} ${spec.clauses}`;
}

/**
 * Splits a `system.tables.engine_full` (`ReplacingMergeTree(v, d) ORDER BY id SETTINGS …`) into the engine call and
 * the clauses after it, with a Replicated engine's two replication arguments taken off: a table rebuilt from an
 * existing one gets a replica path of its own (`{uuid}`, see replicatedEngine), never the old table's.
 */
export function splitEngineFull(engineFull: string): { engine: string; clauses: string } {
  const m = /^\s*(\w+)/.exec(engineFull);
  if (!m) throw new Error(`unreadable engine: ${engineFull}`);
  let name = m[1];
  let i = m[0].length;
  let args: string[] = [];
  if (engineFull[i] === '(') {
    // Arguments up to the matching parenthesis, split at top-level commas (quotes may hold either).
    let depth = 0;
    let quote: string | null = null;
    let cur = '';
    for (i += 1; i < engineFull.length; i++) {
      const ch = engineFull[i];
      if (quote) {
        cur += ch;
        if (ch === '\\') cur += engineFull[++i] ?? '';
        else if (ch === quote) quote = null;
      } else if (ch === "'" || ch === '`' || ch === '"') {
        quote = ch;
        cur += ch;
      } else if (ch === '(') {
        depth++;
        cur += ch;
      } else if (ch === ')' && depth === 0) {
        break;
      } else if (ch === ')') {
        depth--;
        cur += ch;
      } else if (ch === ',' && depth === 0) {
        args.push(cur.trim());
        cur = '';
      } else cur += ch;
    }
    if (cur.trim()) args.push(cur.trim());
    i += 1;
  }
  if (name.startsWith('Replicated') && name.endsWith('MergeTree')) {
    name = name.slice('Replicated'.length);
    // Explicit replication arguments are two string literals first; none when the server's defaults were used.
    if (args.length >= 2 && args[0].startsWith("'") && args[1].startsWith("'")) args = args.slice(2);
  }
  const engine = args.length ? `${name}(${args.join(', ')})` : name;
  return { engine, clauses: engineFull.slice(i).trim() };
}

/** A copy of an existing table with new column definitions, for a rebuild (warehouse/evolution.ts rebuildWithTypes). */
export function createRebuildSql(database: string, table: string, defs: string[], engineFull: string, opts: Ddl): string {
  const { engine, clauses } = splitEngineFull(engineFull);
  // On one server the clauses are kept as they are (non-replicated settings included); on a cluster the setting
  // a Replicated table refuses is left out.
  const kept = opts.cluster ? clauses.replace(/\bnon_replicated_deduplication_window\s*=\s*\d+(,\s*)?/, '').replace(/\s*SETTINGS\s*$/, '').replace(/,\s*$/, '') : clauses;
  return createTableDefsSql(database, table, { columns: defs, engine, clauses: kept }, opts);
}

export function createDatabaseSql(database: string, opts: Ddl): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)}${onCluster(opts.cluster)}`;
}

/** `ALTER TABLE … ON CLUSTER … <action>` (ADD/MODIFY COLUMN, MODIFY TTL, MODIFY COMMENT). */
export function alterTableSql(database: string, table: string, action: string, opts: Ddl): string {
  return `ALTER TABLE ${ref(database, table)}${onCluster(opts.cluster)} ${action}`;
}

/** Drops a table if it exists; on a cluster SYNC, so a name reused at once (the next staging table) is free. */
export function dropTableSql(database: string, table: string, opts: Ddl): string {
  return `DROP TABLE IF EXISTS ${ref(database, table)}${onCluster(opts.cluster)}${opts.cluster ? ' SYNC' : ''}`;
}

/** Atomic per replica, not across them: a reader on another replica may see the old table a little longer. */
export function exchangeTablesSql(database: string, a: string, b: string, opts: Ddl): string {
  return `EXCHANGE TABLES ${ref(database, a)} AND ${ref(database, b)}${onCluster(opts.cluster)}`;
}

/** Renames tables, all in one statement. */
export function renameTablesSql(database: string, renames: { from: string; to: string }[], opts: Ddl): string {
  return `RENAME TABLE ${renames.map((r) => `${ref(database, r.from)} TO ${ref(database, r.to)}`).join(', ')}${onCluster(opts.cluster)}`;
}

export function truncateTableSql(database: string, table: string, opts: Ddl): string {
  return `TRUNCATE TABLE ${ref(database, table)}${onCluster(opts.cluster)}`;
}

/**
 * A node-local scratch table shaped as `like`, in memory (webhook batches): no ON CLUSTER and no replication, by
 * design — see the file's comment. Dropped with dropScratchTableSql.
 */
export function createScratchTableLikeSql(database: string, table: string, like: string): string {
  return `CREATE TABLE ${ref(database, table)} AS ${ref(database, like)} ENGINE = Memory`;
}

/** A node-local scratch table filled from `select` (a refresh diff's keys): no ON CLUSTER, by design. */
export function createScratchTableAsSql(database: string, table: string, select: string): string {
  return `CREATE TABLE ${ref(database, table)} ENGINE = MergeTree ORDER BY tuple() AS\n    ${select}`;
}

export function dropScratchTableSql(database: string, table: string): string {
  return `DROP TABLE IF EXISTS ${ref(database, table)}`;
}

/**
 * A `Distributed` table over `table` on every shard, for reads across shards (`{table}_all`). Tributary writes and
 * reads one shard's tables (FINAL merges only within a shard: rows of one key must share a shard, so the sharding
 * key is the primary key's hash); this is what a multi-shard deployment adds for its readers.
 */
export function distributedTableSql(database: string, table: string, cluster: string, shardingKey: string[]): string {
  const key = shardingKey.length ? `cityHash64(${shardingKey.map(quoteIdent).join(', ')})` : 'rand()';
  return `CREATE TABLE IF NOT EXISTS ${ref(database, `${table}_all`)}${onCluster(cluster)} AS ${ref(database, table)} ENGINE = Distributed(${quoteIdent(cluster)}, ${quoteIdent(database)}, ${quoteIdent(table)}, ${key})`;
}
