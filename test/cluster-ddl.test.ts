import fs from 'node:fs';
import path from 'node:path';
import {
  alterTableSql, createDatabaseSql, createRebuildSql, createScratchTableAsSql, createScratchTableLikeSql, createTableDefsSql, distributedTableSql,
  dropScratchTableSql, dropTableSql, exchangeTablesSql, onCluster, renameTablesSql, replicatedEngine, splitEngineFull, truncateTableSql,
} from '../warehouse/cluster';
import { createTableSql, dropTable, swapIn, swapInKeepingPrevious } from '../warehouse/tables';
import { changeLogDdl } from '../warehouse/change-log';
import { destinationActivityDdl } from '../warehouse/destination-activity';
import { refreshDiffKeysSql } from '../warehouse/change-diff';
import { renameTables } from '../warehouse/table-admin';
import type { Warehouse } from '../warehouse/client';
import { loadConfig } from '../platform/config';

/**
 * The DDL Tributary generates for a ClickHouse cluster (CLICKHOUSE_CLUSTER). Generated only: no cluster runs here,
 * so these check the statements' text; the same functions without a cluster run in every other test.
 */
const columns = [{ name: 'id', type: 'Int64' }, { name: 'note', type: 'Nullable(String)' }] as Parameters<typeof createTableSql>[2];

/** A warehouse that records statements and answers the table lookups swapIn makes. */
function recorder(cluster: string | undefined, existing: { name: string; comment: string }[] = []) {
  const sent: string[] = [];
  const wh = {
    mode: 'remote',
    database: 'tenant',
    cluster,
    command: async (sql: string) => void sent.push(sql),
    queryRows: async (sql: string) => (/count\(\)/.test(sql) ? [{ n: existing.length }] : existing),
  } as unknown as Warehouse;
  return { wh, sent };
}

