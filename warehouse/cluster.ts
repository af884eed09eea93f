import { quoteIdent } from './client';

/**
 * DDL for a ClickHouse cluster (CLICKHOUSE_CLUSTER): each statement that creates, renames, swaps or drops a table
 * runs `ON CLUSTER`, on every replica through the distributed DDL queue, and tables are `Replicated*MergeTree`
 * so each replica holds every row (one shard, N replicas: the shape Tributary's FINAL reads are correct on).
 *
 * Generated and unit-tested only (test/cluster-ddl.test.ts): no ClickHouse cluster runs on the CI machine.
 */

/** ` ON CLUSTER `c`` when a cluster is set, else nothing. */
export function onCluster(cluster: string | undefined): string {
  return cluster ? ` ON CLUSTER ${quoteIdent(cluster)}` : '';
}

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

/**
 * A `Distributed` table over `table` on every shard, for reads across shards (`{table}_all`). Tributary writes and
 * reads one shard's tables (FINAL merges only within a shard: rows of one key must share a shard, so the sharding
 * key is the primary key's hash); this is what a multi-shard deployment adds for its readers.
 */
export function distributedTableSql(database: string, table: string, cluster: string, shardingKey: string[]): string {
  const key = shardingKey.length ? `cityHash64(${shardingKey.map(quoteIdent).join(', ')})` : 'rand()';
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(database)}.${quoteIdent(`${table}_all`)}${onCluster(cluster)} AS ${quoteIdent(database)}.${quoteIdent(table)} ENGINE = Distributed(${quoteIdent(cluster)}, ${quoteIdent(database)}, ${quoteIdent(table)}, ${key})`;
}
