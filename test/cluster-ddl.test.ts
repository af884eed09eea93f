import { distributedTableSql, onCluster, replicatedEngine } from '../warehouse/cluster';
import { createTableSql, dropTable, swapIn, swapInKeepingPrevious } from '../warehouse/tables';
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
    const plain = createTableSql('tenant', 'shop_orders', columns, { kind: 'ReplacingMergeTree', orderBy: ['id'] });
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
});