describe('cluster DDL (CLICKHOUSE_CLUSTER)', () => {
  test('engines become Replicated*, on the default replica path with {uuid}', () => {
    expect(replicatedEngine('MergeTree')).toBe("ReplicatedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')");
    expect(replicatedEngine('ReplacingMergeTree(_tributary_version, _tributary_is_deleted)')).toBe(
      "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', _tributary_version, _tributary_is_deleted)",
    );
    expect(replicatedEngine('SummingMergeTree(count)')).toBe("ReplicatedSummingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', count)");
    expect(replicatedEngine("ReplicatedMergeTree('/p', '{replica}')")).toBe("ReplicatedMergeTree('/p', '{replica}')");
    expect(() => replicatedEngine('Memory')).toThrow(/not a MergeTree/);
    expect(onCluster(undefined)).toBe('');
    expect(onCluster('main')).toBe(' ON CLUSTER `main`');
  });

  test('CREATE TABLE: ON CLUSTER after the name, replicated engine, no non-replicated setting; unchanged without a cluster', () => {
    const plain = createTableSql('tenant', 'shop_orders', columns, { kind: 'ReplacingMergeTree', orderBy: ['id'] }, { cluster: undefined });
    expect(plain).toMatch(/^CREATE TABLE `tenant`\.`shop_orders` \(/);
    expect(plain).toMatch(/\) ENGINE = ReplacingMergeTree\(_tributary_version, _tributary_is_deleted\) ORDER BY `id` SETTINGS non_replicated_deduplication_window = 1000, allow_nullable_key = 1$/);
    const clustered = createTableSql('tenant', 'shop_orders', columns, { kind: 'ReplacingMergeTree', orderBy: ['id'] }, { cluster: 'main', ifNotExists: true });
    expect(clustered).toMatch(/^CREATE TABLE IF NOT EXISTS `tenant`\.`shop_orders` ON CLUSTER `main` \(/);
    expect(clustered).toMatch(
      /\) ENGINE = ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{uuid\}\/\{shard\}', '\{replica\}', _tributary_version, _tributary_is_deleted\) ORDER BY `id` SETTINGS allow_nullable_key = 1$/,
    );
    expect(createTableSql('tenant', 'log', columns, { kind: 'MergeTree', orderBy: [] }, { cluster: 'main' })).toMatch(/ENGINE = ReplicatedMergeTree\([^)]*\) ORDER BY tuple\(\)$/);
  });

  test('swap, rename and drop run ON CLUSTER (EXCHANGE is atomic per replica, not across them)', async () => {
    const first = recorder('main');
    await swapIn(first.wh, 'shop_orders__loading_1', 'shop_orders');
    expect(first.sent).toEqual(['RENAME TABLE `tenant`.`shop_orders__loading_1` TO `tenant`.`shop_orders` ON CLUSTER `main`']);
    const again = recorder('main', [{ name: 'shop_orders', comment: '' }]);
    await swapIn(again.wh, 'shop_orders__loading_2', 'shop_orders');
    expect(again.sent).toEqual([
      'EXCHANGE TABLES `tenant`.`shop_orders__loading_2` AND `tenant`.`shop_orders` ON CLUSTER `main`',
      'DROP TABLE IF EXISTS `tenant`.`shop_orders__loading_2` ON CLUSTER `main` SYNC',
    ]);
    const keep = recorder('main', [{ name: 'shop_orders', comment: '' }, { name: 'shop_orders__loading_3', comment: '' }]);
    await swapInKeepingPrevious(keep.wh, 'shop_orders__loading_3', 'shop_orders', 'tributary_job:3');
    expect(keep.sent).toEqual([
      "ALTER TABLE `tenant`.`shop_orders__loading_3` ON CLUSTER `main` MODIFY COMMENT 'tributary_job:3'",
      'EXCHANGE TABLES `tenant`.`shop_orders__loading_3` AND `tenant`.`shop_orders` ON CLUSTER `main`',
    ]);
    const admin = recorder('main');
    await renameTables(admin.wh, [{ from: 'a_x', to: 'b_x' }]);
    await dropTable(admin.wh, 'b_x');
    expect(admin.sent).toEqual(['RENAME TABLE `tenant`.`a_x` TO `tenant`.`b_x` ON CLUSTER `main`', 'DROP TABLE IF EXISTS `tenant`.`b_x` ON CLUSTER `main` SYNC']);
    const single = recorder(undefined);
    await dropTable(single.wh, 'b_x');
    expect(single.sent).toEqual(['DROP TABLE IF EXISTS `tenant`.`b_x`']);
  });

  test('a Distributed table for reads across shards, sharded by the primary key so FINAL stays within a shard', () => {
    expect(distributedTableSql('tenant', 'shop_orders', 'main', ['id'])).toBe(
      'CREATE TABLE IF NOT EXISTS `tenant`.`shop_orders_all` ON CLUSTER `main` AS `tenant`.`shop_orders` ENGINE = Distributed(`main`, `tenant`, `shop_orders`, cityHash64(`id`))',
    );
  });

  test('CLICKHOUSE_CLUSTER is read as a plain identifier', () => {
    expect(loadConfig({ CLICKHOUSE_CLUSTER: 'prod_cluster' }).clickhouse.cluster).toBe('prod_cluster');
    expect(loadConfig({}).clickhouse.cluster).toBeUndefined();
    expect(() => loadConfig({ CLICKHOUSE_CLUSTER: 'x; DROP' })).toThrow(/CLICKHOUSE_CLUSTER must be a plain identifier/);
  });

  test('every kind of DDL statement, with and without a cluster', () => {
    const c = { cluster: 'main' };
    const none = { cluster: undefined };
    const spec = { columns: ['id String', 'n UInt64'], engine: 'SummingMergeTree(n)', clauses: 'PARTITION BY id ORDER BY id TTL now() + INTERVAL 1 DAY DELETE' };
    expect(createTableDefsSql('tenant', 'm', spec, { ...none, ifNotExists: true })).toBe(
      'CREATE TABLE IF NOT EXISTS `tenant`.`m` (\n  id String,\n  n UInt64\n) ENGINE = SummingMergeTree(n) PARTITION BY id ORDER BY id TTL now() + INTERVAL 1 DAY DELETE',
    );
    expect(createTableDefsSql('tenant', 'm', spec, { ...c, ifNotExists: true })).toBe(
      "CREATE TABLE IF NOT EXISTS `tenant`.`m` ON CLUSTER `main` (\n  id String,\n  n UInt64\n) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', n) PARTITION BY id ORDER BY id TTL now() + INTERVAL 1 DAY DELETE",
    );
    expect(() => createTableDefsSql('tenant', 'm', { ...spec, engine: 'Memory' }, c)).toThrow(/not a MergeTree/);
    expect(alterTableSql('tenant', 't', 'ADD COLUMN `x` Nullable(String)', none)).toBe('ALTER TABLE `tenant`.`t` ADD COLUMN `x` Nullable(String)');
    expect(alterTableSql('tenant', 't', 'ADD COLUMN `x` Nullable(String)', c)).toBe('ALTER TABLE `tenant`.`t` ON CLUSTER `main` ADD COLUMN `x` Nullable(String)');
    expect(dropTableSql('tenant', 't', none)).toBe('DROP TABLE IF EXISTS `tenant`.`t`');
    expect(dropTableSql('tenant', 't', c)).toBe('DROP TABLE IF EXISTS `tenant`.`t` ON CLUSTER `main` SYNC');
    expect(exchangeTablesSql('tenant', 'a', 'b', none)).toBe('EXCHANGE TABLES `tenant`.`a` AND `tenant`.`b`');
    expect(exchangeTablesSql('tenant', 'a', 'b', c)).toBe('EXCHANGE TABLES `tenant`.`a` AND `tenant`.`b` ON CLUSTER `main`');
    expect(renameTablesSql('tenant', [{ from: 'a', to: 'b' }, { from: 'c', to: 'd' }], none)).toBe('RENAME TABLE `tenant`.`a` TO `tenant`.`b`, `tenant`.`c` TO `tenant`.`d`');
    expect(renameTablesSql('tenant', [{ from: 'a', to: 'b' }], c)).toBe('RENAME TABLE `tenant`.`a` TO `tenant`.`b` ON CLUSTER `main`');
    expect(truncateTableSql('tenant', 't', none)).toBe('TRUNCATE TABLE `tenant`.`t`');
    expect(truncateTableSql('tenant', 't', c)).toBe('TRUNCATE TABLE `tenant`.`t` ON CLUSTER `main`');
    expect(createDatabaseSql('tenant', none)).toBe('CREATE DATABASE IF NOT EXISTS `tenant`');
    expect(createDatabaseSql('tenant', c)).toBe('CREATE DATABASE IF NOT EXISTS `tenant` ON CLUSTER `main`');
    // Scratch tables are node-local by design (written and read over one connection, then dropped): no cluster option.
    expect(createScratchTableLikeSql('tenant', 's', 't')).toBe('CREATE TABLE `tenant`.`s` AS `tenant`.`t` ENGINE = Memory');
    expect(createScratchTableAsSql('tenant', 's', 'SELECT 1')).toBe('CREATE TABLE `tenant`.`s` ENGINE = MergeTree ORDER BY tuple() AS\n    SELECT 1');
    expect(dropScratchTableSql('tenant', 's')).toBe('DROP TABLE IF EXISTS `tenant`.`s`');
  });

  test("Tributary's own tables: the change log, destination logs and metrics are replicated and their TTLs altered ON CLUSTER", async () => {
    expect(changeLogDdl('tenant', 7, { cluster: undefined })).toMatch(/^CREATE TABLE IF NOT EXISTS `tenant`\.`_tributary_changes` \([\s\S]*\) ENGINE = MergeTree PARTITION BY/);
    expect(changeLogDdl('tenant', 7, { cluster: 'main' })).toMatch(/^CREATE TABLE IF NOT EXISTS `tenant`\.`_tributary_changes` ON CLUSTER `main` \([\s\S]*\) ENGINE = ReplicatedMergeTree\('\/clickhouse\/tables\/\{uuid\}\/\{shard\}', '\{replica\}'\) PARTITION BY/);
    const [logs, metrics] = destinationActivityDdl('tenant', 7, { cluster: 'main' });
    expect(logs).toMatch(/ON CLUSTER `main` \([\s\S]*ENGINE = ReplicatedMergeTree\(/);
    expect(metrics).toMatch(/ON CLUSTER `main` \([\s\S]*ENGINE = ReplicatedSummingMergeTree\('\/clickhouse\/tables\/\{uuid\}\/\{shard\}', '\{replica\}', count\)/);
    const diff = refreshDiffKeysSql({ database: 'tenant', fresh: 't', old: 't__loading_x', key: ['id'], freshColumns: [], oldColumns: [], version: 1n, diffTable: 't__loading_x__changes', freshFinal: true });
    expect(diff).toMatch(/^CREATE TABLE `tenant`\.`t__loading_x__changes` ENGINE = MergeTree ORDER BY tuple\(\) AS\n/);
  });

  test("a rebuild (schema evolution) copies the live table's engine with a replica path of its own", () => {
    expect(splitEngineFull('ReplacingMergeTree(_tributary_version, _tributary_is_deleted) ORDER BY id SETTINGS index_granularity = 8192')).toEqual({
      engine: 'ReplacingMergeTree(_tributary_version, _tributary_is_deleted)',
      clauses: 'ORDER BY id SETTINGS index_granularity = 8192',
    });
    const replicated = "ReplicatedReplacingMergeTree('/clickhouse/tables/4f1b0c1e-0000-4000-8000-000000000001/{shard}', '{replica}', _tributary_version, _tributary_is_deleted) ORDER BY (a, b) SETTINGS allow_nullable_key = 1, index_granularity = 8192";
    expect(splitEngineFull(replicated)).toEqual({ engine: 'ReplacingMergeTree(_tributary_version, _tributary_is_deleted)', clauses: 'ORDER BY (a, b) SETTINGS allow_nullable_key = 1, index_granularity = 8192' });
    expect(splitEngineFull('ReplicatedMergeTree ORDER BY tuple()')).toEqual({ engine: 'MergeTree', clauses: 'ORDER BY tuple()' });
    expect(splitEngineFull("MergeTree ORDER BY `a,b` SETTINGS x = 'a)b'")).toEqual({ engine: 'MergeTree', clauses: "ORDER BY `a,b` SETTINGS x = 'a)b'" });
    const single = 'ReplacingMergeTree(_tributary_version, _tributary_is_deleted) ORDER BY id SETTINGS non_replicated_deduplication_window = 1000, allow_nullable_key = 1, index_granularity = 8192';
    expect(createRebuildSql('tenant', 't__rebuild', ['`id` Int64'], single, { cluster: undefined })).toBe(
      `CREATE TABLE \`tenant\`.\`t__rebuild\` (\n  \`id\` Int64\n) ENGINE = ${single}`,
    );
    expect(createRebuildSql('tenant', 't__rebuild', ['`id` Int64'], replicated, { cluster: 'main' })).toBe(
      "CREATE TABLE `tenant`.`t__rebuild` ON CLUSTER `main` (\n  `id` Int64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', _tributary_version, _tributary_is_deleted) ORDER BY (a, b) SETTINGS allow_nullable_key = 1, index_granularity = 8192",
    );
    expect(createRebuildSql('tenant', 't__rebuild', ['`id` Int64'], 'MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000', { cluster: 'main' })).toMatch(
      /ENGINE = ReplicatedMergeTree\('\/clickhouse\/tables\/\{uuid\}\/\{shard\}', '\{replica\}'\) ORDER BY id$/,
    );
  });

  /**
   * Warehouse DDL anywhere but warehouse/cluster.ts would bypass CLICKHOUSE_CLUSTER: the non-test source is scanned
   * for it (comment lines aside). Not scanned: catalog/ (the Postgres catalog's own migrations), scripts/ (benchmarks'
   * fixtures), console/ (no SQL).
   */
  test('no DDL statement is written outside warehouse/cluster.ts', () => {
    const root = process.env.DDL_SCAN_ROOT ?? path.join(__dirname, '..');
    const dirs = ['activities', 'api', 'common', 'connectors', 'destinations', 'platform', 'temporal', 'warehouse', 'workflows'];
    const allowed: Record<string, string> = {
      'warehouse/cluster.ts': 'the one place DDL is built',
      // Linked-files tables live in a Memory database local to the server each process talks to, re-created at its
      // start with the storage credentials: ON CLUSTER makes no sense for them (the file's comment says why).
      'connectors/files/sql.ts': 'linked-files Memory tables and their views, node-local by design',
      // Advice shown to the user about their Postgres tables, not a statement Tributary runs.
      'connectors/postgres/cdc-prerequisites.ts': 'Postgres advice text',
    };
    const ddl = /\b(?:CREATE(?:\s+OR\s+REPLACE)?(?:\s+TEMPORARY)?|ALTER|DROP|EXCHANGE|RENAME|TRUNCATE|ATTACH|DETACH)\s+(?:TABLES?|DATABASE|(?:MATERIALIZED\s+)?VIEW|DICTIONARY)\b/;
    const found: string[] = [];
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path.join(dir, e.name)] : []));
    for (const file of dirs.flatMap((d) => (fs.existsSync(path.join(root, d)) ? walk(path.join(root, d)) : []))) {
      const rel = path.relative(root, file).split(path.sep).join('/');
      if (allowed[rel]) continue;
      fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const code = line.trim();
        if (code.startsWith('*') || code.startsWith('//') || code.startsWith('/*')) return;
        if (ddl.test(code)) found.push(`${rel}:${i + 1}: ${code.slice(0, 120)}`);
      });
    }
    expect(found).toEqual([]);
  });
});
