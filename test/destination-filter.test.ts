import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCatalog, type Catalog } from '../catalog';
import { insertSchema } from '../catalog/schemas';
import { insertSource } from '../catalog/sources';
import { filterErrors, matchChanges } from '../destinations/filter';
import type { ChangeRow } from '../warehouse/change-log';
import { openWarehouse, type Warehouse } from '../warehouse/client';

/** Filters over real tables: checked against the warehouse's columns with /api/query's guard, evaluated by the engine. */
describe('destination filters', () => {
  let dataDir: string;
  let wh: Warehouse;
  let catalog: Catalog;
  let sourceId: string;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-filter-'));
    wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir: path.join(dataDir, 'wh') });
    catalog = await openCatalog({ dataDir: path.join(dataDir, 'catalog') });
    const source = await insertSource(catalog.db, { source_type: 'postgres', prefix: 'shop', config: {}, secrets: null });
    sourceId = source.id;
    await insertSchema(catalog.db, source.id, { name: 'orders', should_sync: true, sync_type: 'cdc', sync_frequency: '6hour', incremental_field: null, incremental_field_type: null, primary_key_columns: ['id'] } as never);
    await wh.command(`CREATE TABLE tributary.shop_orders (id Int64, status LowCardinality(String), amount Decimal(18, 2), paid_at Nullable(DateTime64(6, 'UTC')),
      tags Array(String), big_id UInt64, _tributary_version UInt64, _tributary_is_deleted UInt8) ENGINE = ReplacingMergeTree(_tributary_version, _tributary_is_deleted) ORDER BY id`);
    await wh.command('CREATE TABLE tributary.other_people (id Int64, name String) ENGINE = MergeTree ORDER BY id');
  });

  afterAll(async () => {
    await wh?.close();
    await catalog?.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const deps = () => ({ catalog, warehouse: wh });
  const change = (table: string, op: ChangeRow['op'], row: Record<string, unknown>, seq = 1): ChangeRow => ({
    batch: '1', seq, source_id: sourceId, table, op, key: JSON.stringify({ id: row.id }), row: JSON.stringify(row), old_row: null, version: '1', landed_at: '2026-01-01 00:00:00.000000',
  });

  test('good filters have no problems', async () => {
    expect(await filterErrors(deps(), undefined)).toEqual([]);
    expect(await filterErrors(deps(), { source_id: sourceId, tables: ['shop_orders'], operations: ['insert', 'update'], expression: "status = 'paid' AND amount > 100" })).toEqual([]);
    expect(await filterErrors(deps(), { tables: ['shop_orders', 'other_people'], expression: 'id > 10' })).toEqual([]);
    expect(await filterErrors(deps(), { tables: ['shop_orders'], expression: "has(tags, 'vip') OR paid_at IS NOT NULL" })).toEqual([]);
  });

  test('tables must be warehouse tables of the source; operations known', async () => {
    expect(await filterErrors(deps(), { source_id: sourceId, tables: ['shop_orders', 'nope', 'other_people', '_tributary_changes'], operations: ['insert', 'upsert' as never] })).toEqual([
      { path: 'filters.tables.1', message: 'no warehouse table nope' },
      { path: 'filters.tables.2', message: `table other_people is not one of source ${sourceId}'s tables` },
      { path: 'filters.tables.3', message: 'no warehouse table _tributary_changes' },
      { path: 'filters.operations.1', message: 'operation must be one of insert, update, delete' },
    ]);
    expect(await filterErrors(deps(), { source_id: '00000000-0000-0000-0000-000000000000' })).toEqual([
      { path: 'filters.source_id', message: 'no source 00000000-0000-0000-0000-000000000000' },
    ]);
    expect(await filterErrors(deps(), { expression: 'id > 1' })).toEqual([{ path: 'filters.tables', message: expect.stringMatching(/needs the tables/) }]);
  });

  test.each([
    ["status = 'paid' AND amount >", /syntax error at the end of the expression: it ends too early/],
    ["status = = 'paid'", /syntax error at position 10 \("= 'paid'"\)/],
    ['nope > 1', /^unknown column nope: shop_orders's columns are id, status, amount, paid_at, tags, big_id$/],
    ["(status = 'paid'", /a bracket is not closed/],
    ['toDate(status) > 1', /over shop_orders's columns: Illegal types of arguments/],
    ['amount', /must be a boolean.*Decimal\(18, 2\)/],
    ['id IN (SELECT id FROM tributary.other_people)', /subquery/],
    ['id > 1) FROM tributary.other_people WHERE (1', /syntax error|subquery|table/],
    ['id > 1 SETTINGS max_threads = 1', /syntax error|SETTINGS/],
    ["length(file('/etc/passwd')) > 0", /file\(\) is not allowed/],
    ['count() > 1', /aggregate function count\(\) is not allowed/],
    ["dictGet('d', 'x', id) = 1", /dictGet\(\) is not allowed/],
    ['arrayJoin(tags) = 1', /arrayJoin\(\) is not allowed/],
    ['1; DROP TABLE tributary.shop_orders', /syntax error/],
  ])('a bad expression %s is refused saying where or why', async (expression, message) => {
    const problems = await filterErrors(deps(), { tables: ['shop_orders'], expression });
    expect(problems).toHaveLength(1);
    expect(problems[0].path).toBe('filters.expression');
    expect(problems[0].message).toMatch(message);
  });

  test("the engine evaluates the expression over each change's row with the table's column types, in one answer per change", async () => {
    const changes = [
      change('shop_orders', 'insert', { id: 1, status: 'paid', amount: 150.5, paid_at: '2026-01-01 10:00:00.000000', tags: ['vip'], big_id: '18446744073709551615' }, 1),
      change('shop_orders', 'update', { id: 2, status: 'paid', amount: 99.99, paid_at: null, tags: [], big_id: '1' }, 2),
      change('shop_orders', 'update', { id: 3, status: 'open', amount: 500, paid_at: null, tags: [], big_id: '1' }, 3),
      change('other_people', 'insert', { id: 4, name: 'paid' }, 4),
      change('shop_orders', 'delete', { id: 5, status: 'paid', amount: 1000, paid_at: null, tags: [], big_id: '1' }, 5),
    ];
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: "status = 'paid' AND amount > 100" }, changes)).toEqual([true, false, false, false, true]);
    expect(await matchChanges(wh, { tables: ['shop_orders'], operations: ['insert', 'update'], expression: "status = 'paid' AND amount > 100" }, changes)).toEqual([true, false, false, false, false]);
    // Types are the table's: a UInt64 past 2^53 compares exactly, a DateTime64 as a time, a NULL does not match.
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: 'big_id = 18446744073709551615' }, changes)).toEqual([true, false, false, false, false]);
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: "paid_at > toDateTime64('2026-01-01 09:00:00', 6, 'UTC')" }, changes)).toEqual([true, false, false, false, false]);
    // Two tables with their own columns in the same query.
    expect(await matchChanges(wh, { tables: ['shop_orders', 'other_people'], expression: 'id % 2 = 0' }, changes)).toEqual([false, true, false, true, false]);
    // No expression: tables, operations and source alone.
    expect(await matchChanges(wh, { operations: ['delete'] }, changes)).toEqual([false, false, false, false, true]);
    expect(await matchChanges(wh, { source_id: '00000000-0000-0000-0000-000000000000' }, changes)).toEqual([false, false, false, false, false]);
    expect(await matchChanges(wh, undefined, changes)).toEqual([true, true, true, true, true]);
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: 'id > 0' }, [])).toEqual([]);
  });

  test("a column the row lacks is NULL, not a default; a delete is judged on its old row's values", async () => {
    const del = (id: number, old: Record<string, unknown> | null, seq: number): ChangeRow => ({ ...change('shop_orders', 'delete', { id }, seq), old_row: old === null ? null : JSON.stringify(old) });
    const changes = [
      // A delete whose source gave the old row (REPLICA IDENTITY FULL, a full refresh's diff), and one that did not.
      del(1, { id: 1, status: 'paid', amount: 500, paid_at: null, tags: [], big_id: '1' }, 1),
      del(2, null, 2),
      // An update's row is complete: its old row is not read.
      { ...change('shop_orders', 'update', { id: 3, status: 'open', amount: 5, paid_at: null, tags: [], big_id: '1' }, 3), old_row: JSON.stringify({ id: 3, status: 'paid', amount: 500 }) },
    ];
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: "status = 'paid' AND amount > 100" }, changes)).toEqual([true, false, false]);
    // Without the old row, amount is NULL: `amount < 100` does not hold for it (a default 0 would have).
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: 'amount < 100' }, changes)).toEqual([false, false, true]);
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: 'amount IS NULL' }, changes)).toEqual([false, true, false]);
    expect(await matchChanges(wh, { tables: ['shop_orders'], expression: 'id = 2' }, changes)).toEqual([false, true, false]);
  });

  test('a page of 3 MB of rows is matched, split into queries of at most 512 KiB of rows', async () => {
    const big = 'x'.repeat(2000);
    const changes = Array.from({ length: 1500 }, (_, i) => change('shop_orders', 'insert', { id: i, status: i % 3 === 0 ? 'paid' : big, amount: i, paid_at: null, tags: [], big_id: '1' }, i + 1));
    const matched = await matchChanges(wh, { tables: ['shop_orders'], expression: "status = 'paid'" }, changes);
    expect(matched).toEqual(changes.map((_, i) => i % 3 === 0));
  });
});
