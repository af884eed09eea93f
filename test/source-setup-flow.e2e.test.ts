import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { buildOpenApiDocument } from '../api/openapi';
import { syncScheduleId } from '../temporal/ids';
import * as R from '../api/response-schemas';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

const ONE_MINUTE =
  'A 1-minute sync frequency is only available for CDC schemas. The fastest frequency for other sync types is 5 minutes.';

/**
 * Seed 001's three-step flow (wizard → db-schema → create) and seed 000's schema-management rules,
 * through the HTTP API of the real platform. Bad input never stores anything.
 */
describe('source setup flow and schema management', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let sourceId: string;
  let ids: Record<string, string>;

  const entries = () => [
    { name: 'orders', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime' },
    { name: 'customers', should_sync: true, sync_type: 'full_refresh' },
    { name: 'events_log', should_sync: true, sync_type: 'append', incremental_field: 'created_at', incremental_field_type: 'datetime' },
    { name: 'plain', should_sync: false },
    { name: 'loose_keys', should_sync: true, sync_type: 'incremental', incremental_field: 'id', incremental_field_type: 'integer' },
  ];
  const create = (schemas: unknown[], extra: Record<string, unknown> = {}) =>
    platform.api('POST', '/api/sources', { source_type: 'Postgres', prefix: 'flow', payload: { ...connectionPayload(db), schemas }, ...extra });
  const fieldsOf = (body: { details: { field: string }[] }) => body.details.map((d) => d.field);
  const schemasList = async (qs = '') => (await platform.api('GET', `/api/sources/${sourceId}/schemas${qs}`)).body.results;
  const sourcesCount = async () => (await platform.api('GET', '/api/sources')).body.results.length;

  async function temporal<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const connection = await Connection.connect({ address: platform.temporalAddress });
    try {
      return await fn(new Client({ connection }));
    } finally {
      await connection.close();
    }
  }
  const scheduleIds = () =>
    temporal(async (c) => {
      const out: string[] = [];
      // The platform's own alert check is not a schema's.
      for await (const s of c.schedule.list()) if (s.scheduleId !== 'tributary-watch-alerts') out.push(s.scheduleId);
      return out.sort();
    });
  /** Schedule listing goes through Temporal's visibility store, which lags a moment behind: poll for the expected set. */
  async function expectSchedules(expected: string[]) {
    expected = [...expected].sort();
    const deadline = Date.now() + 10_000;
    let ids = await scheduleIds();
    while (JSON.stringify(ids) !== JSON.stringify(expected) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      ids = await scheduleIds();
    }
    expect(ids).toEqual(expected);
  }
  /** Schedule ids follow schema ids, so they survive a prefix change. */
  const sid = (name: string) => syncScheduleId(ids[name]);
  const describeSchedule = (id: string) => temporal((c) => c.schedule.getHandle(id).describe());
  const tables = async () => (await query(platform, `SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name`)).map((r) => r.name);

  beforeAll(async () => {
    db = await createSourceDb('flow');
    await db.admin.query(`
      CREATE TABLE orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2), note text);
      INSERT INTO orders SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 minute', g, 'n' || g FROM generate_series(1, 100) g;
      CREATE TABLE customers (id int PRIMARY KEY, name text);
      INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
      CREATE TABLE events_log (seq int, created_at timestamptz, payload text);
      INSERT INTO events_log SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour', 'p' FROM generate_series(1, 30) g;
      CREATE TABLE plain (label text);
      CREATE TABLE loose_keys (id int, v text);
      INSERT INTO loose_keys SELECT g, 'v' FROM generate_series(1, 10) g;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    dataDir = makeDataDir('flow');
    platform = await startPlatform({ dataDir });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('db-schema: credentials checked live, one entry per table in seed 001\'s shape', async () => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db) });
    expect(res.status).toBe(200);
    expect(res.body.map((t: any) => t.table)).toEqual(['customers', 'events_log', 'loose_keys', 'orders', 'plain']);
    const orders = res.body.find((t: any) => t.table === 'orders');
    expect(orders).toEqual({
      table: 'orders',
      should_sync: false,
      rows: expect.any(Number),
      incremental_available: true,
      append_available: true,
      cdc_available: false,
      supports_webhooks: false,
      incremental_fields: [
        { field: 'id', type: 'integer', label: 'id', nullable: false },
        { field: 'updated_at', type: 'datetime', label: 'updated_at', nullable: false },
        { field: 'amount', type: 'numeric', label: 'amount', nullable: true },
      ],
      detected_primary_keys: ['id'],
      available_columns: [
        { field: 'id', type: 'bigint', nullable: false },
        { field: 'updated_at', type: 'timestamp with time zone', nullable: false },
        { field: 'amount', type: 'numeric(12,2)', nullable: true },
        { field: 'note', type: 'text', nullable: true },
      ],
      description: expect.any(String),
    });
    expect(res.body.find((t: any) => t.table === 'plain')).toMatchObject({ incremental_available: false, detected_primary_keys: [] });
    expect(res.body.find((t: any) => t.table === 'loose_keys').detected_primary_keys).toEqual(['id']);

    const bad = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db), password: 'wrong-pw' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe(`password authentication failed for user "${db.user}"`);
    expect(JSON.stringify(bad.body)).not.toContain('wrong-pw');

    const noHost = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db), host: '' });
    expect(noHost.status).toBe(400);
    expect(fieldsOf(noHost.body)).toEqual(['host']);
    const unknown = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Oracle' });
    expect(unknown.status).toBe(400);
    expect(fieldsOf(unknown.body)).toEqual(['source_type']);
  });

  test('check-cdc-prerequisites: { valid, errors[] } with the SQL that fixes each', async () => {
    // tables: [] checks the server and role only (the per-table checks have their own test file).
    const before = await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...connectionPayload(db), tables: [] });
    expect(before.status).toBe(200);
    expect(before.body.valid).toBe(false);
    expect(before.body.errors).toEqual([
      expect.stringContaining(`ALTER ROLE "${db.user}" WITH REPLICATION`),
      expect.stringContaining(`GRANT CREATE ON DATABASE "${db.dbname}" TO "${db.user}"`),
    ]);
    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    const after = await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...connectionPayload(db), tables: [] });
    expect(after.body).toEqual({ valid: true, errors: [] });
    await db.admin.query(`ALTER ROLE ${db.user} WITH NOREPLICATION; REVOKE CREATE ON DATABASE ${db.dbname} FROM ${db.user}`);
    const bad = await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...connectionPayload(db), password: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/password authentication failed/);
  });

  test('the schemas[] rules: each violation a 400 naming the schema and field; nothing stored', async () => {
    const replace = (name: string, entry: Record<string, unknown>) => entries().map((e) => (e.name === name ? { name, ...entry } : e));
    const cases: [string, unknown[], RegExp][] = [
      ['payload.schemas', entries().filter((e) => e.name !== 'plain'), /missing: "plain"/],
      ['payload.schemas.5.name', [...entries(), { name: 'invented', should_sync: false }], /"invented": no such table/],
      ['payload.schemas.5.name', [...entries(), { name: 'plain', should_sync: false }], /"plain" is listed twice/],
      ['payload.schemas.1.sync_type', replace('customers', { should_sync: true }), /sync_type is required/],
      ['payload.schemas.0.incremental_field', replace('orders', { should_sync: true, sync_type: 'incremental' }), /one of: id, updated_at, amount/],
      ['payload.schemas.0.incremental_field', replace('orders', { should_sync: true, sync_type: 'append', incremental_field: 'note', incremental_field_type: 'datetime' }), /incremental_field/],
      ['payload.schemas.0.incremental_field_type', replace('orders', { should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'integer' }), /must be "datetime"/],
      ['payload.schemas.3.sync_type', replace('plain', { should_sync: true, sync_type: 'incremental' }), /no column of a cursor type|has none/],
      ['payload.schemas.2.primary_key_columns', replace('events_log', { should_sync: true, sync_type: 'incremental', incremental_field: 'seq', incremental_field_type: 'integer' }), /no primary key/],
      ['payload.schemas.1.primary_key_columns', replace('customers', { should_sync: true, sync_type: 'full_refresh', primary_key_columns: ['nope'] }), /no such column: nope/],
      ['payload.schemas.1.primary_key_columns', replace('customers', { should_sync: true, sync_type: 'cdc' }), /cdc needs primary_key_columns/],
      ['payload.schemas.1.sync_type', replace('customers', { should_sync: true, sync_type: 'webhook' }), /does not support webhooks/],
      ['payload.schemas.1.sync_frequency', replace('customers', { should_sync: true, sync_type: 'full_refresh', sync_frequency: '1min' }), new RegExp(ONE_MINUTE.replace(/\./g, '\\.'))],
    ];
    for (const [field, schemas, message] of cases) {
      const res = await create(schemas);
      expect({ field, status: res.status }).toEqual({ field, status: 400 });
      expect(fieldsOf(res.body)).toContain(field);
      expect(res.body.message).toMatch(message);
    }
    // The 1-minute rule does not apply to CDC (its other violations are still reported).
    const cdc = await create(replace('customers', { should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }));
    expect(cdc.status).toBe(400);
    expect(fieldsOf(cdc.body)).not.toContain('payload.schemas.1.sync_frequency');
    expect(await sourcesCount()).toBe(0);
    await expectSchedules([]);
  });

  test('create: 201 with warnings for a nullable cursor and a nullable key; schedules and first syncs', async () => {
    const res = await create(entries());
    expect(res.status).toBe(201);
    expect(res.body.payload.password).toBe('********');
    expect(res.body.warnings).toEqual([
      'schema "events_log": incremental_field "created_at" is nullable: rows where it is null are skipped',
      'schema "loose_keys": incremental_field "id" is nullable: rows where it is null are skipped',
      'schema "loose_keys": primary key column id is nullable: null values can cause deduplication issues',
    ]);
    sourceId = res.body.id;
    ids = Object.fromEntries(res.body.schemas.map((s: any) => [s.name, s.id]));
    for (const name of ['orders', 'customers', 'events_log', 'loose_keys']) expect(await waitForJobs(platform, ids[name], 1)).toMatchObject({ status: 'Completed' });
    await expectSchedules([sid('customers'), sid('events_log'), sid('loose_keys'), sid('orders')]);
  });

  test('GET /api/sources: status, last successful run and schema counts', async () => {
    const res = await platform.api('GET', '/api/sources');
    expect(res.body.results).toHaveLength(1);
    const s = res.body.results[0];
    expect(s).toMatchObject({ id: sourceId, prefix: 'flow', status: 'Completed', schema_counts: { total: 5, enabled: 4, running: 0, failed: 0 } });
    expect(new Date(s.last_successful_run).getTime()).toBeGreaterThan(Date.now() - 120_000);
    expect(s.payload.password).toBe('********');
  });

  test('schemas list: filters and sorting, validated', async () => {
    const names = (rows: any[]) => rows.map((r) => r.name);
    expect(names(await schemasList())).toEqual(['customers', 'events_log', 'loose_keys', 'orders', 'plain']);
    expect(names(await schemasList('?status=not%20set%20up'))).toEqual(['plain']);
    expect(names(await schemasList('?status=Completed'))).toEqual(['customers', 'events_log', 'loose_keys', 'orders']);
    expect(names(await schemasList('?sync_type=none'))).toEqual(['plain']);
    expect(names(await schemasList('?sync_type=incremental'))).toEqual(['loose_keys', 'orders']);
    expect(names(await schemasList('?frequency=6hour&enabled_only=true'))).toEqual(['customers', 'events_log', 'loose_keys', 'orders']);
    expect(names(await schemasList('?search=OR'))).toEqual(['orders']);
    expect(names(await schemasList('?sort=rows_synced&order=desc'))).toEqual(['orders', 'events_log', 'customers', 'loose_keys', 'plain']);
    expect(names(await schemasList('?sort=rows_synced'))).toEqual(['loose_keys', 'customers', 'events_log', 'orders', 'plain']);
    expect(names(await schemasList('?sort=name&order=desc'))).toEqual(['plain', 'orders', 'loose_keys', 'events_log', 'customers']);
    expect(names(await schemasList('?sort=last_synced_at')).at(-1)).toBe('plain');
    expect(names(await schemasList('?sort=status')).at(-1)).toBe('plain');
    for (const [qs, field] of [['?status=Sleeping', 'status'], ['?sort=size', 'sort'], ['?order=up', 'order'], ['?enabled_only=yes', 'enabled_only'], ['?frequency=2min', 'frequency']]) {
      const res = await platform.api('GET', `/api/sources/${sourceId}/schemas${qs}`);
      expect({ qs, status: res.status }).toEqual({ qs, status: 400 });
      expect(fieldsOf(res.body)).toEqual([field]);
    }
  });

  test('PATCH /api/schemas/:id: enable needs a method, 1-minute rule, disable pauses and enable resumes the schedule', async () => {
    const unconfigured = await platform.api('PATCH', `/api/schemas/${ids.plain}`, { should_sync: true });
    expect(unconfigured.status).toBe(400);
    expect(fieldsOf(unconfigured.body)).toEqual(['sync_type']);
    const oneMinute = await platform.api('PATCH', `/api/schemas/${ids.customers}`, { sync_frequency: '1min' });
    expect(oneMinute.status).toBe(400);
    expect(oneMinute.body.message).toBe(ONE_MINUTE);
    expect(oneMinute.body.details).toEqual([{ field: 'sync_frequency', message: ONE_MINUTE }]);
    const unknownKey = await platform.api('PATCH', `/api/schemas/${ids.customers}`, { frequency: '1hour' });
    expect(unknownKey.status).toBe(400);
    expect(fieldsOf(unknownKey.body)).toEqual(['frequency']);
    expect((await platform.api('PATCH', `/api/schemas/00000000-0000-4000-8000-000000000000`, { should_sync: false })).status).toBe(404);

    const disabled = await platform.api('PATCH', `/api/schemas/${ids.customers}`, { should_sync: false });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ should_sync: false, status: 'Paused' });
    expect((await describeSchedule(sid('customers'))).state.paused).toBe(true);

    const freq = await platform.api('PATCH', `/api/schemas/${ids.customers}`, { should_sync: true, sync_frequency: '12hour' });
    expect(freq.status).toBe(200);
    const schedule = await describeSchedule(sid('customers'));
    expect(schedule.state.paused).toBe(false);
    expect(schedule.spec.intervals![0].every).toBe(12 * 3600 * 1000);
    // Re-enabling starts a run at once.
    expect(await waitForJobs(platform, ids.customers, 2)).toMatchObject({ status: 'Completed' });

    // A new table configured and enabled in one request gets its schedule and first run.
    const enabled = await platform.api('PATCH', `/api/schemas/${ids.plain}`, { should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' });
    expect(enabled.status).toBe(200);
    expect(await waitForJobs(platform, ids.plain, 1)).toMatchObject({ status: 'Completed' });
    expect((await describeSchedule(sid('plain'))).state.paused).toBe(false);
  });

  test('PATCH: primary_key_columns are locked (409) once an incremental sync has completed', async () => {
    const res = await platform.api('PATCH', `/api/schemas/${ids.orders}`, { primary_key_columns: ['id', 'updated_at'] });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/Delete the synced data first/);
    expect(fieldsOf(res.body)).toEqual(['primary_key_columns']);
    // The same key is no change.
    expect((await platform.api('PATCH', `/api/schemas/${ids.orders}`, { primary_key_columns: ['id'] })).status).toBe(200);
    // Not locked for a full refresh; null means the detected key again.
    expect((await platform.api('PATCH', `/api/schemas/${ids.customers}`, { primary_key_columns: ['id', 'name'] })).body.primary_key_columns).toEqual(['id', 'name']);
    expect((await platform.api('PATCH', `/api/schemas/${ids.customers}`, { primary_key_columns: null })).body.primary_key_columns).toEqual(['id']);
  });

  test('PATCH: changing the sync type rebuilds the same table in place', async () => {
    const res = await platform.api('PATCH', `/api/schemas/${ids.events_log}`, { sync_type: 'full_refresh' });
    expect(res.status).toBe(200);
    expect(res.body.sync_type).toBe('full_refresh');
    expect(await waitForJobs(platform, ids.events_log, 2)).toMatchObject({ status: 'Completed', rows_synced: 30 });
    expect((await query(platform, 'SELECT count() AS n FROM flow_events_log'))[0].n).toBe('30');
    expect((await tables()).filter((t) => t.startsWith('flow_events_log'))).toEqual(['flow_events_log']);
    // Back to append: the table is dropped and the cursor forgotten, so one full load refills it, nothing twice.
    const back = await platform.api('PATCH', `/api/schemas/${ids.events_log}`, { sync_type: 'append' });
    expect(back.status).toBe(200);
    expect(await waitForJobs(platform, ids.events_log, 3)).toMatchObject({ status: 'Completed', rows_synced: 30 });
    expect((await query(platform, 'SELECT count() AS n, uniqExact(seq) AS u FROM flow_events_log'))[0]).toEqual({ n: '30', u: '30' });
    expect((await query(platform, `SELECT engine FROM system.tables WHERE name = 'flow_events_log'`))[0].engine).toBe('MergeTree');
  });

  test('bulk actions: set_frequency, sync_now skipping with reasons, disable, delete_tables, delete_and_resync; no bulk enable', async () => {
    const bulk = (body: unknown) => platform.api('POST', '/api/schemas/bulk', body);
    expect((await bulk({ action: 'enable', schema_ids: [ids.orders] })).status).toBe(400);
    const oneMinute = await bulk({ action: 'set_frequency', schema_ids: [ids.orders, ids.customers], frequency: '1min' });
    expect(oneMinute.status).toBe(400);
    expect(oneMinute.body.message).toBe(ONE_MINUTE);
    const noFrequency = await bulk({ action: 'set_frequency', schema_ids: [ids.orders] });
    expect(fieldsOf(noFrequency.body)).toEqual(['frequency']);
    const missing = await bulk({ action: 'sync_now', schema_ids: [ids.orders, '00000000-0000-4000-8000-000000000000'] });
    expect(missing.status).toBe(404);
    expect(fieldsOf(missing.body)).toEqual(['schema_ids.1']);

    const freq = await bulk({ action: 'set_frequency', schema_ids: [ids.orders, ids.customers], frequency: '30min' });
    expect(freq.status).toBe(200);
    expect((await describeSchedule(sid('orders'))).spec.intervals![0].every).toBe(30 * 60 * 1000);

    const disable = await bulk({ action: 'disable', schema_ids: [ids.loose_keys] });
    expect(disable.body).toEqual({ action: 'disable', applied: [{ id: ids.loose_keys, name: 'loose_keys' }], skipped: [] });
    expect((await describeSchedule(sid('loose_keys'))).state.paused).toBe(true);

    const syncNow = await bulk({ action: 'sync_now', schema_ids: [ids.orders, ids.loose_keys] });
    expect(syncNow.body).toEqual({
      action: 'sync_now',
      applied: [{ id: ids.orders, name: 'orders' }],
      skipped: [{ id: ids.loose_keys, name: 'loose_keys', reason: 'disabled' }],
    });
    await waitForJobs(platform, ids.orders, 2);

    const dropped = await bulk({ action: 'delete_tables', schema_ids: [ids.customers] });
    expect(dropped.status).toBe(200);
    expect(await tables()).not.toContain('flow_customers');
    expect((await schemasList()).find((s: any) => s.name === 'customers')).toMatchObject({ should_sync: false, last_synced_at: null, rows_synced: null });

    // Deleted data unlocks the key; delete_and_resync imports from scratch.
    await db.admin.query(`INSERT INTO orders VALUES (101, now(), 1, 'late')`);
    const resync = await bulk({ action: 'delete_and_resync', schema_ids: [ids.orders, ids.customers] });
    expect(resync.body.applied).toEqual([{ id: ids.orders, name: 'orders' }]);
    expect(resync.body.skipped).toEqual([{ id: ids.customers, name: 'customers', reason: 'table deleted; not resynced: disabled' }]);
    expect(await waitForJobs(platform, ids.orders, 3)).toMatchObject({ status: 'Completed', rows_synced: 101 });
    expect((await query(platform, 'SELECT count() AS n FROM flow_orders FINAL'))[0].n).toBe('101');
  });

  test('refresh-schemas adds new tables disabled, syncing nothing', async () => {
    await db.admin.query(`CREATE TABLE late_table (id int PRIMARY KEY); GRANT SELECT ON late_table TO ${db.user}`);
    const res = await platform.api('POST', `/api/sources/${sourceId}/refresh-schemas`);
    expect(res.status).toBe(200);
    expect(res.body.added).toEqual([expect.objectContaining({ name: 'late_table', should_sync: false, sync_type: null, status: 'not set up' })]);
    expect((await platform.api('POST', `/api/sources/${sourceId}/refresh-schemas`)).body.added).toEqual([]);
    const late = (await schemasList()).find((s: any) => s.name === 'late_table');
    expect((await platform.api('GET', `/api/jobs?schema_id=${late.id}`)).body.results).toEqual([]);
  });

  test('sync-all needs confirm, starts every enabled schema and lists the skipped ones with reasons', async () => {
    const noConfirm = await platform.api('POST', `/api/sources/${sourceId}/sync-all`, {});
    expect(noConfirm.status).toBe(400);
    expect(fieldsOf(noConfirm.body)).toEqual(['confirm']);
    const res = await platform.api('POST', `/api/sources/${sourceId}/sync-all`, { confirm: true });
    expect(res.status).toBe(202);
    expect(res.body.started.map((s: any) => s.name).sort()).toEqual(['events_log', 'orders', 'plain']);
    expect(res.body.skipped).toEqual(
      expect.arrayContaining([
        { id: ids.customers, name: 'customers', reason: 'disabled' },
        { id: expect.any(String), name: 'late_table', reason: 'disabled' },
      ]),
    );
    await waitForJobs(platform, ids.orders, 4);
    await waitForJobs(platform, ids.plain, 2);
    await waitForJobs(platform, ids.events_log, 3);
  });

  test('PATCH /api/sources/:id: new credentials checked live; a new prefix renames tables and schedules', async () => {
    const bad = await platform.api('PATCH', `/api/sources/${sourceId}`, { payload: { password: 'wrong-again' } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/password authentication failed/);
    const same = await platform.api('PATCH', `/api/sources/${sourceId}`, { payload: { password: '********', schema: 'public' } });
    expect(same.status).toBe(200);
    const badPrefix = await platform.api('PATCH', `/api/sources/${sourceId}`, { prefix: 'Not Valid' });
    expect(fieldsOf(badPrefix.body)).toEqual(['prefix']);

    const renamed = await platform.api('PATCH', `/api/sources/${sourceId}`, { prefix: 'shop' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.prefix).toBe('shop');
    expect((await tables()).filter((t) => t.startsWith('flow_'))).toEqual([]);
    expect((await tables()).filter((t) => t.startsWith('shop_'))).toEqual(['shop_events_log', 'shop_loose_keys', 'shop_orders', 'shop_plain']);
    // Paused schedules (loose_keys disabled, customers' data deleted) move too, still paused.
    await expectSchedules([sid('customers'), sid('events_log'), sid('loose_keys'), sid('orders'), sid('plain')]);
    expect((await describeSchedule(sid('loose_keys'))).state.paused).toBe(true);
    // Same ids, new readable names: the summary and the search attributes name the renamed table.
    const orders = await describeSchedule(sid('orders'));
    expect(orders.action).toMatchObject({ staticSummary: expect.stringContaining('into shop_orders') });
    expect((orders.action as any).typedSearchAttributes.get({ name: 'TributaryTable', type: 'KEYWORD' })).toBe('shop_orders');
    await platform.api('POST', `/api/schemas/${ids.orders}/sync`);
    expect(await waitForJobs(platform, ids.orders, 5)).toMatchObject({ status: 'Completed' });
    expect((await query(platform, 'SELECT count() AS n FROM shop_orders FINAL'))[0].n).toBe('101');
  });

  test('a restart keeps every schedule as the catalog says: none lost, none duplicated, paused ones paused', async () => {
    const before = [sid('customers'), sid('events_log'), sid('loose_keys'), sid('orders'), sid('plain')];
    await expectSchedules(before);
    // A schedule lost behind our back (deleted in the Temporal UI) comes back at the next start.
    await temporal((c) => c.schedule.getHandle(sid('plain')).delete());
    // As an older version left it: named after the table. It goes when its successor is created.
    await temporal((c) =>
      c.schedule.create({
        scheduleId: 'sync-shop_plain',
        spec: { intervals: [{ every: '1 day' }] },
        action: { type: 'startWorkflow', workflowType: 'syncSchema', workflowId: 'sync-shop_plain', taskQueue: 'tributary', args: [{ schemaId: ids.plain }] },
        state: { paused: true },
      }),
    );
    await expectSchedules([...before.filter((id) => id !== sid('plain')), 'sync-shop_plain']);
    expect(await platform.stop()).toBe(0);
    platform = await startPlatform({ dataDir, token: platform.token });
    await expectSchedules(before);
    expect((await describeSchedule(sid('loose_keys'))).state.paused).toBe(true);
    expect((await describeSchedule(sid('customers'))).state.paused).toBe(true);
    expect((await describeSchedule(sid('orders'))).state.paused).toBe(false);
  });

  test('GET /api/openapi.json is public, and real answers match the documented (zod) response shapes', async () => {
    const doc = await platform.api('GET', '/api/openapi.json', undefined, { token: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(doc.body).toEqual(buildOpenApiDocument());
    R.listOf(R.sourceResponse).parse((await platform.api('GET', '/api/sources')).body);
    R.sourceResponse.parse((await platform.api('GET', `/api/sources/${sourceId}`)).body);
    R.listOf(R.schemaResponse).parse((await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body);
    const jobs = R.listOf(R.jobResponse).parse((await platform.api('GET', `/api/jobs?source_id=${sourceId}`)).body).results;
    const completed = (await platform.api('GET', `/api/jobs?source_id=${sourceId}&status=Completed`)).body.results;
    expect(completed.length).toBe(jobs.filter((j) => j.status === 'Completed').length);
    expect(completed.length).toBeGreaterThan(0);
    for (const j of completed) {
      expect(j.status).toBe('Completed');
      expect(j.duration_seconds).toBeCloseTo((Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000, 3);
    }
    const badStatus = await platform.api('GET', `/api/jobs?status=Done`);
    expect(badStatus.status).toBe(400);
    expect(fieldsOf(badStatus.body)).toEqual(['status']);
    R.sourceTypesResult.parse((await platform.api('GET', '/api/source-types')).body);
    R.errorResponse.parse((await platform.api('GET', '/api/sources/nope')).body);
    R.schemaWithWarnings.parse((await platform.api('PATCH', `/api/schemas/${ids.orders}`, { sync_frequency: '1hour' })).body);
    R.bulkResult.parse((await platform.api('POST', '/api/schemas/bulk', { action: 'sync_now', schema_ids: [ids.customers] })).body);
    R.refreshResult.parse((await platform.api('POST', `/api/sources/${sourceId}/refresh-schemas`)).body);
    z.array(R.discoveredTableResponse).parse((await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db) })).body);
    R.cdcCheckResult.parse((await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...connectionPayload(db) })).body);
    // Webhooks are Stripe's: a Postgres source says it has none, and refuses to register one.
    expect(R.webhookInfoResult.parse((await platform.api('GET', `/api/sources/${sourceId}/webhook-info`)).body)).toMatchObject({ supports_webhooks: false, exists: false });
    const noHooks = await platform.api('POST', `/api/sources/${sourceId}/webhook`);
    expect(noHooks.status).toBe(400);
    expect(noHooks.body.message).toMatch(/Postgres sources do not support webhooks/);
  });

  test('DELETE /api/sources/:id removes schedules and catalog rows; tables stay unless delete_data=true', async () => {
    const bad = await platform.api('DELETE', `/api/sources/${sourceId}?delete_data=maybe`);
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad.body)).toEqual(['delete_data']);
    const res = await platform.api('DELETE', `/api/sources/${sourceId}`);
    expect(res.status).toBe(200);
    expect(R.deleteSourceResult.parse(res.body)).toEqual({ id: sourceId, deleted: true, dropped_tables: [], warnings: [] });
    await expectSchedules([]);
    expect((await platform.api('GET', `/api/sources/${sourceId}`)).status).toBe(404);
    expect((await tables()).filter((t) => t.startsWith('shop_'))).toHaveLength(4);

    // A second source, deleted with its data, while its first syncs may still be running.
    const again = await platform.api('POST', '/api/sources', { source_type: 'Postgres', prefix: 'again', payload: { ...connectionPayload(db), schemas: [...entries(), { name: 'late_table', should_sync: false }] } });
    expect(again.status).toBe(201);
    const del = await platform.api('DELETE', `/api/sources/${again.body.id}?delete_data=true`);
    expect(del.status).toBe(200);
    expect(del.body.dropped_tables).toHaveLength(6);
    await expectSchedules([]);
    // Live tables; a staging table a terminated run is still writing is swept later (sync-control.ts).
    expect((await tables()).filter((t) => t.startsWith('again_') && !t.includes('__loading_'))).toEqual([]);
    // Nothing of it runs any more (visibility lags a moment behind termination: poll).
    const running = () =>
      temporal(async (c) => {
        const ids: string[] = [];
        for await (const wf of c.workflow.list({ query: `TributarySourceId = "${again.body.id}" AND ExecutionStatus = "Running"` })) ids.push(wf.workflowId);
        return ids;
      });
    const deadline = Date.now() + 10_000;
    while ((await running()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await running()).toEqual([]);
  });
});
