import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { CHANGE_LOG_TABLE, changeInsertSql, ensureChangeLog, readChanges, rowJsonExpr } from '../warehouse/change-log';

/** The change log on the real engine: rows keep the order their SELECT gave, typed JSON, positions and filters. */
describe('change log', () => {
  let dataDir: string;
  let wh: Warehouse;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-changelog-'));
    wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    await ensureChangeLog(wh, 7);
    await wh.command(
      `CREATE TABLE tributary.orders (id Int64, amount Decimal(12, 2), status Nullable(String), paid Bool, tags Array(String),
        _tributary_version UInt64, _tributary_is_deleted UInt8) ENGINE = ReplacingMergeTree(_tributary_version, _tributary_is_deleted) ORDER BY id`,
    );
    await wh.command(`INSERT INTO tributary.orders SELECT number, number * 1.25, if(number % 2, 'paid', NULL), number % 2, ['x'], 100 + number, 0 FROM numbers(6)`);
  });

  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const record = (batch: bigint, table: string, order: 'ASC' | 'DESC', op = 'insert') =>
    wh.command(
      changeInsertSql(wh.database, batch, {
        sourceId: 'src-1',
        table,
        sql: `SELECT '${op}' AS op, ${rowJsonExpr(['id'])} AS key, ${rowJsonExpr(['id', 'amount', 'status', 'paid', 'tags'])} AS row,
                CAST(NULL AS Nullable(String)) AS old_row, _tributary_version AS version FROM tributary.orders ORDER BY _tributary_version ${order}`,
      }),
    );

  test('changes come back in (batch, seq) order, the order their SELECT gave, with JSON types kept', async () => {
    await record(2n, 'orders', 'DESC', 'update');
    await record(1n, 'orders', 'ASC');
    const all = await readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 10n, limit: 100 });
    expect(all.map((c) => [c.batch, c.seq, c.op, c.version])).toEqual([
      ...[0, 1, 2, 3, 4, 5].map((i) => ['1', i + 1, 'insert', String(100 + i)]),
      ...[5, 4, 3, 2, 1, 0].map((i, n) => ['2', n + 1, 'update', String(100 + i)]),
    ]);
    expect(JSON.parse(all[1].row)).toEqual({ id: 1, amount: 1.25, status: 'paid', paid: true, tags: ['x'] });
    expect(JSON.parse(all[0].row)).toEqual({ id: 0, amount: 0, status: null, paid: false, tags: ['x'] });
    expect(JSON.parse(all[0].key)).toEqual({ id: 0 });
    expect(all[0].source_id).toBe('src-1');
  });

  test('a reader resumes after a position, stops at its horizon and filters by table and operation', async () => {
    await record(3n, 'other', 'ASC', 'delete');
    const after = await readChanges(wh, { after: { batch: 1n, seq: 4 }, upTo: 2n, limit: 3 });
    expect(after.map((c) => `${c.batch}:${c.seq}`)).toEqual(['1:5', '1:6', '2:1']);
    const deletes = await readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 3n, limit: 100, ops: ['delete'] });
    expect(new Set(deletes.map((c) => c.table))).toEqual(new Set(['other']));
    expect(deletes).toHaveLength(6);
    const orders = await readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 3n, limit: 100, tables: ['orders'] });
    expect(orders).toHaveLength(12);
  });

  test('retention is the table TTL, changed in place when the setting changes', async () => {
    const ttl = async () =>
      (await wh.queryRows<{ e: string }>(`SELECT engine_full AS e FROM system.tables WHERE database = 'tributary' AND name = '${CHANGE_LOG_TABLE}'`))[0].e;
    expect(await ttl()).toMatch(/toIntervalDay\(7\)/);
    await ensureChangeLog(wh, 2);
    expect(await ttl()).toMatch(/toIntervalDay\(2\)/);
    expect((await readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 3n, limit: 100 })).length).toBe(18);
  });
});
