import { loadConfig } from '../platform/config';
import { startWorkerMetrics } from '../platform/metrics';
import { keepExistingColumnNames, warehouseColumnNames, type WarehouseColumn } from '../warehouse/columns';
import { warehouseTableName, createTableSql } from '../warehouse/tables';
import { scheduleOffsetMs } from '../temporal/schedules';
import { mapColumn } from '../connectors/postgres/types';

describe('warehouse names', () => {
  test('tables are {prefix}_{table} in snake case', () => {
    expect(warehouseTableName('stripe', 'Charge')).toBe('stripe_charge');
    expect(warehouseTableName('pg', 'Order Items')).toBe('pg_order_items');
    expect(warehouseTableName('pg', 'BalanceTransaction')).toBe('pg_balance_transaction');
    expect(warehouseTableName('pg', 'select')).toBe('pg_select');
  });

  test('columns are snake case, unique, never clash with bookkeeping columns', () => {
    expect(warehouseColumnNames(['Item Id', 'item_id', 'select', '1st', '_tributary_version', '🙂', 'camelCase'])).toEqual([
      'item_id', 'item_id_2', 'select', '_1st', 'source_tributary_version', 'column', 'camel_case',
    ]);
  });

  test('column names keep their letters: accents folded, other scripts transliterated, still unique', () => {
    expect(warehouseColumnNames(['ünïcödé', '中文', 'Ærøskøbing', 'Привет мир', 'naïve', 'naive', 'ÜberCool', 'ﬁle №1', 'straße'])).toEqual([
      'unicode', 'zhong_wen', 'aeroskobing', 'privet_mir', 'naive', 'naive_2', 'uber_cool', 'file_no1', 'strasse',
    ]);
    // Every name is a plain identifier.
    for (const n of warehouseColumnNames(['日本語', 'ελληνικά', 'עברית', 'हिन्दी', '한국어', '👍🏽', 'é', '__x'])) expect(n).toMatch(/^[a-z_][a-z0-9_]*$/);
  });

  test('a table synced under the old naming rule keeps its column names; new and already renamed tables use the new one', () => {
    const cols = (...sourceNames: string[]) =>
      warehouseColumnNames(sourceNames).map((name, i): WarehouseColumn => ({ name, sourceName: sourceNames[i], type: 'String', sourceType: 'text', nullable: true }));
    const described = cols('id', 'ünïcödé', '中文', 'n_c_d', 'added later é');
    // Synced before: ünïcödé landed as n_c_d, 中文 as column, the real n_c_d as n_c_d_2; the last column is new since.
    const old = keepExistingColumnNames(described, ['id', 'n_c_d', 'column', 'n_c_d_2', '_tributary_version']);
    expect(old.map((c) => c.name)).toEqual(['id', 'n_c_d', 'column', 'n_c_d_2', 'added_later']);
    expect(old.map((c) => c.sourceName)).toEqual(['id', 'ünïcödé', '中文', 'n_c_d', 'added later é']);
    // A new table, or one already named by the new rule: unchanged.
    expect(keepExistingColumnNames(described, []).map((c) => c.name)).toEqual(['id', 'unicode', 'zhong_wen', 'n_c_d', 'added_later_e']);
    expect(keepExistingColumnNames(described, ['id', 'unicode', 'zhong_wen', 'n_c_d']).map((c) => c.name)).toEqual(['id', 'unicode', 'zhong_wen', 'n_c_d', 'added_later_e']);
    // ASCII names read the same under both rules.
    const ascii = cols('id', 'Item Id');
    expect(keepExistingColumnNames(ascii, ['id', 'item_id'])).toEqual(ascii);
    // Columns a connector names itself are left as they are.
    const own = described.map((c) => ({ ...c, name: `own_${c.name}` }));
    expect(keepExistingColumnNames(own, ['id', 'n_c_d', 'column', 'n_c_d_2'])).toEqual(own);
  });

  test('DDL quotes every identifier and uses ReplacingMergeTree on the key', () => {
    const sql = createTableSql('default', 'pg_t', [{ ...mapColumn({ name: 'id', typname: 'int8', formatted: 'bigint', typmod: -1, elemTypname: null, nullable: false }), name: 'id' }], {
      kind: 'ReplacingMergeTree',
      orderBy: ['id'],
    }, { cluster: undefined });
    expect(sql).toContain('`id` Int64');
    expect(sql).toContain('ENGINE = ReplacingMergeTree(_tributary_version, _tributary_is_deleted) ORDER BY `id`');
  });
});

describe('Postgres → ClickHouse types', () => {
  const col = (typname: string, over: Partial<Parameters<typeof mapColumn>[0]> = {}) =>
    mapColumn({ name: 'c', typname, formatted: typname, typmod: -1, elemTypname: null, nullable: true, ...over });
  test.each([
    ['int2', 'Nullable(Int16)'],
    ['int8', 'Nullable(Int64)'],
    ['float4', 'Nullable(Float32)'],
    ['bool', 'Nullable(Bool)'],
    ['date', 'Nullable(Date32)'],
    ['timestamptz', "Nullable(DateTime64(6, 'UTC'))"],
    ['uuid', 'Nullable(UUID)'],
    ['jsonb', 'Nullable(String)'],
    ['numeric', 'Nullable(String)'],
    ['interval', 'Nullable(String)'],
  ])('%s → %s', (typname, type) => expect(col(typname).type).toBe(type));

  test('numeric(p,s) keeps precision and scale', () => {
    const typmod = ((12 << 16) | 2) + 4; // how Postgres encodes numeric(12,2)
    expect(col('numeric', { typmod, nullable: false }).type).toBe('Decimal(12, 2)');
  });

  test('arrays and bytea load through an ephemeral raw column', () => {
    expect(col('_int4', { elemTypname: 'int4' })).toMatchObject({ type: 'Array(Nullable(Int32))', selectExpr: 'to_json("c")::text' });
    expect(col('_uuid', { elemTypname: 'uuid' }).type).toBe('Array(Nullable(String))');
    expect(col('bytea').selectExpr).toBe(`encode("c", 'hex')`);
    expect(col('bytea').viaRaw?.convert('`r`')).toBe('if(isNull(`r`), NULL, unhex(`r`))');
  });
});

describe('schedules', () => {
  test('start offsets are spread by schema id, stable, and inside the interval', () => {
    const hour = 3_600_000;
    const a = scheduleOffsetMs('11111111-1111-4111-8111-111111111111', hour);
    expect(scheduleOffsetMs('11111111-1111-4111-8111-111111111111', hour)).toBe(a);
    const offsets = new Set(Array.from({ length: 20 }, (_, i) => scheduleOffsetMs(`schema-${i}`, hour)));
    expect(offsets.size).toBeGreaterThan(15);
    for (const o of offsets) expect(o).toBeGreaterThanOrEqual(0), expect(o).toBeLessThan(hour);
  });
});

describe('config', () => {
  test('embedded defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.temporal.address).toBeUndefined();
    expect(c.clickhouse.url).toBeUndefined();
    expect(c.catalog.databaseUrl).toBeUndefined();
    expect(c.api.port).toBe(8000);
    expect(c.dataDir).toMatch(/\.data$/);
  });

  test('env vars switch each part to its server', () => {
    const c = loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', CLICKHOUSE_URL: 'http://ch:8123', DATABASE_URL: 'postgres://x/y', CLICKHOUSE_DATABASE: 'wh' });
    expect(c).toMatchObject({ temporal: { address: 'temporal:7233' }, clickhouse: { url: 'http://ch:8123', database: 'wh' }, catalog: { databaseUrl: 'postgres://x/y' } });
  });

  test('bad values are refused with the variable named', () => {
    expect(() => loadConfig({ TRIBUTARY_API_PORT: 'eighty' })).toThrow(/TRIBUTARY_API_PORT/);
    expect(() => loadConfig({ CLICKHOUSE_DATABASE: 'a;drop' })).toThrow(/CLICKHOUSE_DATABASE/);
    expect(() => loadConfig({ TRIBUTARY_PUBLIC_URL: 'hooks.example.com' })).toThrow(/TRIBUTARY_PUBLIC_URL must be an http\(s\) URL/);
    expect(() => loadConfig({ TRIBUTARY_PUBLIC_URL: 'ftp://hooks.example.com' })).toThrow(/TRIBUTARY_PUBLIC_URL/);
    expect(loadConfig({ TRIBUTARY_PUBLIC_URL: 'https://hooks.example.com/' }).api.publicUrl).toBe('https://hooks.example.com');
    expect(() => loadConfig({ TRIBUTARY_INSERTS_IN_FLIGHT: '0' })).toThrow(/TRIBUTARY_INSERTS_IN_FLIGHT/);
    expect([loadConfig({}).insertsInFlight, loadConfig({ TRIBUTARY_INSERTS_IN_FLIGHT: '1' }).insertsInFlight]).toEqual([2, 1]);
  });

  test('a worker serves metrics only on a port it is given, so two workers on one host both start', async () => {
    // Unset: off (a fixed default made the second worker on a host fail to start with EADDRINUSE).
    const byDefault = loadConfig({}).metrics.workerPort;
    expect(byDefault).toBeUndefined();
    const [a, b] = [await startWorkerMetrics('127.0.0.1', byDefault), await startWorkerMetrics('127.0.0.1', byDefault)];
    expect([a, b]).toEqual([undefined, undefined]);

    // 0: a port each that the OS picks, both answering /metrics.
    const zero = loadConfig({ TRIBUTARY_METRICS_PORT: '0' }).metrics.workerPort;
    const served = [await startWorkerMetrics('127.0.0.1', zero), await startWorkerMetrics('127.0.0.1', zero)];
    try {
      expect(served[0]!.port).not.toBe(served[1]!.port);
      for (const s of served) {
        const res = await fetch(`http://127.0.0.1:${s!.port}/metrics`);
        expect(res.status).toBe(200);
        expect(await res.text()).toMatch(/^tributary_process_/m);
      }
      // A port set but taken stops the start, naming the variable rather than a bare EADDRINUSE.
      const taken = loadConfig({ TRIBUTARY_METRICS_PORT: String(served[0]!.port) }).metrics.workerPort;
      expect(taken).toBe(served[0]!.port);
      await expect(startWorkerMetrics('127.0.0.1', taken)).rejects.toThrow(/TRIBUTARY_METRICS_PORT \d+ is in use/);
    } finally {
      await Promise.all(served.map((s) => new Promise((r) => s!.server.close(r))));
    }
    expect(() => loadConfig({ TRIBUTARY_METRICS_PORT: 'ninety' })).toThrow(/TRIBUTARY_METRICS_PORT/);
  });
});
